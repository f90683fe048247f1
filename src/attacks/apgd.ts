import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { subSeed } from '../util/rng.js';
import { apgdCheckpoints } from './apgd-schedule.js';
import { crossEntropyPerSample, dlrPerSample } from './losses.js';
import { project, randomStartPoint, sampleNorm, type Norm, type PerSampleLoss } from './pgd.js';

/**
 * What an attack maximises, evaluated once per iterate: a per-sample loss and, optionally, whether
 * each sample already fools the model (for a classifier: is misclassified). With `fooled`, APGD
 * keeps any fooling iterate it passes through, as AutoAttack does, instead of only its last or
 * highest-loss point.
 */
export type AttackObjective = (x: tf.Tensor4D) => { loss: tf.Tensor1D; fooled?: tf.Tensor1D };

export type ClassifierLoss = 'ce' | 'dlr';

/** Untargeted objective on a classifier (model in inference mode): CE or DLR of the true labels. */
export function classifierObjective(model: tf.LayersModel, labels: tf.Tensor1D, loss: ClassifierLoss, training = false): AttackObjective {
  return (x) => {
    const logits = model.apply(x, { training }) as tf.Tensor2D;
    const value = loss === 'ce' ? crossEntropyPerSample(logits, labels) : dlrPerSample(logits, labels);
    const fooled = tf.tidy(() => tf.notEqual(tf.argMax(logits, 1), tf.cast(labels, 'int32'))) as tf.Tensor1D;
    logits.dispose();
    return { loss: value, fooled };
  };
}

/** Any per-sample loss (e.g. a contrastive loss through a projection head), with no notion of success. */
export function lossObjective(lossFn: PerSampleLoss): AttackObjective {
  return (x) => ({ loss: lossFn(x) });
}

export interface ApgdOptions {
  norm: Norm;
  /** Radius of the perturbation ball, in input units ([0, 1] images). */
  eps: number;
  /** Iterations N_iter (gradient evaluations after the starting point). */
  steps: number;
  /** Independent runs from fresh random starts; per sample the best result is kept. */
  restarts: number;
  seed: number;
  /** Start from a uniform random point of the ball (as AutoAttack does) instead of x. */
  randomStart: boolean;
  /** Momentum alpha of the update x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1})). */
  momentum: number;
  /** Halve the step when the loss increased in fewer than rho of the steps of a phase. */
  rho: number;
  /**
   * Expectation over Transformation (Athalye et al. 2018): the loss and gradient of each iterate are
   * averaged over this many evaluations of the objective, for models whose output is random.
   */
  eotIter: number;
}

/** AutoAttack's defaults: 100 iterations, momentum 0.75, rho 0.75, initial step 2 eps, random start. */
export const DEFAULT_APGD: ApgdOptions = {
  norm: 'linf',
  eps: 8 / 255,
  steps: 100,
  restarts: 1,
  seed: 0,
  randomStart: true,
  momentum: 0.75,
  rho: 0.75,
  eotIter: 1,
};

export function validateApgd(opts: ApgdOptions): void {
  const bad = (flag: string, what: string) => {
    throw new InputError(`${flag}: ${what}`);
  };
  if (!(opts.eps >= 0) || !Number.isFinite(opts.eps)) bad('--eps', `expected a finite number >= 0, got ${opts.eps}`);
  if (!Number.isInteger(opts.steps) || opts.steps < 1) bad('--steps', `expected an integer >= 1 for APGD, got ${opts.steps}`);
  if (!Number.isInteger(opts.restarts) || opts.restarts < 1) bad('--restarts', `expected an integer >= 1, got ${opts.restarts}`);
  if (opts.norm !== 'linf' && opts.norm !== 'l2') bad('--norm', `expected linf or l2, got ${opts.norm}`);
  if (!(opts.momentum >= 0 && opts.momentum <= 1)) bad('momentum', `expected a number in [0, 1], got ${opts.momentum}`);
  if (!(opts.rho > 0 && opts.rho <= 1)) bad('rho', `expected a number in (0, 1], got ${opts.rho}`);
  if (!Number.isInteger(opts.eotIter) || opts.eotIter < 1) bad('eotIter', `expected an integer >= 1, got ${opts.eotIter}`);
}

interface Evaluated {
  loss: tf.Tensor1D;
  grad: tf.Tensor4D;
  fooled: tf.Tensor1D | undefined;
}

