import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { subSeed } from '../util/rng.js';

/**
 * Loss to maximise, one value per sample. Attacks only need this function, so they work against
 * any differentiable objective of a model's outputs (cross-entropy, a contrastive loss, ...).
 */
export type PerSampleLoss = (x: tf.Tensor4D) => tf.Tensor1D;

export type Norm = 'linf' | 'l2';

export interface PgdOptions {
  norm: Norm;
  /** Radius of the perturbation ball, in input units ([0, 1] images). */
  eps: number;
  stepSize: number;
  steps: number;
  /** Start from a uniform random point of the ball (Madry et al.) instead of x. */
  randomStart: boolean;
  /** Independent runs; per sample the one with the highest final loss is kept. */
  restarts: number;
  seed: number;
}

export const DEFAULT_PGD: PgdOptions = {
  norm: 'linf',
  eps: 8 / 255,
  stepSize: 2 / 255,
  steps: 10,
  randomStart: true,
  restarts: 1,
  seed: 0,
};

export function validatePgd(opts: PgdOptions): void {
  const bad = (flag: string, what: string) => {
    throw new InputError(`${flag}: ${what}`);
  };
  if (!(opts.eps >= 0) || !Number.isFinite(opts.eps)) bad('--eps', `expected a finite number >= 0, got ${opts.eps}`);
  if (!(opts.stepSize >= 0) || !Number.isFinite(opts.stepSize)) bad('--step-size', `expected a finite number >= 0, got ${opts.stepSize}`);
  if (!Number.isInteger(opts.steps) || opts.steps < 0) bad('--steps', `expected an integer >= 0, got ${opts.steps}`);
  if (!Number.isInteger(opts.restarts) || opts.restarts < 1) bad('--restarts', `expected an integer >= 1, got ${opts.restarts}`);
  if (opts.norm !== 'linf' && opts.norm !== 'l2') bad('--norm', `expected linf or l2, got ${opts.norm}`);
}

/** Per-sample L2 norm over all non-batch axes, shaped [B, 1, 1, 1] for broadcasting. */
export function sampleNorm(t: tf.Tensor4D): tf.Tensor4D {
  return tf.sqrt(tf.sum(tf.square(t), [1, 2, 3], true).add(1e-12)) as tf.Tensor4D;
}

/** Project x onto the eps-ball around x0 intersected with the [0, 1] box. */
export function project(x: tf.Tensor4D, x0: tf.Tensor4D, norm: Norm, eps: number): tf.Tensor4D {
  return tf.tidy(() => {
    let delta = tf.sub(x, x0) as tf.Tensor4D;
    if (norm === 'linf') {
      delta = tf.clipByValue(delta, -eps, eps);
    } else {
      const scale = tf.minimum(1, tf.div(eps, sampleNorm(delta)));
      delta = tf.mul(delta, scale) as tf.Tensor4D;
    }
    return tf.clipByValue(tf.add(x0, delta), 0, 1) as tf.Tensor4D;
  });
}

/** A uniform point of the l_inf ball, or a random direction at a uniform radius for l_2, inside the box. */
export function randomStartPoint(x0: tf.Tensor4D, norm: Norm, eps: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    if (norm === 'linf') {
      return project(tf.add(x0, tf.randomUniform(x0.shape, -eps, eps, 'float32', seed)) as tf.Tensor4D, x0, norm, eps);
    }
    const dir = tf.randomNormal(x0.shape, 0, 1, 'float32', seed) as tf.Tensor4D;
    const radius = tf.randomUniform([x0.shape[0], 1, 1, 1], 0, eps, 'float32', seed + 1);
    return project(tf.add(x0, tf.mul(tf.div(dir, sampleNorm(dir)), radius)) as tf.Tensor4D, x0, norm, eps);
  });
}

/** One PGD step from x: ascend the sign (l_inf) or normalised (l_2) gradient of sum(lossFn), then project. */
export function ascentStep(lossFn: PerSampleLoss, x: tf.Tensor4D, x0: tf.Tensor4D, opts: PgdOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const grad = tf.grad((xi: tf.Tensor) => tf.sum(lossFn(xi as tf.Tensor4D)))(x) as tf.Tensor4D;
    const direction = opts.norm === 'linf' ? tf.sign(grad) : tf.div(grad, sampleNorm(grad));
    return project(tf.add(x, tf.mul(direction, opts.stepSize)) as tf.Tensor4D, x0, opts.norm, opts.eps);
  });
}

/** The point a PGD run starts from: x0, or a random point of the ball (seed: the run's, as singleRun's). */
export function pgdStartPoint(x0: tf.Tensor4D, opts: PgdOptions, seed: number): tf.Tensor4D {
  return opts.randomStart && opts.eps > 0 ? randomStartPoint(x0, opts.norm, opts.eps, seed) : tf.clone(x0);
}

function singleRun(lossFn: PerSampleLoss, x0: tf.Tensor4D, opts: PgdOptions, seed: number): tf.Tensor4D {
  let x = pgdStartPoint(x0, opts, seed);
  for (let i = 0; i < opts.steps; i++) {
    const next = ascentStep(lossFn, x, x0, opts);
    x.dispose();
    x = next;
  }
  return x;
}

/**
 * Projected gradient ascent on `lossFn` within the l_inf or l_2 ball of radius eps around x,
 * kept inside the [0, 1] image box. Returns a new tensor; the caller owns it.
 */
export function pgdAttack(lossFn: PerSampleLoss, x: tf.Tensor4D, options: Partial<PgdOptions> = {}): tf.Tensor4D {
  const opts: PgdOptions = { ...DEFAULT_PGD, ...options };
  validatePgd(opts);
  let best = singleRun(lossFn, x, opts, subSeed(opts.seed, 'restart', 0));
  if (opts.restarts === 1) return best;
  let bestLoss = tf.tidy(() => lossFn(best));
  for (let r = 1; r < opts.restarts; r++) {
    const candidate = singleRun(lossFn, x, opts, subSeed(opts.seed, 'restart', r));
    const [nextBest, nextLoss] = tf.tidy(() => {
      const loss = lossFn(candidate);
      const better = tf.greater(loss, bestLoss);
      const mask = tf.reshape(better, [-1, 1, 1, 1]);
      return [tf.where(tf.broadcastTo(mask, x.shape), candidate, best) as tf.Tensor4D, tf.maximum(loss, bestLoss) as tf.Tensor1D];
    });
    tf.dispose([best, bestLoss, candidate]);
    best = nextBest;
    bestLoss = nextLoss;
  }
  bestLoss.dispose();
  return best;
}

/** Fast gradient sign method (Goodfellow et al.): one full-size step, no random start. */
export function fgsmAttack(lossFn: PerSampleLoss, x: tf.Tensor4D, options: { eps: number; norm?: Norm }): tf.Tensor4D {
  return pgdAttack(lossFn, x, {
    norm: options.norm ?? 'linf',
    eps: options.eps,
    stepSize: options.eps,
    steps: 1,
    randomStart: false,
    restarts: 1,
    seed: 0,
  });
}
