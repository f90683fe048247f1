import { InputError } from '../../errors.js';

/**
 * Which formulation computes a batch's unbiased HSIC terms, chosen per set by a flop model.
 *
 * Gram: set k's U-centred Gram U(K) (b x b, costing 2 b^2 d_k) is formed and every pair of Gram
 * sets comes from one product G G^T (2 b^2 g^2 for g Gram sets).
 * Feature: with Z (b x D) the concatenated features, every pair's tr(K L) = ||X^T Y||_F^2 is a
 * block of Z_F^T Z (2 b D_F D for the feature sets F against all sets), and the rest of the unbiased
 * HSIC needs only the Gram diagonals and K 1 = X (X^T 1) (see feature-hsic.ts). A pair with at
 * least one feature set uses it; a pair of Gram sets uses G G^T.
 *
 * Summed over pairs the feature path costs b D^2 against the Gram path's b^2 D: it pays when the
 * total width of the feature sets is of the order of the batch or less, not merely when each set
 * is narrower than the batch. Candidates are "the j narrowest sets are feature sets" for j = 0..m;
 * the cheapest by the model below wins (ties go to the Gram path).
 */
export type Formulation = 'auto' | 'gram' | 'feature';

export const FORMULATIONS: readonly Formulation[] = ['auto', 'gram', 'feature'];

/**
 * Cost of one elementwise pass over one element, in flops of the matMuls. Set by measurement
 * (`npm run bench:cka-formulation`, wasm, b = 256 and 1024, 12 sets of equal width): both paths'
 * matMuls ran at about the same rate, but each Gram set costs about 400 such flops per b x b entry
 * beyond its product (U-centring, stacking and regrouping: ~8 elementwise passes), which is what
 * makes narrow sets expensive on the Gram path. With these weights the model's crossover (total
 * width D ~ 0.8-3 b) falls where the measured one did. With native OpenBLAS the same weights still
 * fit (re-measured, b = 256, m = 12, load ~6: the feature path was faster up to D = 768 and the Gram
 * path from D = 1536, where the model switches too): OpenBLAS speeds up both paths' products, the
 * feature path's Z^T Z as much as the Grams, so the crossover did not move.
 */
const ELEMENTWISE_WEIGHT = 50;
const GRAM_PASSES = 8;
/**
 * Fixed cost of one kernel launch (small batches: many small ops), in flops: ~30 us at the
 * ~10 GFLOP/s the wasm matMuls reached. Kernels per Gram set ~10, per feature set ~6, per
 * replicate ~3 + 2 gathers (Gram) and ~8 (feature).
 */
const KERNEL_FLOPS = 300_000;

/** Flops (weighted) of one batch with `feature[k]` saying whether set k takes the feature path. */
export function batchFlops(b: number, widths: number[], feature: boolean[], permutations: number): number {
  const m = widths.length;
  let g = 0;
  let dS = 0;
  let f = 0;
  let dF = 0;
  widths.forEach((d, k) => {
    if (feature[k]) {
      f++;
      dF += d;
    } else {
      g++;
      dS += d;
    }
  });
  const D = dS + dF;
  const P = permutations;
  let flops = 0;
  if (g > 0) {
    flops += 2 * b * b * dS + ELEMENTWISE_WEIGHT * GRAM_PASSES * b * b * g + KERNEL_FLOPS * (10 * g + 3 + 5 * P);
    flops += (1 + P) * 2 * b * b * g * g + P * ELEMENTWISE_WEIGHT * 2 * b * b * g;
  }
  if (f > 0) {
    // Z_F^T Z (and Z_F^T Z[p]), squared and summed into blocks by an indicator product.
    flops += (1 + P) * (2 * b * dF * D + ELEMENTWISE_WEIGHT * dF * D + 2 * dF * D * m + 4 * b * m * m);
    // Null replicates of (Gram set, feature set) pairs: Z_S^T Z_F[p].
    if (g > 0) flops += P * (2 * b * dS * dF + ELEMENTWISE_WEIGHT * dS * dF + 2 * dS * dF * f);
    flops += ELEMENTWISE_WEIGHT * 4 * b * D + KERNEL_FLOPS * (6 * m + 10 + 8 * (1 + P));
  }
  return flops;
}

/** Per set: true = feature path. 'gram' and 'feature' force one path for every set. */
export function planFormulation(b: number, widths: number[], permutations: number, formulation: Formulation = 'auto'): boolean[] {
  if (!FORMULATIONS.includes(formulation)) throw new InputError(`--formulation: '${formulation}', expected one of ${FORMULATIONS.join(', ')}`);
  const m = widths.length;
  if (formulation !== 'auto') return new Array<boolean>(m).fill(formulation === 'feature');
  const byWidth = widths.map((d, k) => [d, k]).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map(([, k]) => k);
  let best = new Array<boolean>(m).fill(false);
  let bestFlops = batchFlops(b, widths, best, permutations);
  const feature = new Array<boolean>(m).fill(false);
  for (const k of byWidth) {
    feature[k] = true;
    const flops = batchFlops(b, widths, feature, permutations);
    if (flops < bestFlops) {
      best = feature.slice();
      bestFlops = flops;
    }
  }
  return best;
}
