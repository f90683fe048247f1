import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { makeRng, type Rng } from '../util/rng.js';
import { marginPerSample } from './losses.js';
import type { Norm } from './pgd.js';
import { gatherRows, logitsOf, replaceRows, type LogitsFn } from './rows.js';
import { squarePattern, squareP, squareSide } from './square-schedule.js';
import type { AttackDefinition } from './attack-types.js';

export interface SquareOptions {
  norm: Norm;
  eps: number;
  /** Model queries per sample after the initial point (AutoAttack: 5,000). */
  queries: number;
  /** Initial fraction of pixels changed per query (AutoAttack: 0.8). */
  pInit: number;
  /** Stretch the p schedule (written for 10,000 queries) to `queries`; AutoAttack does not. */
  rescaleSchedule: boolean;
  seed: number;
}

export const DEFAULT_SQUARE: SquareOptions = { norm: 'linf', eps: 8 / 255, queries: 5000, pInit: 0.8, rescaleSchedule: false, seed: 0 };

function validateSquare(o: SquareOptions): void {
  if (!(o.eps >= 0) || !Number.isFinite(o.eps)) throw new InputError(`--eps: expected a finite number >= 0, got ${o.eps}`);
  if (!Number.isInteger(o.queries) || o.queries < 1) throw new InputError(`square: expected at least 1 query, got ${o.queries}`);
  if (!(o.pInit > 0 && o.pInit <= 1)) throw new InputError(`square: pInit must be in (0, 1], got ${o.pInit}`);
  if (o.norm !== 'linf' && o.norm !== 'l2') throw new InputError(`--norm: expected linf or l2, got ${o.norm}`);
}

const sign = (rng: Rng) => (rng() < 0.5 ? -1 : 1);

/** Per-sample l_2 norm over all non-batch axes, [A, 1, 1, 1]. */
function imageNorm(t: tf.Tensor4D): tf.Tensor4D {
  return tf.sqrt(tf.sum(tf.square(t), [1, 2, 3], true)) as tf.Tensor4D;
}

/** Per-sample, per-channel l_2 norm over the spatial axes, [A, 1, 1, C]. */
function channelNorm(t: tf.Tensor4D): tf.Tensor4D {
  return tf.sqrt(tf.sum(tf.square(t), [1, 2], true)) as tf.Tensor4D;
}

/** 1 inside the s x s window at (top[a], left[a]) of each image, [A, H, W, 1]. */
function windowMask(top: number[], left: number[], s: number, h: number, w: number): tf.Tensor4D {
  return tf.tidy(() => {
    const t = tf.tensor4d(top, [top.length, 1, 1, 1]);
    const l = tf.tensor4d(left, [left.length, 1, 1, 1]);
    const rows = tf.reshape(tf.range(0, h), [1, h, 1, 1]);
    const cols = tf.reshape(tf.range(0, w), [1, 1, w, 1]);
    const inRows = tf.logicalAnd(tf.greaterEqual(rows, t), tf.less(rows, tf.add(t, s)));
    const inCols = tf.logicalAnd(tf.greaterEqual(cols, l), tf.less(cols, tf.add(l, s)));
    return tf.cast(tf.logicalAnd(inRows, inCols), 'float32') as tf.Tensor4D;
  });
}

/** Random ±1 per (sample, channel), [A, 1, 1, C]. */
function channelSigns(a: number, c: number, rng: Rng): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from({ length: a * c }, () => sign(rng)), [a, 1, 1, c]);
}

/** The l_inf starting point: vertical stripes of ±eps (one sign per sample, column and channel). */
function linfStart(x: tf.Tensor4D, eps: number, rng: Rng): tf.Tensor4D {
  const [b, , w, c] = x.shape;
  const stripes = tf.tensor4d(Float32Array.from({ length: b * w * c }, () => sign(rng)), [b, 1, w, c]);
  const out = tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(stripes, eps)), 0, 1) as tf.Tensor4D);
  stripes.dispose();
  return out;
}

/**
 * The l_2 starting point: a grid of (h/5)-sized blocks each holding the ring pattern with a random
 * sign per sample and channel, scaled to norm eps.
 */
