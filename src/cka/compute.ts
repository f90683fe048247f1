import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { readActivations, type Activations } from '../formats/activations.js';
import { writeSimilarity, type SimilarityTable } from '../formats/similarity.js';
import { provenance } from '../util/provenance.js';
import type { ActivationSet } from '../formats/activations.js';
import { linearCkaMatrix, type CkaEstimator } from './engine.js';
import { linearCkaMatrixInWorkers } from './engine-workers.js';
import { setStats } from './set-stats.js';

export interface ComputeSimilarityOptions {
  /** Activation Arrow file or directory of .npy files: the rows (and the columns without acts2). */
  acts: string;
  /** A second activation input (e.g. another model on the same samples): the columns. */
  acts2?: string;
  estimator: CkaEstimator;
  /** Output directory; the result is `<out>/similarity.arrow`. */
  out: string;
  /** Sets to use, in this order (default: all, in file order); applied to both inputs. */
  sets?: string[];
  /** The backend name to record (default: the active tfjs backend). */
  backend?: string;
  /** Engine tuning (see CkaEngineOptions). */
  blockRows?: number;
  memoryBytes?: number;
  /** Worker threads, each with its own wasm/cpu instance, sharing the tiles (default 1). */
  workers?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface FlaggedValue {
  row: string;
  col: string;
  cka: number;
}

export interface ComputeSimilarityResult {
  file: string;
  similarity: SimilarityTable;
  /** Values outside [-FLAG_TOLERANCE, 1 + FLAG_TOLERANCE]: reported, never clamped. */
  flagged: FlaggedValue[];
}

/** How far outside [0, 1] a CKA value may stray (float32 rounding; debiased dips below 0) before it is flagged. */
export const FLAG_TOLERANCE = 1e-3;

/**
 * Read activations, compute the linear CKA matrix (rows x cols with two inputs, sets x sets with
 * one) and write `<out>/similarity.arrow` atomically: any failure leaves no output.
 */
export async function computeSimilarity(opts: ComputeSimilarityOptions): Promise<ComputeSimilarityResult> {
  if (opts.estimator !== 'biased' && opts.estimator !== 'debiased') {
    throw new InputError(`--estimator: '${opts.estimator}', expected biased or debiased`);
  }
  const first = await readActivations(opts.acts, { sets: opts.sets });
  const second = opts.acts2 ? await readActivations(opts.acts2, { sets: opts.sets }) : null;
  if (second) requireSameSamples(first, second);
  for (const acts of second ? [first, second] : [first]) checkUsable(acts);

  const engineOptions = { estimator: opts.estimator, blockRows: opts.blockRows, memoryBytes: opts.memoryBytes, onProgress: opts.onProgress };
  const workers = opts.workers ?? 1;
  const result =
    workers > 1
      ? await linearCkaMatrixInWorkers(first.sets, second ? second.sets : null, engineOptions, workers)
      : await linearCkaMatrix(first.sets, second ? second.sets : null, engineOptions);
  const flagged: FlaggedValue[] = [];
  result.cka.forEach((v, k) => {
    if (!(v >= -FLAG_TOLERANCE && v <= 1 + FLAG_TOLERANCE)) {
      flagged.push({ row: result.rows[Math.floor(k / result.cols.length)], col: result.cols[k % result.cols.length], cka: v });
    }
  });
  const inputs = second ? [first.source, second.source] : [first.source];
  const similarity: SimilarityTable = {
    rows: result.rows,
    cols: result.cols,
    cka: result.cka,
    extra: { hsic: result.hsic },
    metadata: {
      estimator: opts.estimator,
      n: result.n,
      inputs,
      rows_from: first.source,
      cols_from: second ? second.source : first.source,
      sources: second ? [first.metadata, second.metadata] : [first.metadata],
      hsic_rows: Array.from(result.hsicRows),
      hsic_cols: Array.from(result.hsicCols),
      flagged,
      ...(flagged.length > 0
        ? { warning: `${flagged.length} CKA value(s) outside [${-FLAG_TOLERANCE}, ${1 + FLAG_TOLERANCE}]; left unclamped (see 'flagged')` }
        : {}),
      engine: { block_rows: result.blockRows, chunk_cols: result.chunkCols, resident: result.resident, workers },
      provenance: provenance(opts.backend ?? tf.getBackend()),
    },
  };
  const file = path.join(opts.out, 'similarity.arrow');
  await writeSimilarity(file, similarity);
  return { file, similarity, flagged };
}

/** Two inputs must hold the same samples in the same order, or pairs of sets mean nothing. */
export function requireSameSamples(a: Pick<Activations, 'sampleIds' | 'source'>, b: Pick<Activations, 'sampleIds' | 'source'>): void {
  if (a.sampleIds.length !== b.sampleIds.length) {
    throw new InputError(`${a.source} has ${a.sampleIds.length} samples but ${b.source} has ${b.sampleIds.length}; both inputs must hold the same sample ids in the same order`);
  }
  for (let i = 0; i < a.sampleIds.length; i++) {
    if (a.sampleIds[i] !== b.sampleIds[i]) {
      throw new InputError(`${a.source} and ${b.source} hold different samples: at position ${i} sample_id ${a.sampleIds[i]} vs ${b.sampleIds[i]}; capture both on the same samples in the same order`);
    }
  }
}

/** Fail early, naming the file, on inputs the engine cannot use (n < 4, NaN/Inf, zero variance). */
function checkUsable(acts: Activations): void {
  const n = acts.sampleIds.length;
  if (n < 4) throw new InputError(`${acts.source}: ${n} samples; linear CKA needs at least 4`);
  for (const set of acts.sets) checkSet(acts.source, set);
}

function checkSet(source: string, set: ActivationSet): void {
  try {
    setStats(set);
  } catch (err) {
    if (err instanceof InputError) throw new InputError(`${source}: ${err.message}`);
    throw err;
  }
}
