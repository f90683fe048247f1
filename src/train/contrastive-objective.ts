import * as tf from '@tensorflow/tfjs';
import { crossEntropyPerSample } from '../attacks/losses.js';
import { contrastivePerImage, symmetricContrastiveLoss } from '../attacks/contrastive.js';
import { pgdAttack, type PerSampleLoss } from '../attacks/pgd.js';
import { embedImages, projectFeatures } from '../models/projection.js';
import { reverseGradient, stopGradient } from './gradients.js';
import type { Learner } from './learner.js';
import type { ContrastiveAttackSpec, ContrastiveSpec, PartImage, Stream } from './methods/spec.js';

/**
 * The one objective of every contrastive method (a ContrastiveSpec of src/train/methods/), run by the
 * single-thread step (methods.ts) and by each data-parallel replica (replica.ts). The replica passes a
 * `widen` that puts the other shards' embeddings (constants) around its own, so its loss is the
 * full-batch loss seen through its own images; on one thread the batch is the whole batch.
 */

/** Puts this thread's embeddings of one part (or attacked view) among the whole batch's; identity on one thread. */
export type Widen = (index: number, own: tf.Tensor2D) => tf.Tensor2D;

/** image -> pooled features through a BatchNorm stream. */
export function streamFeatures(learner: Learner, stream: Stream): tf.LayersModel {
  const net = stream === 'main' ? learner.features : learner.advFeatures;
  if (!net) throw new Error(`the learner has no '${stream}' BatchNorm stream (a bug: its method spec needs one)`);
  return net;
}

/** L2-normalised projection of images through a BatchNorm stream (training mode updates its statistics). */
export function embedStream(learner: Learner, stream: Stream, x: tf.Tensor4D, training: boolean): tf.Tensor2D {
  return embedImages(streamFeatures(learner, stream), learner.head!, x, training);
}

/**
 * Training-mode forward of the parts by stream (one forward per stream, that stream's parts concatenated
 * in order, one BatchNorm batch): per part its L2-normalised projection and its pooled features.
 */
export function forwardParts(learner: Learner, parts: tf.Tensor4D[], streams: Stream[]): { z: tf.Tensor2D[]; feats: tf.Tensor2D[] } {
  const z: tf.Tensor2D[] = new Array(parts.length);
  const featsOf: tf.Tensor2D[] = new Array(parts.length);
  for (const stream of ['main', 'adv'] as const) {
    const idx = parts.map((_, i) => i).filter((i) => streams[i] === stream);
    if (idx.length === 0) continue;
    const feats = streamFeatures(learner, stream).apply(idx.length === 1 ? parts[idx[0]] : tf.concat(idx.map((i) => parts[i]), 0), { training: true }) as tf.Tensor2D;
    const emb = projectFeatures(learner.head!, feats, true);
    // (Backprop through a one-way tf.split fails in tfjs 4.22 with "Pass at least one tensor to concat", so one part is not split.)
    const sizes = idx.map((i) => parts[i].shape[0]);
    const zs = idx.length === 1 ? [emb] : (tf.split(emb, sizes, 0) as tf.Tensor2D[]);
    const fs = idx.length === 1 ? [feats] : (tf.split(feats, sizes, 0) as tf.Tensor2D[]);
    idx.forEach((i, j) => {
      z[i] = zs[j];
      featsOf[i] = fs[j];
    });
  }
  return { z, feats: featsOf };
}

/** A contrastive objective's value, split by how it shards. */
export interface ContrastiveLossValue {
  /** The full-batch contrastive terms: sum of weight * mean contrastivePerImage(parts). */
  contrast: tf.Scalar;
  /**
   * Means over this thread's samples: the online linear head's clean cross-entropy on part 0's detached
   * features, plus the divergence (rcl-bound). Data-parallel shards weight theirs by their share.
   */
  local: tf.Scalar;
  /** The online head's logits of part 0 (the batch accuracy). */
  logits: tf.Tensor2D;
}

/**
 * The training loss of a contrastive spec over its parts (training-mode forward; call inside
 * tf.variableGrads). `y` are this thread's labels, `groups` the whole batch's contrastive group ids.
 * One thread's loss is contrast + local.
 */
