import { InputError } from '../errors.js';
import { DEFAULT_PGD, validatePgd } from '../attacks/pgd.js';
import { FINE_TUNING_REGIMES, type Method, type Scheme, type TrainConfig } from './config.js';
import { defaultMethod, METHOD_PARAMS, methodsFor, methodSpec, METHODS, METHOD_NAMES, type MethodParam, type MethodSpec } from './methods/index.js';

export { FINE_TUNING_REGIMES, type AugmentName, type Method, type Regime, type Scheme, type TrainConfig } from './config.js';

/** The methods --regime at offers per scheme (from the method specs, src/train/methods/). */
export const METHODS_BY_SCHEME: Record<Scheme, Method[]> = {
  sl: methodsFor('sl', 'at'),
  cl: methodsFor('cl', 'at'),
  scl: methodsFor('scl', 'at'),
};

export const DEFAULT_TRAIN: Omit<TrainConfig, 'name'> = {
  // Each method's parameters (tradesBeta, roclLambda, ...) with their specs' defaults; the fields below are
  // the rest (the test of the registry checks every parameter's default lands here).
  ...(Object.fromEntries(METHOD_PARAMS.map((p) => [p.key, p.default])) as Pick<TrainConfig, MethodParam['key']>),
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
    method: defaultMethod(scheme, regime === 'st' ? 'st' : 'at'),
    augment: contrastive ? 'contrastive' : 'supervised',
    ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)),
    // A run of a default method is named by its regime (sl-at, cl-st), any other by its method (sl-trades).
    name: partial.name ?? `${scheme}-${partial.method && !methodSpec(partial.method)?.defaultFor.length ? partial.method : regime}`,
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
  if (cfg.regime === 'st' && !methodsFor(cfg.scheme, 'st').includes(cfg.method)) {
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
  // Every method's parameters, whichever method runs (they are resume keys too).
  for (const p of METHOD_PARAMS) checkMethodParam(p, cfg[p.key]);
  if (cfg.optimizer !== 'sgd' && cfg.optimizer !== 'adam') throw new InputError(`--optimizer: expected sgd or adam, got '${cfg.optimizer}'`);
  validatePgd(cfg.attack);
  validatePgd(cfg.evalAttack);
  int('--workers', cfg.workers, 1);
  const why = cfg.workers > 1 ? workersUnsupported(cfg) : null;
  if (why) throw new InputError(`--workers: ${why}`);
  return cfg;
}

/** A method parameter's value against its spec's range: a one-line InputError naming the flag. */
export function checkMethodParam(p: MethodParam, v: number): void {
  const { min, strict, integer } = p.range;
  if (integer) {
    if (!Number.isInteger(v) || v < min) throw new InputError(`--${p.flag}: expected an integer >= ${min}, got ${v}`);
  } else if (!(strict ? v > min : v >= min)) {
    throw new InputError(`--${p.flag}: expected a number ${strict ? '>' : '>='} ${min}, got ${v}`);
  }
}

/** The contrastive methods that train data-parallel with all-gathered embeddings (src/train/replica.ts): every method with a contrastive objective. */
export const SHARDED_CONTRASTIVE_METHODS: readonly Method[] = METHOD_NAMES.filter((m) => METHODS[m].contrastive);

/**
 * Why `cfg` cannot train data-parallel over several threads, or null when it can. Objectives that are
 * means over samples (every supervised one) split into shards exactly; the plain contrastive losses are
 * exact with an all-gather of the embeddings; the adversarial contrastive methods attack with an
 * all-gather of the adversarial embeddings at every PGD step, one run (the per-sample choice among
 * restarts is not sharded), so their attack options must have one restart (clae's one FGSM step always
 * has); rcl-bound's discriminator term is a mean over samples, split like cross-entropy.
 */
export function workersUnsupported(cfg: Pick<TrainConfig, 'scheme' | 'method' | 'attack'>, spec: MethodSpec | undefined = methodSpec(cfg.method)): string | null {
  if (cfg.scheme === 'sl') return null;
  if (!spec?.contrastive) {
    return (
      `--scheme ${cfg.scheme} --method ${cfg.method} trains on an attack or loss that worker threads do not shard; ` +
      `use --workers 1 (worker threads support sl with every method, and cl/scl with every method, with one attack restart where the method runs PGD)`
    );
  }
  if (!spec.contrastive.attack) return null;
  if (spec.contrastive.attack.options(cfg.attack, 0).restarts === 1) return null;
  return `--scheme ${cfg.scheme} --method ${cfg.method} with ${cfg.attack.restarts} attack restarts (attack.restarts) cannot train over worker threads (the sharded contrastive attack runs one restart); use one restart or --workers 1`;
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
  ...METHOD_PARAMS.map((p) => p.key),
  'batchSize',
  'optimizer',
  'lr',
  'momentum',
  'weightDecay',
  'schedule',
  'attack',
  'seed',
];
