import * as tf from '@tensorflow/tfjs';
import type { LogitsFn } from './rows.js';
import { crossEntropyPerSample, dlrPerSample } from './losses.js';

/**
 * AutoAttack's sanity checks on an evaluation (Croce & Hein 2020, and the reference implementation's
 * flags): signs that the robust accuracy is an artefact of the evaluation, not of the model.
 */
export type CheckName = 'weaker-beats-stronger' | 'square-beats-gradient' | 'randomised' | 'probabilities' | 'few-classes' | 'zero-gradients';

export interface EvalWarning {
  check: CheckName;
  model: string;
  /** The radius the check is about (absent for checks of the model itself). */
  eps?: number;
  message: string;
}

/** Smallest robust-accuracy gap that counts (AutoAttack's alpha for its Square check, 0.2 points). */
export const CHECK_TOLERANCE = 0.002;

/** One attack's figure at one eps, as the checks see it. */
export interface AttackFigure {
  name: string;
  kind: string;
  steps: number;
  tier: number;
  gradientFree: boolean;
  accuracy: number;
}

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

/**
 * Fewest iterations at which an adaptive attack (APGD and up) is expected to beat a lower tier: below
 * ~20 its step-size phases are 1-3 steps long and tuned PGD can win (docs/evaluation.md's budgets).
 */
const ADAPTIVE_MIN_STEPS = 20;

/**
 * Attack a is weaker than b by construction: a lower tier at no larger budget (FGSM vs PGD, PGD-20 vs
 * APGD-CE-100, not PGD-50 vs APGD-CE-10, not PGD-10 vs APGD-CE-10), or the same attack with fewer steps.
 */
function weaker(a: AttackFigure, b: AttackFigure): boolean {
  if (a.gradientFree || b.gradientFree) return false;
  const crossTier = a.tier < b.tier && a.steps <= b.steps && (b.tier <= 2 || b.steps >= ADAPTIVE_MIN_STEPS);
  return crossTier || (a.kind === b.kind && a.steps < b.steps);
}

/**
 * Checks over the attacks evaluated at one eps (standalone attacks and presets' final figures):
 * a weaker attack (FGSM vs PGD, fewer vs more steps, PGD vs APGD/AutoAttack) leaving fewer samples
 * robust than a stronger one, and the gradient-free Square beating every gradient attack, are both
 * classic signs of gradient masking (Athalye et al. 2018; Carlini et al. 2019).
 */
export function attackConsistency(model: string, eps: number, figures: AttackFigure[], tol = CHECK_TOLERANCE): EvalWarning[] {
  const out: EvalWarning[] = [];
  for (const a of figures) {
    for (const b of figures) {
      if (weaker(a, b) && a.accuracy < b.accuracy - tol) {
        out.push({
          check: 'weaker-beats-stronger',
          model,
          eps,
          message: `${a.name} (${pct(a.accuracy)}) leaves fewer samples robust than the stronger ${b.name} (${pct(b.accuracy)}): the gradients may be masked or ${b.name} may be failing`,
        });
      }
    }
  }
  const gradient = figures.filter((f) => !f.gradientFree && f.tier >= 2);
  for (const sq of figures.filter((f) => f.gradientFree)) {
    if (gradient.length === 0) continue;
    const bestGradient = gradient.reduce((m, f) => (f.accuracy < m.accuracy ? f : m));
    if (sq.accuracy < bestGradient.accuracy - tol) {
      out.push({
        check: 'square-beats-gradient',
        model,
        eps,
        message: `${sq.name}, which uses no gradients, (${pct(sq.accuracy)}) beats every gradient attack (best: ${bestGradient.name}, ${pct(bestGradient.accuracy)}): a sign of gradient masking; trust the gradient-free figure`,
      });
    }
  }
  return out;
}

/**
 * AutoAttack's Square check inside a preset: the robust accuracy after Square is lower than after
 * the gradient attacks that ran before it, i.e. Square broke points they could not.
 */
