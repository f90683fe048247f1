import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/**
 * Write a file so that readers only ever see the old or the complete new content:
 * `fill` streams into a temp file beside it, which is fsynced and renamed over the target
 * (and removed if anything fails).
 */
export async function writeStreamAtomic(target: string, fill: (fh: fs.FileHandle) => Promise<void>): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  const fh = await fs.open(tmp, 'w');
  try {
    await fill(fh);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await fs.rename(tmp, target);
}

export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  await writeStreamAtomic(target, (fh) => fh.writeFile(data));
}

/**
 * Replace a whole directory atomically enough for checkpoints: the new content is
 * written into a temp sibling by `fill`, then swapped in. A crash at any point leaves
 * either the previous complete directory (possibly under `<dir>.old`) or the new one.
 */
export async function writeDirAtomic(target: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
  const parent = path.dirname(target);
  await fs.mkdir(parent, { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const old = `${target}.old`;
  await fs.rm(old, { recursive: true, force: true });
  const hadTarget = await exists(target);
  if (hadTarget) await fs.rename(target, old);
  await fs.rename(tmp, target);
  if (hadTarget) await fs.rm(old, { recursive: true, force: true });
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}
