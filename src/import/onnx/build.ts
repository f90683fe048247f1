import * as tf from '@tensorflow/tfjs';
import { InputError } from '../../errors.js';
import { attributes, dimsOf, readTensor, type Attributes, type ConstTensor, type ModelProto, type NodeProto } from './proto.js';
import { nodeNames } from './names.js';
import { OnnxBinary, OnnxConstBinary, OnnxGlobalAveragePool, OnnxGroupConv, OnnxInputScale, OnnxPad, OnnxPool, OnnxUnary, type BinaryOp, type SpatialPads } from './layers.js';

/**
 * ONNX graph -> tfjs LayersModel, one op at a time, in NHWC. Every graph value is a constant or a
 * symbolic tensor; a 4-D symbolic tensor from the image path is held as NHWC ('nhwc', its logical
 * ONNX shape NCHW), anything else as ONNX lays it out ('plain'). Layout changes are explicit
 * Permute layers, inserted only where an op depends on the order (Flatten, Reshape, Transpose).
 */
type Sym = { kind: 'sym'; t: tf.SymbolicTensor; layout: 'nhwc' | 'plain'; shape: number[] };
type Const = { kind: 'const'; c: ConstTensor };
type Value = Sym | Const;

export interface InputScale {
  range: [number, number];
  mean: number[];
  std: number[];
}

export interface BuiltGraph {
  model: tf.LayersModel;
  /** Tap-point names in graph order, and whether each is a PyTorch module's output. */
  taps: Array<{ name: string; module: boolean }>;
  /** The input as PyTorch sees it: [C, H, W]. */
  inputShapeNchw: [number, number, number];
  numClasses: number;
}

interface Context {
  file: string;
  values: Map<string, Value>;
  weights: Array<{ layer: tf.layers.Layer; tensors: tf.Tensor[] }>;
  nchwCache: Map<tf.SymbolicTensor, Sym>;
}

interface Node {
  proto: NodeProto;
  name: string;
  where: string;
  attrs: Attributes;
  input(i: number): Value | undefined;
  sym(i: number): Sym;
  constant(i: number): ConstTensor;
}

type OpBuilder = (node: Node, ctx: Context) => Value;

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

function tensorOf(c: ConstTensor, perm?: number[]): tf.Tensor {
  return tf.tidy(() => {
    const t = tf.tensor(c.data, c.dims, 'float32');
    return perm ? tf.transpose(t, perm) : t;
  });
}

function withWeights<L extends tf.layers.Layer>(ctx: Context, layer: L, tensors: tf.Tensor[]): L {
  ctx.weights.push({ layer, tensors });
  return layer;
}

function apply(layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor {
  return layer.apply(x) as tf.SymbolicTensor;
}

function toPlain(v: Sym, ctx: Context, name: string): Sym {
  if (v.layout === 'plain') return v;
  const cached = ctx.nchwCache.get(v.t);
  if (cached) return cached;
  const [, , h, w] = v.shape;
  // A 1x1 map has the same element order in both layouts: a reshape, not a transpose.
  const t = h === 1 && w === 1 ? apply(tf.layers.reshape({ name: `${name}__nchw`, targetShape: v.shape.slice(1) }), v.t) : apply(tf.layers.permute({ name: `${name}__nchw`, dims: [3, 1, 2] }), v.t);
  const out: Sym = { kind: 'sym', t, layout: 'plain', shape: v.shape };
  ctx.nchwCache.set(v.t, out);
  return out;
}

function toNhwc(v: Sym, name: string, where: string): Sym {
  if (v.layout === 'nhwc') return v;
  if (v.shape.length !== 4) throw new InputError(`${where}: expected a 4-D NCHW input, got shape [${v.shape.join(', ')}]`);
  return { kind: 'sym', t: apply(tf.layers.permute({ name: `${name}__nhwc`, dims: [2, 3, 1] }), v.t), layout: 'nhwc', shape: v.shape };
}

/** A constant broadcast against a value of rank `rank` in `layout`, as the tensor the layer stores. */
function constFor(c: ConstTensor, layout: 'nhwc' | 'plain', rank: number, where: string): ConstTensor {
  if (c.dims.length > rank) throw new InputError(`${where}: constant of shape [${c.dims.join(', ')}] has more dimensions than its input`);
  const dims = [...Array(rank - c.dims.length).fill(1), ...c.dims];
  if (dims[0] !== 1) throw new InputError(`${where}: constant of shape [${c.dims.join(', ')}] broadcasts over the batch dimension`);
  if (layout === 'plain') return { dims: dims.slice(1), data: c.data };
  const t = tf.tidy(() => tf.transpose(tf.tensor(c.data, dims), [0, 2, 3, 1]));
  const data = t.dataSync() as Float32Array;
  t.dispose();
  return { dims: [dims[2], dims[3], dims[1]], data: Float32Array.from(data) };
}

function broadcastLogical(a: number[], b: number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    return x === 1 ? y : x;
  });
}