function l2Start(x: tf.Tensor4D, eps: number, rng: Rng): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const s = Math.max(1, Math.floor(h / 5));
  const first = Math.floor((h - 5 * s) / 2);
  const delta = new Float32Array(b * h * w * c);
  for (let top = Math.max(0, first); top + s <= h; top += s) {
    for (let left = Math.max(0, first); left + s <= w; left += s) {
      const pattern = squarePattern(s, rng() > 0.5);
      for (let a = 0; a < b; a++) {
        for (let ch = 0; ch < c; ch++) {
          const sg = sign(rng);
          for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) delta[((a * h + top + i) * w + left + j) * c + ch] += sg * pattern[i * s + j];
        }
      }
    }
  }
  const d = tf.tensor4d(delta, x.shape);
  const out = tf.tidy(() => tf.clipByValue(tf.add(x, tf.mul(tf.div(d, tf.add(imageNorm(d), 1e-12)), eps)), 0, 1) as tf.Tensor4D);
  d.dispose();
  return out;
}

/** One l_inf proposal: a random window per sample set to x ± eps (one sign per channel). */
function linfProposal(x: tf.Tensor4D, best: tf.Tensor4D, eps: number, s: number, rng: Rng): tf.Tensor4D {
  const [a, h, w, c] = x.shape;
  const top = Array.from({ length: a }, () => Math.floor(rng() * (h - s + 1)));
  const left = Array.from({ length: a }, () => Math.floor(rng() * (w - s + 1)));
  const signs = channelSigns(a, c, rng);
  const out = tf.tidy(() => {
    const mask = windowMask(top, left, s, h, w);
    const corner = tf.clipByValue(tf.add(x, tf.mul(signs, eps)), 0, 1);
    return tf.add(best, tf.mul(mask, tf.sub(corner, best))) as tf.Tensor4D;
  });
  signs.dispose();
  return out;
}

/**
 * One l_2 proposal: the perturbation mass of two random windows (and any budget left unused) goes
 * into the first, as the ring pattern with a fresh sign per channel plus the old content's direction;
 * the second is cleared; the whole perturbation is rescaled to norm eps.
 */
function l2Proposal(x: tf.Tensor4D, best: tf.Tensor4D, eps: number, s: number, rng: Rng): tf.Tensor4D {
  const [a, h, w, c] = x.shape;
  const pick = () => Array.from({ length: a }, () => Math.floor(rng() * (h - s + 1)));
  const pickW = () => Array.from({ length: a }, () => Math.floor(rng() * (w - s + 1)));
  const [top1, left1, top2, left2] = [pick(), pickW(), pick(), pickW()];
  const placed = new Float32Array(a * h * w);
  for (let k = 0; k < a; k++) {
    const pattern = squarePattern(s, rng() > 0.5);
    for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) placed[(k * h + top1[k] + i) * w + left1[k] + j] = pattern[i * s + j];
  }
  const signs = channelSigns(a, c, rng);
  const pattern = tf.tensor4d(placed, [a, h, w, 1]);
  const out = tf.tidy(() => {
    const delta = tf.sub(best, x) as tf.Tensor4D;
    const m1 = windowMask(top1, left1, s, h, w);
    const both = tf.maximum(m1, windowMask(top2, left2, s, h, w)) as tf.Tensor4D;
    const inFirst = tf.mul(delta, m1) as tf.Tensor4D;
    const spare = tf.div(tf.relu(tf.sub(eps * eps, tf.square(imageNorm(delta)))), c);
    const target = tf.sqrt(tf.add(spare, tf.square(channelNorm(tf.mul(delta, both) as tf.Tensor4D))));
    let fresh = tf.add(tf.mul(pattern, signs), tf.div(inFirst, tf.add(channelNorm(inFirst), 1e-12))) as tf.Tensor4D;
    fresh = tf.mul(tf.div(fresh, tf.add(channelNorm(fresh), 1e-12)), target) as tf.Tensor4D;
    const next = tf.add(tf.mul(delta, tf.sub(1, both)), fresh) as tf.Tensor4D;
    return tf.clipByValue(tf.add(x, tf.mul(tf.div(next, tf.add(imageNorm(next), 1e-12)), eps)), 0, 1) as tf.Tensor4D;
  });
  tf.dispose([signs, pattern]);
  return out;
}

