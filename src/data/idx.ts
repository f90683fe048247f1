import { promises as fs } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { InputError } from '../errors.js';

/**
 * The IDX format of the MNIST and Fashion-MNIST distributions: bytes 0-1 zero, byte 2 the element
 * type (0x08 = unsigned byte, the only one those files use), byte 3 the number of dimensions, then
 * one big-endian uint32 per dimension, then the elements in row-major order.
 */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

/** Parse an IDX file's bytes; `file` is only used to name it in errors. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4) throw new InputError(`${file}: ${bytes.length} bytes is too short for an IDX header`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new InputError(`${file}: not an IDX file (magic starts ${hex(bytes[0])} ${hex(bytes[1])}, expected 0x00 0x00)`);
  }
  if (bytes[2] !== UBYTE) {
    throw new InputError(`${file}: IDX element type ${hex(bytes[2])} is not supported, expected 0x08 (unsigned byte)`);
  }
  const ndim = bytes[3];
  const headerSize = 4 + 4 * ndim;
  if (ndim === 0 || bytes.length < headerSize) {
    throw new InputError(`${file}: IDX header declares ${ndim} dimensions but the file has ${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let d = 0; d < ndim; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    count *= size;
  }
  if (bytes.length !== headerSize + count) {
    throw new InputError(
      `${file}: size ${bytes.length} bytes does not match its IDX header ` +
        `(dims [${dims.join(', ')}] need ${headerSize} + ${count} = ${headerSize + count} bytes)`,
    );
  }
  return { dims, data: bytes.subarray(headerSize) };
}

/** Read and parse an IDX file, gunzipping it first when its name ends in `.gz`. */
export async function readIdxFile(file: string): Promise<IdxArray> {
  let bytes: Uint8Array = await fs.readFile(file);
  if (file.endsWith('.gz')) {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      throw new InputError(`${file}: cannot gunzip (${(err as Error).message})`);
    }
  }
  return parseIdx(bytes, file);
}

function hex(b: number | undefined): string {
  return b === undefined ? 'EOF' : `0x${b.toString(16).padStart(2, '0')}`;
}
