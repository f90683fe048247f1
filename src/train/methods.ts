import * as tf from '@tensorflow/tfjs';
import { crossEntropyLoss, crossEntropyPerSample } from '../attacks/losses.js';
import { pgdAttack, fgsmAttack, type PerSampleLoss } from '../attacks/pgd.js';
import { klPerSample, tradesAttack } from '../attacks/trades.js';
import { l2Normalize } from '../models/projection.js';
import { makeRng, subSeed } from '../util/rng.js';
import { augment, CONTRASTIVE_AUGMENT, SUPERVISED_AUGMENT, type AugmentConfig } from './augment.js';
import { contrastiveGroups, contrastivePerImage } from './contrastive.js';
import { reverseGradient, stopGradient } from './gradients.js';
import { learnerWeights, type Learner } from './learner.js';
import type { TrainConfig } from './options.js';

export type { Learner } from './learner.js';
export { makeLearner } from './learner.js';
export { tradesAttack } from '../attacks/trades.js';

/**
 * The training objective of every (scheme, method) pair, split in two phases:
 *   prepare: everything that does not need gradients of the weights (augmented views, attacks);
 *   loss:    the forward pass in training mode and the scalar to minimise (called inside
 *            tf.variableGrads), plus the logits that give the batch accuracy.
 * Attacks use the model in inference mode (docs/decisions.md), so they update no BatchNorm statistics.
 *
 * Contrastive schemes train the encoder through the projection head; the classifier layer 'logits'
 * of the saved model is trained at the same time on the *detached* pooled features of clean (or
 * first-view) images with cross-entropy: the study's linear head on a frozen encoder, learned online,
 * so every checkpoint is a complete classifier (capture, evaluation and the CE attack work unchanged)
 * without the head influencing the encoder.
 */

export interface PreparedBatch {
  /** Tensors made by prepare (views, adversarial examples); the caller disposes them after the step. */
  tensors: tf.Tensor[];
  loss: () => { loss: tf.Scalar; logits: tf.Tensor2D };
}

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
  return tf.tidy(() => {
    const feats = learner.features.apply(x, { training }) as tf.Tensor2D;
    return l2Normalize(learner.head!.apply(feats, { training }) as tf.Tensor2D);
  });
}

/**
 * The contrastive attack objective of a batch ("threat model I" when used at evaluation): per image,
 * the contrastive loss of the pair (x', fixed partner embedding) with in-batch negatives.
 */
export function contrastiveAttackLoss(learner: Learner, partner: tf.Tensor2D, groups: tf.Tensor1D): PerSampleLoss {
  return (xa) => tf.tidy(() => contrastivePerImage([embed(learner, xa, false), partner], groups, learner.cfg.temperature));
}

/** A method's attack: the adversarial batch, the objective it maximised, and tensors to dispose. */
export interface MethodAttack {
  adv: tf.Tensor4D;
  objective: PerSampleLoss;
  owned: tf.Tensor[];
}

/**
 * The attacks of the contrastive methods, each maximising the contrastive loss of the attacked view
 * against a fixed partner embedding (with in-batch negatives):
 *   study-at: PGD on the un-augmented x against x itself (the study's options: no random start by default);
 *   rocl:     PGD from a uniform random start on view 1 against view 2;
 *   clae:     one FGSM step (size eps) on view 1 against view 2;
 *   rcl-bound: PGD (the run's attack options) on view 1 against view 2.
 */
export function contrastiveAttack(
  learner: Learner,
  method: 'study-at' | 'rocl' | 'clae' | 'rcl-bound',
  attacked: tf.Tensor4D,
  partnerImages: tf.Tensor4D,
  groups: tf.Tensor1D,
  seed: number,
): MethodAttack {
  const partner = embed(learner, partnerImages, false);
  const objective = contrastiveAttackLoss(learner, partner, groups);
  const { attack } = learner.cfg;
  const adv =
    method === 'clae'
      ? fgsmAttack(objective, attacked, { eps: attack.eps, norm: attack.norm })
      : pgdAttack(objective, attacked, { ...attack, randomStart: method === 'rocl' ? true : attack.randomStart, seed });
  return { adv, objective, owned: [partner] };
}

/** L2-normalised projection through ACL's adversarial BatchNorm stream. */
export function embedAdv(learner: Learner, x: tf.Tensor4D, training: boolean): tf.Tensor2D {
  return tf.tidy(() => l2Normalize(learner.head!.apply(learner.advFeatures!.apply(x, { training }), { training }) as tf.Tensor2D));
}

/**
 * ACL (Jiang et al. 2020, dual stream): both views perturbed jointly by PGD maximising the NT-Xent of
 * the adversarial pair, computed through the adversarial BatchNorm stream. Attacks the stacked [v1; v2].
 */
