import { InputError } from '../errors.js';
import type { DatasetName } from '../data/index.js';
import { DEFAULT_PGD, validatePgd, type PgdOptions } from '../attacks/pgd.js';

export type Scheme = 'sl' | 'cl' | 'scl';
export type Regime = 'st' | 'at';
/** Scenarios of the study that need a fine-tuning stage (src/probe); not trainable here yet. */
export const FINE_TUNING_REGIMES = ['pat', 'fat', 'st-pat', 'st-fat'] as const;

/**
 * How a regime-'at' model is trained (see docs/training-methods.md for papers and defaults):
 * sl: 'pgd' (Madry), 'trades'; cl/scl: 'study-at', 'rocl', 'clae', 'acl', 'rcl-bound'. Regime 'st' uses 'none'.
 */
export type Method = 'none' | 'pgd' | 'trades' | 'study-at' | 'rocl' | 'clae' | 'acl' | 'rcl-bound';
export const METHODS_BY_SCHEME: Record<Scheme, Method[]> = {
  sl: ['pgd', 'trades'],
  cl: ['study-at', 'rocl', 'clae', 'acl', 'rcl-bound'],
  scl: ['study-at', 'rocl', 'clae', 'acl', 'rcl-bound'],
};
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

export const DEFAULT_TRAIN: Omit<TrainConfig, 'name'> = {
  dataset: 'fashion-mnist',
  evalLimit: 1000,
  arch: 'resnet-small',
  scheme: 'sl',
  regime: 'st',
  method: 'none',
  augment: 'supervised',
  temperature: 0.5,
  projHidden: 0,
  projDim: 128,
  tradesBeta: 6,
  roclLambda: 256,
  claeAlpha: 1,
  rclBenignWeight: 1,
  rclDivergenceWeight: 0.1,
  discHidden: 64,
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
  workers: 1,
};

export function resolveTrainConfig(partial: Partial<TrainConfig>): TrainConfig {
  const scheme = partial.scheme ?? DEFAULT_TRAIN.scheme;
  const regime = partial.regime ?? DEFAULT_TRAIN.regime;
  const contrastive = scheme === 'cl' || scheme === 'scl';
  const cfg: TrainConfig = {
    ...DEFAULT_TRAIN,
    method: regime === 'st' ? 'none' : contrastive ? 'study-at' : 'pgd',
    augment: contrastive ? 'contrastive' : 'supervised',
    ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)),
    name: partial.name ?? `${scheme}-${partial.method && partial.method !== 'none' && partial.method !== 'pgd' && partial.method !== 'study-at' ? partial.method : regime}`,
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
  if (!(cfg.scheme in METHODS_BY_SCHEME)) throw new InputError(`--scheme: expected sl, cl or scl, got '${cfg.scheme}'`);
  if ((FINE_TUNING_REGIMES as readonly string[]).includes(cfg.regime)) {
    throw new InputError(
      `--regime: '${cfg.regime}' is a pre-training + fine-tuning scenario; trainModel runs st or at only, ` +
        `trainScenario (src/pipeline/scenario.ts, what 'robustsim train' calls) runs the scenarios`,
    );
  }
  if (cfg.regime !== 'st' && cfg.regime !== 'at') throw new InputError(`--regime: expected st or at, got '${cfg.regime}'`);
  const allowed = METHODS_BY_SCHEME[cfg.scheme];
  if (cfg.regime === 'st' && cfg.method !== 'none') {
    throw new InputError(`--method: '${cfg.method}' is an adversarial method; use it with --regime at (regime st trains without attacks)`);
  }
  if (cfg.regime === 'at' && !allowed.includes(cfg.method)) {
    throw new InputError(`--method: expected one of ${allowed.join(', ')} for --scheme ${cfg.scheme} --regime at, got '${cfg.method}'`);
  }
  if (!['none', 'supervised', 'contrastive'].includes(cfg.augment)) {
    throw new InputError(`--augment: expected none, supervised or contrastive, got '${cfg.augment}'`);
  }
  if (cfg.scheme !== 'sl' && cfg.augment === 'none') {
    throw new InputError(`--augment: contrastive schemes need augmented views (supervised or contrastive), got 'none'`);
  }
  if (!(cfg.temperature > 0)) throw new InputError(`--temperature: expected a number > 0, got ${cfg.temperature}`);
  int('--proj-hidden', cfg.projHidden, 0);
  int('--proj-dim', cfg.projDim, 1);
  if (!(cfg.tradesBeta >= 0)) throw new InputError(`--trades-beta: expected a number >= 0, got ${cfg.tradesBeta}`);
  if (!(cfg.roclLambda > 0)) throw new InputError(`--rocl-lambda: expected a number > 0, got ${cfg.roclLambda}`);
  if (!(cfg.claeAlpha >= 0)) throw new InputError(`--clae-alpha: expected a number >= 0, got ${cfg.claeAlpha}`);
  if (!(cfg.rclBenignWeight >= 0)) throw new InputError(`--rcl-benign-weight: expected a number >= 0, got ${cfg.rclBenignWeight}`);
  if (!(cfg.rclDivergenceWeight >= 0)) throw new InputError(`--rcl-divergence-weight: expected a number >= 0, got ${cfg.rclDivergenceWeight}`);
  int('--disc-hidden', cfg.discHidden, 1);
  if (cfg.optimizer !== 'sgd' && cfg.optimizer !== 'adam') throw new InputError(`--optimizer: expected sgd or adam, got '${cfg.optimizer}'`);
  validatePgd(cfg.attack);
  validatePgd(cfg.evalAttack);
  int('--workers', cfg.workers, 1);
  const why = cfg.workers > 1 ? workersUnsupported(cfg) : null;
  if (why) throw new InputError(`--workers: ${why}`);
  return cfg;
}

