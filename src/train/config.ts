import type { DatasetName } from '../data/index.js';
import type { PgdOptions } from '../attacks/pgd.js';

/**
 * The types of a training run's configuration, apart from the code that fills and checks them
 * (options.ts) so that the method specs (src/train/methods/) can name them without an import cycle.
 */

export type Scheme = 'sl' | 'cl' | 'scl';
export type Regime = 'st' | 'at';
/** Scenarios of the study that need a fine-tuning stage (src/probe); not trainable here yet. */
export const FINE_TUNING_REGIMES = ['pat', 'fat', 'st-pat', 'st-fat'] as const;

/**
 * The training methods: one spec each in src/train/methods/ (the registry METHODS, which the compiler
 * checks is complete against this union). Regime 'st' uses 'none'; see docs/training-methods.md.
 */
export type Method = 'none' | 'pgd' | 'trades' | 'study-at' | 'rocl' | 'clae' | 'acl' | 'rcl-bound';
export type AugmentName = 'none' | 'supervised' | 'contrastive';

/** Everything that defines a training run; recorded verbatim in meta.json. */
export interface TrainConfig {
  /** Human label of the run (e.g. 'sl-at'); defaults to `<scheme>-<regime>`. */
  name: string;
  dataset: DatasetName;
  dataDir?: string;
  /** Train on the first N training samples after the seeded shuffle. */
  limit?: number;
  /** Test samples used for the per-epoch clean accuracy and the final robust accuracy. */
  evalLimit: number;
  arch: string;
  width?: number;
  /** Blocks per stage (resnet) or conv layers (convnet), overriding the preset's depth. */
  blocks?: number[];
  scheme: Scheme;
  regime: Regime;
  /** Adversarial training method; 'none' for regime st. Defaults: sl -> pgd, cl/scl -> study-at. */
  method: Method;
  /** Training-time augmentation. Defaults: sl -> supervised (pad + random crop, flip: SPEC), cl/scl -> contrastive (SimCLR's). */
  augment: AugmentName;
  /** Contrastive temperature tau (SimCLR/RoCL/ACL 0.5; the study 0.07). */
  temperature: number;
  /** Projection head of cl/scl: hidden units (0 = the encoder's feature dimension) and output dimension. */
  projHidden: number;
  projDim: number;
  /** TRADES beta (weight of the KL robustness term). */
  tradesBeta: number;
  /** RoCL lambda: the regulariser NT-Xent(adv, t2) is weighted 1/lambda. */
  roclLambda: number;
  /** CLAE alpha: weight of NT-Xent(z_i, z_adv). */
  claeAlpha: number;
  /** rcl-bound: weight of the benign contrastive loss (w_b) and of the discriminator divergence (w_d). */
  rclBenignWeight: number;
  rclDivergenceWeight: number;
  /** rcl-bound: hidden units of the discriminator MLP. */
  discHidden: number;
  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam';
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: 'cosine' | 'constant';
  /** The attack used to make training examples in regime 'at' (Madry PGD on cross-entropy). */
  attack: PgdOptions;
  /** Attack for the final robust-accuracy figure. */
  evalAttack: PgdOptions;
  seed: number;
  /** Checkpoint every N optimizer steps as well as at every epoch end (0 = epochs only). */
  saveEvery: number;
  /**
   * Threads that share each step (data-parallel, src/train/data-parallel.ts): 1 = the main thread
   * alone (the reference results); N > 1 splits every batch into N shards. A run control: recorded,
   * but a resume may change it.
   */
  workers: number;
}
