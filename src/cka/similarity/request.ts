import type { Activations } from '../../formats/activations.js';
import type { CaptureSource } from '../capture/source.js';
import type { Shard } from '../minibatch/batches.js';
import type { Formulation } from '../minibatch/hsic.js';
import type { WrittenSimilarity } from '../minibatch/output.js';

/** What `cka --measure` names; MEASURES (measures/index.ts) has one spec per name. */
export type Measure = 'cka' | 'rbf-cka' | 'procrustes';

/** HSIC estimators: biased/debiased on all n at once (engine/), or averaged over minibatches (minibatch/). */
export type Estimator = 'biased' | 'debiased' | 'minibatch';
export const ESTIMATORS: readonly Estimator[] = ['biased', 'debiased', 'minibatch'];

/** Where the activations come from: stored files (--acts), or models run batch by batch (--model). */
export type InputSource = 'activations' | 'models';

/**
 * Everything one similarity run can be asked for, from the CLI or a library caller alike; the
 * combination rules (similarity/rules.ts) refuse what cannot be combined. Give `acts` (and
 * optionally `acts2`) or `models`, not both.
 */
export interface SimilarityRequest extends Partial<Omit<CaptureSource, 'batchSize'>> {
  /** Default 'cka' (linear CKA). */
  measure?: Measure;
  /** Default: biased for linear CKA of stored activations; minibatch otherwise (the only one streamed). */
  estimator?: Estimator;
  /** Activation Arrow file or directory of .npy files: the rows (and the columns without acts2). */
  acts?: string;
  /** A second activation input on the same samples: the columns. */
  acts2?: string;
  /** With acts: the sets to use, in this order (default: all, in file order); applied to both inputs. */
  sets?: string[];
  /** One or two checkpoints to stream from (A, or A and B). */
  models?: string[];
  /** Output directory: similarity.arrow (minibatch runs also accumulators.{json,npy}; two models a/ and b/). */
  out: string;
  /** Full-data engine: sample rows per Gram panel, and the memory budget of one step. */
  blockRows?: number;
  memoryBytes?: number;
  /** Minibatch: samples per batch (default 256). */
  batchSize?: number;
  /** Bootstrap / permutation-null replicates (default 0). */
  bootstrap?: number;
  permutations?: number;
  formulation?: Formulation;
  shard?: Shard;
  /** Worker threads, each with its own wasm/cpu backend (default 1). */
  workers?: number;
  /** The backend name to record (default: the active one). */
  backend?: string;
  onProgress?: (done: number, total: number) => void;
}

/** The request with the rules passed and every default filled in. */
export interface ResolvedRequest extends SimilarityRequest {
  measure: Measure;
  estimator: Estimator;
  source: InputSource;
  workers: number;
  batchSize: number;
  seed: number;
  bootstrap: number;
  permutations: number;
  /** Warnings of the combination rules (e.g. few batches for --stats), written into the tables. */
  warnings: string[];
}

/** Activations read once, for every measure that uses them. */
export interface ActivationInputs {
  first: Activations;
  /** The columns' input (null: the sets against themselves). */
  second: Activations | null;
}

export interface SimilarityResult {
  /** The tables written (one; with two models, A x B then A x A and B x B). */
  written: WrittenSimilarity[];
  /** Warnings to show the user (out-of-range values, statistics on few batches). */
  warnings: string[];
  /** Minibatch runs: the accumulators' sets, batches and samples. */
  minibatch?: { sets: string[]; batches: number; samples: number };
}
