import { makeRng, subSeed, type Rng } from '../../util/rng.js';
import { addBatch, emptyState } from './state.js';
import { minibatchMatrix } from './result.js';

/**
 * How often the minibatch bootstrap interval covers the truth, by simulation: activation pairs
 * with a known population CKA, X ~ N(0, I_p) and Y = X A + s E (E ~ N(0, I_q)). With linear
 * kernels the population HSIC is ||Cov(X, Y)||_F^2, so
 *   CKA = ||A||_F^2 / sqrt(p * ||A^T A + s^2 I||_F^2),
 * and minibatch CKA (a ratio of sums of unbiased per-batch HSICs) estimates exactly that ratio.
 * Each run draws its own samples, accumulates them through the production state (addBatch: the
 * Poisson bootstrap weights) and reads the interval from minibatchMatrix; only the per-batch
 * HSIC is computed here, in float64 on the host (the tensor path is tested against it elsewhere).
 */
export interface CoverageSetup {
  /** Widths of X and Y. */
  p: number;
  q: number;
  /** Noise scale s. */
  noise: number;
  batchSize: number;
  batches: number;
  bootstrap: number;
  /** Fixes A. */
  seed: number;
}

export interface CoverageResult {
  population: number;
  runs: number;
  covered: number;
  coverage: number;
  /** Mean interval width and mean estimate over the runs. */
  meanWidth: number;
  meanEstimate: number;
}

function gaussian(rng: Rng): number {
  // Box-Muller; 1 - u keeps the log finite.
  const u = 1 - rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** The mixing matrix A (p x q, row-major) of a setup: fixed by its seed. */
export function mixingMatrix(s: CoverageSetup): Float64Array {
  const rng = makeRng(subSeed(s.seed, 'coverage-A'));
  return Float64Array.from({ length: s.p * s.q }, () => gaussian(rng) / Math.sqrt(s.p));
}

/** Population linear CKA of X ~ N(0, I_p), Y = X A + s E. */
export function populationCka(s: CoverageSetup, A = mixingMatrix(s)): number {
  let a2 = 0;
  for (const v of A) a2 += v * v;
  // ||A^T A + s^2 I||_F^2
  let f2 = 0;
  for (let i = 0; i < s.q; i++) {
    for (let j = 0; j < s.q; j++) {
      let v = i === j ? s.noise * s.noise : 0;
      for (let k = 0; k < s.p; k++) v += A[k * s.q + i] * A[k * s.q + j];
      f2 += v * v;
    }
  }
  return a2 / Math.sqrt(s.p * f2);
}

/** Gram matrix with its diagonal zeroed, of b rows of width d. */
function zeroDiagonalGram(X: Float64Array, b: number, d: number): Float64Array {
  const K = new Float64Array(b * b);
  for (let i = 0; i < b; i++) {
    for (let j = i + 1; j < b; j++) {
      let v = 0;
      for (let k = 0; k < d; k++) v += X[i * d + k] * X[j * d + k];
      K[i * b + j] = v;
      K[j * b + i] = v;
    }
  }
  return K;
}

/** Unbiased HSIC (Song et al. 2012) of two zero-diagonal Grams. */
export function unbiasedHsic(K: Float64Array, L: Float64Array, b: number): number {
  let trace = 0;
  let sumK = 0;
  let sumL = 0;
  let cross = 0;
  for (let i = 0; i < b; i++) {
    let rowK = 0;
    let rowL = 0;
    for (let j = 0; j < b; j++) {
      trace += K[i * b + j] * L[j * b + i];
      rowK += K[i * b + j];
      rowL += L[i * b + j];
    }
    sumK += rowK;
    sumL += rowL;
    cross += rowK * rowL;
  }
  return (trace + (sumK * sumL) / ((b - 1) * (b - 2)) - (2 / (b - 2)) * cross) / (b * (b - 3));
}

/** One simulated run: its estimate and 95% interval. */
export function simulateRun(s: CoverageSetup, A: Float64Array, runSeed: number): { cka: number; low: number; high: number } {
  const rng = makeRng(subSeed(s.seed, 'coverage-run', runSeed));
  const state = emptyState(['x', 'y'], { batchSize: s.batchSize, seed: runSeed, bootstrap: s.bootstrap, permutations: 0 });
  const b = s.batchSize;
  for (let t = 0; t < s.batches; t++) {
    const X = Float64Array.from({ length: b * s.p }, () => gaussian(rng));
    const Y = new Float64Array(b * s.q);
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < s.q; j++) {
        let v = s.noise * gaussian(rng);
        for (let k = 0; k < s.p; k++) v += X[i * s.p + k] * A[k * s.q + j];
        Y[i * s.q + j] = v;
      }
    }
    const K = zeroDiagonalGram(X, b, s.p);
    const L = zeroDiagonalGram(Y, b, s.q);
    const xy = unbiasedHsic(K, L, b);
    addBatch(state, t, b, Float64Array.from([unbiasedHsic(K, K, b), xy, xy, unbiasedHsic(L, L, b)]), new Float64Array(0));
  }
  const m = minibatchMatrix(state, ['x'], ['y']);
  return { cka: m.cka[0], low: m.ciLow![0], high: m.ciHigh![0] };
}

/** Coverage of the nominal 95% interval over runs seeded 0..runs-1. */
export function intervalCoverage(s: CoverageSetup, runs: number): CoverageResult {
  const A = mixingMatrix(s);
  const population = populationCka(s, A);
  let covered = 0;
  let width = 0;
  let estimate = 0;
  for (let r = 0; r < runs; r++) {
    const { cka, low, high } = simulateRun(s, A, r);
    if (low <= population && population <= high) covered++;
    width += high - low;
    estimate += cka;
  }
  return { population, runs, covered, coverage: covered / runs, meanWidth: width / runs, meanEstimate: estimate / runs };
}
