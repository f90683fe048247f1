import { InputError } from '../../errors.js';
import type { SimilarityTable } from '../../formats/similarity.js';
import type { CkaEstimator } from '../engine/engine.js';
import type { Shard, MinibatchRunOptions } from '../minibatch/batches.js';
import type { MinibatchConfig } from '../minibatch/state.js';
import type { WrittenSimilarity } from '../minibatch/output.js';
import type { StreamCkaOptions, StreamCkaResult } from '../stream/stream.js';
import type { FlaggedValue } from './metadata.js';
import { runSimilarity } from './run.js';

/**
 * One-measure calls kept for library callers (the API before runSimilarity): each builds a
 * request and goes through runSimilarity, so it gets the same rules, reading and metadata.
 */
export interface ComputeSimilarityOptions {
  acts: string;
  acts2?: string;
  estimator: CkaEstimator;
  out: string;
  sets?: string[];
  backend?: string;
  blockRows?: number;
  memoryBytes?: number;
  workers?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ComputeSimilarityResult {
  file: string;
  similarity: SimilarityTable;
  /** Values outside [-FLAG_TOLERANCE, 1 + FLAG_TOLERANCE]: reported, never clamped. */
  flagged: FlaggedValue[];
}

/** Full-data linear CKA (biased or debiased) of stored activations. */
export async function computeSimilarity(opts: ComputeSimilarityOptions): Promise<ComputeSimilarityResult> {
  if (opts.estimator !== 'biased' && opts.estimator !== 'debiased') throw new InputError(`--estimator: '${opts.estimator}', expected biased or debiased`);
  const res = await runSimilarity({ ...opts, measure: 'cka' });
  return res.written[0];
}

/** Minibatch CKA (linear or RBF kernel, by config.kernel) of stored activations. */
export async function minibatchSimilarityOfFiles(opts: {
  acts: string;
  acts2?: string;
  sets?: string[];
  out: string;
  config: MinibatchConfig;
  shard?: Shard;
  backend?: string;
  workers?: number;
  run?: MinibatchRunOptions;
  onProgress?: (done: number, total: number) => void;
}): Promise<WrittenSimilarity[]> {
  const { config, run, ...rest } = opts;
  const res = await runSimilarity({
    ...rest,
    measure: config.kernel === 'rbf' ? 'rbf-cka' : 'cka',
    estimator: 'minibatch',
    batchSize: config.batchSize,
    seed: config.seed,
    bootstrap: config.bootstrap,
    permutations: config.permutations,
    formulation: run?.formulation,
  });
  return res.written;
}

/** Minibatch CKA fused with capture (see stream/stream.ts). */
export async function streamMinibatchCka(opts: StreamCkaOptions): Promise<StreamCkaResult> {
  const { kernel, notes: _notes, ...rest } = opts;
  const res = await runSimilarity({ ...rest, measure: kernel === 'rbf' ? 'rbf-cka' : 'cka', estimator: 'minibatch' });
  return { written: res.written, ...res.minibatch! };
}

/** Orthogonal Procrustes similarity of stored activations. */
export async function procrustesSimilarityOfFiles(opts: { acts: string; acts2?: string; sets?: string[]; out: string }): Promise<{ file: string; similarity: SimilarityTable }> {
  const res = await runSimilarity({ ...opts, measure: 'procrustes' });
  const { file, similarity } = res.written[0];
  return { file, similarity };
}
