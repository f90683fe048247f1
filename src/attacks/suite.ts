import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { apgdAttack, classifierObjective } from './apgd.js';
import { crossEntropyLoss } from './losses.js';
import { contrastiveLoss } from './contrastive.js';
import { pgdAttack, type Norm, type PgdOptions } from './pgd.js';
import { apgdTargetedAttack } from './apgd-targeted.js';
import { fabTargetedAttack } from './fab.js';
import { squareAttack } from './square.js';
import type { AttackContext, AttackDefinition, AttackName, AttackSettings, AttackSpec, AttackKind, PresetName } from './attack-types.js';
import { AUTOATTACK_RAND, AUTOATTACK_STANDARD, presetComponents, runPreset, type AttackPreset } from './autoattack.js';

/**
 * Named evaluation attacks, as written on the command line (N: steps, iterations or queries):
 *   clean            no attack
 *   fgsm             one signed-gradient step of size eps on CE
 *   pgd, pgd<N>      PGD on CE, N steps (default 20), random start, step size --step-size or 2.5 eps / N
 *   apgd-ce[<N>]     APGD on cross-entropy, N iterations (default 100)
 *   apgd-dlr[<N>]    APGD on the DLR loss (>= 3 classes), N iterations (default 100)
 *   apgd-t[<N>]      APGD on the targeted DLR loss, top-9 targets in turn on the survivors (>= 4 classes)
 *   fab-t[<N>]       FAB, targeted, 9 targets: minimum-norm adversarial points, counted within eps only
 *   square[<N>]      Square Attack, N queries (default 5000), logits only (no gradients)
 *   autoattack       standard AutoAttack: apgd-ce, apgd-t, fab-t, square, each on the points still robust
 *   autoattack-rand  AutoAttack for randomised defences: apgd-ce, apgd-dlr with EoT over 20 draws
 *   contrastive[<N>] PGD (N steps, default 20) on NT-Xent between the embedding of x + delta and that of
 *                    clean x, in-batch negatives, through the embedding layer (default: 'projection' if
 *                    the model has one, else 'pool'): label-free, "threat model I" of the reference study
 * Each attack is one entry of ATTACKS (src/attacks/<attack>.ts defines it); presets are in PRESETS.
 */




export const DEFAULT_PGD_STEPS = 20;
export const DEFAULT_APGD_STEPS = 100;

/** PGD with random start; step 2.5 eps / steps unless set (Madry et al.'s rule: reaches the boundary from anywhere). */
function pgdSettings(spec: AttackSpec, eps: number, s: AttackSettings): PgdOptions {
  return { norm: s.norm, eps, stepSize: s.stepSize ?? (2.5 * eps) / spec.steps, steps: spec.steps, randomStart: true, restarts: s.restarts, seed: s.seed };
}

function apgdOn(loss: 'ce' | 'dlr'): AttackDefinition {
  return {
    defaultSteps: DEFAULT_APGD_STEPS,
    minClasses: loss === 'dlr' ? 3 : 2,
    tier: 3,
    run: ({ spec, model, x, y, eps, settings: s }) =>
      apgdAttack(classifierObjective(model, y, loss), x, { norm: s.norm, eps, steps: spec.steps, restarts: s.restarts, seed: s.seed, eotIter: s.eotIter ?? 1 }),
  };
}

const contrastiveAttack: AttackDefinition = {
  defaultSteps: DEFAULT_PGD_STEPS,
  tier: 2,
  run: ({ spec, model, x, eps, settings: s }) => {
    let embed: (xi: tf.Tensor4D) => tf.Tensor2D;
    if (s.embedder) {
      embed = s.embedder.embed;
    } else {
      const layer = embeddingLayerOf(model, s.embeddingLayer);
      const embedModel = tf.model({ inputs: model.inputs, outputs: model.getLayer(layer).output as tf.SymbolicTensor });
      embed = (xi) => tf.reshape(embedModel.apply(xi, { training: false }) as tf.Tensor, [xi.shape[0], -1]) as tf.Tensor2D;
    }
    const positives = tf.tidy(() => embed(x));
    const adv = pgdAttack(contrastiveLoss(embed, positives, s.temperature ?? s.embedder?.temperature ?? 0.5), x, pgdSettings(spec, eps, s));
    positives.dispose();
    return adv;
  },
};

