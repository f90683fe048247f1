import * as tf from '@tensorflow/tfjs';
import { crossEntropyLoss, crossEntropyPerSample } from '../../attacks/losses.js';
import { pgdAttack } from '../../attacks/pgd.js';
import type { MethodSpec } from './spec.js';

/** Madry et al. (ICLR 2018): cross-entropy on PGD examples that maximise the cross-entropy. */
export const pgd: MethodSpec = {
  regime: 'at',
  schemes: ['sl'],
  defaultFor: ['sl'],
  params: [],
  supervised: {
    prepare: (model, cfg, view, y, attackSeed) => {
      const adv = pgdAttack(crossEntropyLoss(model, y), view, { ...cfg.attack, seed: attackSeed });
      return {
        tensors: [adv],
        loss: () => {
          const logits = model.apply(adv, { training: true }) as tf.Tensor2D;
          return { loss: tf.mean(crossEntropyPerSample(logits, y)) as tf.Scalar, logits };
        },
      };
    },
  },
};
