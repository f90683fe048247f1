import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolveArch } from '../../models/architectures.js';
import { epsNumber, type StudyConfig } from './config.js';
import { baseTrainEps, isFineTuned, trainingOf, type Cell, type EncoderSpec } from './grid.js';

/**
 * The study as a DAG of stages. Every stage has an id (`<kind>/<name>`), the ids it reads, the slice of
 * the config that defines its output, and a key: a hash of that slice, its inputs' keys and the
 * package version. A stage whose stored key equals its key is done; edit one cell of the config and
 * only the stages whose slice (or an input's key) changed get new keys.
 */
export type StageKind = 'train' | 'finetune' | 'eval' | 'probes' | 'cka' | 'cross' | 'report';

export interface Stage {
  id: string;
  kind: StageKind;
  deps: string[];
  /** What defines the output (plain JSON); hashed into `key`. */
  slice: Record<string, unknown>;
  key: string;
  /** Estimated forward+backward sample passes (the cost model of the dry run). */
  passes: number;
  /** Topological level: 0 for stages without inputs, else 1 + the deepest input's. */
  level: number;
}

export interface Comparison {
  /** Why the pair is compared: scheme x scheme, AT vs FAT, or named in the config. */
  kind: 'cross-scheme' | 'at-vs-fat' | 'pair';
  a: string;
  b: string;
  inputs: Array<'clean' | 'adv'>;
}

export interface StudyPlan {
  cells: Cell[];
  comparisons: Comparison[];
  stages: Stage[];
  byId: Map<string, Stage>;
  version: string;
}

export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const SCHEME_ORDER = ['sl', 'cl', 'scl'];

/** Canonical JSON (sorted keys) so that the key does not depend on the order keys were written in. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function stageKey(kind: StageKind, slice: Record<string, unknown>, inputKeys: string[], version: string): string {
  return createHash('sha256').update(canonicalJson({ kind, slice, inputs: inputKeys, version })).digest('hex').slice(0, 16);
}

/** The PGD making the adversarial inputs of CKA (and of the training checkpoints' robust-accuracy figure). */
export function analysisAttack(config: StudyConfig): { norm: 'linf'; eps: number; steps: number; stepSize: number; randomStart: boolean; restarts: number } {
  const a = config.cka.attack ?? {};
  const eps = a.eps !== undefined ? epsNumber(a.eps) : baseTrainEps(config, config.grid.schemes[0]);
  const steps = a.steps ?? 10;
  return { norm: 'linf', eps, steps, stepSize: a.stepSize !== undefined ? epsNumber(a.stepSize) : (2.5 * eps) / steps, randomStart: a.randomStart ?? true, restarts: 1 };
}

/** Everything `trainModel` needs for an encoder (without `out`). */
export function trainSlice(config: StudyConfig, enc: EncoderSpec): Record<string, unknown> {
  const t = trainingOf(config, enc.scheme);
  const eps = enc.trainEps ?? baseTrainEps(config, enc.scheme);
  const steps = t.attack?.steps ?? 3;
  return {
    name: enc.name,
    dataset: config.dataset.name,
    dataDir: config.dataset.dataDir,
    arch: config.arch.name,
    width: config.arch.width,
    blocks: config.arch.blocks,
    scheme: enc.scheme,
    regime: enc.regime,
    method: enc.method,
    limit: t.limit,
    evalLimit: Math.min(config.eval?.n ?? 200, 500),
    epochs: t.epochs,
    batchSize: t.batchSize,
    optimizer: t.optimizer,
    lr: t.lr,
    weightDecay: t.weightDecay,
    schedule: t.schedule,
    augment: t.augment,
    temperature: t.temperature,
    projDim: t.projDim,
    attack: { norm: 'linf', eps, steps, stepSize: t.attack?.stepSize !== undefined ? epsNumber(t.attack.stepSize) : (2.5 * eps) / steps, randomStart: t.attack?.randomStart ?? true, restarts: 1, seed: 0 },
    evalAttack: { ...analysisAttack(config), seed: 0 },
    seed: enc.seed,
    workers: t.workers,
  };
}

/**
 * Whether a cell's classifier comes from a fine-tuning stage: the PAT/FAT scenarios always, and the
 * ST/AT scenarios of cl/scl, whose encoders have no trained classifier (SPEC: a linear head on the
 * frozen encoder, clean data). SL's ST/AT models are their own classifiers.
 */
export function hasFineTuneStage(cell: Cell): boolean {
  return isFineTuned(cell.regime) || cell.scheme !== 'sl';
}

