import type { MethodSpec } from './spec.js';

/**
 * The study's contrastive AT (Ghofrani et al. 2023): PGD on the un-augmented x maximising
 * contrastive(x, x + delta) (the run's attack options: no random start in the study's settings);
 * loss = contrastive(x, x_adv) + contrastive(v1, v2). The online head reads x's features.
 */
export const studyAt: MethodSpec = {
  regime: 'at',
  schemes: ['cl', 'scl'],
  defaultFor: ['cl', 'scl'],
  params: [],
  contrastive: {
    attack: { attacked: 'x', partner: 'x', stream: 'main', options: (attack, seed) => ({ ...attack, seed }) },
    parts: [
      { image: 'x', stream: 'main' },
      { image: 'adv', stream: 'main' },
      { image: 'v1', stream: 'main' },
      { image: 'v2', stream: 'main' },
    ],
    terms: [
      { parts: [0, 1], weight: () => 1 },
      { parts: [2, 3], weight: () => 1 },
    ],
  },
};
