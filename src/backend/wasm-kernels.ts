import * as tf from '@tensorflow/tfjs';
import { tileInto, type NumericArray } from './tile.js';

/**
 * Gradient kernels that @tensorflow/tfjs-backend-wasm 4.22 lacks (or has slow versions of), built from
 * the backend's own fast kernels. Without Conv2DBackpropFilter no conv net can train on wasm, and no
 * gradient attack runs either: the tape computes the filter gradient even when only the input
 * gradient is asked for.
 *
 * The kernels call the wasm backend's kernel functions directly (not tf ops) so that intermediates
 * never become engine tensors: each intermediate TensorInfo is freed with backend.disposeData, and
 * only the returned TensorInfo survives, owned by the engine as the kernel's output.
 */

const BACKEND = 'wasm';

type Info = tf.TensorInfo;
type Shape4 = [number, number, number, number];

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

/** Run one of the wasm backend's own kernels on TensorInfos. */
function runKernel(name: string, backend: tf.KernelBackend, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): Info {
  const kernel = tf.getKernel(name, BACKEND);
  if (!kernel) throw new Error(`wasm backend has no '${name}' kernel, which the gradient kernels are built on`);
  return kernel.kernelFunc({ inputs, backend, attrs }) as Info;
}

function free(backend: tf.KernelBackend, ...infos: Info[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

function transpose(backend: tf.KernelBackend, x: Info, perm: number[]): Info {
  return runKernel(tf.Transpose, backend, { x }, { perm });
}

/** A valid-or-explicitly-padded NHWC conv2d on the wasm backend (XNNPACK). */
function conv(backend: tf.KernelBackend, x: Info, filter: Info, pads: [number, number, number, number], dilations: [number, number]): Info {
  const [top, bottom, left, right] = pads;
  const pad = [[0, 0], [top, bottom], [left, right], [0, 0]] as tf.backend_util.ExplicitPadding;
  return runKernel(tf.Conv2D, backend, { x, filter }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations });
}

function convInfoOf(xShape: Shape4, filterShape: Shape4, attrs: tf.NamedAttrMap): tf.backend_util.Conv2DInfo {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat);
  const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, strides, 1, pad, dimRoundingMode, false, format);
  if (info.dataFormat !== 'channelsLast') {
    throw new Error(`wasm gradient kernels support dataFormat 'NHWC' only, got '${dataFormat}'`);
  }
  return info;
}

/**
 * dW[kh,kw,ci,co] = sum_{b,oh,ow} xPad[b, oh*s+kh, ow*s+kw, ci] * dy[b,oh,ow,co].
 * Read as a convolution: batch = Cin, channels = B, the "filter" is dy laid out [OH,OW,B,Cout], and the
 * forward stride becomes the dilation. The output is [Cin,KH,KW,Cout], transposed to [KH,KW,Cin,Cout].
 */
export function conv2dBackpropFilterWasm({ inputs, backend, attrs }: KernelArgs): Info {
  const { x, dy } = inputs as unknown as { x: Info; dy: Info };
  const filterShape = (attrs as unknown as tf.Conv2DBackpropFilterAttrs).filterShape;
  const info = convInfoOf(x.shape as Shape4, filterShape, attrs ?? {});
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow, inHeight, inWidth, padInfo } = info;

  // The rows/columns of the padded input that the forward conv read. 'same' on an even size with
  // stride 2 pads bottom/right more than top/left; a 1x1 stride-2 conv never reads the last row.
  const usedH = (oh - 1) * sh + kh;
  const usedW = (ow - 1) * sw + kw;
  const bottom = usedH - padInfo.top - inHeight;
  const right = usedW - padInfo.left - inWidth;

  let xT = transpose(backend, x, [3, 1, 2, 0]); // [Cin, H, W, B]
  if (bottom < 0 || right < 0) {
    const cropped = runKernel(tf.Slice, backend, { x: xT }, {
      begin: [0, 0, 0, 0],
      size: [xT.shape[0], inHeight + Math.min(bottom, 0), inWidth + Math.min(right, 0), xT.shape[3]],
    });
    free(backend, xT);
    xT = cropped;
  }
  const dyT = transpose(backend, dy, [1, 2, 0, 3]); // [OH, OW, B, Cout]
  const grad = conv(backend, xT, dyT, [padInfo.top, Math.max(bottom, 0), padInfo.left, Math.max(right, 0)], [sh, sw]);
  free(backend, xT, dyT);
  const dw = transpose(backend, grad, [1, 2, 0, 3]); // [KH, KW, Cin, Cout]
  free(backend, grad);
  return dw;
}

