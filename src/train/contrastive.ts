import * as tf from '@tensorflow/tfjs';

/**
 * Contrastive losses on L2-normalised embeddings.
 *
 * One function covers NT-Xent (SimCLR), SupCon and multi-view variants: given M embeddings and a
 * group id per embedding, anchor i's positives are the other embeddings of its group and its
 * denominator runs over every other embedding:
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
