import { promises as fs } from 'node:fs';
import { InputError } from '../../errors.js';
import { archNames } from '../../models/architectures.js';
import { METHODS_BY_SCHEME, type Method, type Scheme } from '../../train/options.js';
import { epsNumber, type CellSpec, type StudyConfig, type TrainingSettings } from './config.js';

/**
 * From a validated config to the study's cells: the grid's product (schemes x regimes x methods x
 * training eps x seeds) plus the extra `cells`, each named `<scheme>-<regime>[-<method>][-eps<N>][-s<seed>]`
 * (N in units of 1/255). A method appears in the name only when it is not the scheme's default, the
 * eps only when it is not the study's base training eps, the seed only when it is not the first.
 */
export type Regime = CellSpec['regime'];

export interface Cell {
  name: string;
  scheme: Scheme;
  regime: Regime;
  /** The adversarial method of the (encoder's) training; undefined for st, st-pat, st-fat. */
  method?: Method;
  /** Training eps of the (encoder's) adversarial training; undefined when the encoder is standard-trained. */
  trainEps?: number;
  seed: number;
  /** The trained model the cell starts from: itself for st/at, the pre-trained encoder otherwise. */
  encoder: EncoderSpec;
}

export interface EncoderSpec {
  /** The name the encoder would have as a cell (e.g. cl-at for cl-fat). */
  name: string;
  scheme: Scheme;
  regime: 'st' | 'at';
  method?: Method;
  trainEps?: number;
  seed: number;
}

export const DEFAULT_METHOD: Record<Scheme, Method> = { sl: 'pgd', cl: 'study-at', scl: 'study-at' };
const FINE_TUNED = new Set<Regime>(['pat', 'fat', 'st-pat', 'st-fat']);
/** The training eps when neither the grid nor the training attack names one (DEFAULT_TRAIN's). */
const LIBRARY_TRAIN_EPS = 0.1;

export function isFineTuned(regime: Regime): boolean {
  return FINE_TUNED.has(regime);
}

/** Regimes whose encoder is adversarially trained (so a method and a training eps apply). */
export function hasAdversarialEncoder(regime: Regime): boolean {
  return regime === 'at' || regime === 'pat' || regime === 'fat';
}

/** The training settings of a scheme: `training.all` overridden by `training.<scheme>`. */
export function trainingOf(config: StudyConfig, scheme: Scheme): TrainingSettings {
  const all = config.training.all;
  const own = config.training[scheme] ?? {};
  return { ...all, ...own, attack: { ...all.attack, ...own.attack } };
}

/** The training eps a cell gets when the grid names none. */
export function baseTrainEps(config: StudyConfig, scheme: Scheme): number {
  if (config.grid.trainEps?.length === 1) return epsNumber(config.grid.trainEps[0]);
  const eps = trainingOf(config, scheme).attack?.eps;
  return eps !== undefined ? epsNumber(eps) : LIBRARY_TRAIN_EPS;
}

/** `eps<N>` with N = eps x 255 (8/255 -> eps8; 0.1 -> eps25.5). */
export function epsLabel(eps: number): string {
  return `eps${Number((eps * 255).toFixed(2))}`;
}

export function cellName(config: StudyConfig, spec: { scheme: Scheme; regime: Regime; method?: Method; trainEps?: number; seed: number }): string {
  let name = `${spec.scheme}-${spec.regime}`;
  if (spec.method && spec.method !== DEFAULT_METHOD[spec.scheme]) name += `-${spec.method}`;
  if (spec.trainEps !== undefined && Math.abs(spec.trainEps - baseTrainEps(config, spec.scheme)) > 1e-12) name += `-${epsLabel(spec.trainEps)}`;
  if (spec.seed !== config.grid.seeds[0]) name += `-s${spec.seed}`;
  return name;
}

function fail(source: string, where: string, what: string): never {
  throw new InputError(`${source}: ${where}: ${what}`);
}

function makeCell(config: StudyConfig, c: { scheme: Scheme; regime: Regime; method?: Method; trainEps?: number; seed: number }, where: string, source: string): Cell {
  const adversarial = hasAdversarialEncoder(c.regime);
  if (!adversarial && c.method !== undefined) {
    fail(source, `${where}.method`, `'${c.method}' has no effect in regime ${c.regime} (its encoder is standard-trained); leave it out`);
  }
  if (!adversarial && c.trainEps !== undefined) fail(source, `${where}.trainEps`, `regime ${c.regime} has no adversarial training, so no training eps`);
  const method = adversarial ? (c.method ?? DEFAULT_METHOD[c.scheme]) : undefined;
  if (method && !METHODS_BY_SCHEME[c.scheme].includes(method)) {
    fail(source, `${where}.method`, `'${method}' is not a method of scheme ${c.scheme} (expected one of ${METHODS_BY_SCHEME[c.scheme].join(', ')})`);
  }
  const trainEps = adversarial ? (c.trainEps ?? baseTrainEps(config, c.scheme)) : undefined;
  const encoderRegime: 'st' | 'at' = adversarial ? 'at' : 'st';
  const encoder: EncoderSpec = { name: '', scheme: c.scheme, regime: encoderRegime, method, trainEps, seed: c.seed };
  encoder.name = cellName(config, encoder);
  const cell: Cell = { name: '', scheme: c.scheme, regime: c.regime, method, trainEps, seed: c.seed, encoder };
  cell.name = cellName(config, cell);
  return cell;
}

