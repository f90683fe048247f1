import { promises as fs } from 'node:fs';
import { unzipSync } from 'fflate';
import { InputError } from '../errors.js';
import { decodeNpy, type NpyArray } from './npy.js';

/** Members larger than this (uncompressed) are refused before they are inflated. */
export const MAX_NPZ_MEMBER_BYTES = 2 ** 32;

/**
 * A NumPy `.npz` archive (numpy.savez / savez_compressed: a zip of `.npy` members, stored or
 * deflated), member name without `.npy` -> array. Sizes come from the zip directory and are checked
 * before inflating; each member is validated as a `.npy` file.
 */
export async function readNpz(file: string): Promise<Map<string, NpyArray>> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new InputError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(bytes, {
      filter: (f) => {
        if (f.originalSize > MAX_NPZ_MEMBER_BYTES) throw new InputError(`${file}: member '${f.name}' declares ${f.originalSize} bytes, more than ${MAX_NPZ_MEMBER_BYTES}`);
        return true;
      },
    });
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`${file}: not a valid .npz (zip) archive (${(err as Error).message})`);
  }
  const out = new Map<string, NpyArray>();
  for (const [name, data] of Object.entries(members)) {
    if (name.endsWith('/')) continue;
    if (!name.endsWith('.npy')) throw new InputError(`${file}: member '${name}' is not a .npy array`);
    out.set(name.slice(0, -'.npy'.length), decodeNpy(data, `${file}: member '${name}'`));
  }
  if (out.size === 0) throw new InputError(`${file}: the archive holds no arrays`);
  return out;
}
