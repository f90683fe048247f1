import * as tf from '@tensorflow/tfjs';
import { hwio, nhwc, type ConvGeometry, type Dnnl, type DnnlPrimitive } from './dnnl.js';
import { f32, type KernelArgs, type WasmHeap } from './heap.js';
import { PrimitiveCache } from './primitive-cache.js';

/**
 * Conv2D, FusedConv2D (bias, relu), Conv2DBackpropInput and Conv2DBackpropFilter on the wasm heap
 * through oneDNN, NHWC activations and HWIO filters read and written in place. Primitives are created
 * once per shape and geometry and cached; a shape oneDNN rejects is remembered and left to the wasm
 * kernel. Declines (undefined: the wasm kernel runs) for NCHW, non-float32 and empty tensors.
 */
type Shape4 = [number, number, number, number];

const cache = new PrimitiveCache<DnnlPrimitive>();

/** How many primitives were built and which implementations oneDNN chose (for tests and the profile). */
export function convPrimitiveStats(): { cached: number; declined: number; impls: string[] } {
  const prims = cache.built();
  return { cached: prims.length, declined: cache.declined(), impls: [...new Set(prims.map((p) => p.impl))] };
}

function cached(key: string, build: () => DnnlPrimitive): DnnlPrimitive | undefined {
  return cache.get(key, build);
}

function convInfo(xShape: Shape4, filterShape: Shape4, attrs: tf.NamedAttrMap, dilations: number | [number, number]): tf.backend_util.Conv2DInfo | undefined {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DAttrs;
  if (dataFormat !== undefined && dataFormat !== 'NHWC') return undefined;
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, dilations, pad, dimRoundingMode, false, 'channelsLast');
  if ([info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outChannels, info.outHeight, info.outWidth].some((d) => d <= 0)) return undefined;
  return info;
}

/**
 * oneDNN's geometry for tfjs' Conv2DInfo. oneDNN derives the output size as
 * floor((in + padL + padR - extent) / stride) + 1, so the right padding is the one that reproduces
 * tfjs' output size (tfjs may list more padding than the convolution reads).
 */
export function geometryOf(info: tf.backend_util.Conv2DInfo): ConvGeometry | undefined {
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, padInfo } = info;
  const extentH = (info.filterHeight - 1) * dh + 1;
  const extentW = (info.filterWidth - 1) * dw + 1;
  const padR: [number, number] = [(info.outHeight - 1) * sh + extentH - info.inHeight - padInfo.top, (info.outWidth - 1) * sw + extentW - info.inWidth - padInfo.left];
  // A 1x1 stride-2 convolution never reads the last row: any padR in [-(s-1), 0] gives the same size.
  if (padR[0] < 0 && padR[0] + sh - 1 >= 0) padR[0] = 0;
  if (padR[1] < 0 && padR[1] + sw - 1 >= 0) padR[1] = 0;
  const outH = Math.floor((info.inHeight + padInfo.top + padR[0] - extentH) / sh) + 1;
  const outW = Math.floor((info.inWidth + padInfo.left + padR[1] - extentW) / sw) + 1;
  if (outH !== info.outHeight || outW !== info.outWidth || padInfo.top < 0 || padInfo.left < 0 || padR[0] < 0 || padR[1] < 0) return undefined;
  return { strides: [sh, sw], dilates: [dh - 1, dw - 1], padL: [padInfo.top, padInfo.left], padR };
}

function keyOf(kind: string, info: tf.backend_util.Conv2DInfo, g: ConvGeometry, extra = ''): string {
  return [kind, info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.filterHeight, info.filterWidth, info.outChannels, info.outHeight, info.outWidth, g.strides, g.dilates, g.padL, g.padR, extra].join('|');
}

function layouts(info: tf.backend_util.Conv2DInfo) {
  return {
    src: nhwc(info.batchSize, info.inHeight, info.inWidth, info.inChannels),
    weights: hwio(info.filterHeight, info.filterWidth, info.inChannels, info.outChannels),
    dst: nhwc(info.batchSize, info.outHeight, info.outWidth, info.outChannels),
  };
}