export function contrastiveObjective(learner: Learner, spec: ContrastiveSpec, parts: tf.Tensor4D[], y: tf.Tensor1D, groups: tf.Tensor1D, widen?: Widen): ContrastiveLossValue {
  const { cfg } = learner;
  const { z, feats } = forwardParts(learner, parts, spec.parts.map((p) => p.stream));
  const all = (part: number) => (widen ? widen(part, z[part]) : z[part]);
  const contrast = tf.addN(
    spec.terms.map((t) => {
      const c = tf.mean(contrastivePerImage(t.parts.map(all), groups, cfg.temperature));
      const w = t.weight(cfg);
      return w === 1 ? c : tf.mul(w, c);
    }),
  ) as tf.Scalar;
  // The online linear head on detached features: the study's clean linear probe, learned during pre-training.
  const logits = learner.model.getLayer('logits').apply(stopGradient(feats[0])) as tf.Tensor2D;
  let local = tf.mean(crossEntropyPerSample(logits, y)) as tf.Scalar;
  if (spec.divergence) {
    // The discriminator minimises its binary cross-entropy with logits, -log sigmoid(real) - log(1 - sigmoid(fake)),
    // while the encoder, behind reverseGradient, maximises it (learns to fool it), in the same optimizer step.
    const d = learner.discriminator!;
    const real = d.apply(reverseGradient(feats[spec.divergence.real])) as tf.Tensor2D;
    const fake = d.apply(reverseGradient(feats[spec.divergence.fake])) as tf.Tensor2D;
    const divergence = tf.add(tf.mean(tf.softplus(tf.neg(real))), tf.mean(tf.softplus(fake)));
    local = tf.add(local, tf.mul(spec.divergence.weight(cfg), divergence)) as tf.Scalar;
  }
  return { contrast, local, logits };
}

/**
 * The symmetric contrastive attack objective of a spec's attack (src/attacks/contrastive.ts), the
 * attacked images embedded in inference mode through the attack's stream: against `partner` (the fixed
 * embeddings of the partner images, the whole batch's), or, for the pair [v1; v2] (partner null), of its
 * two halves. Per attacked sample: a pair's two halves share their image's value, halved, so the sum (what
 * PGD ascends) is the batch loss and restarts can choose per sample.
 */
export function contrastiveAttackObjective(learner: Learner, attack: ContrastiveAttackSpec, partner: tf.Tensor2D | null, groups: tf.Tensor1D, widen?: Widen): PerSampleLoss {
  const wide = (i: number, z: tf.Tensor2D) => (widen ? widen(i, z) : z);
  const perImage = symmetricContrastiveLoss(
    (xa) => {
      const emb = embedStream(learner, attack.stream, xa, false);
      if (partner) return [wide(0, emb), partner];
      return (tf.split(emb, 2, 0) as tf.Tensor2D[]).map((h, i) => wide(i, h));
    },
    groups,
    learner.cfg.temperature,
  );
  if (partner) return perImage;
  return (xa) => tf.tidy(() => {
    const v = perImage(xa);
    return tf.div(tf.concat([v, v], 0), 2) as tf.Tensor1D;
  });
}

/** The images of a contrastive batch, by name (adv once attacked). */
export interface BatchImages {
  x: tf.Tensor4D;
  v1: tf.Tensor4D;
  v2: tf.Tensor4D;
  adv?: tf.Tensor4D;
}

/** What an attack perturbs (a new tensor for the pair [v1; v2]; the caller disposes it then). */
export function attackedImages(attack: ContrastiveAttackSpec, images: BatchImages): tf.Tensor4D {
  return attack.attacked === 'pair' ? (tf.concat([images.v1, images.v2], 0) as tf.Tensor4D) : images[attack.attacked];
}

/** The images whose embeddings are the attack's fixed partner, or null (the pair attacks its own views). */
export function partnerImages(attack: ContrastiveAttackSpec, images: BatchImages): tf.Tensor4D | null {
  return attack.partner === null ? null : images[attack.partner];
}

/**
 * The images of a spec's training forward, in part order. adv1 and adv2 (halves of the pair's adv) are
 * new tensors, listed in `made` for the caller to dispose.
 */
export function trainingParts(spec: ContrastiveSpec, images: BatchImages): { parts: tf.Tensor4D[]; made: tf.Tensor4D[] } {
  const made: tf.Tensor4D[] = [];
  let halves: tf.Tensor4D[] | null = null;
  const image = (name: PartImage): tf.Tensor4D => {
    if (name === 'adv1' || name === 'adv2') {
      if (!images.adv) throw new Error(`part '${name}' without an attack (a bug in the method spec)`);
      if (!halves) made.push(...(halves = tf.split(images.adv, 2, 0) as tf.Tensor4D[]));
      return halves[name === 'adv1' ? 0 : 1];
    }
    const t = images[name];
    if (!t) throw new Error(`part '${name}' without an attack (a bug in the method spec)`);
    return t;
  };
  return { parts: spec.parts.map((p) => image(p.image)), made };
}

/** A method's attack: the adversarial batch, the objective it maximised, and tensors to dispose. */
export interface MethodAttack {
  adv: tf.Tensor4D;
  objective: PerSampleLoss;
  owned: tf.Tensor[];
}

/** A spec's attack on one thread: PGD with the spec's options on the symmetric objective. */
export function runContrastiveAttack(learner: Learner, attack: ContrastiveAttackSpec, attacked: tf.Tensor4D, partnerImgs: tf.Tensor4D | null, groups: tf.Tensor1D, seed: number): MethodAttack {
  const partner = partnerImgs ? embedStream(learner, attack.stream, partnerImgs, false) : null;
  const objective = contrastiveAttackObjective(learner, attack, partner, groups);
  const adv = pgdAttack(objective, attacked, attack.options(learner.cfg.attack, seed));
  return { adv, objective, owned: partner ? [partner] : [] };
}
