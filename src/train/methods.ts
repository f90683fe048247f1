import * as tf from '@tensorflow/tfjs';
import type { PerSampleLoss } from '../attacks/pgd.js';
import { contrastiveGroups } from '../attacks/contrastive.js';
import { makeRng, subSeed } from '../util/rng.js';
import { augment, CONTRASTIVE_AUGMENT, SUPERVISED_AUGMENT, type AugmentConfig } from './augment.js';
import {
  attackedImages,
  contrastiveAttackObjective,
  contrastiveObjective,
  embedStream,
  partnerImages,
  runContrastiveAttack,
  trainingParts,
  type MethodAttack,
} from './contrastive-objective.js';
import { learnerWeights, type Learner } from './learner.js';
import { METHODS, type ContrastiveAttackSpec, type PreparedBatch } from './methods/index.js';
import type { TrainConfig } from './options.js';

export type { Learner } from './learner.js';
export { makeLearner } from './learner.js';
export { tradesAttack } from '../attacks/trades.js';
export type { MethodAttack } from './contrastive-objective.js';
export type { PreparedBatch } from './methods/index.js';

/**
 * The training step of every (scheme, method) pair, as the method's spec (src/train/methods/) defines
 * it, split in two phases:
 *   prepare: everything that does not need gradients of the weights (augmented views, attacks);
 *   loss:    the forward pass in training mode and the scalar to minimise (called inside
 *            tf.variableGrads), plus the logits that give the batch accuracy.
 * Attacks use the model in inference mode (docs/decisions.md), so they update no BatchNorm statistics.
 *
 * Contrastive schemes train the encoder through the projection head; the classifier layer 'logits'
 * of the saved model is trained at the same time on the *detached* pooled features of clean (or
 * first-view) images with cross-entropy: the study's linear head on a frozen encoder, learned online,
 * so every checkpoint is a complete classifier (capture, evaluation and the CE attack work unchanged)
 * without the head influencing the encoder. Their loss is contrastiveObjective (contrastive-objective.ts),
 * the same function the data-parallel replicas run.
 */

export interface BatchSeeds {
  /** Seed of the attack's random start. */
  attack: number;
  /** Seed of the augmentation draws. */
  augment: number;
}

const AUGMENTS: Record<Exclude<TrainConfig['augment'], 'none'>, AugmentConfig> = {
  supervised: SUPERVISED_AUGMENT,
  contrastive: CONTRASTIVE_AUGMENT,
};

export function augmentView(x: tf.Tensor4D, cfg: TrainConfig, seed: number, view: number): tf.Tensor4D {
  if (cfg.augment === 'none') return tf.clone(x);
  return augment(x, makeRng(subSeed(seed, 'view', view)), AUGMENTS[cfg.augment]);
}

/** L2-normalised projection of images (training mode updates BatchNorm statistics). */
export function embed(learner: Learner, x: tf.Tensor4D, training: boolean): tf.Tensor2D {
  return embedStream(learner, 'main', x, training);
}

/** L2-normalised projection through the adversarial BatchNorm stream (ACL, CLAE). */
export function embedAdv(learner: Learner, x: tf.Tensor4D, training: boolean): tf.Tensor2D {
  return embedStream(learner, 'adv', x, training);
}

/** A fixed-partner attack through the main stream (what study-at, rocl, clae and rcl-bound attack with). */
const PARTNERED: ContrastiveAttackSpec = { attacked: 'v1', partner: 'v2', stream: 'main', options: (attack, seed) => ({ ...attack, seed }) };

/**
 * The contrastive attack objective of the contrastive AT methods (the symmetric one,
 * symmetricContrastiveLoss of src/attacks/contrastive.ts): per image, the contrastive loss of the pair
 * (x', fixed partner embedding) with in-batch negatives, both anchors counted. (Threat model I of
 * evaluation is the one-sided objective: docs/evaluation.md.)
 */
export function contrastiveAttackLoss(learner: Learner, partner: tf.Tensor2D, groups: tf.Tensor1D): PerSampleLoss {
  return contrastiveAttackObjective(learner, PARTNERED, partner, groups);
}

/**
 * The attack of a fixed-partner contrastive method (its spec's attack): the attacked view against the
 * partner images' embedding, with in-batch negatives. study-at attacks x against x, the others view 1
 * against view 2 (the caller passes them).
 */
export function contrastiveAttack(
  learner: Learner,
  method: 'study-at' | 'rocl' | 'clae' | 'rcl-bound',
  attacked: tf.Tensor4D,
  partnerImgs: tf.Tensor4D,
  groups: tf.Tensor1D,
  seed: number,
): MethodAttack {
  return runContrastiveAttack(learner, METHODS[method].contrastive!.attack!, attacked, partnerImgs, groups, seed);
}

/**
 * ACL's attack (its spec's): both views perturbed jointly by PGD maximising the NT-Xent of the
 * adversarial pair through the adversarial BatchNorm stream. Attacks the stacked [v1; v2].
 */
export function aclAttack(learner: Learner, v1: tf.Tensor4D, v2: tf.Tensor4D, groups: tf.Tensor1D, seed: number): MethodAttack {
  const attack = METHODS.acl.contrastive!.attack!;
  const pair = attackedImages(attack, { x: v1, v1, v2 });
  const a = runContrastiveAttack(learner, attack, pair, null, groups, seed);
  return { ...a, owned: [...a.owned, pair] };
}