const FOLD: Record<BinaryOp, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor> = { add: tf.add, sub: tf.sub, mul: tf.mul, div: tf.div };

function binary(op: BinaryOp): OpBuilder {
  return (node, ctx) => {
    const a = node.input(0)!;
    const b = node.input(1)!;
    if (!a || !b) throw new InputError(`${node.where}: expects two inputs`);
    if (a.kind === 'const' && b.kind === 'const') {
      const t = tf.tidy(() => FOLD[op](tf.tensor(a.c.data, a.c.dims), tf.tensor(b.c.data, b.c.dims)));
      const out = { dims: t.shape, data: Float32Array.from(t.dataSync() as Float32Array) };
      t.dispose();
      return { kind: 'const', c: out };
    }
    if (a.kind === 'const' || b.kind === 'const') {
      const x = (a.kind === 'sym' ? a : b) as Sym;
      const c = (a.kind === 'const' ? a : b) as Const;
      const stored = constFor(c.c, x.layout, x.shape.length, node.where);
      const layer = withWeights(ctx, new OnnxConstBinary({ name: node.name, op, constShape: stored.dims, constFirst: a.kind === 'const' }), [tensorOf(stored)]);
      return { kind: 'sym', t: apply(layer, x.t), layout: x.layout, shape: broadcastLogical(x.shape, c.c.dims) };
    }
    let [x, y] = [a, b];
    if (x.layout !== y.layout || x.shape.length !== y.shape.length) [x, y] = [toPlain(x, ctx, `${node.name}_a`), toPlain(y, ctx, `${node.name}_b`)];
    return { kind: 'sym', t: apply(new OnnxBinary({ name: node.name, op }), [x.t, y.t]), layout: x.layout, shape: broadcastLogical(x.shape, y.shape) };
  };
}

function activation(make: (name: string, attrs: Attributes) => tf.layers.Layer): OpBuilder {
  return (node) => {
    const x = node.sym(0);
    return { ...x, t: apply(make(node.name, node.attrs), x.t) };
  };
}

/** ONNX pads [x1_begin, x2_begin, x1_end, x2_end] of the two spatial dims, after auto_pad. */
function spatialPads(node: Node, x: Sym, kernel: number[], strides: number[], dilations: number[]): SpatialPads {
  const autoPad = node.attrs.string('auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET' || autoPad === 'VALID') {
    const p = autoPad === 'VALID' ? [0, 0, 0, 0] : node.attrs.ints('pads', [0, 0, 0, 0]);
    if (p.length !== 4 || p.some((v) => v < 0)) throw new InputError(`${node.where}: pads [${p.join(', ')}] not supported (expected 4 non-negative values)`);
    return [[p[0], p[2]], [p[1], p[3]]];
  }
  if (autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER') throw new InputError(`${node.where}: auto_pad '${autoPad}' not supported`);
  const pads = [0, 1].map((i) => {
    const size = x.shape[2 + i];
    const out = Math.ceil(size / strides[i]);
    const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size);
    const small = Math.floor(total / 2);
    return (autoPad === 'SAME_UPPER' ? [small, total - small] : [total - small, small]) as [number, number];
  });
  return [pads[0], pads[1]];
}

