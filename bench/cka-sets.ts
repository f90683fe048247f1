import type { ActivationSet } from '../src/formats/activations.js';

/**
 * Synthetic activation sets shaped like a CIFAR ResNet-18 hooked at 18 points (stem, the 16 convs
 * of the 8 basic blocks, pooled features) on clean and adversarial inputs: 36 sets. With base width
 * w the flattened widths are w*32*32 (stem and stage 1), 2w*16*16, 4w*8*8, 8w*4*4 and 8w (pool);
 * w = 64 is the real ResNet-18, w = 16 its quarter-width version.
 * Values: a shared low-rank signal per layer plus noise, the adversarial set a perturbed copy, so
 * CKA values are spread over (0, 1) like real ones. Fast xorshift noise (timings, not statistics).
 */
export function resnet18Widths(w: number): number[] {
  return [
    ...Array<number>(5).fill(w * 32 * 32),
    ...Array<number>(4).fill(2 * w * 16 * 16),
    ...Array<number>(4).fill(4 * w * 8 * 8),
    ...Array<number>(4).fill(8 * w * 4 * 4),
    8 * w,
  ];
}

export function syntheticSets(n: number, widths: number[], seed = 1): ActivationSet[] {
  let s = seed >>> 0 || 1;
  const rand = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296 - 0.5;
  };
  const rank = 8;
  const latent = Float32Array.from({ length: n * rank }, rand);
  const sets: ActivationSet[] = [];
  for (const kind of ['clean', 'adv']) {
    widths.forEach((dim, layer) => {
      // In a SharedArrayBuffer so worker threads can read it without a copy.
      const data = new Float32Array(new SharedArrayBuffer(4 * n * dim));
      const mix = 0.5 + layer / widths.length; // later layers: more signal
      for (let i = 0; i < n; i++) {
        const row = i * dim;
        for (let j = 0; j < dim; j++) {
          const signal = latent[i * rank + ((j + layer) % rank)];
          data[row + j] = mix * signal + rand() + (kind === 'adv' ? 0.3 * rand() : 0);
        }
      }
      sets.push({ name: `l${String(layer + 1).padStart(2, '0')}@${kind}`, n, dim, data });
    });
  }
  return sets;
}
