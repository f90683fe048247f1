import type { MethodSpec } from './spec.js';

/**
 * RoCL (Kim, Tack, Hwang, NeurIPS 2020): instance-wise attack on v1 (always from a uniform random
 * start) against v2 with in-batch negatives; loss = NT-Xent over the three views {v1, v2, adv}
 * + (1/lambda) NT-Xent(adv, v2).
 */
export const rocl: MethodSpec = {
  regime: 'at',
  schemes: ['cl', 'scl'],
  defaultFor: [],
  params: [{ key: 'roclLambda', flag: 'rocl-lambda', default: 256, range: { min: 0, strict: true }, help: 'RoCL: the NT-Xent(adv, t2) regulariser is weighted 1/lambda' }],
  contrastive: {
    attack: { attacked: 'v1', partner: 'v2', stream: 'main', options: (attack, seed) => ({ ...attack, randomStart: true, seed }) },
    parts: [
      { image: 'v1', stream: 'main' },
      { image: 'v2', stream: 'main' },
      { image: 'adv', stream: 'main' },
    ],
    terms: [
      { parts: [0, 1, 2], weight: () => 1 },
      { parts: [2, 1], weight: (cfg) => 1 / cfg.roclLambda },
    ],
  },
};