export function presetSquareCheck(model: string, eps: number, preset: string, cumulative: Array<{ name: string; gradientFree: boolean; accuracy: number }>, tol = CHECK_TOLERANCE): EvalWarning[] {
  const out: EvalWarning[] = [];
  cumulative.forEach((c, i) => {
    if (!c.gradientFree || i === 0) return;
    const before = cumulative[i - 1].accuracy;
    if (c.accuracy < before - tol) {
      out.push({
        check: 'square-beats-gradient',
        model,
        eps,
        message: `${preset}: ${c.name} lowered the robust accuracy by ${pct(before - c.accuracy)} after the gradient attacks (${pct(before)} -> ${pct(c.accuracy)}): the evaluation by gradients alone is unreliable (gradient masking?); consider more Square queries or an adaptive attack`,
      });
    }
  });
  return out;
}

/**
 * Checks of the model on a batch: outputs that change between two identical calls (a randomised
 * defence: use autoattack-rand), outputs that look like probabilities (attacks need logits), and too
 * few classes for the targeted attacks' 9 targets; with labels, samples whose loss gradient (DLR, or
 * CE below 3 classes) is exactly zero, where gradient attacks cannot move.
 */
export function modelChecks(model: string, logits: LogitsFn, x: tf.Tensor4D, targets: number, usesTargets: boolean, expectDeterministic: boolean, y?: tf.Tensor1D): EvalWarning[] {
  const out: EvalWarning[] = [];
  const [first, second] = [tf.tidy(() => logits(x)), tf.tidy(() => logits(x))];
  const stats = tf.tidy(() => {
    const unit = (z: tf.Tensor2D) => tf.div(z, tf.add(tf.norm(z, 'euclidean', 1, true), 1e-10));
    const diff = tf.max(tf.norm(tf.sub(unit(first), unit(second)), 'euclidean', 1));
    const rowSums = tf.max(tf.abs(tf.sub(tf.sum(first, 1), 1)));
    return [diff, tf.max(first), tf.min(first), rowSums].map((t) => t.dataSync()[0]);
  });
  const classes = first.shape[1];
  tf.dispose([first, second]);
  const [diff, max, min, rowSum] = stats;
  if (expectDeterministic && diff > 1e-4) {
    out.push({ check: 'randomised', model, message: 'the model gives different outputs for the same input: it seems a randomised defence; use --attacks autoattack-rand (EoT)' });
  }
  if (max < 1 + 1e-5 && min > -1e-5 && rowSum < 1e-5) {
    out.push({ check: 'probabilities', model, message: 'the model outputs look like probabilities (in [0, 1], summing to 1): the attacks need logits; remove the softmax' });
  }
  if (usesTargets && targets + 1 > classes) {
    out.push({ check: 'few-classes', model, message: `${targets} target classes asked but the model has ${classes} classes: APGD-T and FAB-T use ${classes - 1}` });
  }
  if (y) {
    const zero = tf.tidy(() => {
      const loss = (a: tf.Tensor) => {
        const z = logits(a as tf.Tensor4D);
        return tf.sum(classes >= 3 ? dlrPerSample(z, y) : crossEntropyPerSample(z, y));
      };
      const g = tf.grad(loss)(x);
      // Only correctly classified samples are attacked (a misclassified one may sit where DLR is flat).
      const correct = tf.equal(tf.argMax(logits(x), 1), tf.cast(y, 'int32'));
      return tf.sum(tf.cast(tf.logicalAnd(correct, tf.equal(tf.sum(tf.abs(g), [1, 2, 3]), 0)), 'int32')).dataSync()[0];
    });
    if (zero > 0) {
      out.push({ check: 'zero-gradients', model, message: `${zero} of ${x.shape[0]} samples (classified correctly) have an exactly zero loss gradient: gradient attacks cannot move them (masked gradients?); trust Square's figure` });
    }
  }
  return out;
}
