import { z } from 'zod';
import { InputError } from '../../errors.js';
import { TAP_SETS } from '../../models/architectures.js';

/**
 * The study config (`robustsim study --config study.json`): one JSON document naming the data, the
 * network, the grid of cells and every stage's settings. The schema is the single definition of what
 * a config may hold: unknown keys are refused, and every error names the key path and what was
 * expected. Checks across keys (a method of another scheme, a duplicate cell, a comparison naming a
 * missing cell) are made after the grid is expanded (grid.ts), with the same error form.
 */

/** A radius: a number or a fraction such as "8/255". */
const epsValue = z.union([
  z.number().positive().max(1),
  z.string().regex(/^\s*\d+(\.\d+)?\s*\/\s*\d+(\.\d+)?\s*$/, 'expected a number or a fraction such as "8/255"'),
]);

const attackSchema = z.strictObject({
  eps: epsValue.optional(),
  steps: z.int().min(1).optional(),
  stepSize: epsValue.optional(),
  randomStart: z.boolean().optional(),
});

const trainingSchema = z.strictObject({
  epochs: z.int().min(1).optional(),
  batchSize: z.int().min(2).optional(),
  /** Training samples (after the seeded shuffle); absent = the whole training split. */
  limit: z.int().min(1).optional(),
  optimizer: z.enum(['sgd', 'adam']).optional(),
  lr: z.number().positive().optional(),
  weightDecay: z.number().min(0).optional(),
  schedule: z.enum(['cosine', 'constant']).optional(),
  augment: z.enum(['none', 'supervised', 'contrastive']).optional(),
  temperature: z.number().positive().optional(),
  projDim: z.int().min(1).optional(),
  /** The training attack of adversarial regimes; its eps is the grid's trainEps when that is given. */
  attack: attackSchema.optional(),
  workers: z.int().min(1).optional(),
});

export const SCHEMES = ['sl', 'cl', 'scl'] as const;
export const REGIMES = ['st', 'at', 'pat', 'fat', 'st-pat', 'st-fat'] as const;
export const METHODS = ['pgd', 'trades', 'study-at', 'rocl', 'clae', 'acl', 'rcl-bound'] as const;

const cellSchema = z.strictObject({
  scheme: z.enum(SCHEMES),
  regime: z.enum(REGIMES),
  method: z.enum(METHODS).optional(),
  trainEps: epsValue.optional(),
  seed: z.int().min(0).optional(),
});

