import type { Kernel } from '../minibatch/hsic.js';
import type { ActivationInputs, Estimator, ResolvedRequest, SimilarityResult } from '../similarity/request.js';

export type MeasureOutput = Omit<SimilarityResult, 'warnings'>;

/**
 * One similarity measure: which estimators and input sources it can be combined with, and how it
 * is computed from each. runSimilarity applies the rules these declare, reads the inputs once and
 * calls `fromActivations` or `fromModels`. A new measure is one file with its spec and one line in
 * MEASURES (measures/index.ts).
 */
export interface MeasureSpec {
  /** What `--measure <name>` computes (for --help and docs). */
  describe: string;
  /** Estimators it can be computed with, the default for stored activations first; empty: no choice (the flag is refused). */
  estimators: readonly Estimator[];
  /** Completes the refusal `--estimator: <name> <why>` of an estimator not listed. */
  estimatorRefusal?: string;
  /** The Gram kernel of its minibatch estimator (the feature formulation is linear only). */
  kernel?: Kernel;
  /** From activations read once (rules applied, defaults filled). */
  fromActivations(inputs: ActivationInputs, request: ResolvedRequest): Promise<MeasureOutput>;
  /** Streamed from models batch by batch; absent when the measure needs all samples at once. */
  fromModels?(request: ResolvedRequest): Promise<MeasureOutput>;
  /** Completes the refusal `--measure: <name> <why>` of --model when there is no fromModels. */
  modelsRefusal?: string;
}