export function aclAttack(learner: Learner, v1: tf.Tensor4D, v2: tf.Tensor4D, groups: tf.Tensor1D, seed: number): MethodAttack {
  const n = v1.shape[0];
  const pair = tf.concat([v1, v2], 0);
  const objective: PerSampleLoss = (xa) =>
    tf.tidy(() => {
      const [a, b] = tf.split(embedAdv(learner, xa, false), [n, n], 0) as [tf.Tensor2D, tf.Tensor2D];
      const perImage = contrastivePerImage([a, b], groups, learner.cfg.temperature);
      // One value per attacked sample (both views of an image share their image's loss; the sum is the batch loss).
      return tf.div(tf.concat([perImage, perImage], 0), 2) as tf.Tensor1D;
    });
  const adv = pgdAttack(objective, pair, { ...learner.cfg.attack, seed });
  return { adv, objective, owned: [pair] };
}

function prepareSupervised(learner: Learner, x: tf.Tensor4D, y: tf.Tensor1D, seeds: BatchSeeds): PreparedBatch {
  const { model, cfg } = learner;
  const view = cfg.augment === 'none' ? x : augmentView(x, cfg, seeds.augment, 0);
  const owned: tf.Tensor[] = view === x ? [] : [view];
  if (cfg.method === 'trades') {
    const { adv, owned: attackOwned } = tradesAttack(model, view, cfg.attack, seeds.attack);
    owned.push(adv, ...attackOwned);
    const n = x.shape[0];
    return {
      tensors: owned,
      loss: () => {
        const logits = model.apply(tf.concat([view, adv], 0), { training: true }) as tf.Tensor2D;
        const [c, a] = tf.split(logits, [n, n], 0) as [tf.Tensor2D, tf.Tensor2D];
        const loss = tf.add(tf.mean(crossEntropyPerSample(c, y)), tf.mul(cfg.tradesBeta, tf.mean(klPerSample(c, a)))) as tf.Scalar;
        return { loss, logits: c };
      },
    };
  }
  const input = cfg.method === 'pgd' ? pgdAttack(crossEntropyLoss(model, y), view, { ...cfg.attack, seed: seeds.attack }) : view;
  if (input !== view) owned.push(input);
  return {
    tensors: owned,
    loss: () => {
      const logits = model.apply(input, { training: true }) as tf.Tensor2D;
      return { loss: tf.mean(crossEntropyPerSample(logits, y)) as tf.Scalar, logits };
    },
  };
}

