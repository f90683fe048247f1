import * as tf from '@tensorflow/tfjs';
import { onOneThread, type Dnnl, type DnnlPrimitive, type Layout } from './dnnl.js';
import { f32, size, type KernelArgs, type WasmHeap } from './heap.js';
import { PrimitiveCache } from './primitive-cache.js';
import { nativeLibraries } from './provider.js';

/**
 * Training-mode batch normalisation (statistics over every axis but the last, channels-last, scale
 * and shift) on the wasm heap through oneDNN's batch-normalization primitive: the forward pass
 * computes the batch mean and biased variance and normalises in one primitive, the backward pass the
 * full derivative (through the statistics) and dscale, dshift in another. This replaces tfjs'
 * moments + batchNorm forward and the closed-form backward's elementwise passes (batchnorm-grad.ts).
 *
 * The primitives are built and run on one OpenMP thread (onOneThread in dnnl.ts says why).
 *
 * Two kernels on the wasm backend, called only after nativeBatchNormSupports() said yes (so they
 * never need a fallback of their own):
 *   RobustsimBatchNormTraining      {x, scale, offset}, {epsilon} -> [y, mean, variance]
 *   RobustsimBatchNormTrainingGrad  {dy, x, mean, variance, scale}, {epsilon} -> [dx, dscale, doffset]
 */
export const BN_TRAINING_KERNEL = 'RobustsimBatchNormTraining';
export const BN_TRAINING_GRAD_KERNEL = 'RobustsimBatchNormTrainingGrad';

interface BnPrimitives {
  forward: DnnlPrimitive;
  backward: DnnlPrimitive;
}

const cache = new PrimitiveCache<BnPrimitives>();

/**
 * Any rank >= 2 as oneDNN's (N, C, H, W) with H the product of the middle axes and W = 1: the
 * channels-last layout of tfjs (dense [N, C] included) and the same reduction over all but C.
 */
function layoutOf(shape: readonly number[]): Layout {
  const n = shape[0];
  const c = shape[shape.length - 1];
  const h = size(shape.slice(1, -1));
  return { dims: [n, c, h, 1], strides: [h * c, 1, c, c] };
}

function primitivesFor(dnnl: Dnnl, shape: readonly number[], epsilon: number): BnPrimitives | undefined {
  const layout = layoutOf(shape);
  return cache.get(`${shape.join('x')}|${epsilon}`, () => onOneThread(dnnl, () => ({ forward: dnnl.batchNormForwardTraining(layout, epsilon), backward: dnnl.batchNormBackward(layout, epsilon) })));
}

/** How many shapes have primitives and which implementations oneDNN chose (tests, profile). */
export function batchNormPrimitiveStats(): { cached: number; declined: number; impls: string[] } {
  const prims = cache.built();
  return { cached: prims.length, declined: cache.declined(), impls: [...new Set(prims.flatMap((p) => [p.forward.impl, p.backward.impl]))] };
}

/**
 * Whether the native kernels can normalise x (float32, rank >= 2, non-empty, 1-D float32 gamma and
 * beta of its channel count) on the active backend; builds and caches the primitives on first use.
 */
export function nativeBatchNormSupports(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): boolean {
  const dnnl = nativeLibraries()?.dnnl;
  if (!dnnl || tf.getBackend() !== 'wasm' || !tf.getKernel(BN_TRAINING_KERNEL, 'wasm')) return false;
  const c = x.shape[x.rank - 1];
  if (x.dtype !== 'float32' || gamma.dtype !== 'float32' || beta.dtype !== 'float32' || x.rank < 2 || x.size === 0) return false;
  if (gamma.shape.join() !== `${c}` || beta.shape.join() !== `${c}`) return false;
  return primitivesFor(dnnl, x.shape, epsilon) !== undefined;
}

function prims(args: KernelArgs, shape: readonly number[]): BnPrimitives & { dnnl: Dnnl } {
  const dnnl = nativeLibraries()?.dnnl;
  const { epsilon } = args.attrs as unknown as { epsilon: number };
  const p = dnnl && primitivesFor(dnnl, shape, epsilon);
  if (!p) throw new Error(`${BN_TRAINING_KERNEL}: oneDNN is not loaded or rejects shape [${shape.join(', ')}] (call nativeBatchNormSupports first)`);
  return { ...p, dnnl };
}