/** One forward/backward pass: the per-sample loss, its input gradient and the success flags. */
function evaluateOnce(objective: AttackObjective, x: tf.Tensor4D): Evaluated {
  let loss: tf.Tensor1D | undefined;
  let fooled: tf.Tensor1D | undefined;
  const grad = tf.grad((xi: tf.Tensor) => {
    const out = objective(xi as tf.Tensor4D);
    loss = tf.keep(out.loss);
    if (out.fooled) fooled = tf.keep(out.fooled);
    return tf.sum(out.loss);
  })(x) as tf.Tensor4D;
  return { loss: loss!, grad, fooled };
}

/** Loss and gradient averaged over `draws` evaluations (EoT); success flags of the last one. */
function evaluate(objective: AttackObjective, x: tf.Tensor4D, draws = 1): Evaluated {
  let acc = evaluateOnce(objective, x);
  for (let i = 1; i < draws; i++) {
    const next = evaluateOnce(objective, x);
    const summed: Evaluated = { loss: tf.add(acc.loss, next.loss) as tf.Tensor1D, grad: tf.add(acc.grad, next.grad) as tf.Tensor4D, fooled: next.fooled };
    tf.dispose([acc.loss, acc.grad, acc.fooled, next.loss, next.grad]);
    acc = summed;
  }
  if (draws === 1) return acc;
  const mean: Evaluated = { loss: tf.div(acc.loss, draws) as tf.Tensor1D, grad: tf.div(acc.grad, draws) as tf.Tensor4D, fooled: acc.fooled };
  tf.dispose([acc.loss, acc.grad]);
  return mean;
}

function ascentDirection(grad: tf.Tensor4D, norm: Norm): tf.Tensor4D {
  return norm === 'linf' ? tf.sign(grad) : (tf.div(grad, sampleNorm(grad)) as tf.Tensor4D);
}

/** Broadcast a per-sample flag [B] to the image shape for tf.where. */
function perSample(mask: tf.Tensor1D, shape: number[]): tf.Tensor {
  return tf.broadcastTo(tf.reshape(mask, [-1, 1, 1, 1]), shape);
}

/** Replace a state tensor, disposing the old one. */
function swap<T extends tf.Tensor>(old: T, next: T): T {
  if (old !== next) old.dispose();
  return next;
}

interface RunResult {
  x: tf.Tensor4D;
  /** Highest loss reached (the score of x for samples not fooled). */
  loss: tf.Tensor1D;
  /** Whether x fools the model (all false without a success test). */
  fooled: tf.Tensor1D;
}

