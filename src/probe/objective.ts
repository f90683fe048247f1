import * as tf from '@tensorflow/tfjs';
import { crossEntropyLoss, crossEntropyPerSample } from '../attacks/losses.js';
import { pgdAttack, type PgdOptions } from '../attacks/pgd.js';
import { klPerSample, tradesAttack } from '../attacks/trades.js';
import type { FineTuneObjective } from './meta.js';

/** What the adversarial fine-tuning loss needs from the run's configuration. */
export interface ObjectiveSettings {
  objective: FineTuneObjective;
  attack: PgdOptions;
  advWeight: number;
  tradesBeta: number;
}

/**
 * The adversarial batch of one fine-tuning step, made against the current model in inference mode
 * (as in adversarial training): PGD on CE for ce-ce, PGD on KL(p(x) || p(x')) for trades.
 * The caller disposes `adv` and `owned`.
 */
export function fineTuneAttack(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, s: ObjectiveSettings, seed: number): { adv: tf.Tensor4D; owned: tf.Tensor[] } {
  if (s.objective === 'trades') {
    const { adv, owned } = tradesAttack(model, x, s.attack, seed);
    return { adv, owned };
  }
  return { adv: pgdAttack(crossEntropyLoss(model, y), x, { ...s.attack, seed }), owned: [] };
}

/**
 * The scalar a fine-tuning step minimises: CE(clean) alone without an adversarial batch, else
 * CE(clean) + w CE(adv) (ce-ce) or CE(clean) + beta KL(p_clean || p_adv) (trades; the gradient flows
 * through both distributions, as in the TRADES reference code). Clean and adversarial batches are
 * separate forward passes (separate BatchNorm batches in training mode), as in both references.
 */
export function fineTuneLoss(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, adv: tf.Tensor4D | undefined, s: ObjectiveSettings, training: boolean): tf.Scalar {
  return tf.tidy(() => {
    const cleanLogits = model.apply(x, { training }) as tf.Tensor2D;
    const clean = tf.mean(crossEntropyPerSample(cleanLogits, y));
    if (!adv) return clean as tf.Scalar;
    const advLogits = model.apply(adv, { training }) as tf.Tensor2D;
    const robust = s.objective === 'trades' ? tf.mul(s.tradesBeta, tf.mean(klPerSample(cleanLogits, advLogits))) : tf.mul(s.advWeight, tf.mean(crossEntropyPerSample(advLogits, y)));
    return tf.add(clean, robust) as tf.Scalar;
  });
}