export function batchNormTrainingKernel(args: KernelArgs): tf.TensorInfo[] {
  const { x, scale, offset } = args.inputs as unknown as { x: tf.TensorInfo; scale: tf.TensorInfo; offset: tf.TensorInfo };
  const { forward, dnnl } = prims(args, x.shape);
  const heap = args.backend as unknown as WasmHeap;
  const c = x.shape[x.shape.length - 1];
  const y = heap.makeOutput([...x.shape], 'float32');
  const mean = heap.makeOutput([c], 'float32');
  const variance = heap.makeOutput([c], 'float32');
  // Views only after the last makeOutput (an allocation may grow the heap).
  const buffers = [f32(heap, x), f32(heap, scale), f32(heap, offset), f32(heap, y), f32(heap, mean), f32(heap, variance)];
  onOneThread(dnnl, () => forward.run(buffers));
  return [y, mean, variance];
}

export function batchNormTrainingGradKernel(args: KernelArgs): tf.TensorInfo[] {
  const { dy, x, mean, variance, scale } = args.inputs as unknown as Record<'dy' | 'x' | 'mean' | 'variance' | 'scale', tf.TensorInfo>;
  const { backward, dnnl } = prims(args, x.shape);
  const heap = args.backend as unknown as WasmHeap;
  const c = x.shape[x.shape.length - 1];
  const dx = heap.makeOutput([...x.shape], 'float32');
  const dscale = heap.makeOutput([c], 'float32');
  const doffset = heap.makeOutput([c], 'float32');
  const gamma = f32(heap, scale);
  // The shift argument oneDNN requires is not read by the derivative: any [C] buffer does (dnnl.ts).
  const buffers = [f32(heap, x), f32(heap, mean), f32(heap, variance), f32(heap, dy), gamma, gamma, f32(heap, dx), f32(heap, dscale), f32(heap, doffset)];
  onOneThread(dnnl, () => backward.run(buffers));
  return [dx, dscale, doffset];
}

const inferenceCache = new PrimitiveCache<DnnlPrimitive>();

/**
 * tfjs' FusedBatchNorm (inference mode: the layer's moving statistics, e.g. every forward and
 * backward pass of an attack) through oneDNN: y = (x - mean) / sqrt(variance + eps) * scale + offset
 * in one pass. Returns undefined (the wasm kernel runs) without scale or offset, for other dtypes,
 * statistics that are not one value per channel, or a shape oneDNN rejects.
 */
export function fusedBatchNormNative(dnnl: Dnnl, args: KernelArgs): tf.TensorInfo | undefined {
  const { x, mean, variance, offset, scale } = args.inputs as unknown as Record<'x' | 'mean' | 'variance' | 'offset' | 'scale', tf.TensorInfo | undefined>;
  const { varianceEpsilon } = args.attrs as unknown as { varianceEpsilon: number };
  if (!x || !mean || !variance || !offset || !scale || x.shape.length < 2) return undefined;
  const c = x.shape[x.shape.length - 1];
  const all = [x, mean, variance, offset, scale];
  if (all.some((t) => t.dtype !== 'float32') || size(x.shape) === 0) return undefined;
  if ([mean, variance, offset, scale].some((t) => size(t.shape) !== c)) return undefined;
  const p = inferenceCache.get(`${x.shape.join('x')}|${varianceEpsilon}`, () => onOneThread(dnnl, () => dnnl.batchNormForwardInference(layoutOf(x.shape), varianceEpsilon)));
  if (!p) return undefined;
  const heap = args.backend as unknown as WasmHeap;
  const y = heap.makeOutput([...x.shape], 'float32');
  const buffers = [f32(heap, x), f32(heap, mean), f32(heap, variance), f32(heap, scale), f32(heap, offset), f32(heap, y)];
  onOneThread(dnnl, () => p.run(buffers));
  return y;
}

/** Shapes with an inference primitive and shapes oneDNN declined (tests). */
export function inferenceBatchNormStats(): { cached: number; declined: number } {
  return { cached: inferenceCache.built().length, declined: inferenceCache.declined() };
}
