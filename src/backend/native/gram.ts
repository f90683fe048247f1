import * as tf from '@tensorflow/tfjs';
import { GRAM_KERNEL } from './matmul-kernels.js';
import { nativeLibraries } from './provider.js';

/**
 * The CKA engines' Gram hook: x x^T for x (n x d) or batches (b x n x d). With OpenBLAS loaded on the
 * wasm backend it is one ssyrk per matrix (half the flops of a product, no transpose pass); otherwise
 * the engines' former expression, an explicit transpose and a matMul (on wasm ~9x faster than
 * transposeB). Products of two different matrices go through tf.matMul, whose BatchMatMul kernel is
 * native too (kernels.ts). Not differentiable: the engines never backpropagate through a Gram.
 */
export function gramOf<T extends tf.Tensor2D | tf.Tensor3D>(x: T): T {
  if (nativeGramAvailable() && x.dtype === 'float32') {
    return tf.engine().runKernel(GRAM_KERNEL, { x }, {}) as T;
  }
  return tf.tidy(() => tf.matMul(x, tf.transpose(x, x.rank === 3 ? [0, 2, 1] : [1, 0]))) as T;
}

/** Whether gramOf runs ssyrk (OpenBLAS loaded and enabled, wasm backend active). */
export function nativeGramAvailable(): boolean {
  return Boolean(nativeLibraries()?.openblas) && tf.getBackend() === 'wasm' && Boolean(tf.getKernel(GRAM_KERNEL, 'wasm'));
}