/** The fine-tuning mode of a scenario (SPEC: ST/AT of cl/scl = clean linear head, PAT = frozen encoder with a robust head, FAT = everything). */
export function fineTuneMode(cell: Cell): 'linear' | 'robust-linear' | 'full-adv' {
  if (!isFineTuned(cell.regime)) return 'linear';
  return cell.regime === 'pat' || cell.regime === 'st-pat' ? 'robust-linear' : 'full-adv';
}

/** Whether the cell's encoder stays frozen under its classifier (its layers are the pre-trained encoder's). */
export function hasFrozenEncoder(cell: Cell): boolean {
  return hasFineTuneStage(cell) && fineTuneMode(cell) !== 'full-adv';
}

function sampleFactor(config: StudyConfig): number {
  const arch = resolveArch(config.arch.name, config.arch.width, config.arch.blocks);
  const depth = arch.stages.reduce((a, b) => a + b, 0);
  const pixels = config.dataset.name.startsWith('cifar') ? 1024 : 784;
  return (arch.width / 16) ** 2 * (depth / 3) * (arch.block === 'bottleneck' ? 2.5 : 1) * (pixels / 784);
}

/** Full-network passes of attacking every layer's probe once: each attack runs the prefix up to its layer (about half the network on average). */
function probeAttackDepth(config: StudyConfig): number {
  const arch = resolveArch(config.arch.name, config.arch.width, config.arch.blocks);
  const blockTaps = arch.stages.reduce((a, b) => a + b, 0) + 3;
  return (config.taps === 'all' ? blockTaps * 4 : blockTaps) / 2;
}

/**
 * Seconds per forward+backward sample pass of resnet-small on Fashion-MNIST on one core: 4 ms on the
 * wasm kernels (the README's demo timings); 1.1 ms with the native kernels (OpenBLAS + oneDNN), from
 * the measured fmnist-quick run in docs/study.md (14.8 core-minutes against 55.8 estimated at 4 ms).
 */
export const SECONDS_PER_PASS = { wasm: 4e-3, native: 1.1e-3 } as const;

export function estimateSeconds(config: StudyConfig, passes: number, perPass: number = SECONDS_PER_PASS.wasm): number {
  return passes * perPass * sampleFactor(config);
}

const TRAIN_SIZE: Record<string, number> = { 'fashion-mnist': 60000, mnist: 8500, cifar10: 50000, cifar100: 50000 };

export function modelSourceStage(cell: Cell): string {
  return hasFineTuneStage(cell) ? `finetune/${cell.name}` : `train/${cell.encoder.name}`;
}

/** The comparisons across cells the config asks for, in a stable order, without repeats. */
export function comparisonsOf(config: StudyConfig, cells: Cell[]): Comparison[] {
  const out: Comparison[] = [];
  const seen = new Set<string>();
  const push = (c: Comparison) => {
    const id = `${c.a}~${c.b}`;
    if (seen.has(id) || seen.has(`${c.b}~${c.a}`)) return;
    seen.add(id);
    out.push(c);
  };
  if (config.comparisons.crossScheme.length > 0) {
    const groups = new Map<string, Cell[]>();
    for (const c of cells) {
      const g = `${c.regime}|${c.method && c.method !== 'pgd' && c.method !== 'study-at' ? c.method : ''}|${c.trainEps ?? ''}|${c.seed}`;
      groups.set(g, [...(groups.get(g) ?? []), c]);
    }
    for (const group of groups.values()) {
      const sorted = group.slice().sort((x, y) => SCHEME_ORDER.indexOf(x.scheme) - SCHEME_ORDER.indexOf(y.scheme));
      for (let i = 0; i < sorted.length; i++) {
        for (let j = i + 1; j < sorted.length; j++) {
          if (sorted[i].scheme !== sorted[j].scheme) push({ kind: 'cross-scheme', a: sorted[i].name, b: sorted[j].name, inputs: config.comparisons.crossScheme });
        }
      }
    }
  }
  if (config.comparisons.atVsFat) {
    for (const at of cells.filter((c) => c.regime === 'at')) {
      const fat = cells.find((c) => c.regime === 'fat' && c.encoder.name === at.encoder.name);
      if (fat) push({ kind: 'at-vs-fat', a: at.name, b: fat.name, inputs: ['adv'] });
    }
  }
  for (const p of config.comparisons.pairs) push({ kind: 'pair', a: p.a, b: p.b, inputs: ['clean', 'adv'] });
  return out;
}

