import { promises as fs } from 'node:fs';
import { InputError } from '../errors.js';
import type { NpyArray } from './npy.js';

/** Header sizes above this are refused (the format's own reference limit is 100 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const DTYPES: Record<string, { bytes: number; read: (v: DataView, off: number) => number }> = {
  F32: { bytes: 4, read: (v, o) => v.getFloat32(o, true) },
  F64: { bytes: 8, read: (v, o) => v.getFloat64(o, true) },
  I32: { bytes: 4, read: (v, o) => v.getInt32(o, true) },
  I64: { bytes: 8, read: (v, o) => Number(v.getBigInt64(o, true)) },
  U8: { bytes: 1, read: (v, o) => v.getUint8(o) },
  F16: { bytes: 2, read: (v, o) => half(v.getUint16(o, true)) },
  BF16: { bytes: 2, read: (v, o) => new Float32Array(new Uint32Array([v.getUint16(o, true) << 16]).buffer)[0] },
};

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * A `.safetensors` file (an 8-byte little-endian header length, a JSON header naming each tensor's
 * dtype, shape and byte range, then the data): tensor name -> array, plus the header's
 * `__metadata__`. Every range is checked against the file size and its shape before anything is read.
 */
export async function readSafetensors(file: string): Promise<{ tensors: Map<string, NpyArray & { data: Float32Array | Int32Array }>; metadata: Record<string, string> }> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new InputError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (bytes.length < 8) throw new InputError(`${file}: truncated .safetensors file (no header length)`);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > bytes.length) throw new InputError(`${file}: header declares ${headerLen} bytes, the file has ${bytes.length - 8} (truncated or not safetensors)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8'));
  } catch (err) {
    throw new InputError(`${file}: header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new InputError(`${file}: header must be a JSON object`);
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const view = new DataView(bytes.buffer, bytes.byteOffset + dataStart, dataLen);
  const tensors = new Map<string, NpyArray & { data: Float32Array | Int32Array }>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const where = `${file}: tensor '${name}'`;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = DTYPES[String(e?.dtype)];
    if (!dtype) throw new InputError(`${where}: dtype '${String(e?.dtype)}' not supported (${Object.keys(DTYPES).join(', ')})`);
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new InputError(`${where}: 'shape' must be a list of non-negative integers`);
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0) || offsets[0] > offsets[1] || offsets[1] > dataLen) {
      throw new InputError(`${where}: data_offsets ${JSON.stringify(offsets)} outside the ${dataLen} data bytes`);
    }
    const count = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if ((offsets[1] - offsets[0]) !== count * dtype.bytes) throw new InputError(`${where}: shape [${(e.shape as number[]).join(', ')}] of ${String(e.dtype)} needs ${count * dtype.bytes} bytes, data_offsets give ${offsets[1] - offsets[0]}`);
    const integer = e.dtype === 'I32' || e.dtype === 'I64' || e.dtype === 'U8';
    const data = integer ? new Int32Array(count) : new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = dtype.read(view, offsets[0] + i * dtype.bytes);
    tensors.set(name, { dtype: integer ? '<i4' : '<f4', shape: e.shape as number[], data });
  }
  if (tensors.size === 0) throw new InputError(`${file}: holds no tensors`);
  return { tensors, metadata };
}
