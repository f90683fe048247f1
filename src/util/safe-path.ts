import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';

/**
 * Model files are untrusted input: a file name read from one (a weights manifest entry, an ONNX
 * external-data location) may only name a file inside the model's own directory. Absolute paths,
 * `..` segments and symlinks whose target leaves the directory are refused, with `where` (the file
 * and the entry that named it) in the one-line error.
 */
export async function resolveInside(dir: string, name: unknown, where: string): Promise<string> {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) {
    throw new InputError(`${where}: expected a file name inside '${dir}', got ${JSON.stringify(name)}`);
  }
  if (path.isAbsolute(name) || path.win32.isAbsolute(name) || name.split(/[\\/]/).includes('..')) {
    throw new InputError(`${where}: '${name}' leaves the model directory '${dir}' (only plain file names inside it are allowed)`);
  }
  const file = path.join(dir, name);
  let real: string;
  let realDir: string;
  try {
    [real, realDir] = await Promise.all([fs.realpath(file), fs.realpath(dir)]);
  } catch {
    throw new InputError(`${where}: '${name}' is missing (expected ${file})`);
  }
  const rel = path.relative(realDir, real);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new InputError(`${where}: '${name}' is a link that leaves the model directory '${dir}'`);
  }
  const st = await fs.stat(real);
  if (!st.isFile()) throw new InputError(`${where}: '${name}' is not a regular file`);
  return real;
}

/** Read a file named by an untrusted model file, refusing it when larger than `maxBytes`. */
export async function readInside(dir: string, name: unknown, where: string, maxBytes: number): Promise<Buffer> {
  const file = await resolveInside(dir, name, where);
  const { size } = await fs.stat(file);
  if (size > maxBytes) throw new InputError(`${where}: '${name}' is ${size} bytes, more than the ${maxBytes} expected`);
  return fs.readFile(file);
}
