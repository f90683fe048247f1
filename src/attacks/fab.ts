import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { DEFAULT_TARGETS } from './apgd-targeted.js';
import { projectOntoHyperplaneInBox, vectorNorm } from './fab-projections.js';
import type { Norm } from './pgd.js';
import { classCount, correctFlags, logitsOf, type LogitsFn } from './rows.js';
import type { AttackDefinition } from './attack-types.js';

export interface FabOptions {
  norm: Norm;
  /** Radius within which a minimum-norm point counts as an adversarial example of the threat model. */
  eps: number;
  /** Iterations per target class (AutoAttack: 100). */
  steps: number;
  /** Target classes tried in turn, ranked 2nd, 3rd, ... by the clean logits (AutoAttack: 9). */
  targets: number;
  /** Largest weight of the step from the original point (FAB's alpha_max, 0.1). */
  alphaMax: number;
  /** Overshoot of the projection (FAB's eta, 1.05). */
  overshoot: number;
  /** Backward step towards the original point after a success (FAB's beta, 0.9). */
  backward: number;
}

export const DEFAULT_FAB: FabOptions = { norm: 'linf', eps: 8 / 255, steps: 100, targets: DEFAULT_TARGETS, alphaMax: 0.1, overshoot: 1.05, backward: 0.9 };

function validateFab(o: FabOptions): void {
  if (!(o.eps >= 0) || !Number.isFinite(o.eps)) throw new InputError(`--eps: expected a finite number >= 0, got ${o.eps}`);
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new InputError(`fab-t: expected at least 1 iteration, got ${o.steps}`);
  if (!Number.isInteger(o.targets) || o.targets < 1) throw new InputError(`targets: expected an integer >= 1, got ${o.targets}`);
  if (o.norm !== 'linf' && o.norm !== 'l2') throw new InputError(`--norm: expected linf or l2, got ${o.norm}`);
}

/** f = z_target - z_true per sample (> 0: the target wins) and its input gradient. */
function targetGap(logits: LogitsFn, x: tf.Tensor4D, y: tf.Tensor1D, target: tf.Tensor1D): { f: Float32Array; g: Float32Array } {
  let f: tf.Tensor | undefined;
  const g = tf.grad((xi: tf.Tensor) => {
    const z = logits(xi as tf.Tensor4D);
    const k = z.shape[1];
    const gap = tf.sum(tf.mul(z, tf.sub(tf.oneHot(tf.cast(target, 'int32'), k), tf.oneHot(tf.cast(y, 'int32'), k))), 1);
    f = tf.keep(gap);
    return tf.sum(gap);
  })(x);
  const out = { f: Float32Array.from(f!.dataSync()), g: Float32Array.from(g.dataSync()) };
  tf.dispose([f!, g]);
  return out;
}

/**
 * One targeted FAB run from the original points x0 (flattened, `count` samples of `dim` values):
 * at each iterate, linearise the boundary between true and target class, step to the projection
 * of the iterate and of x0 onto it (biased towards x0 by alpha <= alphaMax, overshoot eta), and after
 * each success remember the point if it is the closest so far and step back towards x0 (beta).
 * Returns the closest adversarial points and their distances (Infinity where none was found).
 */
