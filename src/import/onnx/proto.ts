import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import onnxProto from 'onnx-proto';
import { InputError } from '../../errors.js';
import { resolveInside } from '../../util/safe-path.js';

const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;

/** Element counts above this are refused before anything is allocated (1 G floats = 4 GiB). */
export const MAX_ELEMENTS = 2 ** 28;
const FLOAT = 1;
const INT64 = 7;
const INT32 = 6;
const DOUBLE = 11;

/** A constant of the graph (an initializer or a Constant node's value) as plain numbers. */
export interface ConstTensor {
  dims: number[];
  data: Float32Array;
}

export function decodeModel(file: string, bytes: Uint8Array): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new InputError(`${file}: not a valid ONNX model (${(err as Error).message}; truncated or not ONNX?)`);
  }
  if (!model.graph || !model.graph.node?.length) throw new InputError(`${file}: not a valid ONNX model (no graph nodes)`);
  return model;
}

export function opsetOf(model: ModelProto): number {
  const domain = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  return domain ? Number(domain.version) : 0;
}

function toNumber(v: number | { toNumber(): number }): number {
  return typeof v === 'number' ? v : v.toNumber();
}

export function dimsOf(t: TensorProto, where: string): number[] {
  const dims = (t.dims ?? []).map(toNumber);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new InputError(`${where}: invalid dimensions [${dims.join(', ')}]`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (count > MAX_ELEMENTS) throw new InputError(`${where}: declared shape [${dims.join(', ')}] has ${count} elements, more than the ${MAX_ELEMENTS} allowed`);
  return dims;
}

const BYTES: Record<number, number> = { [FLOAT]: 4, [INT64]: 8, [INT32]: 4, [DOUBLE]: 8 };

function fromBytes(bytes: Uint8Array, dataType: number, count: number, where: string): Float32Array {
  const width = BYTES[dataType];
  if (bytes.byteLength !== count * width) {
    throw new InputError(`${where}: ${bytes.byteLength} bytes of data, expected ${count * width} for its shape (mismatched initializer shape or truncated data)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    if (dataType === FLOAT) out[i] = view.getFloat32(i * 4, true);
    else if (dataType === DOUBLE) out[i] = view.getFloat64(i * 8, true);
    else if (dataType === INT32) out[i] = view.getInt32(i * 4, true);
    else out[i] = Number(view.getBigInt64(i * 8, true));
  }
  return out;
}

/**
 * A tensor's values, from its raw bytes, its typed fields or an external data file. External
 * locations are untrusted: they must name a file inside the model's directory, and the byte range
 * is checked against the file's size before it is read.
 */
export async function readTensor(t: TensorProto, modelFile: string): Promise<ConstTensor> {
  const name = t.name || '(unnamed)';
  const where = `${modelFile}: tensor '${name}'`;
  const dims = dimsOf(t, where);
  const count = dims.reduce((a, b) => a * b, 1);
  const dataType = t.dataType ?? 0;
  if (!(dataType in BYTES)) throw new InputError(`${where}: data type ${dataType} is not supported (float32, float64, int32, int64)`);
  if (t.dataLocation === 1) {
    const entries = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
    const offset = Number(entries.offset ?? 0);
    const length = entries.length !== undefined ? Number(entries.length) : count * BYTES[dataType];
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new InputError(`${where}: external data offset/length must be non-negative integers`);
    }
    const dir = path.dirname(modelFile);
    const file = await resolveInside(dir, entries.location, `${where}: external data location`);
    const { size } = await fs.stat(file);
    if (offset + length > size) throw new InputError(`${where}: external data ${entries.location} has ${size} bytes, the tensor needs bytes ${offset}..${offset + length}`);
    if (length !== count * BYTES[dataType]) throw new InputError(`${where}: external data length ${length}, expected ${count * BYTES[dataType]} for shape [${dims.join(', ')}]`);
    const handle = await fs.open(file, 'r');
    try {
      const buf = Buffer.alloc(length);
      await handle.read(buf, 0, length, offset);
      return { dims, data: fromBytes(buf, dataType, count, where) };
    } finally {
      await handle.close();
    }
  }
  if (t.rawData && t.rawData.byteLength) return { dims, data: fromBytes(t.rawData, dataType, count, where) };
  const typed: Array<number | { toNumber(): number }> =
    dataType === FLOAT ? (t.floatData ?? []) : dataType === DOUBLE ? (t.doubleData ?? []) : dataType === INT32 ? (t.int32Data ?? []) : (t.int64Data ?? []);
  if (typed.length !== count) throw new InputError(`${where}: ${typed.length} values, expected ${count} for shape [${dims.join(', ')}] (mismatched initializer shape)`);
  return { dims, data: Float32Array.from(typed, toNumber) };
}

/** Node attributes by name, as numbers, lists, strings or tensors. */
export interface Attributes {
  int(name: string, fallback?: number): number;
  ints(name: string, fallback?: number[]): number[];
  float(name: string, fallback?: number): number;
  string(name: string, fallback?: string): string;
  tensor(name: string): TensorProto | undefined;
  has(name: string): boolean;
}

export function attributes(node: NodeProto, where: string): Attributes {
  const byName = new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
  const need = <T>(name: string, v: T | undefined, fallback: T | undefined): T => {
    if (v !== undefined) return v;
    if (fallback !== undefined) return fallback;
    throw new InputError(`${where}: attribute '${name}' is required`);
  };
  return {
    has: (name) => byName.has(name),
    int: (name, fallback) => {
      const a = byName.get(name);
      return need(name, a?.i !== undefined && a.i !== null ? toNumber(a.i) : undefined, fallback);
    },
    ints: (name, fallback) => {
      const a = byName.get(name);
      return need(name, a?.ints?.length ? a.ints.map(toNumber) : undefined, fallback);
    },
    float: (name, fallback) => {
      const a = byName.get(name);
      return need(name, a?.f !== undefined && a.f !== null && a.type === 1 ? a.f : undefined, fallback);
    },
    string: (name, fallback) => {
      const a = byName.get(name);
      return need(name, a?.s?.length ? Buffer.from(a.s).toString('utf8') : undefined, fallback);
    },
    tensor: (name) => byName.get(name)?.t ?? undefined,
  };
}
