import * as tf from '@tensorflow/tfjs';

/**
 * The few layers an imported ONNX graph needs that tfjs has no layer for. They are registered with
 * tfjs's serialization, so an imported model saves and loads as an ordinary LayersModel checkpoint
 * (this module is imported by src/models/checkpoint.ts for that reason). All work in NHWC.
 */
type Shape = Array<number | null>;

function broadcastShapes(a: Shape, b: Shape): Shape {
  const rank = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    out.push(x === 1 ? y : y === 1 ? x : x === null ? y : x);
  }
  return out;
}

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';
const BINARY: Record<BinaryOp, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor> = {
  add: (a, b) => tf.add(a, b),
  sub: (a, b) => tf.sub(a, b),
  mul: (a, b) => tf.mul(a, b),
  div: (a, b) => tf.div(a, b),
};

function single(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

/** `x op c` (or `c op x`) with a stored constant c, broadcast numpy-style (input normalisation, GELU's constants). */
export class OnnxConstBinary extends tf.layers.Layer {
  static className = 'OnnxConstBinary';
  readonly op: BinaryOp;
  readonly constShape: number[];
  readonly constFirst: boolean;
  private constant?: tf.LayerVariable;
  constructor(args: { op: BinaryOp; constShape: number[]; constFirst: boolean; name?: string }) {
    super(args);
    this.op = args.op;
    this.constShape = args.constShape;
    this.constFirst = args.constFirst;
  }
  override build(): void {
    this.constant = this.addWeight('constant', this.constShape, 'float32', tf.initializers.zeros(), undefined, false);
    this.built = true;
  }
  override computeOutputShape(inputShape: Shape): Shape {
    return broadcastShapes(inputShape, this.constShape);
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = single(inputs);
    const c = this.constant!.read();
    return this.constFirst ? BINARY[this.op](c, x) : BINARY[this.op](x, c);
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), op: this.op, constShape: this.constShape, constFirst: this.constFirst };
  }
}

/** `a op b` of two graph values, broadcast numpy-style (residual additions, gating products). */
export class OnnxBinary extends tf.layers.Layer {
  static className = 'OnnxBinary';
  readonly op: BinaryOp;
  constructor(args: { op: BinaryOp; name?: string }) {
    super(args);
    this.op = args.op;
  }
  override computeOutputShape(inputShape: Shape[]): Shape {
    return broadcastShapes(inputShape[0], inputShape[1]);
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [a, b] = inputs as tf.Tensor[];
    return BINARY[this.op](a, b);
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), op: this.op };
  }
}

export type UnaryOp = 'erf' | 'gelu' | 'gelu-tanh';
const UNARY: Record<UnaryOp, (x: tf.Tensor) => tf.Tensor> = {
  erf: (x) => tf.erf(x),
  gelu: (x) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)),
  'gelu-tanh': (x) => tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI))), 1)),
};

export class OnnxUnary extends tf.layers.Layer {
  static className = 'OnnxUnary';
  readonly op: UnaryOp;
  constructor(args: { op: UnaryOp; name?: string }) {
    super(args);
    this.op = args.op;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return UNARY[this.op](single(inputs));
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), op: this.op };
  }
}

/** [[top, bottom], [left, right]] padding of an NHWC tensor. */
export type SpatialPads = [[number, number], [number, number]];

function pooledSize(size: number | null, pad: number, kernel: number, stride: number): number | null {
  return size === null ? null : Math.floor((size + pad - kernel) / stride) + 1;
}

/**
 * ONNX MaxPool/AveragePool with explicit pads: max pools pad with a value below any activation,
 * average pools with zeros and, when `count_include_pad` is 0, divide by the number of real pixels.
 */
export class OnnxPool extends tf.layers.Layer {
  static className = 'OnnxPool';
  readonly kind: 'max' | 'avg';
  readonly kernel: [number, number];
  readonly strides: [number, number];
  readonly pads: SpatialPads;
  readonly countIncludePad: boolean;
  constructor(args: { kind: 'max' | 'avg'; kernel: [number, number]; strides: [number, number]; pads: SpatialPads; countIncludePad: boolean; name?: string }) {
    super(args);
    this.kind = args.kind;
    this.kernel = args.kernel;
    this.strides = args.strides;
    this.pads = args.pads;
    this.countIncludePad = args.countIncludePad;
  }
  override computeOutputShape(s: Shape): Shape {
    const [[t, b], [l, r]] = this.pads;
    return [s[0], pooledSize(s[1], t + b, this.kernel[0], this.strides[0]), pooledSize(s[2], l + r, this.kernel[1], this.strides[1]), s[3]];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs) as tf.Tensor4D;
      const padded = this.pads.flat().some((p) => p > 0);
      const paddings: Array<[number, number]> = [[0, 0], this.pads[0], this.pads[1], [0, 0]];
      if (this.kind === 'max') {
        const xp = padded ? tf.pad(x, paddings, -3e38) : x;
        return tf.maxPool(xp, this.kernel, this.strides, 'valid');
      }
      const avg = tf.avgPool(padded ? tf.pad(x, paddings) : x, this.kernel, this.strides, 'valid');
      if (!padded || this.countIncludePad) return avg;
      const ones = tf.pad(tf.ones([1, x.shape[1], x.shape[2], 1]), paddings) as tf.Tensor4D;
      return tf.div(avg, tf.avgPool(ones, this.kernel, this.strides, 'valid'));
    });
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), kind: this.kind, kernel: this.kernel, strides: this.strides, pads: this.pads, countIncludePad: this.countIncludePad };
  }
}

