import type { CaptureSource } from '../capture/source.js';
import type { Shard } from '../minibatch/batches.js';
import type { Formulation, Kernel } from '../minibatch/hsic.js';
import type { WrittenSimilarity } from '../minibatch/output.js';
import type { MinibatchState } from '../minibatch/state.js';

/**
 * Minibatch CKA fused with capture: the models run batch by batch on clean and/or PGD adversarial
 * inputs, every tap point's activations go straight into the per-batch HSIC of all pairs, and only
 * the float64 accumulators outlive a batch, so memory does not grow with n (beyond the dataset
 * itself). The inputs, attack seeds and set names are those of `captureActivations`, so a capture
 * followed by the reference minibatch CKA sees exactly the same numbers.
 * With two models every adversarial input is an attack on the model it is fed to.
 */
export interface StreamCkaOptions extends CaptureSource {
  /** One or two checkpoint directories (model A, model B). */
  models: string[];
  /** Output directory: similarity.arrow (and a/, b/ with two models), accumulators.{json,npy}. */
  out: string;
  /** Poisson bootstrap replicates (0 = no confidence intervals). */
  bootstrap?: number;
  /** Permutation-null replicates (0 = no null). */
  permutations?: number;
  /** Gram kernel: linear CKA (default) or RBF-kernel CKA. */
  kernel?: Kernel;
  /** Per-batch HSIC formulation (default auto; see hsic-plan.ts). */
  formulation?: Formulation;
  shard?: Shard;
  /**
   * Worker threads, each with its own backend instance (wasm or cpu), splitting the batches
   * (default 1: this thread). See docs/benchmarks.md for the measured effect.
   */
  workers?: number;
  /** Warnings of the run's rules, added to every table's (set by runSimilarity). */
  notes?: string[];
  onProgress?: (done: number, total: number) => void;
}

export interface StreamCkaResult {
  written: WrittenSimilarity[];
  sets: string[];
  batches: number;
  samples: number;
}

export interface StreamAccumulation {
  state: MinibatchState;
  context: Record<string, unknown>;
}
