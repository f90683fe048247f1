import * as tf from '@tensorflow/tfjs';
import type { PerSampleLoss } from './pgd.js';
import { InputError } from '../errors.js';

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

/**
 * Difference of Logits Ratio (Croce & Hein 2020), per sample:
 *   DLR(z, y) = -(z_y - max_{i != y} z_i) / (z_(1) - z_(3) + 1e-12)
 * with z_(1) >= z_(2) >= z_(3) the sorted logits. Invariant to shifting and rescaling the logits,
 * so a model cannot hide behind large or saturated logits (a gradient-masking failure of CE).
 * Needs at least 3 classes. Built from masked maxima because tfjs has no gradient for topk.
 */
export function dlrPerSample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  const k = logits.shape[1];
  if (k < 3) throw new InputError(`DLR loss needs at least 3 classes, the model has ${k}`);
  return tf.tidy(() => {
    const big = 1e9;
    const onehotY = tf.oneHot(tf.cast(labels, 'int32'), k);
    const zy = tf.sum(tf.mul(logits, onehotY), 1);
    const maxOther = tf.max(tf.sub(logits, tf.mul(onehotY, big)), 1);
    // Sorted top-3 values by masking out the running argmax twice.
    const first = tf.max(logits, 1);
    const mask1 = tf.oneHot(tf.argMax(logits, 1), k);
    const rest1 = tf.sub(logits, tf.mul(mask1, big));
    const mask2 = tf.oneHot(tf.argMax(rest1, 1), k);
    const third = tf.max(tf.sub(rest1, tf.mul(mask2, big)), 1);
    return tf.neg(tf.div(tf.sub(zy, maxOther), tf.add(tf.sub(first, third), 1e-12))) as tf.Tensor1D;
  });
}

/** DLR of the true labels, the model in inference mode. */
export function dlrLoss(model: tf.LayersModel, labels: tf.Tensor1D, training = false): PerSampleLoss {
  return (x) => dlrPerSample(model.apply(x, { training }) as tf.Tensor2D, labels);
}

/**
 * Sorted top-m logits per sample, descending ([B, m]), by masking out the running argmax (tfjs has
 * no gradient for topk). The gradient flows to the selected entries, as through a sort.
 */
function topLogits(logits: tf.Tensor2D, m: number): tf.Tensor1D[] {
  const k = logits.shape[1];
  const big = 1e9;
  const out: tf.Tensor1D[] = [];
  let rest: tf.Tensor2D = logits;
  for (let j = 0; j < m; j++) {
    out.push(tf.max(rest, 1) as tf.Tensor1D);
    if (j < m - 1) rest = tf.sub(rest, tf.mul(tf.oneHot(tf.argMax(rest, 1), k), big)) as tf.Tensor2D;
  }
  return out;
}

/**
 * Targeted DLR (Croce & Hein 2020, APGD-T), per sample:
 *   -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2 + 1e-12)
 * with t the target class. Maximising it pushes the target's logit above the true one; like DLR it is
 * invariant to shifting and rescaling the logits. Needs at least 4 classes.
 */
export function targetedDlrPerSample(logits: tf.Tensor2D, labels: tf.Tensor1D, targets: tf.Tensor1D): tf.Tensor1D {
  const k = logits.shape[1];
  if (k < 4) throw new InputError(`targeted DLR loss (APGD-T) needs at least 4 classes, the model has ${k}`);
  return tf.tidy(() => {
    const zy = tf.sum(tf.mul(logits, tf.oneHot(tf.cast(labels, 'int32'), k)), 1);
    const zt = tf.sum(tf.mul(logits, tf.oneHot(tf.cast(targets, 'int32'), k)), 1);
    const [first, , third, fourth] = topLogits(logits, 4);
    const scale = tf.add(tf.sub(first, tf.mul(0.5, tf.add(third, fourth))), 1e-12);
    return tf.neg(tf.div(tf.sub(zy, zt), scale)) as tf.Tensor1D;
  });
}

/** Margin z_y - max_{i != y} z_i per sample: positive while the sample is classified correctly (Square's loss). */
export function marginPerSample(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]);
    const zy = tf.sum(tf.mul(logits, onehot), 1);
    const other = tf.max(tf.sub(logits, tf.mul(onehot, 1e9)), 1);
    return tf.sub(zy, other) as tf.Tensor1D;
  });
}