/** The contrastive methods that train data-parallel with all-gathered embeddings (src/train/replica.ts). */
export const SHARDED_CONTRASTIVE_METHODS = ['none', 'study-at', 'rocl', 'clae', 'acl', 'rcl-bound'] as const;

/**
 * Why `cfg` cannot train data-parallel over several threads, or null when it can. Objectives that are
 * means over samples split into shards exactly; the plain contrastive losses are exact with an
 * all-gather of the embeddings; study-at, rocl and acl attack with an all-gather of the adversarial
 * embeddings at every PGD step (one run: the per-sample choice among restarts is not sharded); so do
 * rcl-bound (its discriminator term a mean over samples, split like cross-entropy) and clae (its one FGSM
 * step, no restarts).
 */
export function workersUnsupported(cfg: Pick<TrainConfig, 'scheme' | 'method' | 'attack'>): string | null {
  if (cfg.scheme === 'sl' || cfg.method === 'none') return null;
  if ((SHARDED_CONTRASTIVE_METHODS as readonly string[]).includes(cfg.method)) {
    // clae's one FGSM step has no restarts, whatever attack.restarts says (fgsmAttack).
    if (cfg.attack.restarts === 1 || cfg.method === 'clae') return null;
    return `--scheme ${cfg.scheme} --method ${cfg.method} with ${cfg.attack.restarts} attack restarts (attack.restarts) cannot train over worker threads (the sharded contrastive attack runs one restart); use one restart or --workers 1`;
  }
  return (
    `--scheme ${cfg.scheme} --method ${cfg.method} trains on an attack or loss that worker threads do not shard; ` +
    `use --workers 1 (worker threads support sl with every method, and cl/scl with every method, with one attack restart where the method runs PGD)`
  );
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
  'method',
  'augment',
  'temperature',
  'projHidden',
  'projDim',
  'tradesBeta',
  'roclLambda',
  'claeAlpha',
  'rclBenignWeight',
  'rclDivergenceWeight',
  'discHidden',
  'batchSize',
  'optimizer',
  'lr',
  'momentum',
  'weightDecay',
  'schedule',
  'attack',
  'seed',
];