const conv: OpBuilder = (node, ctx) => {
  const x = toNhwc(node.sym(0), node.name, node.where);
  const w = node.constant(1);
  if (w.dims.length !== 4) throw new InputError(`${node.where}: only 2-D convolutions are supported (weight shape [${w.dims.join(', ')}])`);
  const [outC, inPerGroup, kh, kw] = w.dims;
  const groups = node.attrs.int('group', 1);
  const inC = x.shape[1];
  if (inPerGroup * groups !== inC) throw new InputError(`${node.where}: weight shape [${w.dims.join(', ')}] with group ${groups} does not fit ${inC} input channels (mismatched initializer shape)`);
  const strides = node.attrs.ints('strides', [1, 1]) as [number, number];
  const dilations = node.attrs.ints('dilations', [1, 1]) as [number, number];
  const bias = node.input(2) ? node.constant(2) : undefined;
  if (bias && bias.data.length !== outC) throw new InputError(`${node.where}: bias has ${bias.data.length} values, expected ${outC} (mismatched initializer shape)`);
  const pads = spatialPads(node, x, [kh, kw], strides, dilations);
  let t = x.t;
  if (pads.flat().some((p) => p > 0)) t = apply(tf.layers.zeroPadding2d({ name: `${node.name}__pad`, padding: pads }), t);
  const common = { name: node.name, kernelSize: [kh, kw] as [number, number], strides, dilationRate: dilations, padding: 'valid' as const, useBias: bias !== undefined };
  let layer: tf.layers.Layer;
  let kernel: tf.Tensor;
  if (groups === 1 && dilations.every((d) => d === 1)) {
    layer = tf.layers.conv2d({ ...common, filters: outC });
    kernel = tensorOf(w, [2, 3, 1, 0]);
  } else {
    layer = new OnnxGroupConv({ name: node.name, filters: outC, kernelSize: [kh, kw], strides, dilation: dilations, groups, useBias: bias !== undefined });
    kernel = tensorOf(w, [2, 3, 1, 0]);
  }
  withWeights(ctx, layer, bias ? [kernel, tensorOf(bias)] : [kernel]);
  const out = apply(layer, t);
  const [, h, wd] = out.shape as number[];
  return { kind: 'sym', t: out, layout: 'nhwc', shape: [-1, outC, h, wd] };
};

const batchNorm: OpBuilder = (node, ctx) => {
  const x = node.sym(0);
  if ((node.proto.output ?? []).length > 1 || node.attrs.int('training_mode', 0) !== 0) throw new InputError(`${node.where}: BatchNormalization in training mode is not supported (export the model in eval mode)`);
  const channels = x.shape[1];
  const params = [1, 2, 3, 4].map((i) => node.constant(i));
  for (const [i, p] of params.entries()) {
    if (p.data.length !== channels) throw new InputError(`${node.where}: input ${i + 1} has ${p.data.length} values, expected ${channels} (mismatched initializer shape)`);
  }
  const layer = tf.layers.batchNormalization({ name: node.name, axis: x.layout === 'nhwc' ? -1 : 1, epsilon: node.attrs.float('epsilon', 1e-5), momentum: node.attrs.float('momentum', 0.9) });
  withWeights(ctx, layer, params.map((p) => tf.tensor1d(p.data)));
  return { ...x, t: apply(layer, x.t) };
};

function pool(kind: 'max' | 'avg'): OpBuilder {
  return (node) => {
    const x = toNhwc(node.sym(0), node.name, node.where);
    const kernel = node.attrs.ints('kernel_shape') as [number, number];
    const strides = node.attrs.ints('strides', [1, 1]) as [number, number];
    if (kernel.length !== 2) throw new InputError(`${node.where}: only 2-D pooling is supported`);
    if (node.attrs.ints('dilations', [1, 1]).some((d) => d !== 1)) throw new InputError(`${node.where}: dilated pooling is not supported`);
    const pads = spatialPads(node, x, kernel, strides, [1, 1]);
    if (node.attrs.int('ceil_mode', 0) === 1) {
      for (const i of [0, 1]) {
        const size = x.shape[2 + i] + pads[i][0] + pads[i][1];
        let out = Math.ceil((size - kernel[i]) / strides[i]) + 1;
        // PyTorch's rule: the last window must start inside the input or its leading pad.
        if ((out - 1) * strides[i] >= x.shape[2 + i] + pads[i][0]) out--;
        const extra = (out - 1) * strides[i] + kernel[i] - size;
        if (extra > 0 && kind === 'avg') throw new InputError(`${node.where}: AveragePool with ceil_mode 1 and partial windows is not supported`);
        if (extra > 0) pads[i][1] += extra;
      }
    }
    const layer = new OnnxPool({ name: node.name, kind, kernel, strides, pads, countIncludePad: node.attrs.int('count_include_pad', 0) === 1 });
    const t = apply(layer, x.t);
    const [, h, w] = t.shape as number[];
    return { kind: 'sym', t, layout: 'nhwc', shape: [-1, x.shape[1], h, w] };
  };
}

