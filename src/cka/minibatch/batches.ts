import * as tf from '@tensorflow/tfjs';
import { InputError } from '../../errors.js';
import type { ActivationSet } from '../../formats/activations.js';
import { batchHsic, MIN_BATCH, type Formulation } from './hsic.js';
import { addBatch, emptyState, nullPermutations, type MinibatchConfig, type MinibatchState } from './state.js';

/**
 * Streaming minibatch CKA: a source yields, batch by batch, every set's activations on the same
 * samples as tensors; each batch becomes sets x sets HSIC terms (one download) that are added to
 * the float64 state, and nothing else survives the batch.
 */
export interface MinibatchBatch {
  /** Global batch index (fixes the bootstrap weights and permutations of this batch). */
  id: number;
  /** One tensor per set of the state, first axis = the batch's samples. Owned by the source. */
  sets: tf.Tensor[];
}

/** Which share of the batches a process computes: batches j with j % count == index. */
export interface Shard {
  index: number;
  count: number;
}

/** Parse `i/k` (0 <= i < k). */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || !(count >= 1) || !(index < count)) throw new InputError(`--shard: '${text}', expected i/k with 0 <= i < k (e.g. 0/4)`);
  return { index, count };
}

/** A batch of the sample range: samples start..start+size-1. */
export interface BatchSpan {
  id: number;
  start: number;
  size: number;
}

/**
 * The batches of n samples in order (the last one may be shorter), restricted to a shard.
 * Refuses a plan whose last batch has fewer than MIN_BATCH samples, rather than silently drop them.
 */
export function planBatches(n: number, batchSize: number, shard: Shard = { index: 0, count: 1 }): BatchSpan[] {
  if (!Number.isInteger(batchSize) || batchSize < MIN_BATCH) {
    throw new InputError(`--batch-size: ${batchSize}; minibatch CKA needs batches of at least ${MIN_BATCH} samples (the unbiased HSIC divides by b(b-3))`);
  }
  if (!Number.isInteger(n) || n < MIN_BATCH) throw new InputError(`--n: ${n}; minibatch CKA needs at least ${MIN_BATCH} samples`);
  const last = n % batchSize;
  if (last > 0 && last < MIN_BATCH) {
    throw new InputError(`--n ${n} with --batch-size ${batchSize} leaves a last batch of ${last} sample(s); the unbiased HSIC needs at least ${MIN_BATCH}: change --n or --batch-size`);
  }
  const spans: BatchSpan[] = [];
  for (let id = 0, start = 0; start < n; id++, start += batchSize) {
    if (id % shard.count === shard.index) spans.push({ id, start, size: Math.min(batchSize, n - start) });
  }
  return spans;
}

/** One batch's HSIC terms (batchHsic with the batch's null permutations), on the sets' own scale. */
export interface BatchTerms {
  id: number;
  b: number;
  hsic: Float64Array;
  nullHsic: Float64Array;
}

/** Options of the per-batch computation that do not change the result (beyond float rounding). */
export interface MinibatchRunOptions {
  /** Gram or feature path per set (default 'auto': by the flop model of hsic-plan.ts); forcing one is for tests and benches. */
  formulation?: Formulation;
}

/** The HSIC terms of every batch of `source`, in the source's order; nothing else survives a batch. */
export async function* minibatchTerms(source: AsyncIterable<MinibatchBatch>, sets: string[], config: MinibatchConfig, run: MinibatchRunOptions = {}): AsyncGenerator<BatchTerms> {
  const m = sets.length;
  for await (const batch of source) {
    if (batch.sets.length !== m) throw new Error(`minibatchTerms: batch ${batch.id} has ${batch.sets.length} sets, the state ${m}`);
    const b = batch.sets[0].shape[0];
    const terms = await batchHsic(batch.sets, nullPermutations(config, batch.id, b), config.kernel, run.formulation);
    for (let k = 0; k < m; k++) {
      if (!Number.isFinite(terms.hsic[k * m + k])) throw new InputError(`minibatch cka: set '${sets[k]}' has non-finite activations in batch ${batch.id}`);
    }
    yield { id: batch.id, b, hsic: terms.hsic, nullHsic: terms.nullHsic };
  }
}

/** Drain `source` into `state` (mutated and returned). `onBatch` sees each batch id after it is added. */
export async function accumulateMinibatches(source: AsyncIterable<MinibatchBatch>, state: MinibatchState, onBatch?: (id: number, samples: number) => void, run: MinibatchRunOptions = {}): Promise<MinibatchState> {
  for await (const t of minibatchTerms(source, state.sets, state.config, run)) {
    addBatch(state, t.id, t.b, t.hsic, t.nullHsic);
    onBatch?.(t.id, t.b);
  }
  return state;
}

/** In-memory activation sets served batch by batch (uploads one batch at a time). */
export async function* setBatches(sets: ActivationSet[], spans: BatchSpan[]): AsyncGenerator<MinibatchBatch> {
  for (const span of spans) {
    const tensors = sets.map((s) => tf.tensor2d(s.data.subarray(span.start * s.dim, (span.start + span.size) * s.dim), [span.size, s.dim]));
    try {
      yield { id: span.id, sets: tensors };
    } finally {
      tf.dispose(tensors);
    }
  }
}

/** Check that in-memory sets share n samples and hold n * dim values; returns n. */
export function requireBatchableSets(sets: ActivationSet[]): number {
  if (sets.length === 0) throw new InputError('minibatch cka: no sets given');
  const n = sets[0].n;
  for (const s of sets) {
    if (s.n !== n) throw new InputError(`minibatch cka: set '${s.name}' has ${s.n} samples but '${sets[0].name}' has ${n}; every set must hold the same samples`);
    if (s.data.length !== s.n * s.dim) throw new InputError(`set '${s.name}': ${s.data.length} values, expected n*dim = ${s.n}*${s.dim}`);
  }
  return n;
}

/** Minibatch CKA state of in-memory sets (all sharing n samples, in the same order). */
export async function minibatchStateOfSets(sets: ActivationSet[], config: MinibatchConfig, shard?: Shard, run: MinibatchRunOptions = {}, onBatch?: (id: number, samples: number) => void): Promise<MinibatchState> {
  const n = requireBatchableSets(sets);
  const state = emptyState(sets.map((s) => s.name), config);
  return accumulateMinibatches(setBatches(sets, planBatches(n, config.batchSize, shard)), state, onBatch, run);
}