export const studySchema = z.strictObject({
  /** Names the study (default `--out`: out/study/<name>). */
  name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, ".", "_" or "-"'),
  description: z.string().optional(),
  dataset: z.strictObject({
    name: z.enum(['fashion-mnist', 'mnist', 'cifar10', 'cifar100']),
    /** Required for CIFAR (the official binary files); optional IDX files for (fashion-)mnist. */
    dataDir: z.string().min(1).optional(),
  }),
  arch: z.strictObject({
    name: z.string().min(1),
    width: z.int().min(1).optional(),
    blocks: z.array(z.int().min(1)).min(1).optional(),
  }),
  /**
   * Tap points CKA and the probes look at: `blocks` (stem, every residual block, pool, logits) or
   * `all` (every layer after the input: each conv, BatchNorm, ReLU and add, as the study hooked
   * every named module).
   */
  taps: z.enum(TAP_SETS).default('blocks'),
  grid: z.strictObject({
    schemes: z.array(z.enum(SCHEMES)).min(1),
    regimes: z.array(z.enum(REGIMES)).min(1),
    /** Adversarial methods per scheme (default: sl pgd, cl/scl study-at). */
    methods: z.partialRecord(z.enum(SCHEMES), z.array(z.enum(METHODS)).min(1)).optional(),
    /** Training eps of the adversarial regimes (default: training.attack.eps). */
    trainEps: z.array(epsValue).min(1).optional(),
    seeds: z.array(z.int().min(0)).min(1).default([0]),
  }),
  /** Cells added to the grid (e.g. a training-eps sweep of one scheme). */
  cells: z.array(cellSchema).default([]),
  training: z
    .strictObject({
      /** Settings of every scheme, then per-scheme overrides. */
      all: trainingSchema.default({}),
      sl: trainingSchema.optional(),
      cl: trainingSchema.optional(),
      scl: trainingSchema.optional(),
      fineTune: z
        .strictObject({ epochs: z.int().min(1).optional(), lr: z.number().positive().optional(), limit: z.int().min(1).optional() })
        .default({}),
    })
    .default({ all: {}, fineTune: {} }),
  eval: z
    .strictObject({
      n: z.int().min(1).default(500),
      batchSize: z.int().min(1).default(100),
      /** Threat model II (end-to-end CE PGD) and, for cl/scl, threat model I (contrastive loss through the encoder). */
      threatModels: z.array(z.enum(['tm1', 'tm2'])).default(['tm1', 'tm2']),
      /** PGD steps of both threat models (the study: 40). */
      threatSteps: z.int().min(1).default(40),
      /** Further attacks (clean, pgd<N>, apgd-ce, ...: `robustsim eval --attacks`). */
      attacks: z.array(z.string().min(1)).default(['clean']),
      eps: z.array(epsValue).min(1),
    })
    .optional(),
  probes: z
    .strictObject({
      epochs: z.int().min(1).default(2),
      limit: z.int().min(1).optional(),
      evalLimit: z.int().min(1).optional(),
      /** Test images on which each probe is attacked (white-box PGD through the encoder prefix, the analysis attack); 0 = clean only. */
      adversarialN: z.int().min(0).default(200),
    })
    .optional(),
  cka: z.strictObject({
    estimator: z.enum(['minibatch']).default('minibatch'),
    n: z.int().min(8),
    batchSize: z.int().min(4),
    bootstrap: z.int().min(0).default(200),
    /** The attack making the adversarial inputs (default: each model's evaluation attack). */
    attack: attackSchema.optional(),
  }),
  comparisons: z
    .strictObject({
      /** Scheme x scheme per regime (same method, eps and seed), on these inputs. */
      crossScheme: z.array(z.enum(['clean', 'adv'])).default(['clean', 'adv']),
      /** AT vs FAT within each scheme (on adversarial inputs). */
      atVsFat: z.boolean().default(true),
      /** Further pairs of cells, by name. */
      pairs: z.array(z.strictObject({ a: z.string().min(1), b: z.string().min(1) })).default([]),
    })
    .default({ crossScheme: ['clean', 'adv'], atVsFat: true, pairs: [] }),
  execution: z
    .strictObject({
      slurm: z
        .strictObject({
          partition: z.string().optional(),
          time: z.string().optional(),
          cpusPerTask: z.int().min(1).optional(),
          mem: z.string().optional(),
          gres: z.string().optional(),
          account: z.string().optional(),
          /** Further `#SBATCH` options, verbatim (e.g. "--qos=short"). */
          extra: z.array(z.string()).default([]),
        })
        .optional(),
      k8s: z
        .strictObject({
          image: z.string().min(1),
          namespace: z.string().optional(),
          /** PersistentVolumeClaim holding the study directory (mounted at its path). */
          claim: z.string().min(1),
          cpu: z.string().optional(),
          memory: z.string().optional(),
          gpu: z.int().min(0).optional(),
        })
        .optional(),
    })
    .default({}),
});

export type StudyConfig = z.output<typeof studySchema>;
export type StudyConfigInput = z.input<typeof studySchema>;
export type CellSpec = z.output<typeof cellSchema>;
export type TrainingSettings = z.output<typeof trainingSchema>;
export type AttackSettingsInput = z.output<typeof attackSchema>;

/** `a.b[2].c` from a zod issue path. */
export function formatKeyPath(keys: readonly PropertyKey[]): string {
  let out = '';
  for (const k of keys) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out || '(top level)';
}

function describeIssue(issue: z.core.$ZodIssue): { where: string; what: string } {
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0];
    return { where: formatKeyPath([...issue.path, key]), what: `unknown key${issue.keys.length > 1 ? ` (also ${issue.keys.slice(1).join(', ')})` : ''}` };
  }
  let what = issue.message.replace(/^Invalid input: /, '').replace(/^Invalid option: /, '');
  if (issue.code === 'invalid_type' && /received undefined/.test(what)) what = `missing (${what.replace(/, received undefined/, '')})`;
  return { where: formatKeyPath(issue.path), what };
}

/** Validate a parsed JSON document; `source` names the file in the error. */
export function parseStudyConfig(json: unknown, source: string): StudyConfig {
  const r = studySchema.safeParse(json);
  if (r.success) return r.data;
  const first = describeIssue(r.error.issues[0]);
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more)` : '';
  throw new InputError(`${source}: ${first.where}: ${first.what}${more}`);
}

/** A radius from the config: numbers as they are, "a/b" as a / b. */
export function epsNumber(v: number | string): number {
  if (typeof v === 'number') return v;
  const [a, b] = v.split('/').map((s) => Number(s.trim()));
  return a / b;
}
