import * as tf from '@tensorflow/tfjs';
import type { PerSampleLoss } from './pgd.js';

/** Per-sample softmax cross-entropy of integer labels. */
export function crossEntropyPerSample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]);
    return tf.neg(tf.sum(tf.mul(logp, onehot), 1)) as tf.Tensor1D;
  });
}

/**
 * The usual untargeted attack objective: cross-entropy of the true labels, with the model in
 * inference mode (BatchNorm uses its running statistics, nothing is updated).
 */
export function crossEntropyLoss(model: tf.LayersModel, labels: tf.Tensor1D, training = false): PerSampleLoss {
  return (x) => crossEntropyPerSample(model.apply(x, { training }) as tf.Tensor2D, labels);
}