/** Every cell of the study, grid first, in a stable order; throws on duplicates and contradictions. */
export function expandCells(config: StudyConfig, source: string): Cell[] {
  const g = config.grid;
  const cells: Cell[] = [];
  const where = new Map<string, string>();
  const add = (cell: Cell, at: string) => {
    const prev = where.get(cell.name);
    if (prev !== undefined) fail(source, at, `duplicate cell ${cell.name} (also made by ${prev})`);
    where.set(cell.name, at);
    cells.push(cell);
  };
  for (const [k, s] of g.schemes.entries()) if (g.schemes.indexOf(s) !== k) fail(source, `grid.schemes[${k}]`, `'${s}' listed twice (duplicate cells ${s}-*)`);
  for (const [k, r] of g.regimes.entries()) if (g.regimes.indexOf(r) !== k) fail(source, `grid.regimes[${k}]`, `'${r}' listed twice (duplicate cells *-${r})`);
  for (const [scheme, list] of Object.entries(g.methods ?? {}) as [Scheme, Method[]][]) {
    if (!g.schemes.includes(scheme)) fail(source, `grid.methods.${scheme}`, `scheme ${scheme} is not in grid.schemes`);
    list.forEach((m, k) => {
      if (!METHODS_BY_SCHEME[scheme].includes(m)) fail(source, `grid.methods.${scheme}[${k}]`, `'${m}' is not a method of scheme ${scheme} (expected one of ${METHODS_BY_SCHEME[scheme].join(', ')})`);
    });
  }
  const epsList = (g.trainEps ?? [undefined]).map((e) => (e === undefined ? undefined : epsNumber(e)));
  for (const scheme of g.schemes) {
    for (const regime of g.regimes) {
      const adversarial = hasAdversarialEncoder(regime);
      const methods: Array<Method | undefined> = adversarial ? (g.methods?.[scheme] ?? [undefined]) : [undefined];
      for (const method of methods) {
        for (const [e, trainEps] of (adversarial ? epsList : [undefined]).entries()) {
          for (const seed of g.seeds) {
            add(makeCell(config, { scheme, regime, method, trainEps, seed }, 'grid', source), `grid (${scheme}, ${regime}${method ? `, ${method}` : ''}${trainEps !== undefined ? `, trainEps[${e}]` : ''}, seed ${seed})`);
          }
        }
      }
    }
  }
  config.cells.forEach((c, k) => {
    const at = `cells[${k}]`;
    add(makeCell(config, { ...c, trainEps: c.trainEps === undefined ? undefined : epsNumber(c.trainEps), seed: c.seed ?? g.seeds[0] }, at, source), at);
  });
  if (cells.length === 0) fail(source, 'grid', 'the grid has no cells');
  return cells;
}

/** Checks that need more than the schema: the data directory, the architecture, the comparisons. */
export async function checkConfig(config: StudyConfig, cells: Cell[], source: string): Promise<void> {
  const ds = config.dataset;
  if (ds.name.startsWith('cifar') && ds.dataDir === undefined) {
    fail(source, 'dataset.dataDir', `missing: ${ds.name} needs the official binary files (data_batch_1.bin ... test_batch.bin, or train.bin/test.bin) in a directory`);
  }
  if (ds.dataDir !== undefined) {
    const st = await fs.stat(ds.dataDir).catch(() => undefined);
    if (!st?.isDirectory()) fail(source, 'dataset.dataDir', `'${ds.dataDir}' is not a directory`);
  }
  if (!archNames.includes(config.arch.name)) fail(source, 'arch.name', `unknown architecture '${config.arch.name}' (expected one of ${archNames.join(', ')})`);
  for (const scheme of new Set(cells.map((c) => c.scheme))) {
    if (scheme !== 'sl' && trainingOf(config, scheme).augment === 'none') {
      const where = config.training[scheme]?.augment === 'none' ? `training.${scheme}.augment` : 'training.all.augment';
      fail(source, where, `'none' for scheme ${scheme}: contrastive schemes need augmented views (supervised or contrastive); set it per scheme, e.g. training.sl.augment`);
    }
  }
  const names = new Set(cells.map((c) => c.name));
  config.comparisons.pairs.forEach((p, k) => {
    for (const side of ['a', 'b'] as const) {
      if (!names.has(p[side])) fail(source, `comparisons.pairs[${k}].${side}`, `no cell named '${p[side]}' (cells: ${[...names].join(', ')})`);
    }
    if (p.a === p.b) fail(source, `comparisons.pairs[${k}]`, `compares cell '${p.a}' with itself (its within-cell matrices already do)`);
  });
  config.eval?.attacks.forEach((a, k) => {
    if (!/^(clean|fgsm|(pgd|apgd-ce|apgd-dlr|contrastive)\d*)$/i.test(a.trim())) {
      fail(source, `eval.attacks[${k}]`, `unknown attack '${a}' (expected clean, fgsm, pgd<N>, apgd-ce[<N>], apgd-dlr[<N>], contrastive[<N>])`);
    }
  });
  if (config.cka.n < config.cka.batchSize * 2) {
    fail(source, 'cka.n', `${config.cka.n} gives fewer than 2 minibatches of cka.batchSize ${config.cka.batchSize}; bootstrap intervals over minibatches need several batches (8 or more is advisable)`);
  }
}
