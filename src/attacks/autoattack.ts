import * as tf from '@tensorflow/tfjs';
import { DEFAULT_APGD } from './apgd.js';
import { DEFAULT_FAB } from './fab.js';
import { DEFAULT_SQUARE } from './square.js';
import { correctFlags, gatherRows, logitsOf, positionsWhere, replaceRows } from './rows.js';
import type { AttackKind, AttackSettings, AttackSpec } from './attack-types.js';

/**
 * AutoAttack (Croce & Hein, ICML 2020) as presets of the attack family: a fixed sequence of
 * parameter-free attacks, each run only on the points the previous ones left robust; the robust
 * accuracy after the last one is the reported figure.
 */
export interface AttackPreset {
  components: Array<{ kind: AttackKind; steps: number }>;
  /** Settings every component runs with, whatever the evaluation's (AutoAttack fixes them). */
  overrides: Partial<Pick<AttackSettings, 'restarts' | 'eotIter' | 'targets'>>;
}

/** Standard AutoAttack (l_inf and l_2): APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5,000 queries); one restart each. */
export const AUTOATTACK_STANDARD: AttackPreset = {
  components: [
    { kind: 'apgd-ce', steps: DEFAULT_APGD.steps },
    { kind: 'apgd-t', steps: DEFAULT_APGD.steps },
    { kind: 'fab-t', steps: DEFAULT_FAB.steps },
    { kind: 'square', steps: DEFAULT_SQUARE.queries },
  ],
  overrides: { restarts: 1, eotIter: 1, targets: 9 },
};

/** AutoAttack's version for randomised defences: APGD-CE and APGD-DLR, gradients averaged over 20 draws (EoT). */
export const AUTOATTACK_RAND: AttackPreset = {
  components: [
    { kind: 'apgd-ce', steps: DEFAULT_APGD.steps },
    { kind: 'apgd-dlr', steps: DEFAULT_APGD.steps },
  ],
  overrides: { restarts: 1, eotIter: 20 },
};

/** Smaller budgets for a preset (tests, quick looks); the defaults are the paper's. */
export interface PresetBudget {
  /** APGD and FAB iterations (default 100). */
  iterations?: number;
  /** Square queries (default 5000). */
  queries?: number;
  /** Target classes of APGD-T and FAB-T (default 9). */
  targets?: number;
  /** EoT draws of the randomised version (default 20). */
  eotIter?: number;
}

/** The component specs of a preset; a component's name is its attack's (its row is '<preset>/<name>'). */
export function presetComponents(preset: AttackPreset, budget: PresetBudget = {}): AttackSpec[] {
  const overrides = {
    ...preset.overrides,
    ...(budget.targets !== undefined && preset.overrides.targets !== undefined ? { targets: budget.targets } : {}),
    ...(budget.eotIter !== undefined && preset.overrides.eotIter !== undefined && preset.overrides.eotIter > 1 ? { eotIter: budget.eotIter } : {}),
  };
  return preset.components.map(({ kind, steps }) => {
    const n = kind === 'square' ? (budget.queries ?? steps) : (budget.iterations ?? steps);
    // Named as the same attack would be on its own ('apgd-ce', 'apgd-ce20'): same name, same seeds.
    return { name: n === steps ? kind : `${kind}${n}`, kind, steps: n, overrides };
  });
}

/**
 * A preset run on one batch: each component attacks the samples still classified correctly, and its
 * successes replace them. Returns a new tensor (samples never broken come back unchanged).
 */
export function runPreset(
  components: AttackSpec[],
  runOne: (component: AttackSpec, x: tf.Tensor4D, y: tf.Tensor1D) => tf.Tensor4D,
  model: tf.LayersModel,
  x: tf.Tensor4D,
  y: tf.Tensor1D,
): tf.Tensor4D {
  const logits = logitsOf(model);
  let adv = tf.clone(x);
  const robust = correctFlags(logits, x, y);
  for (const c of components) {
    const todo = positionsWhere(robust);
    if (todo.length === 0) break;
    const xs = gatherRows(x, todo);
    const ys = gatherRows(y, todo);
    const found = runOne(c, xs, ys);
    const still = correctFlags(logits, found, ys);
    const broken = todo.filter((_, i) => still[i] === 0);
    const brokenRows = gatherRows(found, todo.map((_, i) => i).filter((i) => still[i] === 0));
    broken.forEach((k) => (robust[k] = 0));
    const next = replaceRows(adv, broken, brokenRows);
    tf.dispose([adv, xs, ys, found, brokenRows]);
    adv = next;
  }
  return adv;
}

/** A preset's spec with a smaller budget, as parseAttackSpec would give it with the paper's. */
export function presetSpec(version: 'autoattack' | 'autoattack-rand', budget: PresetBudget = {}): AttackSpec {
  const preset = version === 'autoattack' ? AUTOATTACK_STANDARD : AUTOATTACK_RAND;
  return { name: version, kind: version, steps: 0, components: presetComponents(preset, budget) };
}
