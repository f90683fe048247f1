import { bestMatch, blockScore, matricesOf, meanDiagonal, meanOffDiagonal, scoreInterval, type HsicSums, type Matrix } from './scores.js';
import { blockLayers, populationCka, simulateState } from './simulate.js';

/**
 * Coverage of the scores' bootstrap intervals by simulation: a model "A" of 5 layers with a block
 * structure (layers 0-2 share a loading) and a model "B" whose layer i is A's layer i perturbed; the
 * population scores come from the population CKA; each run draws new samples (a new minibatch state
 * with its Poisson bootstrap) and checks whether each nominal interval covers its population score.
 */
export interface CoverageResult {
  runs: number;
  level: number;
  covered: Record<string, number>;
  truth: Record<string, number>;
  meanWidth: Record<string, number>;
}

export function scoreCoverage(opts: { runs: number; batches: number; batchSize: number; bootstrap: number; level?: number }): CoverageResult {
  const level = opts.level ?? 0.95;
  const groupsA = [0, 0, 0, 1, 2];
  const a = blockLayers(groupsA, { d: 6, p: 5, sigma: 1, spread: 0.35, seed: 1 });
  const b = blockLayers(groupsA, { d: 6, p: 5, sigma: 1, spread: 0.35, seed: 1 });
  // B's loadings: A's plus a perturbation of their own.
  const pert = blockLayers([0, 1, 2, 3, 4], { d: 6, p: 5, sigma: 1, spread: 0, seed: 7 });
  b.loadings = b.loadings.map((w, i) => Float64Array.from(w, (v, k) => v + 0.6 * pert.loadings[i][k]));
  const all = { ...a, loadings: [...a.loadings, ...b.loadings] };
  const names = [...groupsA.map((_, i) => `a${i}`), ...groupsA.map((_, i) => `b${i}`)];
  const pop = populationCka(all);
  const m = names.length;
  const sub = (rows: number[], cols: number[]): Matrix => ({ rows: rows.length, cols: cols.length, values: Float64Array.from(rows.flatMap((i) => cols.map((j) => pop[i * m + j]))) });
  const A = [0, 1, 2, 3, 4];
  const B = [5, 6, 7, 8, 9];
  const scores: Record<string, { f: (x: Matrix) => number; rows: number[]; cols: number[] }> = {
    redundancy: { f: (x) => meanOffDiagonal(x), rows: A, cols: A },
    block: { f: (x) => blockScore(x), rows: A, cols: A },
    universality: { f: (x) => meanDiagonal(x), rows: A, cols: B },
    best_match_layer3: { f: (x) => bestMatch(x).value[3], rows: A, cols: B },
  };
  const truth: Record<string, number> = {};
  const covered: Record<string, number> = {};
  const width: Record<string, number> = {};
  for (const [k, s] of Object.entries(scores)) {
    truth[k] = s.f(sub(s.rows, s.cols));
    covered[k] = 0;
    width[k] = 0;
  }
  for (let run = 0; run < opts.runs; run++) {
    const state = simulateState(all, names, { batches: opts.batches, batchSize: opts.batchSize, bootstrap: opts.bootstrap, seed: 1000 + run });
    const sums: HsicSums = { sets: state.sets, hsic: state.hsic, boot: state.boot, replicates: state.config.bootstrap };
    for (const [k, s] of Object.entries(scores)) {
      const { point, replicates } = matricesOf(sums, s.rows.map((i) => names[i]), s.cols.map((j) => names[j]));
      const iv = scoreInterval(s.f, point, replicates, level);
      if (iv.low <= truth[k] && truth[k] <= iv.high) covered[k]++;
      width[k] += (iv.high - iv.low) / opts.runs;
    }
  }
  for (const k of Object.keys(covered)) covered[k] /= opts.runs;
  return { runs: opts.runs, level, covered, truth, meanWidth: width };
}
