import { InputError } from '../errors.js';
import { makeRng, permutation, subSeed, type Rng } from '../util/rng.js';
import type { Dataset } from './types.js';

/** One minibatch gathered from a dataset: x is NHWC float32, y the labels, ids the stable sample ids. */
export interface Batch {
  x: Float32Array;
  y: Int32Array;
  ids: Int32Array;
}

/**
 * Split 0..n-1 into batches of `batchSize` (in order, or shuffled by `rng`); the last, partial
 * batch is kept so every sample is seen once.
 */
export function batchIndices(n: number, batchSize: number, rng?: Rng): Int32Array[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`batchIndices: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new InputError(`batch size: expected a positive integer, got ${batchSize}`);
  }
  const order = rng ? permutation(n, rng) : identity(n);
  const batches: Int32Array[] = [];
  for (let start = 0; start < n; start += batchSize) batches.push(order.slice(start, start + batchSize));
  return batches;
}

/** Copy the samples at `indices` (positions in `ds`, not ids) into a fresh batch. */
export function gatherBatch(ds: Dataset, indices: ArrayLike<number>): Batch {
  const size = ds.height * ds.width * ds.channels;
  const m = indices.length;
  const x = new Float32Array(m * size);
  const y = new Int32Array(m);
  const ids = new Int32Array(m);
  for (let j = 0; j < m; j++) {
    const i = indices[j];
    if (!Number.isInteger(i) || i < 0 || i >= ds.n) {
      throw new RangeError(`gatherBatch: index ${i} at position ${j} is outside 0..${ds.n - 1} of ${ds.name}/${ds.split}`);
    }
    x.set(ds.images.subarray(i * size, (i + 1) * size), j * size);
    y[j] = ds.labels[i];
    ids[j] = ds.ids[i];
  }
  return { x, y, ids };
}

/** A new dataset holding the samples at `indices`, in that order; ids keep pointing at the source. */
export function subset(ds: Dataset, indices: ArrayLike<number>): Dataset {
  const { x, y, ids } = gatherBatch(ds, indices);
  return { ...ds, classNames: [...ds.classNames], n: indices.length, images: x, labels: y, ids };
}

/**
 * Seeded shuffle then limit: with a seed, the order is a permutation drawn from a stream derived from
 * (seed, name, split), so the same seed gives the same samples, and `limit` takes the first N of it.
 * Without a seed the source order is kept and `limit` takes its first N. A limit above n keeps all.
 */
export function shuffleAndLimit(ds: Dataset, seed?: number, limit?: number): Dataset {
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw new InputError(`--limit: expected a positive integer, got ${limit}`);
  }
  if (seed !== undefined && !Number.isFinite(seed)) throw new InputError(`--seed: expected a number, got ${seed}`);
  if (seed === undefined && (limit === undefined || limit >= ds.n)) return ds;
  const order = seed === undefined ? identity(ds.n) : permutation(ds.n, makeRng(subSeed(seed, 'data', ds.name, ds.split)));
  const take = limit === undefined ? order : order.subarray(0, Math.min(limit, ds.n));
  return subset(ds, take);
}

function identity(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}
