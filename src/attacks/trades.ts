import * as tf from '@tensorflow/tfjs';
import { pgdAttack, type PerSampleLoss, type PgdOptions } from './pgd.js';

/** KL(p || q) per sample for logits (TRADES' robustness term). */
export function klPerSample(pLogits: tf.Tensor2D, qLogits: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(pLogits);
    return tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, tf.logSoftmax(qLogits))), 1) as tf.Tensor1D;
  });
}

/** An attack's adversarial batch, the per-sample objective it maximised, and tensors the caller disposes. */
export interface TradesAttack {
  adv: tf.Tensor4D;
  objective: PerSampleLoss;
  owned: tf.Tensor[];
}

/**
 * TRADES (Zhang et al. 2019): PGD maximising KL(f(x) || f(x')) from a random start in the ball (the KL
 * and its gradient are zero at x itself, so the random start is not optional). Model in inference mode.
 * Used by `sl --method trades` training and by TRADES fine-tuning (ACL's, `finetune --objective trades`).
 */
export function tradesAttack(model: tf.LayersModel, x: tf.Tensor4D, attack: PgdOptions, seed: number): TradesAttack {
  const clean = tf.tidy(() => model.apply(x, { training: false }) as tf.Tensor2D);
  const objective: PerSampleLoss = (xa) => klPerSample(clean, model.apply(xa, { training: false }) as tf.Tensor2D);
  const adv = pgdAttack(objective, x, { ...attack, randomStart: true, seed });
  return { adv, objective, owned: [clean] };
}