const flatten: OpBuilder = (node, ctx) => {
  const v = node.sym(0);
  const axis = node.attrs.int('axis', 1);
  if (axis !== 1) throw new InputError(`${node.where}: Flatten with axis ${axis} is not supported (only axis 1, which keeps the batch dimension)`);
  const x = toPlain(v, ctx, node.name);
  return { kind: 'sym', t: apply(tf.layers.flatten({ name: node.name }), x.t), layout: 'plain', shape: [-1, prod(x.shape.slice(1))] };
};

const reshape: OpBuilder = (node, ctx) => {
  const x = toPlain(node.sym(0), ctx, node.name);
  const spec = Array.from(node.constant(1).data);
  const elements = prod(x.shape.slice(1));
  if (spec.length === 0 || !(spec[0] === 0 || spec[0] === -1 || spec[0] === 1)) throw new InputError(`${node.where}: Reshape to [${spec.join(', ')}] changes the batch dimension`);
  const rest = spec.slice(1).map((d, i) => (d === 0 ? x.shape[i + 1] : d));
  const unknown = rest.filter((d) => d === -1).length;
  if (unknown > 1 || (spec[0] === -1 && unknown > 0)) throw new InputError(`${node.where}: Reshape to [${spec.join(', ')}] has more than one inferred dimension`);
  const known = prod(rest.filter((d) => d !== -1));
  const target = rest.map((d) => (d === -1 ? elements / known : d));
  if (target.some((d) => !Number.isInteger(d) || d <= 0) || prod(target) !== elements) {
    throw new InputError(`${node.where}: cannot reshape [${x.shape.join(', ')}] to [${spec.join(', ')}]`);
  }
  return { kind: 'sym', t: apply(tf.layers.reshape({ name: node.name, targetShape: target }), x.t), layout: 'plain', shape: [-1, ...target] };
};

const transpose: OpBuilder = (node, ctx) => {
  const x = toPlain(node.sym(0), ctx, node.name);
  const perm = node.attrs.ints('perm', x.shape.map((_, i) => x.shape.length - 1 - i));
  if (perm[0] !== 0) throw new InputError(`${node.where}: Transpose with perm [${perm.join(', ')}] moves the batch dimension`);
  return { kind: 'sym', t: apply(tf.layers.permute({ name: node.name, dims: perm.slice(1) }), x.t), layout: 'plain', shape: perm.map((p) => x.shape[p]) };
};

const NHWC_AXIS: Record<number, number> = { 1: 3, 2: 1, 3: 2 };

const concat: OpBuilder = (node, ctx) => {
  const inputs = (node.proto.input ?? []).map((_, i) => node.sym(i));
  const rank = inputs[0].shape.length;
  let axis = node.attrs.int('axis');
  if (axis < 0) axis += rank;
  if (axis <= 0 || axis >= rank) throw new InputError(`${node.where}: Concat along axis ${node.attrs.int('axis')} is not supported (the batch dimension must stay)`);
  const nhwc = inputs.every((v) => v.layout === 'nhwc');
  const xs = nhwc ? inputs : inputs.map((v, i) => toPlain(v, ctx, `${node.name}_${i}`));
  const t = apply(tf.layers.concatenate({ name: node.name, axis: nhwc ? NHWC_AXIS[axis] : axis }), xs.map((v) => v.t));
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((s, v) => s + v.shape[axis], 0);
  return { kind: 'sym', t, layout: nhwc ? 'nhwc' : 'plain', shape };
};

