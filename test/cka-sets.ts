import { makeRng } from '../src/util/rng.js';
import type { ActivationSet } from '../src/formats/activations.js';

/** Synthetic activation sets shared by the CKA engine tests. */

export function randomSet(name: string, dim: number, seed: number, n: number): ActivationSet {
  const rng = makeRng(seed);
  return { name, n, dim, data: Float32Array.from({ length: n * dim }, () => rng() * 2 - 1) };
}

/** Shares `base`'s first columns (scaled) plus noise, so CKA with it is well inside (0, 1). */
export function relatedSet(name: string, base: ActivationSet, dim: number, seed: number): ActivationSet {
  const s = randomSet(name, dim, seed, base.n);
  for (let i = 0; i < base.n; i++) for (let j = 0; j < Math.min(dim, base.dim); j++) s.data[i * dim + j] += 2 * base.data[i * base.dim + j];
  return s;
}

/** The set plus a constant: CKA is invariant to it, so a centring bug shows. */
export function withOffset(set: ActivationSet, offset: number, name = `${set.name}+${offset}`): ActivationSet {
  return { ...set, name, data: Float32Array.from(set.data, (v) => v + offset) };
}