/** The attack family; adding an attack is its file and one line here. */
export const ATTACKS = {
  clean: { fixedSteps: 0, deterministic: true, tier: 0, run: ({ x }) => tf.clone(x) },
  fgsm: {
    fixedSteps: 1,
    deterministic: true,
    tier: 1,
    run: ({ model, x, y, eps, settings: s }) =>
      pgdAttack(crossEntropyLoss(model, y), x, { norm: s.norm, eps, stepSize: eps, steps: 1, randomStart: false, restarts: 1, seed: s.seed }),
  },
  pgd: { defaultSteps: DEFAULT_PGD_STEPS, tier: 2, run: ({ spec, model, x, y, eps, settings: s }) => pgdAttack(crossEntropyLoss(model, y), x, pgdSettings(spec, eps, s)) },
  'apgd-ce': apgdOn('ce'),
  'apgd-dlr': apgdOn('dlr'),
  'apgd-t': apgdTargetedAttack,
  'fab-t': fabTargetedAttack,
  square: squareAttack,
  contrastive: contrastiveAttack,
} satisfies Record<AttackName, AttackDefinition>;

/** Presets: named sequences of attacks, each run on the points the previous ones left robust. */
export const PRESETS = {
  autoattack: AUTOATTACK_STANDARD,
  'autoattack-rand': AUTOATTACK_RAND,
} satisfies Record<PresetName, AttackPreset>;

export type { AttackContext, AttackDefinition, AttackName, AttackSettings, AttackSpec, AttackKind, PresetName } from './attack-types.js';

/** The definition behind a (non-preset) spec. */
export function attackDefinition(spec: AttackSpec): AttackDefinition {
  const def = (ATTACKS as Record<string, AttackDefinition>)[spec.kind];
  if (!def) throw new InputError(`--attacks: '${spec.name}' is a preset, not a single attack`);
  return def;
}

export function isPreset(spec: AttackSpec): boolean {
  return spec.components !== undefined;
}

function attackUsage(): string {
  const single = Object.entries(ATTACKS as Record<string, AttackDefinition>).map(([k, d]) => (d.defaultSteps !== undefined ? `${k}[<N>]` : k));
  return [...single, ...Object.keys(PRESETS)].join(', ');
}

export function parseAttackSpec(text: string): AttackSpec {
  const name = text.trim().toLowerCase();
  const m = /^([a-z][a-z-]*?)(\d+)?$/.exec(name);
  const kind = m?.[1] ?? '';
  const preset = (PRESETS as Record<string, AttackPreset>)[kind];
  if (preset && m?.[2] === undefined) return { name, kind: kind as AttackKind, steps: 0, components: presetComponents(preset) };
  const def = (ATTACKS as Record<string, AttackDefinition>)[kind];
  if (!m || !def || (m[2] !== undefined && def.defaultSteps === undefined)) {
    throw new InputError(`--attacks: unknown attack '${text}' (expected one of ${attackUsage()})`);
  }
  const steps = m[2] !== undefined ? Number(m[2]) : (def.defaultSteps ?? def.fixedSteps ?? 0);
  if (def.defaultSteps !== undefined && (!Number.isInteger(steps) || steps < 1)) throw new InputError(`--attacks: '${text}' needs at least 1 step`);
  return { name, kind: kind as AttackKind, steps };
}


export const DEFAULT_ATTACK_SETTINGS: AttackSettings = { norm: 'linf', restarts: 1, seed: 0 };

/** The layer the contrastive attack embeds with: the projection head's output when there is one. */
export function embeddingLayerOf(model: tf.LayersModel, wanted?: string): string {
  const names = new Set(model.layers.map((l) => l.name));
  const name = wanted ?? (names.has('projection') ? 'projection' : 'pool');
  if (!names.has(name)) throw new InputError(`--embedding-layer: the model has no layer '${name}'`);
  return name;
}

/** Adversarial version of the batch x (labels y) against `model` (inference mode); caller owns it. */
export function runAttack(spec: AttackSpec, model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, eps: number, s: AttackSettings): tf.Tensor4D {
  if (spec.components) return runPreset(spec.components, (c, xs, ys) => runAttack(c, model, xs, ys, eps, s), model, x, y);
  const settings = spec.overrides ? { ...s, ...spec.overrides } : s;
  return attackDefinition(spec).run({ spec, model, x, y, eps, settings });
}
