import * as tf from '@tensorflow/tfjs';
import { crossEntropyPerSample } from '../../attacks/losses.js';
import { klPerSample, tradesAttack } from '../../attacks/trades.js';
import type { MethodSpec } from './spec.js';

/** TRADES (Zhang et al., ICML 2019): CE(f(x), y) + beta KL(f(x) || f(x_adv)), x_adv = PGD on the KL from a random start. */
export const trades: MethodSpec = {
  regime: 'at',
  schemes: ['sl'],
  defaultFor: [],
  params: [{ key: 'tradesBeta', flag: 'trades-beta', default: 6, range: { min: 0 }, help: 'TRADES: weight of the KL term' }],
  supervised: {
    prepare: (model, cfg, view, y, attackSeed) => {
      const { adv, owned } = tradesAttack(model, view, cfg.attack, attackSeed);
      const n = view.shape[0];
      return {
        tensors: [adv, ...owned],
        loss: () => {
          const logits = model.apply(tf.concat([view, adv], 0), { training: true }) as tf.Tensor2D;
          const [c, a] = tf.split(logits, [n, n], 0) as [tf.Tensor2D, tf.Tensor2D];
          const loss = tf.add(tf.mean(crossEntropyPerSample(c, y)), tf.mul(cfg.tradesBeta, tf.mean(klPerSample(c, a)))) as tf.Scalar;
          return { loss, logits: c };
        },
      };
    },
  },
};
