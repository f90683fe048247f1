import type { MethodSpec } from './spec.js';

/**
 * Tran et al., "Generalization Bounds for Robust Contrastive Learning" (2023): PGD (the run's attack
 * options) on v1 against v2; loss = NT-Xent(adv, v2) + w_b NT-Xent(v1, v2) + w_d D, D the cross-entropy
 * of a discriminator on pooled features (v1 "real", adv "fake") that the encoder learns to fool.
 */
export const rclBound: MethodSpec = {
  regime: 'at',
  schemes: ['cl', 'scl'],
  defaultFor: [],
  params: [
    { key: 'rclBenignWeight', flag: 'rcl-benign-weight', default: 1, range: { min: 0 }, help: 'rcl-bound: w_b, weight of the benign contrastive loss' },
    { key: 'rclDivergenceWeight', flag: 'rcl-divergence-weight', default: 0.1, range: { min: 0 }, help: 'rcl-bound: w_d, weight of the discriminator divergence' },
    { key: 'discHidden', flag: 'disc-hidden', default: 64, range: { min: 1, integer: true }, help: 'rcl-bound: hidden units of the discriminator' },
  ],
  contrastive: {
    attack: { attacked: 'v1', partner: 'v2', stream: 'main', options: (attack, seed) => ({ ...attack, seed }) },
    parts: [
      { image: 'v1', stream: 'main' },
      { image: 'v2', stream: 'main' },
      { image: 'adv', stream: 'main' },
    ],
    terms: [
      { parts: [2, 1], weight: () => 1 },
      { parts: [0, 1], weight: (cfg) => cfg.rclBenignWeight },
    ],
    divergence: { real: 0, fake: 2, weight: (cfg) => cfg.rclDivergenceWeight },
  },
};