const gemm: OpBuilder = (node, ctx) => {
  const x = toPlain(node.sym(0), ctx, node.name);
  if (x.shape.length !== 2) throw new InputError(`${node.where}: Gemm input has shape [${x.shape.join(', ')}], expected 2-D`);
  if (node.attrs.int('transA', 0) !== 0) throw new InputError(`${node.where}: Gemm with transA 1 is not supported`);
  const b = node.constant(1);
  const transB = node.attrs.int('transB', 0) === 1;
  const alpha = node.attrs.float('alpha', 1);
  const beta = node.attrs.float('beta', 1);
  if (b.dims.length !== 2) throw new InputError(`${node.where}: weight shape [${b.dims.join(', ')}], expected 2-D`);
  const [k, units] = transB ? [b.dims[1], b.dims[0]] : b.dims;
  if (k !== x.shape[1]) throw new InputError(`${node.where}: weight shape [${b.dims.join(', ')}] does not fit input features ${x.shape[1]} (mismatched initializer shape)`);
  const kernel = tf.tidy(() => tf.mul(tensorOf(b, transB ? [1, 0] : undefined), alpha));
  const c = node.input(2) ? node.constant(2) : undefined;
  if (c && c.data.length !== units && c.data.length !== 1) throw new InputError(`${node.where}: bias has ${c.data.length} values, expected ${units} (mismatched initializer shape)`);
  const weights = [kernel];
  if (c) weights.push(tf.tidy(() => tf.mul(tf.broadcastTo(tf.tensor(c.data).reshape([-1]), [units]), beta)));
  const layer = withWeights(ctx, tf.layers.dense({ name: node.name, units, useBias: c !== undefined }), weights);
  return { kind: 'sym', t: apply(layer, x.t), layout: 'plain', shape: [-1, units] };
};

const matmul: OpBuilder = (node, ctx) => {
  const x = toPlain(node.sym(0), ctx, node.name);
  const b = node.constant(1);
  if (b.dims.length !== 2 || b.dims[0] !== x.shape[x.shape.length - 1]) throw new InputError(`${node.where}: MatMul weight shape [${b.dims.join(', ')}] does not fit input [${x.shape.join(', ')}]`);
  const layer = withWeights(ctx, tf.layers.dense({ name: node.name, units: b.dims[1], useBias: false }), [tensorOf(b)]);
  return { kind: 'sym', t: apply(layer, x.t), layout: 'plain', shape: [...x.shape.slice(0, -1), b.dims[1]] };
};

const pad: OpBuilder = (node) => {
  const v = node.sym(0);
  const mode = node.attrs.string('mode', 'constant');
  if (mode !== 'constant') throw new InputError(`${node.where}: Pad mode '${mode}' is not supported (only 'constant')`);
  const pads = node.input(1) ? Array.from(node.constant(1).data) : node.attrs.ints('pads');
  const value = node.input(2) ? node.constant(2).data[0] ?? 0 : node.attrs.float('value', 0);
  const rank = v.shape.length;
  if (pads.length !== 2 * rank || pads.some((p) => p < 0)) throw new InputError(`${node.where}: pads [${pads.join(', ')}] not supported (expected ${2 * rank} non-negative values)`);
  if (pads[0] !== 0 || pads[rank] !== 0) throw new InputError(`${node.where}: Pad of the batch dimension is not supported`);
  if (pads.every((p) => p === 0)) return v;
  const logical = Array.from({ length: rank }, (_, i) => [pads[i], pads[rank + i]] as [number, number]);
  const order = v.layout === 'nhwc' ? [2, 3, 1] : Array.from({ length: rank - 1 }, (_, i) => i + 1);
  const t = apply(new OnnxPad({ name: node.name, paddings: order.map((i) => logical[i]), value }), v.t);
  return { kind: 'sym', t, layout: v.layout, shape: v.shape.map((d, i) => (i === 0 ? d : d + logical[i][0] + logical[i][1])) };
};

