import type { MethodSpec } from './spec.js';

/**
 * CLAE (Ho & Vasconcelos, NeurIPS 2020): one FGSM step (size eps, no random start, whatever the run's
 * step options say) on v1 maximising the batch NT-Xent against v2; loss = NT-Xent(z1, z2)
 * + alpha NT-Xent(z1, z_adv), the adversarial batch through the auxiliary BatchNorm stream (its own
 * parameters and running statistics; convolutions shared). The attack itself embeds through the main stream.
 */
export const clae: MethodSpec = {
  regime: 'at',
  schemes: ['cl', 'scl'],
  defaultFor: [],
  params: [{ key: 'claeAlpha', flag: 'clae-alpha', default: 1, range: { min: 0 }, help: 'CLAE: weight of NT-Xent(z_i, z_adv)' }],
  contrastive: {
    attack: {
      attacked: 'v1',
      partner: 'v2',
      stream: 'main',
      // fgsmAttack's settings (src/attacks/pgd.ts): one full-size step, so one run whatever attack.restarts says.
      options: (attack) => ({ norm: attack.norm, eps: attack.eps, stepSize: attack.eps, steps: 1, randomStart: false, restarts: 1, seed: 0 }),
    },
    parts: [
      { image: 'v1', stream: 'main' },
      { image: 'v2', stream: 'main' },
      { image: 'adv', stream: 'adv' },
    ],
    terms: [
      { parts: [0, 1], weight: () => 1 },
      { parts: [0, 2], weight: (cfg) => cfg.claeAlpha },
    ],
  },
};