/**
 * dx by polyphase decomposition into XNNPACK convolutions (tfjs-wasm's own Conv2DBackpropInput is a
 * direct loop, 5-10x slower). Output rows i = s*q + r of one phase r only see the filter taps
 * k = k0, k0+s, ... with k0 = (r + padTop) mod s, so each phase is a stride-1 convolution of (padded)
 * dy with that sub-filter flipped in space and with in/out channels swapped; the s*s phase results
 * are then interleaved. With stride 1 there is one phase and its result is dx itself.
 * Returns undefined (use the built-in) when a phase would need negative padding (padding >= kernel).
 */
export function conv2dBackpropInputWasm({ inputs, backend, attrs }: KernelArgs): Info | undefined {
  const { dy, filter } = inputs as unknown as { dy: Info; filter: Info };
  const inputShape = (attrs as unknown as tf.Conv2DBackpropInputAttrs).inputShape as Shape4;
  const info = convInfoOf(inputShape, filter.shape as Shape4, attrs ?? {});
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow, inHeight, inWidth, padInfo } = info;
  const rows = axisPhases(inHeight, oh, kh, sh, padInfo.top);
  const cols = axisPhases(inWidth, ow, kw, sw, padInfo.left);
  if (!rows || !cols) return undefined;
  const heap = backend as unknown as WasmHeapBackend;

  const phaseResults: { r: number; c: number; result: Info }[] = [];
  for (const [r, row] of rows.entries()) {
    for (const [c, col] of cols.entries()) {
      if (row.taps === 0 || col.taps === 0) continue;
      const sub = flippedSubFilter(heap, filter, row, col, sh, sw);
      const result = conv(backend, dy, sub, [row.before, row.after, col.before, col.after], [1, 1]);
      free(backend, sub);
      phaseResults.push({ r, c, result });
    }
  }
  if (sh === 1 && sw === 1) return phaseResults[0].result;

  const dx = heap.makeOutput([...inputShape], 'float32');
  const out = heap.typedArrayFromHeap(dx);
  if (phaseResults.length < sh * sw) out.fill(0);
  for (const { r, c, result } of phaseResults) {
    interleavePhase(heap.typedArrayFromHeap(result), result.shape as Shape4, out, inputShape, r, c, sh, sw);
    free(backend, result);
  }
  return dx;
}

/** One output phase along one axis: which taps it uses and how dy must be padded for it. */
export interface AxisPhase {
  /** First filter tap of this phase; the taps are first, first + stride, ... */
  first: number;
  taps: number;
  /** Padding of dy before/after along this axis for the phase's stride-1 convolution. */
  before: number;
  after: number;
}

/**
 * Pure: the phases r = 0..stride-1 of one spatial axis. Each phase's convolution yields
 * ceil(inSize / stride) rows (the last one is dropped by the interleave when it falls outside).
 * undefined when some phase would need negative padding.
 */
export function axisPhases(inSize: number, outSize: number, kernel: number, stride: number, padBefore: number): AxisPhase[] | undefined {
  const rowsPerPhase = Math.ceil(inSize / stride);
  const phases: AxisPhase[] = [];
  for (let r = 0; r < stride; r++) {
    const first = (r + padBefore) % stride;
    const taps = first < kernel ? Math.ceil((kernel - first) / stride) : 0;
    // Output row s*q + r reads dy rows q + lag - m for m = 0..taps-1.
    const lag = (r + padBefore - first) / stride;
    const before = taps - 1 - lag;
    const after = rowsPerPhase + taps - 1 - outSize - before;
    if (taps > 0 && (before < 0 || after < 0)) return undefined;
    phases.push({ first, taps, before, after });
  }
  return phases;
}

/** [KH,KW,Cin,Cout] -> the phase's taps, flipped in space, as [taps_h, taps_w, Cout, Cin]. */
function flippedSubFilter(heap: WasmHeapBackend, filter: Info, row: AxisPhase, col: AxisPhase, sh: number, sw: number): Info {
  const [, kw, cin, cout] = filter.shape;
  const out = heap.makeOutput([row.taps, col.taps, cout, cin], 'float32');
  const dst = heap.typedArrayFromHeap(out);
  const src = heap.typedArrayFromHeap(filter);
  let o = 0;
  for (let i = 0; i < row.taps; i++) {
    const y = row.first + sh * (row.taps - 1 - i);
    for (let j = 0; j < col.taps; j++) {
      const x = col.first + sw * (col.taps - 1 - j);
      const base = (y * kw + x) * cin * cout;
      for (let co = 0; co < cout; co++) {
        for (let ci = 0; ci < cin; ci++) dst[o++] = src[base + ci * cout + co];
      }
    }
  }
  return out;
}

