import type { MinibatchState } from './state.js';

/**
 * Minibatch CKA of the pairs (rows[i], cols[j]) from an accumulator state (pure float64):
 * CKA = sum_t HSIC_t(K, L) / sqrt(sum_t HSIC_t(K, K) sum_t HSIC_t(L, L)) (the 1/batches of each
 * mean cancels). With bootstrap replicates: a percentile interval of the replicate CKAs; with
 * permutation replicates: the mean and standard deviation of CKA(K, P L P^T), normalised by the
 * same self-HSICs (a permutation leaves HSIC(L, L) unchanged).
 */
export interface MinibatchMatrix {
  rows: string[];
  cols: string[];
  /** cka[i * cols.length + j]; NaN where a set's self-HSIC is not positive (CKA undefined). Not clamped. */
  cka: Float64Array;
  /** Mean unbiased HSIC per batch of the same pairs. */
  hsic: Float64Array;
  /** Present with bootstrap replicates. */
  ciLow?: Float64Array;
  ciHigh?: Float64Array;
  /** Present with permutation replicates. */
  nullMean?: Float64Array;
  nullSd?: Float64Array;
  /** Sets whose summed self-HSIC is not positive. */
  undefinedSets: string[];
}

export interface ResultOptions {
  /** Coverage of the bootstrap interval (default 0.95). */
  level?: number;
}

export function minibatchMatrix(state: MinibatchState, rows: string[], cols: string[], opts: ResultOptions = {}): MinibatchMatrix {
  const m = state.sets.length;
  const index = (name: string) => {
    const k = state.sets.indexOf(name);
    if (k < 0) throw new Error(`minibatchMatrix: unknown set '${name}'`);
    return k;
  };
  const ri = rows.map(index);
  const ci = cols.map(index);
  const nr = ri.length;
  const nc = ci.length;
  const batches = Math.max(1, state.batchIds.length);
  const cka = new Float64Array(nr * nc);
  const hsic = new Float64Array(nr * nc);
  const ratio = (sums: Float64Array, base: number, k: number, l: number, selfSums = sums, selfBase = base) =>
    sums[base + k * m + l] / Math.sqrt(selfSums[selfBase + k * m + k] * selfSums[selfBase + l * m + l]);
  const undefinedSets = state.sets.filter((_, k) => !(state.hsic[k * m + k] > 0));
  for (let i = 0; i < nr; i++) {
    for (let j = 0; j < nc; j++) {
      const v = ratio(state.hsic, 0, ri[i], ci[j]);
      cka[i * nc + j] = Number.isFinite(v) ? v : NaN;
      hsic[i * nc + j] = state.hsic[ri[i] * m + ci[j]] / batches;
    }
  }
  const out: MinibatchMatrix = { rows: rows.slice(), cols: cols.slice(), cka, hsic, undefinedSets };
  const R = state.config.bootstrap;
  if (R > 0) {
    const alpha = (1 - (opts.level ?? 0.95)) / 2;
    out.ciLow = new Float64Array(nr * nc);
    out.ciHigh = new Float64Array(nr * nc);
    const draws = new Float64Array(R);
    for (let i = 0; i < nr; i++) {
      for (let j = 0; j < nc; j++) {
        let count = 0;
        for (let r = 0; r < R; r++) {
          const v = ratio(state.boot, r * m * m, ri[i], ci[j]);
          // A replicate that drew no batch at all (or only degenerate ones) says nothing.
          if (Number.isFinite(v)) draws[count++] = v;
        }
        const sorted = draws.subarray(0, count).sort();
        out.ciLow[i * nc + j] = quantile(sorted, alpha);
        out.ciHigh[i * nc + j] = quantile(sorted, 1 - alpha);
      }
    }
  }
  const P = state.config.permutations;
  if (P > 0) {
    out.nullMean = new Float64Array(nr * nc);
    out.nullSd = new Float64Array(nr * nc);
    for (let i = 0; i < nr; i++) {
      for (let j = 0; j < nc; j++) {
        let s = 0;
        let s2 = 0;
        for (let p = 0; p < P; p++) {
          const v = ratio(state.nullHsic, p * m * m, ri[i], ci[j], state.hsic, 0);
          s += v;
          s2 += v * v;
        }
        const mean = s / P;
        out.nullMean[i * nc + j] = mean;
        out.nullSd[i * nc + j] = P > 1 ? Math.sqrt(Math.max(0, (s2 - P * mean * mean) / (P - 1))) : NaN;
      }
    }
  }
  return out;
}

/** Linear-interpolation quantile (NumPy's default) of sorted values; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}
