import { addBatch, emptyState, type MinibatchState } from '../minibatch/state.js';
import { makeRng, type Rng } from '../../util/rng.js';

/**
 * Synthetic "layers" with a known population CKA, to check that the scores' intervals cover the
 * truth as often as they claim. Layer k of a sample is x_k = z W_k + sigma e_k with z ~ N(0, I_d) shared
 * by all layers and e_k ~ N(0, I_p) its own noise, so Cov(x_k, x_l) = W_k' W_l (k != l) and
 * Cov(x_k, x_k) = W_k' W_k + sigma^2 I. Linear HSIC's population value is ||Cov(x_k, x_l)||_F^2, which
 * the unbiased per-batch estimator estimates without bias, so the minibatch CKA converges to
 * CKA_kl = HSIC_kl / sqrt(HSIC_kk HSIC_ll).
 */
export interface SyntheticLayers {
  /** d x p loading of each layer, row-major. */
  loadings: Float64Array[];
  d: number;
  p: number;
  sigma: number;
}

export function gaussian(rng: Rng): number {
  let u = 0;
  while (u === 0) u = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Population linear CKA between every pair of layers. */
export function populationCka(s: SyntheticLayers): Float64Array {
  const L = s.loadings.length;
  const { d, p } = s;
  const hsic = new Float64Array(L * L);
  for (let k = 0; k < L; k++) {
    for (let l = 0; l < L; l++) {
      let f = 0;
      for (let a = 0; a < p; a++) {
        for (let b = 0; b < p; b++) {
          let c = 0;
          for (let i = 0; i < d; i++) c += s.loadings[k][i * p + a] * s.loadings[l][i * p + b];
          if (k === l && a === b) c += s.sigma * s.sigma;
          f += c * c;
        }
      }
      hsic[k * L + l] = f;
    }
  }
  const cka = new Float64Array(L * L);
  for (let k = 0; k < L; k++) for (let l = 0; l < L; l++) cka[k * L + l] = hsic[k * L + l] / Math.sqrt(hsic[k * L + k] * hsic[l * L + l]);
  return cka;
}

/** One batch of b samples of every layer: layers[k] is b x p, row-major. */
export function sampleBatch(s: SyntheticLayers, b: number, rng: Rng): Float64Array[] {
  const { d, p } = s;
  const z = Float64Array.from({ length: b * d }, () => gaussian(rng));
  return s.loadings.map((w) => {
    const x = new Float64Array(b * p);
    for (let n = 0; n < b; n++) {
      for (let a = 0; a < p; a++) {
        let v = s.sigma * gaussian(rng);
        for (let i = 0; i < d; i++) v += z[n * d + i] * w[i * p + a];
        x[n * p + a] = v;
      }
    }
    return x;
  });
}

/** Unbiased HSIC (Song et al. 2012) of two linear Gram matrices with zeroed diagonals. */
export function unbiasedHsic(K: Float64Array, Lm: Float64Array, b: number): number {
  let tr = 0;
  let sk = 0;
  let sl = 0;
  let cross = 0;
  const rowK = new Float64Array(b);
  const rowL = new Float64Array(b);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < b; j++) {
      if (i === j) continue;
      const kij = K[i * b + j];
      const lij = Lm[i * b + j];
      tr += kij * lij;
      sk += kij;
      sl += lij;
      rowK[i] += kij;
      rowL[i] += lij;
    }
  }
  for (let i = 0; i < b; i++) cross += rowK[i] * rowL[i];
  return (tr + (sk * sl) / ((b - 1) * (b - 2)) - (2 / (b - 2)) * cross) / (b * (b - 3));
}

function gram(x: Float64Array, b: number, p: number): Float64Array {
  const g = new Float64Array(b * b);
  for (let i = 0; i < b; i++) {
    for (let j = i + 1; j < b; j++) {
      let v = 0;
      for (let a = 0; a < p; a++) v += x[i * p + a] * x[j * p + a];
      g[i * b + j] = v;
      g[j * b + i] = v;
    }
  }
  return g;
}

/** A minibatch CKA state (the library's, with its Poisson bootstrap) over `batches` synthetic batches. */
export function simulateState(s: SyntheticLayers, names: string[], opts: { batches: number; batchSize: number; bootstrap: number; seed: number }): MinibatchState {
  const rng = makeRng(`synthetic-${opts.seed}`);
  const state = emptyState(names, { batchSize: opts.batchSize, seed: opts.seed, bootstrap: opts.bootstrap, permutations: 0 });
  const m = names.length;
  for (let t = 0; t < opts.batches; t++) {
    const grams = sampleBatch(s, opts.batchSize, rng).map((x) => gram(x, opts.batchSize, s.p));
    const hsic = new Float64Array(m * m);
    for (let k = 0; k < m; k++) for (let l = k; l < m; l++) hsic[k * m + l] = hsic[l * m + k] = unbiasedHsic(grams[k], grams[l], opts.batchSize);
    addBatch(state, t, opts.batchSize, hsic, new Float64Array(0));
  }
  return state;
}

/** Loadings with block structure: layers of one group share a loading, plus their own perturbation. */
export function blockLayers(groups: number[], opts: { d: number; p: number; sigma: number; spread: number; seed: number }): SyntheticLayers {
  const rng = makeRng(`loadings-${opts.seed}`);
  const base = new Map<number, Float64Array>();
  const loadings = groups.map((g) => {
    if (!base.has(g)) base.set(g, Float64Array.from({ length: opts.d * opts.p }, () => gaussian(rng)));
    const b = base.get(g)!;
    return Float64Array.from(b, (v) => v + opts.spread * gaussian(rng));
  });
  return { loadings, d: opts.d, p: opts.p, sigma: opts.sigma };
}