async function constantNode(node: Node, file: string): Promise<Value> {
  const t = node.attrs.tensor('value');
  if (t) return { kind: 'const', c: await readTensor(t, file) };
  if (node.attrs.has('value_float')) return { kind: 'const', c: { dims: [], data: Float32Array.of(node.attrs.float('value_float')) } };
  if (node.attrs.has('value_int')) return { kind: 'const', c: { dims: [], data: Float32Array.of(node.attrs.int('value_int')) } };
  if (node.attrs.has('value_ints')) {
    const v = node.attrs.ints('value_ints');
    return { kind: 'const', c: { dims: [v.length], data: Float32Array.from(v) } };
  }
  throw new InputError(`${node.where}: Constant without a supported value attribute`);
}

/** What the importer covers: one builder per ONNX op (Constant is read separately, being async). */
export const ONNX_OPS: Record<string, OpBuilder> = {
  Conv: conv,
  BatchNormalization: batchNorm,
  Relu: activation((name) => tf.layers.reLU({ name })),
  LeakyRelu: activation((name, a) => tf.layers.leakyReLU({ name, alpha: a.float('alpha', 0.01) })),
  Sigmoid: activation((name) => tf.layers.activation({ name, activation: 'sigmoid' })),
  Tanh: activation((name) => tf.layers.activation({ name, activation: 'tanh' })),
  Gelu: activation((name, a) => new OnnxUnary({ name, op: a.string('approximate', 'none') === 'tanh' ? 'gelu-tanh' : 'gelu' })),
  Erf: activation((name) => new OnnxUnary({ name, op: 'erf' })),
  Add: binary('add'),
  Sub: binary('sub'),
  Mul: binary('mul'),
  Div: binary('div'),
  MaxPool: pool('max'),
  AveragePool: pool('avg'),
  GlobalAveragePool: (node) => {
    const x = toNhwc(node.sym(0), node.name, node.where);
    return { kind: 'sym', t: apply(new OnnxGlobalAveragePool({ name: node.name }), x.t), layout: 'nhwc', shape: [-1, x.shape[1], 1, 1] };
  },
  Gemm: gemm,
  MatMul: matmul,
  Flatten: flatten,
  Reshape: reshape,
  Transpose: transpose,
  Concat: concat,
  Pad: pad,
  Identity: (node) => node.input(0)!,
};
export const SUPPORTED_OPS = [...Object.keys(ONNX_OPS), 'Constant'].sort();

/** The model's input (PyTorch layout [N, C, H, W]) with dynamic dimensions resolved. */
function inputShape(model: ModelProto, file: string, override?: [number, number, number]): { name: string; shape: [number, number, number] } {
  const initNames = new Set((model.graph!.initializer ?? []).map((t) => t.name));
  const inputs = (model.graph!.input ?? []).filter((i) => !initNames.has(i.name));
  if (inputs.length !== 1) throw new InputError(`${file}: expected one graph input (an image batch), found ${inputs.length}`);
  const input = inputs[0];
  const dims = input.type?.tensorType?.shape?.dim ?? [];
  if (input.type?.tensorType?.elemType !== 1) throw new InputError(`${file}: input '${input.name}' must be float32`);
  if (dims.length !== 4) throw new InputError(`${file}: input '${input.name}' has ${dims.length} dimensions, expected 4 (N, C, H, W)`);
  const fixed = dims.slice(1).map((d) => (d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : undefined));
  if (override) {
    fixed.forEach((d, i) => {
      if (d !== undefined && d !== override[i]) throw new InputError(`--input-shape: ${override.join('x')} contradicts ${file}, whose input '${input.name}' is fixed at ${fixed.join('x')}`);
    });
    return { name: input.name!, shape: override };
  }
  const dynamic = dims.slice(1).map((d, i) => (fixed[i] === undefined ? d.dimParam || '?' : undefined)).filter(Boolean);
  if (dynamic.length) throw new InputError(`${file}: input '${input.name}' has dynamic dimension(s) ${dynamic.join(', ')}; pass --input-shape CxHxW (e.g. 3x32x32)`);
  return { name: input.name!, shape: fixed as [number, number, number] };
}

