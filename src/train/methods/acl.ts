import type { MethodSpec } from './spec.js';

/**
 * ACL (Jiang et al., NeurIPS 2020, dual stream): both views perturbed jointly by PGD maximising the
 * NT-Xent of the adversarial pair through the adversarial BatchNorm stream; loss = 1/2 [NT-Xent(clean
 * pair, clean BN) + NT-Xent(adversarial pair, adversarial BN)]. Its full fine-tuning is TRADES.
 */
export const acl: MethodSpec = {
  regime: 'at',
  schemes: ['cl', 'scl'],
  defaultFor: [],
  params: [],
  contrastive: {
    attack: { attacked: 'pair', partner: null, stream: 'adv', options: (attack, seed) => ({ ...attack, seed }) },
    parts: [
      { image: 'v1', stream: 'main' },
      { image: 'v2', stream: 'main' },
      { image: 'adv1', stream: 'adv' },
      { image: 'adv2', stream: 'adv' },
    ],
    terms: [
      { parts: [0, 1], weight: () => 0.5 },
      { parts: [2, 3], weight: () => 0.5 },
    ],
  },
  fullFineTuneObjective: 'trades',
};