function prepareSupervised(learner: Learner, x: tf.Tensor4D, y: tf.Tensor1D, seeds: BatchSeeds): PreparedBatch {
  const { model, cfg, spec } = learner;
  if (!spec.supervised) throw new Error(`method '${cfg.method}' has no supervised objective (a bug: options.ts should refuse it)`);
  const view = cfg.augment === 'none' ? x : augmentView(x, cfg, seeds.augment, 0);
  const batch = spec.supervised.prepare(model, cfg, view, y, seeds.attack);
  return view === x ? batch : { ...batch, tensors: [view, ...batch.tensors] };
}

function prepareContrastive(learner: Learner, x: tf.Tensor4D, y: tf.Tensor1D, seeds: BatchSeeds): PreparedBatch {
  const { cfg } = learner;
  const spec = learner.spec.contrastive;
  if (!spec) throw new Error(`method '${cfg.method}' is not a contrastive method`);
  const groups = contrastiveGroups(cfg.scheme as 'cl' | 'scl', y);
  const images = { x, v1: augmentView(x, cfg, seeds.augment, 1), v2: augmentView(x, cfg, seeds.augment, 2) };
  const owned: tf.Tensor[] = [groups, images.v1, images.v2];
  let adv: tf.Tensor4D | undefined;
  if (spec.attack) {
    const attacked = attackedImages(spec.attack, images);
    if (spec.attack.attacked === 'pair') owned.push(attacked);
    const a = runContrastiveAttack(learner, spec.attack, attacked, partnerImages(spec.attack, images), groups, seeds.attack);
    owned.push(a.adv, ...a.owned);
    adv = a.adv;
  }
  const { parts, made } = trainingParts(spec, { ...images, adv });
  owned.push(...made);
  return {
    tensors: owned,
    loss: () => {
      const { contrast, local, logits } = contrastiveObjective(learner, spec, parts, y, groups);
      return { loss: tf.add(contrast, local) as tf.Scalar, logits };
    },
  };
}

/** Views, attacks and the loss closure of one batch for the learner's scheme and method. */
export function prepareBatch(learner: Learner, x: tf.Tensor4D, y: tf.Tensor1D, seeds: BatchSeeds): PreparedBatch {
  return learner.cfg.scheme === 'sl' ? prepareSupervised(learner, x, y, seeds) : prepareContrastive(learner, x, y, seeds);
}

/** loss + (wd / 2) * the sum of squares of the `decayed` kernels (L2 weight decay), or loss itself without any. */
export function withWeightDecay(loss: tf.Scalar, decayed: tf.Variable[], wd: number): tf.Scalar {
  return wd === 0 || decayed.length === 0 ? loss : (tf.add(loss, tf.mul(0.5 * wd, tf.addN(decayed.map((v) => tf.sum(tf.square(v)))))) as tf.Scalar);
}

/** The gradients of one batch's objective, before any optimizer sees them (the caller disposes every tensor). */
export interface BatchGradients {
  /** The objective (loss + weight decay), times `scale`. */
  value: tf.Scalar;
  /** Number of correct predictions of the batch. */
  correct: tf.Scalar;
  /** Gradient per variable name of `vars`. */
  grads: tf.NamedTensorMap;
}

/**
 * Gradients of the prepared batch's loss (+ L2 weight decay on `decayed` kernels) with respect to
 * `vars`. `scale` multiplies the objective: a data-parallel shard of n_k of N images passes n_k / N,
 * so the shards' gradients sum to the gradient of the batch mean (src/train/data-parallel.ts).
 */
export function batchGradients(
  learner: Learner,
  vars: tf.Variable[],
  decayed: tf.Variable[],
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seeds: BatchSeeds,
  scale = 1,
): BatchGradients {
  const batch = prepareBatch(learner, x, y, seeds);
  let correct: tf.Scalar | undefined;
  const wd = learner.cfg.weightDecay;
  const { value, grads } = tf.variableGrads(() => {
    const { loss, logits } = batch.loss();
    correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(y, 'int32')), 'float32'))) as tf.Scalar;
    const objective = withWeightDecay(loss, decayed, wd);
    return scale === 1 ? objective : (tf.mul(objective, scale) as tf.Scalar);
  }, vars);
  tf.dispose(batch.tensors);
  return { value, correct: correct!, grads };
}

/**
 * One optimizer step: loss (+ L2 weight decay on `decayed` kernels) of the prepared batch.
 * Returns the loss and the number of correct predictions.
 */
export function trainStep(
  learner: Learner,
  optimizer: tf.Optimizer,
  vars: tf.Variable[],
  decayed: tf.Variable[],
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  seeds: BatchSeeds,
): { loss: tf.Scalar; correct: tf.Scalar } {
  const { value, correct, grads } = batchGradients(learner, vars, decayed, x, y, seeds);
  optimizer.applyGradients(vars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
  tf.dispose(Object.values(grads));
  return { loss: value, correct };
}

/** The objective of a batch without updating anything (tests: does training lower it?). */
export function batchLoss(learner: Learner, x: tf.Tensor4D, y: tf.Tensor1D, seeds: BatchSeeds): number {
  const batch = prepareBatch(learner, x, y, seeds);
  // Training-mode forward would move BatchNorm statistics; evaluate on copies of them by saving and restoring.
  const weights = learnerWeights(learner);
  const saved = weights.map((w) => w.read().clone());
  const value = tf.tidy(() => batch.loss().loss.dataSync()[0]);
  weights.forEach((w, i) => w.write(saved[i]));
  tf.dispose([...saved, ...batch.tensors]);
  return value;
}
