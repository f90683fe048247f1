import type { DatasetName } from '../data/index.js';
import type { PgdOptions } from '../attacks/pgd.js';
import type { Provenance } from '../util/provenance.js';
import type { RunProgress } from '../util/resumable-epochs.js';

/**
 * How a head (and, for the full modes, the encoder) is trained on top of a pre-trained encoder:
 *   linear         frozen encoder, linear head on CE(clean)                       (SPEC: ST / AT rows)
 *   robust-linear  frozen encoder, linear head on CE(clean) + CE(PGD)             (SPEC: PAT)
 *   full           encoder and head on CE(clean)                                  (standard fine-tuning)
 *   full-adv       encoder and head on CE(clean) + CE(PGD)                        (SPEC: FAT)
 */
export type FineTuneMode = 'linear' | 'robust-linear' | 'full' | 'full-adv';
export const FINE_TUNE_MODES: readonly FineTuneMode[] = ['linear', 'robust-linear', 'full', 'full-adv'];

/**
 * The loss of the adversarial modes (robust-linear, full-adv):
 *   ce-ce   CE(clean) + w CE(x_adv), x_adv = PGD on CE                 (SPEC: PAT / FAT; the default)
 *   trades  CE(clean) + beta KL(p(x) || p(x_adv)), x_adv = PGD on that KL from a random start
 *           (TRADES, Zhang et al. 2019; ACL's fine-tuning, Jiang et al. 2020, with beta 6)
 */
export type FineTuneObjective = 'ce-ce' | 'trades';
export const FINE_TUNE_OBJECTIVES: readonly FineTuneObjective[] = ['ce-ce', 'trades'];

export function isAdversarialMode(mode: FineTuneMode): boolean {
  return mode === 'robust-linear' || mode === 'full-adv';
}

export function trainsEncoder(mode: FineTuneMode): boolean {
  return mode === 'full' || mode === 'full-adv';
}

export interface FineTuneConfig {
  mode: FineTuneMode;
  /** Dataset the head is trained and evaluated on (a different one than the encoder's = transfer). */
  dataset: DatasetName;
  dataDir?: string;
  limit?: number;
  evalLimit: number;
  featureLayer: string;
  epochs: number;
  batchSize: number;
  lr: number;
  /** The attack that makes the adversarial half of the loss (robust-linear, full-adv). */
  attack: PgdOptions;
  /** Loss of the adversarial modes ('ce-ce' for linear and full, which have no adversarial half). */
  objective: FineTuneObjective;
  /** Weight of CE(adv) in CE(clean) + w CE(adv) (objective ce-ce). */
  advWeight: number;
  /** beta in CE(clean) + beta KL(p_clean || p_adv) (objective trades). */
  tradesBeta: number;
  /** Attack for the final robust-accuracy figure. */
  evalAttack: PgdOptions;
  seed: number;
  /**
   * Threads the steps ran on (data-parallel, src/probe/finetune-parallel.ts); absent in outputs written
   * before the option existed (1). Not a resume key: a resumed run records the latest count, as train.
   */
  workers?: number;
}

/** The fields that must match for `finetune --resume` to continue a run (epochs may grow; evaluation may change). */
export const FINE_TUNE_RESUME_KEYS: Array<keyof FineTuneConfig> = ['mode', 'dataset', 'limit', 'featureLayer', 'batchSize', 'lr', 'attack', 'objective', 'advWeight', 'tradesBeta', 'seed'];

/** Fine-tuning progress, saved with every checkpoint so `--resume` continues exactly. */
export interface FineTuneProgress extends RunProgress {
  /** Mean training loss of each finished epoch. */
  trainLoss: number[];
  /** Running sums of the unfinished epoch (a mid-epoch resume continues its mean). */
  epochLossSum: number;
  epochSeen: number;
}

/** The `finetune` record of a fully fine-tuned checkpoint's meta.json. */
export interface FineTuneRecord {
  /** Encoder checkpoint directory, relative to the fine-tuned one. */
  encoder: string;
  config: FineTuneConfig;
  progress: FineTuneProgress;
  /** Absent until the run completes. */
  metrics?: FineTuneMetrics;
}

export interface FineTuneMetrics {
  cleanAccuracy: number;
  robustAccuracy: number;
  evalSamples: number;
  evalAttack: PgdOptions;
  trainLoss: number[];
}

/** meta.json of a linear probe directory: the head's weights live beside it, the encoder is referenced. */
export interface ProbeMeta {
  format: 'robustsim-probe/1';
  name: string;
  mode: FineTuneMode;
  /** Encoder checkpoint directory, relative to the probe directory. */
  encoder: string;
  encoderName: string;
  featureLayer: string;
  dataset: DatasetName;
  dataDir?: string;
  inputShape: [number, number, number];
  numClasses: number;
  classNames: string[];
  config: FineTuneConfig;
  /** Absent until the run completes. */
  metrics?: FineTuneMetrics;
  /** Absent in probes written before fine-tuning could resume. */
  progress?: FineTuneProgress;
  backend: string;
  provenance: Provenance;
}