/** Write phase (r, c), shaped [B, Q, Q', C], into dx rows r, r+sh, ... and columns c, c+sw, ... */
function interleavePhase(src: NumericArray, shape: Shape4, dst: NumericArray, dxShape: Shape4, r: number, c: number, sh: number, sw: number): void {
  const [batch, q, qw, ch] = shape;
  const [, h, w] = dxShape;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < q; i++) {
      const y = i * sh + r;
      if (y >= h) break;
      for (let j = 0; j < qw; j++) {
        const x = j * sw + c;
        if (x >= w) break;
        const from = ((b * q + i) * qw + j) * ch;
        const to = ((b * h + y) * w + x) * ch;
        for (let k = 0; k < ch; k++) dst[to + k] = src[from + k];
      }
    }
  }
}

/** The heap access of tfjs-wasm's BackendWasm that the Tile kernel needs. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(info: Info): NumericArray;
}

export function tileWasm({ inputs, backend, attrs }: KernelArgs): Info | undefined {
  const { x } = inputs as unknown as { x: Info };
  if (x.dtype === 'string' || x.dtype === 'complex64') return undefined;
  const reps = (attrs as unknown as tf.TileAttrs).reps;
  const heap = backend as unknown as WasmHeapBackend;
  const out = heap.makeOutput(x.shape.map((d, i) => d * reps[i]), x.dtype);
  // Views are taken after makeOutput: an allocation can grow (and detach) the heap.
  tileInto(heap.typedArrayFromHeap(x), heap.typedArrayFromHeap(out), x.shape, reps);
  return out;
}

/**
 * Identity and same-dtype Cast share the input's buffer instead of copying it. tfjs-wasm copies, and the
 * engine clones (Identity) every tensor it saves for a backward pass, so a training step copied each
 * activation several times. Tensors are immutable and the wasm backend reference-counts buffers (its
 * own Reshape shares them the same way; tfjs' cpu backend does this for Identity and Cast too).
 */
export function identityWasm({ inputs, backend }: KernelArgs): Info | undefined {
  const { x } = inputs as unknown as { x: Info };
  if (x.dtype === 'string') return undefined;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

export function castWasm(args: KernelArgs): Info | undefined {
  const { x } = args.inputs as unknown as { x: Info };
  return (args.attrs as unknown as tf.CastAttrs).dtype === x.dtype ? identityWasm(args) : undefined;
}

type Fast = (args: KernelArgs) => Info | undefined;

/** Replace a built-in wasm kernel by `fast`, falling back to the original where `fast` declines. */
function override(kernelName: string, fast: Fast): tf.KernelConfig {
  const original = tf.getKernel(kernelName, BACKEND);
  if (!original) throw new Error(`wasm backend has no '${kernelName}' kernel to speed up`);
  const kernelFunc = (args: KernelArgs) => fast(args) ?? original.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]);
  return { ...original, kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

let registered: string[] | undefined;

/**
 * Register the missing wasm gradient kernels (Conv2DBackpropFilter) and faster versions of slow ones
 * (Conv2DBackpropInput, Tile, and copy-free Identity and same-dtype Cast). Needs @tensorflow/tfjs-backend-wasm imported first (its kernels
 * are the building blocks). Idempotent; never replaces a Conv2DBackpropFilter that a later tfjs
 * version provides itself. Returns the names of the kernels registered.
 */
export function registerWasmGradientKernels(): string[] {
  if (registered) return registered;
  if (!tf.getKernel(tf.Conv2D, BACKEND)) {
    throw new Error('registerWasmGradientKernels: import @tensorflow/tfjs-backend-wasm first');
  }
  const names: string[] = [];
  if (!tf.getKernel(tf.Conv2DBackpropFilter, BACKEND)) {
    tf.registerKernel({ kernelName: tf.Conv2DBackpropFilter, backendName: BACKEND, kernelFunc: conv2dBackpropFilterWasm as unknown as tf.KernelFunc });
    names.push(tf.Conv2DBackpropFilter);
  }
  for (const [name, fast] of [
    [tf.Conv2DBackpropInput, conv2dBackpropInputWasm],
    [tf.Tile, tileWasm],
    [tf.Identity, identityWasm],
    [tf.Cast, castWasm],
  ] as const) {
    const config = override(name, fast);
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel(config);
    names.push(name);
  }
  registered = names;
  return names;
}