const float32 = (...infos: (tf.TensorInfo | undefined)[]) => infos.every((t) => !t || t.dtype === 'float32');

function forward(dnnl: Dnnl, args: KernelArgs, bias: tf.TensorInfo | undefined, relu: boolean): tf.TensorInfo | undefined {
  const { x, filter } = args.inputs as unknown as { x: tf.TensorInfo; filter: tf.TensorInfo };
  if (!float32(x, filter, bias) || x.shape.length !== 4) return undefined;
  const { dilations } = args.attrs as unknown as tf.Conv2DAttrs;
  const info = convInfo(x.shape as Shape4, filter.shape as Shape4, args.attrs ?? {}, dilations ?? 1);
  const g = info && geometryOf(info);
  if (!info || !g) return undefined;
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== info.outChannels)) return undefined;
  const l = layouts(info);
  const prim = cached(keyOf('fwd', info, g, `${bias ? 'bias' : ''}${relu ? 'relu' : ''}`), () =>
    dnnl.convForward(l.src, l.weights, bias ? { dims: [info.outChannels], strides: [1] } : null, l.dst, g, relu),
  );
  if (!prim) return undefined;
  const heap = args.backend as unknown as WasmHeap;
  const out = heap.makeOutput([info.batchSize, info.outHeight, info.outWidth, info.outChannels], 'float32');
  const buffers = [f32(heap, x), f32(heap, filter), ...(bias ? [f32(heap, bias)] : []), f32(heap, out)];
  prim.run(buffers);
  return out;
}

export function conv2dNative(dnnl: Dnnl, args: KernelArgs): tf.TensorInfo | undefined {
  return forward(dnnl, args, undefined, false);
}

export function fusedConv2dNative(dnnl: Dnnl, args: KernelArgs): tf.TensorInfo | undefined {
  const { bias, preluActivationWeights } = args.inputs as unknown as { bias?: tf.TensorInfo; preluActivationWeights?: tf.TensorInfo };
  const { activation } = args.attrs as unknown as tf.FusedConv2DAttrs;
  if (preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) return undefined;
  return forward(dnnl, args, bias, activation === 'relu');
}

export function conv2dBackpropInputNative(dnnl: Dnnl, args: KernelArgs): tf.TensorInfo | undefined {
  const { dy, filter } = args.inputs as unknown as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { inputShape } = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (!float32(dy, filter) || inputShape.length !== 4) return undefined;
  const info = convInfo(inputShape as Shape4, filter.shape as Shape4, args.attrs ?? {}, 1);
  const g = info && geometryOf(info);
  if (!info || !g || dy.shape.join() !== [info.batchSize, info.outHeight, info.outWidth, info.outChannels].join()) return undefined;
  const l = layouts(info);
  const prim = cached(keyOf('bwd-data', info, g), () => dnnl.convBackwardData(l.src, l.weights, l.dst, g));
  if (!prim) return undefined;
  const heap = args.backend as unknown as WasmHeap;
  const out = heap.makeOutput([...inputShape], 'float32');
  prim.run([f32(heap, dy), f32(heap, filter), f32(heap, out)]);
  return out;
}

export function conv2dBackpropFilterNative(dnnl: Dnnl, args: KernelArgs): tf.TensorInfo | undefined {
  const { x, dy } = args.inputs as unknown as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { filterShape } = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (!float32(x, dy) || x.shape.length !== 4) return undefined;
  const info = convInfo(x.shape as Shape4, filterShape as Shape4, args.attrs ?? {}, 1);
  const g = info && geometryOf(info);
  if (!info || !g || dy.shape.join() !== [info.batchSize, info.outHeight, info.outWidth, info.outChannels].join()) return undefined;
  const l = layouts(info);
  const prim = cached(keyOf('bwd-weights', info, g), () => dnnl.convBackwardWeights(l.src, l.weights, l.dst, g));
  if (!prim) return undefined;
  const heap = args.backend as unknown as WasmHeap;
  const out = heap.makeOutput([...filterShape], 'float32');
  prim.run([f32(heap, x), f32(heap, dy), f32(heap, out)]);
  return out;
}
