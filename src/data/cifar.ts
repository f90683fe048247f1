import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { CIFAR100_FINE_CLASSES, CIFAR10_CLASSES } from './class-names.js';
import { isDirectory, isFile } from './files.js';
import type { Dataset, Split } from './types.js';

/**
 * CIFAR-10 and CIFAR-100 in their official binary format ("binary version" on the CIFAR page).
 * A record is the label byte(s) followed by a 32x32 colour image as 3072 bytes in CHW order
 * (1024 red, 1024 green, 1024 blue, each row-major).
 *
 *   CIFAR-10:  data_batch_1.bin .. data_batch_5.bin (train), test_batch.bin; records of 1 label byte.
 *              Class names from batches.meta.txt when present.
 *   CIFAR-100: train.bin, test.bin; records of 2 label bytes (coarse, fine). We use the fine label.
 *              Class names from fine_label_names.txt when present.
 *
 * The files may sit directly in the data directory or in the archive's own subdirectory
 * (cifar-10-batches-bin/, cifar-100-binary/). The CIFAR-10 train split is every data_batch_N.bin for
 * N = 1, 2, ... up to the first missing one (so a fixture may ship data_batch_1.bin alone);
 * data_batch_1.bin is required, and a batch present after a gap is an error rather than ignored.
 */
export type CifarVariant = 'cifar10' | 'cifar100';

export const CIFAR_SIDE = 32;
export const CIFAR_CHANNELS = 3;
export const CIFAR_IMAGE_BYTES = CIFAR_SIDE * CIFAR_SIDE * CIFAR_CHANNELS;

export interface CifarLayout {
  variant: CifarVariant;
  title: string;
  /** Bytes before the image in each record. */
  labelBytes: number;
  /** Which of the label bytes is the label we use. */
  labelOffset: number;
  numClasses: number;
  /** For CIFAR-100, the coarse label byte is validated against this too. */
  coarseClasses?: number;
  subdir: string;
  namesFile: string;
  defaultNames: string[];
  testFile: string;
  /** Train files as documented, for messages. */
  trainFilesText: string;
}

export const CIFAR_LAYOUTS: Record<CifarVariant, CifarLayout> = {
  cifar10: {
    variant: 'cifar10',
    title: 'CIFAR-10',
    labelBytes: 1,
    labelOffset: 0,
    numClasses: 10,
    subdir: 'cifar-10-batches-bin',
    namesFile: 'batches.meta.txt',
    defaultNames: CIFAR10_CLASSES,
    testFile: 'test_batch.bin',
    trainFilesText: 'data_batch_1.bin .. data_batch_5.bin',
  },
  cifar100: {
    variant: 'cifar100',
    title: 'CIFAR-100',
    labelBytes: 2,
    labelOffset: 1,
    numClasses: 100,
    coarseClasses: 20,
    subdir: 'cifar-100-binary',
    namesFile: 'fine_label_names.txt',
    defaultNames: CIFAR100_FINE_CLASSES,
    testFile: 'test.bin',
    trainFilesText: 'train.bin',
  },
};

const CIFAR10_MAX_BATCHES = 5;

export function recordBytes(layout: CifarLayout): number {
  return layout.labelBytes + CIFAR_IMAGE_BYTES;
}

/** One sentence describing what a CIFAR data directory must hold, for error messages and help. */
export function cifarExpectedFiles(variant: CifarVariant): string {
  const l = CIFAR_LAYOUTS[variant];
  return (
    `${l.title} needs the official binary files ${l.trainFilesText} (train) and ${l.testFile} (test), ` +
    `optionally ${l.namesFile}, in the directory or its ${l.subdir}/ subdirectory`
  );
}

/**
 * Decode `bytes` (whole records) into `images` (NHWC float32 in [0, 1]) and `labels`, starting at
 * record `at`. Pure; `file` only names the source in errors.
 */
export function decodeCifarRecords(
  bytes: Uint8Array,
  file: string,
  layout: CifarLayout,
  images: Float32Array,
  labels: Int32Array,
  at: number,
): number {
  const rec = recordBytes(layout);
  if (bytes.length % rec !== 0) {
    throw new InputError(`${file}: size ${bytes.length} bytes is not a multiple of the ${layout.title} record size ${rec} bytes`);
  }
  const count = bytes.length / rec;
  const plane = CIFAR_SIDE * CIFAR_SIDE;
  for (let r = 0; r < count; r++) {
    const base = r * rec;
    if (layout.coarseClasses !== undefined && bytes[base] >= layout.coarseClasses) {
      throw new InputError(`${file}: record ${r} has coarse label ${bytes[base]}, expected 0..${layout.coarseClasses - 1}`);
    }
    const label = bytes[base + layout.labelOffset];
    if (label >= layout.numClasses) {
      throw new InputError(`${file}: record ${r} has label ${label}, expected 0..${layout.numClasses - 1}`);
    }
    labels[at + r] = label;
    const src = base + layout.labelBytes;
    const dst = (at + r) * CIFAR_IMAGE_BYTES;
    for (let p = 0; p < plane; p++) {
      const o = dst + p * CIFAR_CHANNELS;
      images[o] = bytes[src + p] / 255;
      images[o + 1] = bytes[src + plane + p] / 255;
      images[o + 2] = bytes[src + 2 * plane + p] / 255;
    }
  }
  return count;
}