export async function buildGraph(model: ModelProto, file: string, opts: { inputShape?: [number, number, number]; scale: InputScale }): Promise<BuiltGraph> {
  const graph = model.graph!;
  const nodes = graph.node ?? [];
  const unknown = nodes.find((n) => n.opType !== 'Constant' && !(n.opType! in ONNX_OPS));
  if (unknown) {
    throw new InputError(`${file}: node '${unknown.name || '(unnamed)'}' uses op '${unknown.opType}', which the importer does not support (supported: ${SUPPORTED_OPS.join(', ')})`);
  }
  const ctx: Context = { file, values: new Map(), weights: [], nchwCache: new Map() };
  for (const init of graph.initializer ?? []) {
    dimsOf(init, `${file}: initializer '${init.name}'`);
  }
  for (const init of graph.initializer ?? []) ctx.values.set(init.name!, { kind: 'const', c: await readTensor(init, file) });
  const input = inputShape(model, file, opts.inputShape);
  const [c, h, w] = input.shape;
  if (opts.scale.mean.length !== c || opts.scale.std.length !== c) throw new InputError(`--mean/--std: expected ${c} values (one per input channel)`);
  const image = tf.input({ shape: [h, w, c], name: 'image' });
  const identity = opts.scale.range[0] === 0 && opts.scale.range[1] === 1 && opts.scale.mean.every((m) => m === 0) && opts.scale.std.every((s) => s === 1);
  const first = identity ? image : apply(new OnnxInputScale({ name: 'input_scale', ...opts.scale }), image);
  ctx.values.set(input.name, { kind: 'sym', t: first, layout: 'nhwc', shape: [-1, c, h, w] });

  const { names, isModule } = nodeNames(nodes);
  const taps: BuiltGraph['taps'] = [];
  try {
    for (const [i, proto] of nodes.entries()) {
      const name = names[i];
      const where = `${file}: node '${proto.name || name}' (${proto.opType})`;
      const node: Node = {
        proto,
        name,
        where,
        attrs: attributes(proto, where),
        input: (k) => {
          const id = proto.input?.[k];
          if (!id) return undefined;
          const v = ctx.values.get(id);
          if (!v) throw new InputError(`${where}: input '${id}' is not produced by any earlier node or initializer`);
          return v;
        },
        sym: (k) => {
          const v = node.input(k);
          if (!v || v.kind !== 'sym') throw new InputError(`${where}: input ${k} must come from the image path, not a constant`);
          return v;
        },
        constant: (k) => {
          const v = node.input(k);
          if (!v || v.kind !== 'const') throw new InputError(`${where}: input ${k} must be a constant (an initializer or Constant node)`);
          return v.c;
        },
      };
      const out = proto.opType === 'Constant' ? await constantNode(node, file) : ONNX_OPS[proto.opType!](node, ctx);
      ctx.values.set(proto.output![0], out);
      if (out.kind === 'sym' && out.t.sourceLayer.name === name) taps.push({ name, module: isModule[i] });
    }
    const outName = graph.output?.[0]?.name ?? '';
    const out = ctx.values.get(outName);
    if (!out || out.kind !== 'sym') throw new InputError(`${file}: graph output '${outName}' does not depend on the input`);
    const logits = toPlain(out, ctx, 'output');
    if (logits.shape.length !== 2) throw new InputError(`${file}: graph output '${outName}' has shape [${logits.shape.join(', ')}], expected [N, classes]`);
    const built = tf.model({ inputs: image, outputs: logits.t, name: 'onnx-import' });
    for (const { layer, tensors } of ctx.weights) {
      const expected = layer.getWeights().map((t) => t.shape.join('x'));
      const given = tensors.map((t) => t.shape.join('x'));
      if (expected.join() !== given.join()) throw new InputError(`${file}: node '${layer.name}': weights [${given.join('; ')}] do not fit the layer [${expected.join('; ')}] (mismatched initializer shape)`);
      layer.setWeights(tensors);
    }
    return { model: built, taps, inputShapeNchw: input.shape, numClasses: logits.shape[1] };
  } finally {
    for (const { tensors } of ctx.weights) tf.dispose(tensors);
  }
}
