import { InputError } from '../errors.js';
import type { DatasetName } from '../data/index.js';
import { DEFAULT_PGD, validatePgd, type PgdOptions } from '../attacks/pgd.js';

export type Scheme = 'sl';
export type Regime = 'st' | 'at';

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
}

export const DEFAULT_TRAIN: Omit<TrainConfig, 'name'> = {
  dataset: 'fashion-mnist',
  evalLimit: 1000,
  arch: 'resnet-small',
  scheme: 'sl',
  regime: 'st',
  epochs: 2,
  batchSize: 128,
  optimizer: 'adam',
  lr: 1e-3,
  momentum: 0.9,
  weightDecay: 5e-4,
  schedule: 'cosine',
  attack: { ...DEFAULT_PGD, eps: 0.1, stepSize: 0.05, steps: 3, randomStart: true },
  evalAttack: { ...DEFAULT_PGD, eps: 0.1, stepSize: 0.01, steps: 20, randomStart: true },
  seed: 0,
  saveEvery: 0,
};

export function resolveTrainConfig(partial: Partial<TrainConfig>): TrainConfig {
  const cfg: TrainConfig = {
    ...DEFAULT_TRAIN,
    ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)),
    name: partial.name ?? `${partial.scheme ?? DEFAULT_TRAIN.scheme}-${partial.regime ?? DEFAULT_TRAIN.regime}`,
  } as TrainConfig;
  const int = (flag: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new InputError(`${flag}: expected an integer >= ${min}, got ${v}`);
  };
  int('--epochs', cfg.epochs, 1);
  int('--batch-size', cfg.batchSize, 2);
  int('--eval-limit', cfg.evalLimit, 1);
  int('--save-every', cfg.saveEvery, 0);
  if (cfg.limit !== undefined) int('--limit', cfg.limit, 2);
  if (!(cfg.lr > 0)) throw new InputError(`--lr: expected a number > 0, got ${cfg.lr}`);
  if (!(cfg.weightDecay >= 0)) throw new InputError(`--weight-decay: expected a number >= 0, got ${cfg.weightDecay}`);
  if (cfg.scheme !== 'sl') throw new InputError(`--scheme: expected 'sl', got '${cfg.scheme}'`);
  if (cfg.regime !== 'st' && cfg.regime !== 'at') throw new InputError(`--regime: expected st or at for scheme sl, got '${cfg.regime}'`);
  if (cfg.optimizer !== 'sgd' && cfg.optimizer !== 'adam') throw new InputError(`--optimizer: expected sgd or adam, got '${cfg.optimizer}'`);
  validatePgd(cfg.attack);
  validatePgd(cfg.evalAttack);
  return cfg;
}

/** The fields that must match for `--resume` to continue a run rather than start another. */
export const RESUME_KEYS: Array<keyof TrainConfig> = [
  'dataset',
  'limit',
  'arch',
  'width',
  'blocks',
  'scheme',
  'regime',
  'batchSize',
  'optimizer',
  'lr',
  'momentum',
  'weightDecay',
  'schedule',
  'attack',
  'seed',
];