function prepareContrastive(learner: Learner, x: tf.Tensor4D, y: tf.Tensor1D, seeds: BatchSeeds): PreparedBatch {
  const { cfg } = learner;
  const scheme = cfg.scheme as 'cl' | 'scl';
  const n = x.shape[0];
  const tau = cfg.temperature;
  const groups = contrastiveGroups(scheme, y);
  const v1 = augmentView(x, cfg, seeds.augment, 1);
  const v2 = augmentView(x, cfg, seeds.augment, 2);
  const owned: tf.Tensor[] = [groups, v1, v2];
  const logitsLayer = learner.model.getLayer('logits');
  const C = (views: tf.Tensor2D[]) => tf.mean(contrastivePerImage(views, groups, tau)) as tf.Scalar;
  /** Forward of several batches at once (one BatchNorm batch); returns embeddings per part and the first part's features. */
  const forward = (parts: tf.Tensor4D[]) => {
    const feats = learner.features.apply(parts.length === 1 ? parts[0] : tf.concat(parts, 0), { training: true }) as tf.Tensor2D;
    const z = l2Normalize(learner.head!.apply(feats, { training: true }) as tf.Tensor2D);
    // (Backprop through a one-way tf.split fails in tfjs 4.22 with "Pass at least one tensor to concat".)
    const zs = parts.length === 1 ? [z] : (tf.split(z, parts.length, 0) as tf.Tensor2D[]);
    const fs = parts.length === 1 ? [feats] : (tf.split(feats, parts.length, 0) as tf.Tensor2D[]);
    return { z: zs, feats: fs, first: fs[0] };
  };
  /** Online linear head on detached features, clean cross-entropy. */
  const probe = (feats: tf.Tensor2D) => {
    const logits = logitsLayer.apply(stopGradient(feats)) as tf.Tensor2D;
    return { ce: tf.mean(crossEntropyPerSample(logits, y)) as tf.Scalar, logits };
  };
  const attackOf = (method: 'study-at' | 'rocl' | 'clae' | 'rcl-bound', attacked: tf.Tensor4D, partner: tf.Tensor4D) => {
    const a = contrastiveAttack(learner, method, attacked, partner, groups, seeds.attack);
    owned.push(a.adv, ...a.owned);
    return a;
  };

  switch (cfg.method) {
    case 'none':
      return {
        tensors: owned,
        loss: () => {
          const { z, first } = forward([v1, v2]);
          const { ce, logits } = probe(first);
          return { loss: tf.add(C(z), ce) as tf.Scalar, logits };
        },
      };
    case 'study-at': {
      // The study: PGD on the un-augmented image maximising contrastive(x, x + delta);
      // loss = contrastive(x, x_adv) + contrastive(aug1, aug2).
      const { adv } = attackOf('study-at', x, x);
      return {
        tensors: owned,
        loss: () => {
          const { z, first } = forward([x, adv, v1, v2]);
          const { ce, logits } = probe(first);
          return { loss: tf.addN([C([z[0], z[1]]), C([z[2], z[3]]), ce]) as tf.Scalar, logits };
        },
      };
    }
    case 'rocl': {
      // RoCL (Kim et al. 2020): instance-wise attack on t1 against t2 with in-batch negatives;
      // loss = NT-Xent over the three views {t1, t2, adv} + (1/lambda) NT-Xent(adv, t2).
      const { adv } = attackOf('rocl', v1, v2);
      return {
        tensors: owned,
        loss: () => {
          const { z, first } = forward([v1, v2, adv]);
          const { ce, logits } = probe(first);
          return { loss: tf.addN([C(z), tf.mul(1 / cfg.roclLambda, C([z[2], z[1]])), ce]) as tf.Scalar, logits };
        },
      };
    }
    case 'clae': {
      // CLAE (Ho & Vasconcelos 2020): one FGSM step on view 1 maximising the batch NT-Xent against
      // view 2; loss = NT-Xent(z1, z2) + alpha NT-Xent(z1, z_adv). The adversarial batch goes through
      // the auxiliary BatchNorm stream (its own parameters and running statistics; convs shared).
      const { adv } = attackOf('clae', v1, v2);
      return {
        tensors: owned,
        loss: () => {
          const clean = forward([v1, v2]);
          const zAdv = embedAdv(learner, adv, true);
          const { ce, logits } = probe(clean.first);
          return { loss: tf.addN([C(clean.z), tf.mul(cfg.claeAlpha, C([clean.z[0], zAdv])), ce]) as tf.Scalar, logits };
        },
      };
    }
    case 'acl': {
      // ACL dual stream: loss = 1/2 [NT-Xent(clean pair, clean BN) + NT-Xent(adversarial pair, adversarial BN)].
      const a = aclAttack(learner, v1, v2, groups, seeds.attack);
      owned.push(a.adv, ...a.owned);
      return {
        tensors: owned,
        loss: () => {
          const clean = forward([v1, v2]);
          const [za1, za2] = tf.split(embedAdv(learner, a.adv, true), 2, 0) as tf.Tensor2D[];
          const { ce, logits } = probe(clean.first);
          return { loss: tf.add(tf.mul(0.5, tf.add(C(clean.z), C([za1, za2]))), ce) as tf.Scalar, logits };
        },
      };
    }
    case 'rcl-bound': {
      // Tran et al.: adversarial contrastive loss + w_b benign contrastive loss + w_d divergence, the
      // divergence estimated by a discriminator (benign features "real", adversarial "fake"). Through a
      // gradient-reversal layer the discriminator minimises its cross-entropy while the encoder maximises
      // it (learns to fool it), in the same optimizer step.
      const { adv } = attackOf('rcl-bound', v1, v2);
      return {
        tensors: owned,
        loss: () => {
          const { z, feats, first } = forward([v1, v2, adv]);
          const { ce, logits } = probe(first);
          const d = learner.discriminator!;
          const real = d.apply(reverseGradient(feats[0])) as tf.Tensor2D;
          const fake = d.apply(reverseGradient(feats[2])) as tf.Tensor2D;
          // Binary cross-entropy with logits: -log sigmoid(real) - log(1 - sigmoid(fake)).
          const divergence = tf.add(tf.mean(tf.softplus(tf.neg(real))), tf.mean(tf.softplus(fake)));
          return {
            loss: tf.addN([C([z[2], z[1]]), tf.mul(cfg.rclBenignWeight, C([z[0], z[1]])), tf.mul(cfg.rclDivergenceWeight, divergence), ce]) as tf.Scalar,
            logits,
          };
        },
      };
    }
    default:
      throw new Error(`method '${cfg.method}' is not a contrastive method`);
  }
}

/** Views, attacks and the loss closure of one batch for the learner's scheme and method. */
export function prepareBatch(learner: Learner, x: tf.Tensor4D, y: tf.Tensor1D, seeds: BatchSeeds): PreparedBatch {
  return learner.cfg.scheme === 'sl' ? prepareSupervised(learner, x, y, seeds) : prepareContrastive(learner, x, y, seeds);
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
    const objective = wd === 0 || decayed.length === 0 ? loss : (tf.add(loss, tf.mul(0.5 * wd, tf.addN(decayed.map((v) => tf.sum(tf.square(v)))))) as tf.Scalar);
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
