/**
 * The study's scores, as pure functions of CKA matrices, and their bootstrap intervals from the
 * minibatch statistics: a minibatch CKA run keeps, besides the HSIC sums, R Poisson-bootstrap
 * replicates of them (resampled minibatches; src/cka/minibatch-state.ts), so each score is computed on
 * the point matrix and on every replicate's matrix, and its interval is the percentile interval of the
 * replicate scores. Nothing is read off a heatmap by eye.
 *
 * - redundancy: mean off-diagonal CKA of a layer x layer matrix (taps flagged as duplicates left out);
 * - block structure: the strongest contiguous block of >= 3 layers, scored as its mean internal
 *   off-diagonal CKA minus the mean CKA between it and the other layers (a bright square stands out);
 * - universality: mean diagonal of a model x model matrix (layer i of A vs layer i of B);
 * - best match: for each layer of A, the layer of B with the highest CKA, and that CKA.
 */
export interface Matrix {
  rows: number;
  cols: number;
  /** Row-major values. */
  values: Float64Array;
}

export function at(m: Matrix, i: number, j: number): number {
  return m.values[i * m.cols + j];
}

/** The accumulators a minibatch CKA run saves (src/formats/accumulators.ts), as the scores need them. */
export interface HsicSums {
  sets: string[];
  /** sets x sets HSIC sums. */
  hsic: Float64Array;
  /** replicates x sets x sets: Poisson-bootstrap replicate sums. */
  boot: Float64Array;
  replicates: number;
}

function ckaOf(sums: Float64Array, base: number, m: number, rows: number[], cols: number[]): Matrix {
  const values = new Float64Array(rows.length * cols.length);
  rows.forEach((k, i) =>
    cols.forEach((l, j) => {
      const v = sums[base + k * m + l] / Math.sqrt(sums[base + k * m + k] * sums[base + l * m + l]);
      values[i * cols.length + j] = Number.isFinite(v) ? v : NaN;
    }),
  );
  return { rows: rows.length, cols: cols.length, values };
}

/** CKA of the sets `rows` x `cols` from the point sums and from every bootstrap replicate. */
export function matricesOf(sums: HsicSums, rows: string[], cols: string[]): { point: Matrix; replicates: Matrix[] } {
  const m = sums.sets.length;
  const idx = (s: string) => {
    const k = sums.sets.indexOf(s);
    if (k < 0) throw new Error(`matricesOf: unknown set '${s}'`);
    return k;
  };
  const ri = rows.map(idx);
  const ci = cols.map(idx);
  const replicates: Matrix[] = [];
  for (let r = 0; r < sums.replicates; r++) replicates.push(ckaOf(sums.boot, r * m * m, m, ri, ci));
  return { point: ckaOf(sums.hsic, 0, m, ri, ci), replicates };
}

export interface Interval {
  value: number;
  low: number;
  high: number;
}

/** Linear-interpolation quantile of sorted values. */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

/** A score on the point matrix with the percentile interval of its replicate values (non-finite replicates dropped). */
export function scoreInterval(score: (m: Matrix) => number, point: Matrix, replicates: Matrix[], level = 0.95): Interval {
  const draws = Float64Array.from(replicates.map(score).filter(Number.isFinite)).sort();
  const alpha = (1 - level) / 2;
  return { value: score(point), low: quantile(draws, alpha), high: quantile(draws, 1 - alpha) };
}

/** Mean of the off-diagonal entries of a square matrix, over the indices not in `skip`. */
export function meanOffDiagonal(m: Matrix, skip: ReadonlySet<number> = new Set()): number {
  let s = 0;
  let c = 0;
  for (let i = 0; i < m.rows; i++) {
    if (skip.has(i)) continue;
    for (let j = 0; j < m.cols; j++) {
      if (i === j || skip.has(j)) continue;
      s += at(m, i, j);
      c++;
    }
  }
  return c ? s / c : NaN;
}

export interface Block {
  /** First and last index (inclusive) of the block, among the indices kept. */
  start: number;
  end: number;
  contrast: number;
}

/** The contiguous block (>= minSize of the kept indices, not all of them) with the highest contrast. */
export function strongestBlock(m: Matrix, skip: ReadonlySet<number> = new Set(), minSize = 3): Block | undefined {
  const keep = Array.from({ length: m.rows }, (_, i) => i).filter((i) => !skip.has(i));
  const n = keep.length;
  let best: Block | undefined;
  for (let a = 0; a < n; a++) {
    for (let b = a + minSize - 1; b < n; b++) {
      if (b - a + 1 === n) continue;
      let inside = 0;
      let ci = 0;
      let across = 0;
      let ca = 0;
      for (let p = 0; p < n; p++) {
        const pin = p >= a && p <= b;
        for (let q = 0; q < n; q++) {
          if (p === q) continue;
          const v = at(m, keep[p], keep[q]);
          const qin = q >= a && q <= b;
          if (pin && qin) {
            inside += v;
            ci++;
          } else if (pin !== qin) {
            across += v;
            ca++;
          }
        }
      }
      const contrast = inside / ci - across / ca;
      if (!best || contrast > best.contrast) best = { start: keep[a], end: keep[b], contrast };
    }
  }
  return best;
}

export function blockScore(m: Matrix, skip: ReadonlySet<number> = new Set()): number {
  return strongestBlock(m, skip)?.contrast ?? NaN;
}

/** Mean of the diagonal of a (possibly rectangular) matrix over the first min(rows, cols) entries not skipped. */
export function meanDiagonal(m: Matrix, skip: ReadonlySet<number> = new Set()): number {
  let s = 0;
  let c = 0;
  for (let i = 0; i < Math.min(m.rows, m.cols); i++) {
    if (skip.has(i)) continue;
    s += at(m, i, i);
    c++;
  }
  return c ? s / c : NaN;
}

/** For row i: the column of the largest CKA, and that CKA. */
export function bestMatch(m: Matrix): { index: number[]; value: number[] } {
  const index: number[] = [];
  const value: number[] = [];
  for (let i = 0; i < m.rows; i++) {
    let bj = -1;
    let bv = -Infinity;
    for (let j = 0; j < m.cols; j++) {
      const v = at(m, i, j);
      if (v > bv) {
        bv = v;
        bj = j;
      }
    }
    index.push(bj);
    value.push(bj < 0 ? NaN : bv);
  }
  return { index, value };
}

/**
 * Taps whose activations are the same as an earlier tap's: a copy (identity shortcut, a layer that
 * passes its input on) has CKA 1 with its source up to rounding, and the same self-HSIC. Those are
 * marked rather than counted as "redundancy". Returns, per index, the earlier index it duplicates.
 */
export function duplicateTaps(sums: HsicSums, sets: string[], tolerance = 1e-6): Map<number, number> {
  const m = sums.sets.length;
  const idx = sets.map((s) => sums.sets.indexOf(s));
  const out = new Map<number, number>();
  for (let j = 0; j < idx.length; j++) {
    for (let i = 0; i < j; i++) {
      if (out.has(i)) continue;
      const kii = sums.hsic[idx[i] * m + idx[i]];
      const kjj = sums.hsic[idx[j] * m + idx[j]];
      const kij = sums.hsic[idx[i] * m + idx[j]];
      const cka = kij / Math.sqrt(kii * kjj);
      if (cka > 1 - tolerance && Math.abs(kii - kjj) <= tolerance * Math.max(Math.abs(kii), Math.abs(kjj))) {
        out.set(j, i);
        break;
      }
    }
  }
  return out;
}