function margins(logits: LogitsFn, x: tf.Tensor4D, y: tf.Tensor1D): Float32Array {
  const m = tf.tidy(() => marginPerSample(logits(x), y));
  const out = m.dataSync() as Float32Array;
  m.dispose();
  return Float32Array.from(out);
}

export interface SquareResult {
  x: tf.Tensor4D;
  /** Model queries spent on each sample, the initial point included. */
  queries: Int32Array;
}

/**
 * Square Attack (Andriushchenko et al. 2020), untargeted, margin loss: random search over square
 * windows, accepting a proposal when it lowers the margin z_y - max_{i != y} z_i; a sample stops
 * once misclassified. Uses only the logits (no gradients), so gradient masking does not stop it.
 * Stays in the eps-ball (l_inf or l_2) and the [0, 1] box. Returns a new tensor; the caller owns it.
 */
export function squareAttackRun(logits: LogitsFn, x: tf.Tensor4D, y: tf.Tensor1D, options: Partial<SquareOptions> = {}): SquareResult {
  const opts: SquareOptions = { ...DEFAULT_SQUARE, ...options };
  validateSquare(opts);
  const [b, h, w] = x.shape;
  const queries = new Int32Array(b);
  if (opts.eps === 0 || b === 0) return { x: tf.clone(x), queries };
  const rng = makeRng(`square:${opts.seed}`);
  let result = opts.norm === 'linf' ? linfStart(x, opts.eps, rng) : l2Start(x, opts.eps, rng);
  const margin = margins(logits, result, y);
  queries.fill(1);
  // The samples still classified correctly, compacted: `ids` are their positions in the batch.
  let ids = Array.from({ length: b }, (_, k) => k).filter((k) => margin[k] > 0);
  let xs = gatherRows(x, ids);
  let ys = gatherRows(y, ids);
  let best = gatherRows(result, ids);
  let bestMargin = Float32Array.from(ids, (k) => margin[k]);
  for (let it = 0; it < opts.queries && ids.length > 0; it++) {
    const s = squareSide(squareP(it, opts.queries, opts.pInit, opts.rescaleSchedule), h, w, opts.norm);
    const proposal = opts.norm === 'linf' ? linfProposal(xs, best, opts.eps, s, rng) : l2Proposal(xs, best, opts.eps, s, rng);
    const m = margins(logits, proposal, ys);
    const take = Array.from(m, (v, i) => v < bestMargin[i]);
    const takeT = tf.tensor1d(take.map(Number), 'float32');
    const next = tf.tidy(() => tf.add(best, tf.mul(tf.reshape(takeT, [-1, 1, 1, 1]), tf.sub(proposal, best))) as tf.Tensor4D);
    tf.dispose([proposal, takeT, best]);
    best = next;
    ids.forEach((k, i) => {
      queries[k]++;
      if (take[i]) bestMargin[i] = m[i];
    });
    const keep = ids.map((_, i) => i).filter((i) => bestMargin[i] > 0);
    if (keep.length < ids.length) {
      // Write the samples just fooled back and drop them from the search.
      const merged = replaceRows(result, ids, best);
      result.dispose();
      result = merged;
      const [nx, ny, nb] = [gatherRows(xs, keep), gatherRows(ys, keep), gatherRows(best, keep)];
      tf.dispose([xs, ys, best]);
      [xs, ys, best] = [nx, ny, nb];
      ids = keep.map((i) => ids[i]);
      bestMargin = Float32Array.from(keep, (i) => bestMargin[i]);
    }
  }
  const final = replaceRows(result, ids, best);
  tf.dispose([result, xs, ys, best]);
  return { x: final, queries };
}

export const squareAttack: AttackDefinition = {
  defaultSteps: DEFAULT_SQUARE.queries,
  gradientFree: true,
  tier: 3,
  run: ({ spec, model, x, y, eps, settings: s }) => {
    const res = squareAttackRun(logitsOf(model), x, y, { norm: s.norm, eps, queries: spec.steps, seed: s.seed });
    return res.x;
  },
};
