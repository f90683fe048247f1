import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { subSeed } from '../util/rng.js';
import { apgdAttack, DEFAULT_APGD, type ApgdOptions, type AttackObjective } from './apgd.js';
import { targetedDlrPerSample } from './losses.js';
import { classCount, correctFlags, gatherRows, logitsOf, positionsWhere, rankedClass, replaceRows, type LogitsFn } from './rows.js';
import type { AttackDefinition } from './attack-types.js';

/** AutoAttack's APGD-T: 9 target classes, one 100-iteration run each. */
export const DEFAULT_TARGETS = 9;

export interface ApgdTargetedOptions extends ApgdOptions {
  /** Target classes tried in turn: the ones ranked 2nd, 3rd, ... by the clean logits (at most classes - 1). */
  targets: number;
}

/**
 * Targeted objective: the targeted DLR loss towards `targets`; success is any misclassification
 * (as in AutoAttack: the target only steers the search).
 */
export function targetedObjective(logits: LogitsFn, labels: tf.Tensor1D, targets: tf.Tensor1D): AttackObjective {
  return (x) => {
    const z = logits(x);
    const loss = targetedDlrPerSample(z, labels, targets);
    const fooled = tf.tidy(() => tf.notEqual(tf.argMax(z, 1), tf.cast(labels, 'int32'))) as tf.Tensor1D;
    z.dispose();
    return { loss, fooled };
  };
}

/**
 * APGD-T (Croce & Hein 2020): for target rank r = 2 .. targets + 1, one APGD run on the targeted DLR
 * loss towards the class ranked r-th on the clean input, on the samples no earlier target has
 * fooled. Stays in the eps-ball and the [0, 1] box. Returns a new tensor; samples never fooled come
 * back as APGD's highest-loss point of the last target tried on them.
 */
export function apgdTargeted(logits: LogitsFn, x: tf.Tensor4D, y: tf.Tensor1D, options: Partial<ApgdTargetedOptions> = {}): tf.Tensor4D {
  const opts: ApgdTargetedOptions = { ...DEFAULT_APGD, targets: DEFAULT_TARGETS, ...options };
  const classes = classCount(logits, x);
  if (classes < 4) throw new InputError(`--attacks: apgd-t needs at least 4 classes (targeted DLR), the model has ${classes}`);
  if (!Number.isInteger(opts.targets) || opts.targets < 1) throw new InputError(`targets: expected an integer >= 1, got ${opts.targets}`);
  const targets = Math.min(opts.targets, classes - 1);
  let adv = tf.clone(x);
  const robust = correctFlags(logits, x, y);
  for (let rank = 2; rank <= targets + 1; rank++) {
    const todo = positionsWhere(robust);
    if (todo.length === 0) break;
    const xs = gatherRows(x, todo);
    const ys = gatherRows(y, todo);
    const target = tf.tidy(() => rankedClass(logits(xs), rank));
    const found = apgdAttack(targetedObjective(logits, ys, target), xs, { ...opts, seed: subSeed(opts.seed, 'apgd-t', rank) });
    const still = correctFlags(logits, found, ys);
    todo.forEach((k, i) => (robust[k] = still[i]));
    const next = replaceRows(adv, todo, found);
    tf.dispose([adv, xs, ys, target, found]);
    adv = next;
  }
  return adv;
}

export const apgdTargetedAttack: AttackDefinition = {
  defaultSteps: DEFAULT_APGD.steps,
  minClasses: 4,
  tier: 3,
  run: ({ spec, model, x, y, eps, settings: s }) =>
    apgdTargeted(logitsOf(model), x, y, {
      norm: s.norm,
      eps,
      steps: spec.steps,
      restarts: s.restarts,
      seed: s.seed,
      eotIter: s.eotIter ?? 1,
      targets: s.targets ?? DEFAULT_TARGETS,
    }),
};
