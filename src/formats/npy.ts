import { promises as fs } from 'node:fs';
import { InputError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), C order, little-endian:
 * magic `\x93NUMPY`, major, minor, header length (uint16 for 1.0, uint32 after),
 * a Python dict literal header padded to a multiple of 64 bytes, then the raw data.
 */
export type NpyDtype = '<f4' | '<f8' | '<i4' | '<i8' | '|u1';
export type NpyData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ITEM_SIZE: Record<NpyDtype, number> = { '<f4': 4, '<f8': 8, '<i4': 4, '<i8': 8, '|u1': 1 };
/** Spellings numpy may write for the supported types ('<u1' and '|u1' mean the same byte). */
const DTYPE_ALIASES: Record<string, NpyDtype> = {
  '<f4': '<f4', '<f8': '<f8', '<i4': '<i4', '<i8': '<i8', '|u1': '|u1', '<u1': '|u1',
};
/** Larger reads are split so no single fs call exceeds Node's 2 GiB I/O limit. */
const READ_CHUNK = 1 << 30;

interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  dataOffset: number;
}

/** Read a whole `.npy` file. Errors are InputErrors naming the file. */
export async function readNpy(file: string): Promise<NpyArray> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (err) {
    throw new InputError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  try {
    const size = (await fh.stat()).size;
    const header = await readHeader(fh, file, size);
    const count = header.shape.reduce((a, b) => a * b, 1);
    const expected = count * ITEM_SIZE[header.dtype];
    const actual = size - header.dataOffset;
    if (actual < expected) {
      throw new InputError(`${file}: truncated: shape (${header.shape.join(', ')}) of ${header.dtype} needs ${expected} data bytes, the file has ${actual}`);
    }
    if (actual > expected) {
      throw new InputError(`${file}: ${actual - expected} unexpected bytes after the data: shape (${header.shape.join(', ')}) of ${header.dtype} needs ${expected} data bytes, the file has ${actual}`);
    }
    const buffer = new ArrayBuffer(expected);
    await readFully(fh, new Uint8Array(buffer), header.dataOffset);
    return { dtype: header.dtype, shape: header.shape, data: viewAs(header.dtype, buffer) };
  } finally {
    await fh.close();
  }
}

/** A `.npy` array as float32 (any supported dtype converted), for activations. */
export async function readNpyFloat32(file: string): Promise<{ shape: number[]; data: Float32Array }> {
  const arr = await readNpy(file);
  if (arr.data instanceof Float32Array) return { shape: arr.shape, data: arr.data };
  const out = new Float32Array(arr.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(arr.data[i]);
  return { shape: arr.shape, data: out };
}

/** A `.npy` array of integers (int32, int64 within int32 range, uint8) as Int32Array, for ids and labels. */
export async function readNpyInt32(file: string): Promise<{ shape: number[]; data: Int32Array }> {
  const arr = await readNpy(file);
  const d = arr.data;
  if (d instanceof Int32Array) return { shape: arr.shape, data: d };
  if (d instanceof Uint8Array) return { shape: arr.shape, data: Int32Array.from(d) };
  if (d instanceof BigInt64Array) {
    const out = new Int32Array(d.length);
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      if (v > 2147483647n || v < -2147483648n) throw new InputError(`${file}: value ${v} at index ${i} does not fit in int32`);
      out[i] = Number(v);
    }
    return { shape: arr.shape, data: out };
  }
  throw new InputError(`${file}: expected an integer dtype (<i4, <i8 or |u1), got ${arr.dtype}`);
}

/**
 * Decode `.npy` bytes held in memory (a member of an `.npz` archive), with the same checks as
 * readNpy; `where` names the archive and member in errors.
 */