export function buildPlan(config: StudyConfig, cells: Cell[], version = PACKAGE_VERSION): StudyPlan {
  const stages: Stage[] = [];
  const byId = new Map<string, Stage>();
  const add = (id: string, kind: StageKind, deps: string[], slice: Record<string, unknown>, passes: number) => {
    if (byId.has(id)) return;
    const inputs = deps.map((d) => byId.get(d)!);
    const stage: Stage = { id, kind, deps, slice, passes, key: stageKey(kind, slice, inputs.map((s) => s.key), version), level: inputs.length ? 1 + Math.max(...inputs.map((s) => s.level)) : 0 };
    stages.push(stage);
    byId.set(id, stage);
  };
  const ckaSlice = { n: config.cka.n, batchSize: config.cka.batchSize, bootstrap: config.cka.bootstrap, estimator: config.cka.estimator, taps: config.taps, attack: analysisAttack(config), seed: 0 };
  const ckaPasses = config.cka.n * (1 + analysisAttack(config).steps);
  for (const cell of cells) {
    const enc = cell.encoder;
    const ts = trainSlice(config, enc);
    const t = trainingOf(config, enc.scheme);
    const limit = t.limit ?? TRAIN_SIZE[config.dataset.name] ?? 50000;
    const views = enc.scheme === 'sl' ? 1 : 2;
    const attackSteps = enc.regime === 'at' ? (ts.attack as { steps: number }).steps : 0;
    add(`train/${enc.name}`, 'train', [], ts, (t.epochs ?? 2) * limit * views * (1 + attackSteps) + (ts.evalLimit as number) * (1 + analysisAttack(config).steps));
    if (hasFineTuneStage(cell)) {
      const ft = config.training.fineTune;
      const ftSlice = { mode: fineTuneMode(cell), epochs: ft.epochs, lr: ft.lr, limit: ft.limit, dataset: config.dataset.name, dataDir: config.dataset.dataDir, seed: cell.seed, evalLimit: ts.evalLimit, workers: t.workers };
      add(`finetune/${cell.name}`, 'finetune', [`train/${enc.name}`], ftSlice, (ft.epochs ?? 5) * (ft.limit ?? limit) * (ftSlice.mode === 'linear' ? 0.5 : 1 + Math.max(attackSteps, 3)));
    }
    const model = modelSourceStage(cell);
    if (config.eval) {
      const e = config.eval;
      const attacks = evalAttacksOf(config, cell);
      const steps = attacks.reduce((s, a) => s + (a === 'clean' ? 1 : 1 + Number(/\d+$/.exec(a)?.[0] ?? 20) * e.eps.length), 0);
      add(`eval/${cell.name}`, 'eval', [model], { attacks, eps: e.eps.map(epsNumber), n: e.n, batchSize: e.batchSize, seed: 0 }, e.n * steps);
    }
    if (config.probes) {
      const p = config.probes;
      add(`probes/${cell.name}`, 'probes', [model], { epochs: p.epochs, limit: p.limit, evalLimit: p.evalLimit, adversarialN: p.adversarialN, attack: analysisAttack(config), taps: config.taps, seed: 0 }, (p.limit ?? limit) * (p.epochs + 1) + p.adversarialN * (1 + analysisAttack(config).steps) * probeAttackDepth(config));
    }
    add(`cka/${cell.name}`, 'cka', [model], ckaSlice, ckaPasses);
  }
  const comparisons = comparisonsOf(config, cells);
  const cellByName = new Map(cells.map((c) => [c.name, c]));
  for (const cmp of comparisons) {
    const a = cellByName.get(cmp.a)!;
    const b = cellByName.get(cmp.b)!;
    add(`cross/${cmp.a}~${cmp.b}`, 'cross', [modelSourceStage(a), modelSourceStage(b)], { ...ckaSlice, inputs: cmp.inputs }, 2 * ckaPasses);
  }
  const reportInputs = stages.filter((s) => s.kind === 'eval' || s.kind === 'probes' || s.kind === 'cka' || s.kind === 'cross').map((s) => s.id);
  add('report', 'report', reportInputs, { name: config.name, cells: cells.map((c) => c.name), comparisons, level: 0.95 }, 0);
  return { cells, comparisons, stages, byId, version };
}

/** TM-II (end-to-end CE PGD), TM-I for cl/scl (contrastive loss through the encoder), then the config's list. */
export function evalAttacksOf(config: StudyConfig, cell: Cell): string[] {
  const e = config.eval!;
  const list: string[] = [];
  if (e.threatModels.includes('tm2')) list.push(`pgd${e.threatSteps}`);
  if (e.threatModels.includes('tm1') && cell.scheme !== 'sl') list.push(`contrastive${e.threatSteps}`);
  for (const a of e.attacks) if (!list.includes(a.trim().toLowerCase())) list.push(a.trim().toLowerCase());
  if (!list.includes('clean')) list.unshift('clean');
  return list;
}