/** One APGD run (Algorithm 1 of Croce & Hein 2020) from one starting point. */
function apgdRun(objective: AttackObjective, x0: tf.Tensor4D, opts: ApgdOptions, seed: number): RunResult {
  const shape = x0.shape;
  const start = opts.randomStart && opts.eps > 0 ? randomStartPoint(x0, opts.norm, opts.eps, seed) : tf.clone(x0);
  const first = evaluate(objective, start, opts.eotIter);
  let xCur = start;
  let xPrev = tf.clone(start);
  let grad = first.grad;
  let lossCur = first.loss;
  let xBest = tf.clone(start);
  let gradBest = tf.clone(grad);
  let lossBest = tf.clone(lossCur);
  let fooledAny: tf.Tensor1D = first.fooled ?? (tf.zeros([shape[0]], 'bool') as tf.Tensor1D);
  let xFooled = tf.clone(start);
  let eta = tf.fill([shape[0], 1, 1, 1], 2 * opts.eps) as tf.Tensor4D;
  let increases = tf.zeros([shape[0]]) as tf.Tensor1D;
  let lossBestAtCheck = tf.clone(lossBest);
  let reducedAtCheck = tf.zeros([shape[0]], 'bool') as tf.Tensor1D;
  const checkpoints = new Set(apgdCheckpoints(opts.steps));
  let lastCheckpoint = 0;

  for (let i = 0; i < opts.steps; i++) {
    // Gradient step with momentum (none on the first step), projected onto ball and box twice as in the paper.
    const alpha = i === 0 ? 1 : opts.momentum;
    const xNext = tf.tidy(() => {
      const z = project(tf.add(xCur, tf.mul(eta, ascentDirection(grad, opts.norm))) as tf.Tensor4D, x0, opts.norm, opts.eps);
      const moved = tf.add(tf.add(xCur, tf.mul(alpha, tf.sub(z, xCur))), tf.mul(1 - alpha, tf.sub(xCur, xPrev)));
      return project(moved as tf.Tensor4D, x0, opts.norm, opts.eps);
    });
    xPrev.dispose();
    xPrev = xCur;
    xCur = xNext;
    const ev = evaluate(objective, xCur, opts.eotIter);
    grad.dispose();
    grad = ev.grad;
    increases = swap(increases, tf.tidy(() => tf.add(increases, tf.cast(tf.greater(ev.loss, lossCur), 'float32'))) as tf.Tensor1D);
    lossCur.dispose();
    lossCur = ev.loss;
    if (ev.fooled) {
      const fooled = ev.fooled;
      xFooled = swap(xFooled, tf.tidy(() => tf.where(perSample(fooled, shape), xCur, xFooled)) as tf.Tensor4D);
      fooledAny = swap(fooledAny, tf.logicalOr(fooledAny, fooled) as tf.Tensor1D);
      fooled.dispose();
    }
    const improved = tf.greater(lossCur, lossBest) as tf.Tensor1D;
    xBest = swap(xBest, tf.tidy(() => tf.where(perSample(improved, shape), xCur, xBest)) as tf.Tensor4D);
    gradBest = swap(gradBest, tf.tidy(() => tf.where(perSample(improved, shape), grad, gradBest)) as tf.Tensor4D);
    lossBest = swap(lossBest, tf.maximum(lossCur, lossBest) as tf.Tensor1D);
    improved.dispose();

    const done = i + 1;
    if (checkpoints.has(done)) {
      // Halve the step (and restart from the best point) where the loss oscillated (condition 1) or
      // where the step was not just halved and the best loss has not moved since the last check (condition 2).
      const phase = done - lastCheckpoint;
      const reduce = tf.tidy(() =>
        tf.logicalOr(
          tf.less(increases, opts.rho * phase),
          tf.logicalAnd(tf.logicalNot(reducedAtCheck), tf.lessEqual(lossBest, lossBestAtCheck)),
        ),
      ) as tf.Tensor1D;
      eta = swap(eta, tf.tidy(() => tf.where(tf.reshape(reduce, [-1, 1, 1, 1]), tf.div(eta, 2), eta)) as tf.Tensor4D);
      xCur = swap(xCur, tf.tidy(() => tf.where(perSample(reduce, shape), xBest, xCur)) as tf.Tensor4D);
      grad = swap(grad, tf.tidy(() => tf.where(perSample(reduce, shape), gradBest, grad)) as tf.Tensor4D);
      reducedAtCheck = swap(reducedAtCheck, reduce);
      lossBestAtCheck = swap(lossBestAtCheck, tf.clone(lossBest));
      increases = swap(increases, tf.zerosLike(increases));
      lastCheckpoint = done;
    }
  }
  const x = tf.tidy(() => tf.where(perSample(fooledAny, shape), xFooled, xBest)) as tf.Tensor4D;
  tf.dispose([xCur, xPrev, grad, gradBest, lossCur, xFooled, xBest, eta, increases, lossBestAtCheck, reducedAtCheck]);
  return { x, loss: lossBest, fooled: fooledAny };
}

/**
 * Auto-PGD (Croce & Hein 2020): projected gradient ascent with momentum whose step size starts at
 * 2 eps and is halved at the checkpoints of `apgdCheckpoints` when progress stalls, each time
 * restarting from the best point found. Stays in the eps-ball (l_inf or l_2) around x and in the
 * [0, 1] box. Returns a new tensor; the caller owns it. With `restarts` > 1, per sample a fooling
 * point wins over a non-fooling one, then the higher loss.
 */
export function apgdAttack(objective: AttackObjective, x: tf.Tensor4D, options: Partial<ApgdOptions> = {}): tf.Tensor4D {
  const opts: ApgdOptions = { ...DEFAULT_APGD, ...options };
  validateApgd(opts);
  if (opts.eps === 0) return tf.clone(x);
  let best = apgdRun(objective, x, opts, subSeed(opts.seed, 'apgd-restart', 0));
  for (let r = 1; r < opts.restarts; r++) {
    const cand = apgdRun(objective, x, opts, subSeed(opts.seed, 'apgd-restart', r));
    const take = tf.tidy(() =>
      tf.logicalOr(
        tf.logicalAnd(cand.fooled, tf.logicalNot(best.fooled)),
        tf.logicalAnd(tf.equal(cand.fooled, best.fooled), tf.greater(cand.loss, best.loss)),
      ),
    ) as tf.Tensor1D;
    const merged: RunResult = tf.tidy(() => ({
      x: tf.where(perSample(take, x.shape), cand.x, best.x) as tf.Tensor4D,
      loss: tf.where(take, cand.loss, best.loss) as tf.Tensor1D,
      fooled: tf.logicalOr(cand.fooled, best.fooled) as tf.Tensor1D,
    }));
    tf.dispose([take, cand.x, cand.loss, cand.fooled, best.x, best.loss, best.fooled]);
    best = merged;
  }
  tf.dispose([best.loss, best.fooled]);
  return best.x;
}
