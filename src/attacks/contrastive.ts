import * as tf from '@tensorflow/tfjs';
import type { PerSampleLoss } from './pgd.js';

/**
 * Contrastive losses on embeddings, and the two contrastive attack objectives built on them, side by
 * side (docs/evaluation.md, "Two contrastive attack objectives"):
 *   one-sided (oneSidedContrastiveLoss): per attacked image, only its own anchor's NT-Xent against its
 *     clean positive. Threat model I of evaluation and capture (`contrastive[N]`, `--attack-loss contrastive`).
 *   symmetric (symmetricContrastiveLoss): per image, the mean over all its views' anchors of the
 *     multi-view NT-Xent / SupCon loss (groupContrastivePerAnchor), the positive's anchor included: the
 *     training loss itself, which the contrastive AT methods (src/train/methods/) attack while training.
 */

/**
 * The group contrastive loss per anchor, covering NT-Xent (SimCLR), SupCon and multi-view variants:
 * given M L2-normalised embeddings and a group id per embedding, anchor i's positives are the other
 * embeddings of its group and its denominator runs over every other embedding:
 *   l_i = -1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p / tau) / sum_{a != i} exp(z_i.z_a / tau) ).
 * NT-Xent over 2N views is the case "group = image index" (one positive, 2N-2 negatives); SupCon
 * (Khosla et al. 2020, L_out) is "group = class label".
 */
export function groupContrastivePerAnchor(z: tf.Tensor2D, groups: tf.Tensor1D, temperature: number): tf.Tensor1D {
  return tf.tidy(() => {
    const m = z.shape[0];
    const self = tf.cast(tf.eye(m), 'bool');
    const sim = tf.div(tf.matMul(z, z, false, true), temperature);
    // Exclude the anchor from its own denominator with a large negative logit (exp underflows to 0).
    const masked = tf.where(self, tf.fill([m, m], -1e9), sim);
    const logProb = tf.sub(masked, tf.logSumExp(masked, 1, true));
    const g = tf.cast(groups, 'int32');
    const same = tf.logicalAnd(tf.equal(tf.expandDims(g, 1), tf.expandDims(g, 0)), tf.logicalNot(self));
    const pos = tf.cast(same, 'float32');
    const count = tf.maximum(tf.sum(pos, 1), 1);
    return tf.neg(tf.div(tf.sum(tf.mul(pos, tf.where(same, logProb, tf.zerosLike(logProb))), 1), count)) as tf.Tensor1D;
  });
}

/**
 * Contrastive loss over V views of the same N images (each [N, d], L2-normalised), averaged per image
 * over its V anchors: returns [N]. `groups` [N] are image indices (self-supervised) or labels (SupCon).
 */
export function contrastivePerImage(views: tf.Tensor2D[], groups: tf.Tensor1D, temperature: number): tf.Tensor1D {
  return tf.tidy(() => {
    const n = views[0].shape[0];
    const perAnchor = groupContrastivePerAnchor(tf.concat(views, 0), tf.tile(groups, [views.length]), temperature);
    return tf.mean(tf.reshape(perAnchor, [views.length, n]), 0) as tf.Tensor1D;
  });
}

/** Group ids for a batch: the image index for 'cl' (instance discrimination), the label for 'scl'. */
export function contrastiveGroups(scheme: 'cl' | 'scl', labels: tf.Tensor1D): tf.Tensor1D {
  return scheme === 'scl' ? tf.cast(labels, 'int32') : (tf.range(0, labels.shape[0], 1, 'int32') as tf.Tensor1D);
}

/**
 * Per-sample one-sided NT-Xent (SimCLR) of anchors z against their positives p, with in-batch negatives:
 *   l_i = -log( exp(s(z_i, p_i)/tau) / (sum_j exp(s(z_i, p_j)/tau) + sum_{j != i} exp(s(z_i, z_j)/tau)) )
 * s = cosine similarity (z and p need not be normalised). The negatives are every other positive and
 * every other anchor, as in the 2N-view loss seen from the anchors z only. Pure tensor math.
 */
export function oneSidedNtXentPerSample(z: tf.Tensor2D, p: tf.Tensor2D, temperature: number): tf.Tensor1D {
  return tf.tidy(() => {
    const n = z.shape[0];
    const zn = tf.div(z, tf.add(tf.norm(z, 2, 1, true), 1e-12));
    const pn = tf.div(p, tf.add(tf.norm(p, 2, 1, true), 1e-12));
    const toPositives = tf.div(tf.matMul(zn, tf.transpose(pn)), temperature);
    // A large negative on the diagonal removes each anchor's similarity with itself.
    const toAnchors = tf.sub(tf.div(tf.matMul(zn, tf.transpose(zn)), temperature), tf.mul(tf.eye(n), 1e9));
    const logits = tf.concat([toPositives, toAnchors], 1);
    const logp = tf.logSoftmax(logits);
    const positive = tf.concat([tf.eye(n), tf.zeros([n, n])], 1);
    return tf.neg(tf.sum(tf.mul(logp, positive), 1)) as tf.Tensor1D;
  });
}

/**
 * The one-sided contrastive attack objective, threat model I of evaluation and capture: push the
 * embedding of x + delta away from its positive (the clean input's embedding, or another view's)
 * relative to the rest of the batch, as seen from the attacked anchors only. `embed` maps images to
 * embeddings (a projection head's output, or the encoder's pooled features when the model has none);
 * no labels are used.
 */
export function oneSidedContrastiveLoss(embed: (x: tf.Tensor4D) => tf.Tensor2D, positives: tf.Tensor2D, temperature = 0.5): PerSampleLoss {
  return (x) => tf.tidy(() => oneSidedNtXentPerSample(embed(x), positives, temperature));
}

/**
 * The symmetric contrastive attack objective, the training attack of the contrastive AT methods: the
 * attacked batch's images embed to V views of the same N images (`embedViews`: e.g. [z(x + delta), a
 * fixed partner embedding], or ACL's two perturbed views), and per image the objective is the mean over
 * its V anchors of the group contrastive loss (contrastivePerImage: NT-Xent for image groups, SupCon for
 * label groups), the partner's anchors included, so it equals the method's own training term. Returns [N].
 */
export function symmetricContrastiveLoss(embedViews: (x: tf.Tensor4D) => tf.Tensor2D[], groups: tf.Tensor1D, temperature: number): PerSampleLoss {
  return (x) => tf.tidy(() => contrastivePerImage(embedViews(x), groups, temperature));
}

/** Former names, kept for existing callers: ntXentPerSample = oneSidedNtXentPerSample, contrastiveLoss = oneSidedContrastiveLoss. */
export const ntXentPerSample = oneSidedNtXentPerSample;
export const contrastiveLoss = oneSidedContrastiveLoss;