/** Parse a label-names file: one name per line; blank lines (the official files end with some) ignored. */
export function parseClassNames(text: string, file: string, expected: number): string[] {
  const names = text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length !== expected) {
    throw new InputError(`${file}: found ${names.length} class names, expected ${expected} (one per line)`);
  }
  return names;
}

export async function loadCifar(variant: CifarVariant, split: Split, dataDir: string): Promise<Dataset> {
  const layout = CIFAR_LAYOUTS[variant];
  const dir = await resolveCifarDir(layout, dataDir);
  const files = split === 'train' ? await trainFiles(layout, dir, dataDir) : [await required(layout, dir, dataDir, layout.testFile)];

  const rec = recordBytes(layout);
  const sizes: number[] = [];
  for (const file of files) {
    const size = (await fs.stat(file)).size;
    if (size % rec !== 0) {
      throw new InputError(`${file}: size ${size} bytes is not a multiple of the ${layout.title} record size ${rec} bytes`);
    }
    if (size === 0) throw new InputError(`${file}: empty, expected ${rec}-byte ${layout.title} records`);
    sizes.push(size);
  }
  const n = sizes.reduce((sum, s) => sum + s / rec, 0);
  const images = new Float32Array(n * CIFAR_IMAGE_BYTES);
  const labels = new Int32Array(n);
  let at = 0;
  for (const file of files) {
    // Read one file at a time so only one raw batch is held beside the float output.
    at += decodeCifarRecords(await fs.readFile(file), file, layout, images, labels, at);
  }
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;

  const namesPath = path.join(dir, layout.namesFile);
  const classNames = (await isFile(namesPath))
    ? parseClassNames(await fs.readFile(namesPath, 'utf8'), namesPath, layout.numClasses)
    : [...layout.defaultNames];

  return {
    name: variant,
    split,
    n,
    height: CIFAR_SIDE,
    width: CIFAR_SIDE,
    channels: CIFAR_CHANNELS,
    numClasses: layout.numClasses,
    classNames,
    images,
    labels,
    ids,
    source: files.join(', '),
  };
}

/** The directory itself when it holds any of the expected files, else the archive subdirectory if present. */
async function resolveCifarDir(layout: CifarLayout, dataDir: string): Promise<string> {
  if (!(await isDirectory(dataDir))) {
    throw new InputError(`--data-dir ${dataDir}: not a directory; ${cifarExpectedFiles(layout.variant)}`);
  }
  const marker = layout.variant === 'cifar10' ? 'data_batch_1.bin' : 'train.bin';
  const holdsFiles = (await isFile(path.join(dataDir, marker))) || (await isFile(path.join(dataDir, layout.testFile)));
  if (holdsFiles) return dataDir;
  const sub = path.join(dataDir, layout.subdir);
  return (await isDirectory(sub)) ? sub : dataDir;
}

async function required(layout: CifarLayout, dir: string, dataDir: string, name: string): Promise<string> {
  const file = path.join(dir, name);
  if (!(await isFile(file))) {
    throw new InputError(`--data-dir ${dataDir}: missing ${file}; ${cifarExpectedFiles(layout.variant)}`);
  }
  return file;
}

async function trainFiles(layout: CifarLayout, dir: string, dataDir: string): Promise<string[]> {
  if (layout.variant === 'cifar100') return [await required(layout, dir, dataDir, 'train.bin')];
  const files = [await required(layout, dir, dataDir, 'data_batch_1.bin')];
  let gapAt: number | undefined;
  for (let b = 2; b <= CIFAR10_MAX_BATCHES; b++) {
    const file = path.join(dir, `data_batch_${b}.bin`);
    const present = await isFile(file);
    if (present && gapAt !== undefined) {
      throw new InputError(
        `--data-dir ${dataDir}: ${file} is present but data_batch_${gapAt}.bin is missing; ` +
          `the train batches must be data_batch_1.bin .. data_batch_N.bin without gaps`,
      );
    }
    if (present) files.push(file);
    else gapAt ??= b;
  }
  return files;
}