export function decodeNpy(bytes: Uint8Array, where: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new InputError(`${where}: not a .npy file (missing the \\x93NUMPY magic)`);
  const major = bytes[6];
  if (major !== 1 && major !== 2 && major !== 3) throw new InputError(`${where}: unsupported .npy format version ${major}.${bytes[7]} (1.0, 2.0 and 3.0 are read)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new InputError(`${where}: truncated .npy header`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  if (start + headerLen > bytes.length) throw new InputError(`${where}: truncated .npy header (declares ${headerLen} bytes, has ${bytes.length - start})`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const { dtype, shape } = parseHeaderDict(text, where);
  const expected = shape.reduce((a, b) => a * b, 1) * ITEM_SIZE[dtype];
  const actual = bytes.length - start - headerLen;
  if (actual !== expected) throw new InputError(`${where}: shape (${shape.join(', ')}) of ${dtype} needs ${expected} data bytes, the member has ${actual}`);
  const buffer = bytes.slice(start + headerLen).buffer as ArrayBuffer;
  return { dtype, shape, data: viewAs(dtype, buffer) };
}

/** Any supported array as float32 (activations). */
export function npyToFloat32(arr: NpyArray): Float32Array {
  if (arr.data instanceof Float32Array) return arr.data;
  const out = new Float32Array(arr.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(arr.data[i]);
  return out;
}

async function readHeader(fh: fs.FileHandle, file: string, size: number): Promise<NpyHeader> {
  const pre = new Uint8Array(12);
  const { bytesRead } = await fh.read(pre, 0, 12, 0);
  if (bytesRead < 10 || MAGIC.some((b, i) => pre[i] !== b)) throw new InputError(`${file}: not a .npy file (missing the \\x93NUMPY magic)`);
  const major = pre[6];
  if (major !== 1 && major !== 2 && major !== 3) throw new InputError(`${file}: unsupported .npy format version ${major}.${pre[7]} (1.0, 2.0 and 3.0 are read)`);
  const view = new DataView(pre.buffer);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytesRead < 8 + lenBytes) throw new InputError(`${file}: truncated .npy header`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  if (start + headerLen > size) throw new InputError(`${file}: truncated .npy header (declares ${headerLen} bytes, file has ${size - start})`);
  const raw = new Uint8Array(headerLen);
  await readFully(fh, raw, start);
  // Versions 1 and 2 use latin1 headers, version 3 utf8; the fields we read are ASCII in both.
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(raw);
  return { ...parseHeaderDict(text, file), dataOffset: start + headerLen };
}

/** Parse `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`. */
function parseHeaderDict(text: string, file: string): { dtype: NpyDtype; shape: number[] } {
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(text);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  const shape = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) throw new InputError(`${file}: malformed .npy header: ${text.trim()}`);
  const dtype = DTYPE_ALIASES[descr[1]];
  if (!dtype) {
    throw new InputError(`${file}: unsupported dtype '${descr[1]}' (supported: little-endian <f4, <f8, <i4, <i8 and |u1)`);
  }
  if (fortran[1] === 'True') throw new InputError(`${file}: fortran_order arrays are not supported; save a C-ordered array (numpy.ascontiguousarray)`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const parsed = dims.map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  if (parsed.some((d) => !Number.isSafeInteger(d))) throw new InputError(`${file}: malformed shape (${shape[1]}) in .npy header`);
  return { dtype, shape: parsed };
}

async function readFully(fh: fs.FileHandle, into: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const len = Math.min(READ_CHUNK, into.length - done);
    const { bytesRead } = await fh.read(into, done, len, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

function viewAs(dtype: NpyDtype, buffer: ArrayBuffer): NpyData {
  switch (dtype) {
    case '<f4': return new Float32Array(buffer);
    case '<f8': return new Float64Array(buffer);
    case '<i4': return new Int32Array(buffer);
    case '<i8': return new BigInt64Array(buffer);
    case '|u1': return new Uint8Array(buffer);
  }
}

function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof BigInt64Array) return '<i8';
  return '|u1';
}

/**
 * Encode an array as `.npy` bytes (C order). `version` defaults to 1.0 (2.0 when the header
 * would not fit a uint16); 2.0 and 3.0 can be forced, e.g. for tests.
 */
export function encodeNpy(data: NpyData, shape: number[], version: 1 | 2 | 3 = 1): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`encodeNpy: shape (${shape.join(', ')}) holds ${count} values, data has ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${dtypeOf(data)}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let major = version;
  let lenBytes = major === 1 ? 2 : 4;
  const pad = (len: number) => (64 - ((8 + lenBytes + len + 1) % 64)) % 64;
  let headerLen = dict.length + pad(dict.length) + 1;
  if (major === 1 && headerLen > 0xffff) {
    major = 2;
    lenBytes = 4;
    headerLen = dict.length + pad(dict.length) + 1;
  }
  const header = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';
  const start = 8 + lenBytes;
  const out = new Uint8Array(start + headerLen + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (lenBytes === 2) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  out.set(new TextEncoder().encode(header), start);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), start + headerLen);
  return out;
}

/** Write an array as a `.npy` file, atomically. */
export async function writeNpy(file: string, data: NpyData, shape: number[], version: 1 | 2 | 3 = 1): Promise<void> {
  await writeFileAtomic(file, encodeNpy(data, shape, version));
}