function fabRun(logits: LogitsFn, x0: Float32Array, shape: number[], y: tf.Tensor1D, target: tf.Tensor1D, o: FabOptions): { best: Float32Array; dist: Float64Array } {
  const count = shape[0];
  const dim = x0.length / count;
  const xi = Float32Array.from(x0);
  const best = Float32Array.from(x0);
  const dist = new Float64Array(count).fill(Infinity);
  for (let it = 0; it < o.steps; it++) {
    const xt = tf.tensor4d(xi, shape as [number, number, number, number]);
    const { f, g } = targetGap(logits, xt, y, target);
    xt.dispose();
    for (let a = 0; a < count; a++) {
      const lo = a * dim;
      const cur = xi.subarray(lo, lo + dim);
      const orig = x0.subarray(lo, lo + dim);
      const w = g.subarray(lo, lo + dim);
      // The linearised boundary {p : f + w . (p - cur) = 0} = {p : w . p = w . cur - f}.
      let b = -f[a];
      for (let i = 0; i < dim; i++) b += w[i] * cur[i];
      const d1 = projectOntoHyperplaneInBox(cur, w, b, o.norm);
      const d2 = projectOntoHyperplaneInBox(orig, w, b, o.norm);
      const a1 = Math.max(vectorNorm(d1, o.norm), 1e-8);
      const a2 = Math.max(vectorNorm(d2, o.norm), 1e-8);
      const alpha = Math.min(Math.max(a1 / (a1 + a2), 0), o.alphaMax);
      for (let i = 0; i < dim; i++) {
        const v = (cur[i] + o.overshoot * d1[i]) * (1 - alpha) + (orig[i] + o.overshoot * d2[i]) * alpha;
        cur[i] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
    const xt2 = tf.tensor4d(xi, shape as [number, number, number, number]);
    const correct = correctFlags(logits, xt2, y);
    xt2.dispose();
    for (let a = 0; a < count; a++) {
      if (correct[a]) continue;
      const lo = a * dim;
      const cur = xi.subarray(lo, lo + dim);
      const orig = x0.subarray(lo, lo + dim);
      const delta = new Float64Array(dim);
      for (let i = 0; i < dim; i++) delta[i] = cur[i] - orig[i];
      const r = vectorNorm(delta, o.norm);
      if (r < dist[a]) {
        dist[a] = r;
        best.set(cur, lo);
      }
      for (let i = 0; i < dim; i++) cur[i] = orig[i] + o.backward * delta[i];
    }
  }
  return { best, dist };
}

export interface FabResult {
  /** Closest adversarial point found per sample (the input itself where none was found). */
  x: tf.Tensor4D;
  /** Its distance to the input in the attack's norm; Infinity where none was found, 0 if misclassified already. */
  norms: Float64Array;
}

/**
 * FAB-T (Croce & Hein 2020; AutoAttack's targeted version): a minimum-norm attack. For target rank
 * r = 2 .. targets + 1 (classes ranked by the clean logits), one run on the correctly classified
 * samples not yet broken within eps; per sample the closest adversarial point over all targets is
 * kept. Not bounded by eps: see `fabTargeted` for the threat-model version.
 */
export function fabTargetedMinNorm(logits: LogitsFn, x: tf.Tensor4D, y: tf.Tensor1D, options: Partial<FabOptions> = {}): FabResult {
  const o: FabOptions = { ...DEFAULT_FAB, ...options };
  validateFab(o);
  const [count] = x.shape;
  const dim = x.size / count;
  const x0 = Float32Array.from(x.dataSync());
  const out = Float32Array.from(x0);
  const norms = new Float64Array(count).fill(Infinity);
  const correct = correctFlags(logits, x, y);
  correct.forEach((c, a) => c === 0 && (norms[a] = 0));
  const ranking = tf.tidy(() => {
    const z = logits(x);
    return tf.topk(z, Math.min(z.shape[1], o.targets + 1), true).indices;
  });
  const ranked = ranking.arraySync() as number[][];
  const classes = classCount(logits, x);
  ranking.dispose();
  const labels = y.dataSync();
  const targets = Math.min(o.targets, classes - 1);
  for (let rank = 2; rank <= targets + 1; rank++) {
    const todo: number[] = [];
    for (let a = 0; a < count; a++) if (correct[a] && !(norms[a] <= o.eps)) todo.push(a);
    if (todo.length === 0) break;
    const sub = new Float32Array(todo.length * dim);
    todo.forEach((a, k) => sub.set(x0.subarray(a * dim, (a + 1) * dim), k * dim));
    const ys = tf.tensor1d(todo.map((a) => labels[a]), 'int32');
    const ts = tf.tensor1d(todo.map((a) => ranked[a][rank - 1]), 'int32');
    const { best, dist } = fabRun(logits, sub, [todo.length, ...x.shape.slice(1)], ys, ts, o);
    tf.dispose([ys, ts]);
    todo.forEach((a, k) => {
      if (dist[k] < norms[a]) {
        norms[a] = dist[k];
        out.set(best.subarray(k * dim, (k + 1) * dim), a * dim);
      }
    });
  }
  return { x: tf.tensor(out, x.shape) as tf.Tensor4D, norms };
}

/**
 * FAB-T within the threat model: a sample's minimum-norm point is returned only if it lies within
 * eps (then it is adversarial by construction); otherwise the sample comes back unchanged, as in
 * AutoAttack.
 */
export function fabTargeted(logits: LogitsFn, x: tf.Tensor4D, y: tf.Tensor1D, options: Partial<FabOptions> = {}): tf.Tensor4D {
  const o: FabOptions = { ...DEFAULT_FAB, ...options };
  if (o.eps === 0) return tf.clone(x);
  const res = fabTargetedMinNorm(logits, x, y, o);
  const inside = tf.tensor1d(Array.from(res.norms, (r) => r <= o.eps), 'bool');
  const out = tf.tidy(() => tf.where(tf.broadcastTo(tf.reshape(inside, [-1, 1, 1, 1]), x.shape), res.x, x) as tf.Tensor4D);
  tf.dispose([inside, res.x]);
  return out;
}

export const fabTargetedAttack: AttackDefinition = {
  defaultSteps: DEFAULT_FAB.steps,
  deterministic: true,
  tier: 3,
  run: ({ spec, model, x, y, eps, settings: s }) =>
    fabTargeted(logitsOf(model), x, y, { norm: s.norm, eps, steps: spec.steps, targets: s.targets ?? DEFAULT_TARGETS }),
};
