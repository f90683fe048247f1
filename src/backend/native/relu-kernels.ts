import * as tf from '@tensorflow/tfjs';
import { onOneThread, type DnnlPrimitive } from './dnnl.js';
import { f32, size, type KernelArgs, type WasmHeap } from './heap.js';
import { PrimitiveCache } from './primitive-cache.js';
import { nativeLibraries } from './provider.js';

/**
 * ReLU's gradient, dx = dy where x > 0 else 0, in one oneDNN eltwise_backward pass on the wasm heap
 * instead of tfjs' three (Step, Cast, Multiply). Called only after nativeReluGradSupports() said yes:
 *   RobustsimReluGrad  {dy, x} -> dx
 * Built and run on one OpenMP thread, as the batch norm primitives (onOneThread in dnnl.ts).
 */
export const RELU_GRAD_KERNEL = 'RobustsimReluGrad';

const cache = new PrimitiveCache<DnnlPrimitive>();
let runs = 0;

function primitiveFor(n: number): DnnlPrimitive | undefined {
  const dnnl = nativeLibraries()?.dnnl;
  if (!dnnl) return undefined;
  // A rejected size is remembered: tfjs' gradient runs.
  return cache.get(String(n), () => onOneThread(dnnl, () => dnnl.reluBackward(n)));
}

/** Primitives built, kernel calls so far and oneDNN's implementations (tests, profile). */
export function reluPrimitiveStats(): { cached: number; runs: number; impls: string[] } {
  const prims = cache.built();
  return { cached: prims.length, runs, impls: [...new Set(prims.map((p) => p.impl))] };
}

/** float32 x and dy of one non-empty shape on the wasm backend with oneDNN loaded and enabled. */
export function nativeReluGradSupports(dy: tf.Tensor, x: tf.Tensor): boolean {
  if (tf.getBackend() !== 'wasm' || !tf.getKernel(RELU_GRAD_KERNEL, 'wasm')) return false;
  if (x.dtype !== 'float32' || dy.dtype !== 'float32' || x.size === 0 || x.shape.join() !== dy.shape.join()) return false;
  return primitiveFor(x.size) !== undefined;
}

export function reluGradKernel(args: KernelArgs): tf.TensorInfo {
  const { dy, x } = args.inputs as unknown as { dy: tf.TensorInfo; x: tf.TensorInfo };
  const n = size(x.shape);
  const prim = primitiveFor(n);
  const dnnl = nativeLibraries()?.dnnl;
  if (!prim || !dnnl) throw new Error(`${RELU_GRAD_KERNEL}: oneDNN is not loaded (call nativeReluGradSupports first)`);
  const heap = args.backend as unknown as WasmHeap;
  const dx = heap.makeOutput([...x.shape], 'float32');
  const buffers = [f32(heap, x), f32(heap, dy), f32(heap, dx)];
  onOneThread(dnnl, () => prim.run(buffers));
  runs++;
  return dx;
}
