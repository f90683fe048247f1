import * as tf from '@tensorflow/tfjs';
import type { PerSampleLoss } from './pgd.js';

/**
 * Per-sample NT-Xent (SimCLR) of anchors z against their positives p, with in-batch negatives:
 *   l_i = -log( exp(s(z_i, p_i)/tau) / (sum_j exp(s(z_i, p_j)/tau) + sum_{j != i} exp(s(z_i, z_j)/tau)) )
 * s = cosine similarity. The negatives are every other positive and every other anchor, as in the
 * 2N-view loss seen from one anchor. Pure tensor math.
 */
export function ntXentPerSample(z: tf.Tensor2D, p: tf.Tensor2D, temperature: number): tf.Tensor1D {
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
 * The contrastive-loss attack objective ("threat model I" of the reference study): push the
 * embedding of x + delta away from its positive (the clean input's embedding, or another view's)
 * relative to the rest of the batch. `embed` maps images to embeddings (a projection head's output,
 * or the encoder's pooled features when the model has none); no labels are used.
 */
export function contrastiveLoss(embed: (x: tf.Tensor4D) => tf.Tensor2D, positives: tf.Tensor2D, temperature = 0.5): PerSampleLoss {
  return (x) => tf.tidy(() => ntXentPerSample(embed(x), positives, temperature));
}