/** GlobalAveragePool keeping the 1x1 spatial dimensions, as ONNX does. */
export class OnnxGlobalAveragePool extends tf.layers.Layer {
  static className = 'OnnxGlobalAveragePool';
  override computeOutputShape(s: Shape): Shape {
    return [s[0], 1, 1, s[3]];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.mean(single(inputs), [1, 2], true);
  }
}

/**
 * A kernel with zeros between its taps: a convolution with it equals the dilated convolution, and
 * unlike tfjs's dilated conv2d it has gradients (tfjs: "dilation rates greater than 1 are not yet
 * supported in gradients") and combines with strides. Built from pad/reshape/slice, so the kernel
 * gets gradients too (fine-tuning).
 */
function dilateKernel(k: tf.Tensor4D, [dh, dw]: [number, number]): tf.Tensor4D {
  let out = k;
  const [kh, kw, ci, co] = k.shape;
  if (dh > 1) {
    const spread = tf.reshape(tf.pad(tf.expandDims(out, 1), [[0, 0], [0, dh - 1], [0, 0], [0, 0], [0, 0]]), [kh * dh, kw, ci, co]);
    out = tf.slice(spread, [0, 0, 0, 0], [(kh - 1) * dh + 1, kw, ci, co]) as tf.Tensor4D;
  }
  if (dw > 1) {
    const h = out.shape[0];
    const spread = tf.reshape(tf.pad(tf.expandDims(out, 2), [[0, 0], [0, 0], [0, dw - 1], [0, 0], [0, 0]]), [h, kw * dw, ci, co]);
    out = tf.slice(spread, [0, 0, 0, 0], [h, (kw - 1) * dw + 1, ci, co]) as tf.Tensor4D;
  }
  return out;
}

/**
 * A convolution tfjs's layers cannot express with gradients on every backend: groups > 1 (one conv
 * per group, concatenated; depthwise included, whose input gradient the wasm backend lacks) or
 * dilation > 1 (a dilated kernel, see dilateKernel).
 */
export class OnnxGroupConv extends tf.layers.Layer {
  static className = 'OnnxGroupConv';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;
  readonly useBias: boolean;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;
  constructor(args: { filters: number; kernelSize: [number, number]; strides: [number, number]; dilation: [number, number]; groups: number; useBias: boolean; name?: string }) {
    super(args);
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.strides = args.strides;
    this.dilation = args.dilation;
    this.groups = args.groups;
    this.useBias = args.useBias;
  }
  override build(inputShape: Shape): void {
    const channels = inputShape[3] as number;
    this.kernel = this.addWeight('kernel', [...this.kernelSize, channels / this.groups, this.filters], 'float32', tf.initializers.zeros());
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', tf.initializers.zeros());
    this.built = true;
  }
  override computeOutputShape(s: Shape): Shape {
    const size = (n: number | null, i: 0 | 1) => pooledSize(n, 0, (this.kernelSize[i] - 1) * this.dilation[i] + 1, this.strides[i]);
    return [s[0], size(s[1], 0), size(s[2], 1), this.filters];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const kernel = dilateKernel(this.kernel!.read() as tf.Tensor4D, this.dilation);
      const xs = this.groups === 1 ? [single(inputs) as tf.Tensor4D] : (tf.split(single(inputs) as tf.Tensor4D, this.groups, 3) as tf.Tensor4D[]);
      const ks = this.groups === 1 ? [kernel] : (tf.split(kernel, this.groups, 3) as tf.Tensor4D[]);
      const y = tf.concat(xs.map((x, g) => tf.conv2d(x, ks[g], this.strides, 'valid', 'NHWC')), 3);
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, strides: this.strides, dilation: this.dilation, groups: this.groups, useBias: this.useBias };
  }
}

/** Constant padding of every non-batch dimension (ONNX Pad, mode 'constant'). */
export class OnnxPad extends tf.layers.Layer {
  static className = 'OnnxPad';
  readonly paddings: Array<[number, number]>;
  readonly value: number;
  constructor(args: { paddings: Array<[number, number]>; value: number; name?: string }) {
    super(args);
    this.paddings = args.paddings;
    this.value = args.value;
  }
  override computeOutputShape(s: Shape): Shape {
    return [s[0], ...s.slice(1).map((d, i) => (d === null ? null : d + this.paddings[i][0] + this.paddings[i][1]))];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.pad(single(inputs), [[0, 0], ...this.paddings], this.value);
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), paddings: this.paddings, value: this.value };
  }
}

/**
 * The boundary between robustsim's pixel space ([0, 1] NHWC images, where attack eps are measured)
 * and what the PyTorch model was trained on: scale to `range`, then (x - mean) / std per channel.
 */
export class OnnxInputScale extends tf.layers.Layer {
  static className = 'OnnxInputScale';
  readonly range: [number, number];
  readonly mean: number[];
  readonly std: number[];
  constructor(args: { range: [number, number]; mean: number[]; std: number[]; name?: string }) {
    super(args);
    this.range = args.range;
    this.mean = args.mean;
    this.std = args.std;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [lo, hi] = this.range;
      const scaled = tf.add(tf.mul(single(inputs), hi - lo), lo);
      return tf.div(tf.sub(scaled, tf.tensor1d(this.mean)), tf.tensor1d(this.std));
    });
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), range: this.range, mean: this.mean, std: this.std };
  }
}

for (const cls of [OnnxConstBinary, OnnxBinary, OnnxUnary, OnnxPool, OnnxGlobalAveragePool, OnnxGroupConv, OnnxPad, OnnxInputScale]) {
  tf.serialization.registerClass(cls);
}
