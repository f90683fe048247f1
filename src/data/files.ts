import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** The first of `names` that exists as a file in `dir`, as a full path, or undefined. */
export async function firstExisting(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    const p = path.join(dir, name);
    if (await isFile(p)) return p;
  }
  return undefined;
}

export async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}

export async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}
