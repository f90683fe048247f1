import * as tf from '@tensorflow/tfjs';
import { loadedCublas } from './cublas.js';
import { GRAM_KERNEL } from './matmul-kernels.js';
import type { OpenBlas } from './openblas.js';
import { nativeEnabled, nativeLibraries } from './provider.js';

/**
 * The CKA engines' hooks for their Grams and products, so the engines stay backend-agnostic:
 *   cuBLAS loaded (NVIDIA machine, cublas.ts): on the GPU, one panel at a time (the engines' panels and
 *     batches are the streaming unit), results back on the host where the engines accumulate in float64;
 *   OpenBLAS loaded on the wasm backend: ssyrk for a Gram (half the flops of a product, no transpose
 *     pass), sgemm for a product (the native BatchMatMul kernel);
 *   otherwise the engines' former expressions (on wasm an explicit transpose + matMul is ~9x faster
 *     than transposeB).
 * Not differentiable: the engines never backpropagate through a Gram.
 */
export function gramOf<T extends tf.Tensor2D | tf.Tensor3D>(x: T): T {
  const gpu = useCublas(x);
  if (gpu) {
    const [n, d] = x.shape.slice(-2);
    const batches = x.rank === 3 ? x.shape[0] : 1;
    const data = x.dataSync() as Float32Array;
    const out = new Float32Array(batches * n * n);
    for (let q = 0; q < batches; q++) out.set(gpu.gram(data.subarray(q * n * d, (q + 1) * n * d), n, d), q * n * n);
    return tf.tensor(out, x.rank === 3 ? [batches, n, n] : [n, n], 'float32') as T;
  }
  if (nativeGramAvailable() && x.dtype === 'float32') return tf.engine().runKernel(GRAM_KERNEL, { x }, {}) as T;
  return tf.tidy(() => tf.matMul(x, tf.transpose(x, x.rank === 3 ? [0, 2, 1] : [1, 0]))) as T;
}

/** a (n x k) times b (k x m). */
export function productOf(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const gpu = useCublas(a);
  if (gpu) {
    const [n, k] = a.shape;
    const m = b.shape[1];
    return tf.tensor2d(gpu.product(a.dataSync() as Float32Array, b.dataSync() as Float32Array, n, k, m), [n, m]);
  }
  return tf.matMul(a, b);
}

/** Whether gramOf runs ssyrk (OpenBLAS loaded and enabled, wasm backend active). */
export function nativeGramAvailable(): boolean {
  return Boolean(nativeLibraries()?.openblas) && tf.getBackend() === 'wasm' && Boolean(tf.getKernel(GRAM_KERNEL, 'wasm'));
}

/**
 * OpenBLAS for the tiled CKA engine's host path (engine/host-sums.ts: Grams and products straight from
 * the sets' Float32Arrays, no tensors): when it is loaded and enabled, the wasm backend is active (the
 * backend the native kernels serve; cpu and webgpu keep the tensor path) and no cuBLAS is in use.
 */
export function hostOpenBlas(): OpenBlas | undefined {
  const blas = nativeLibraries()?.openblas;
  return blas && tf.getBackend() === 'wasm' && !loadedCublas() ? blas : undefined;
}

function useCublas(x: tf.Tensor) {
  const gpu = loadedCublas();
  // Honour setNativeEnabled(false) too, so tests and benches can compare against the CPU paths.
  return gpu && x.dtype === 'float32' && (nativeEnabled() || !nativeLibraries()) && tf.getBackend() !== 'webgpu' ? gpu : undefined;
}
