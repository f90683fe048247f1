import type { ActivationSet } from '../../formats/activations.js';
import type { OpenBlas } from '../../backend/native/openblas.js';
import { columnMeans, setStats, statsFromSums, type SetStats } from './set-stats.js';

/**
 * The tiled engine's sums of G G^T computed on host memory with OpenBLAS (no tensors): the path of
 * linearCkaSums when native OpenBLAS is loaded (engine.ts). Same tiles, same centring, same float32
 * sums of at most `productTerms` terms added in float64 as the tensor path; what it drops are the
 * wasm passes around the GEMMs (uploads, centring on the backend, transposes, tile stacking):
 *
 * - each set is centred (x - mean, mean in float64, rounded once to float32) into host memory: once
 *   for the whole run when the centred copies fit `residentBytes`, else one set at a time into a
 *   scratch buffer per panel (rows a..n: each panel needs the rows right of it); the pass that
 *   centres all rows of a set also gathers setStats' row norms (one pass over the data fewer);
 * - a Gram tile K[a:a+h, c:c+w] of the unit-RMS features is one sgemm (alpha = scale^2: the
 *   scaling folded into the GEMM; the unscaled products cannot overflow float32 below |x| ~ 1e17)
 *   of the centred rows (row-major, no transpose pass), written straight into that set's slot of
 *   one stacked buffer (sets x tile entries); a panel's diagonal block, when it is one chunk, is one
 *   ssyrk (half the flops) whose upper triangle counts twice and its diagonal once;
 * - the tile's part of G G^T is ssyrk on the stacked buffer (sets x at most productTerms entries,
 *   leading dimension = the slot size), so no stacking copy is made.
 *
 * With the default plan (planHost) a panel holds every row it can within the budget: at n = 2048 and
 * 36 sets one panel, i.e. every set is centred once and each Gram is one ssyrk, as NumPy's Gram-once.
 */
export interface HostPlan {
  panelRows: number;
  chunkCols: number;
}

export interface HostSumsInput {
  blas: OpenBlas;
  sets: ActivationSet[];
  /** U-centring offsets of a set (debiased), or null (biased). */
  debiasedOffsets: ((st: SetStats) => Float32Array) | null;
  plan: HostPlan;
  resident: boolean;
  productTerms: number;
  part?: { index: number; count: number };
  onProgress?: (done: number, total: number) => void;
}

interface Chunk {
  c: number;
  w: number;
  /** Offset of this chunk's tile (h x w) inside each set's slot. */
  at: number;
  diagonal: boolean;
  /** The panel's whole diagonal block, formed by ssyrk: upper triangle only, the strictly lower one zero. */
  upper: boolean;
}

/** The float64 sums of G G^T (sets x sets) and the sets' stats (setStats' values, gathered in the centring pass). */
export async function hostCkaSums(inp: HostSumsInput): Promise<{ sums: Float64Array; stats: SetStats[] }> {
  const { blas, sets, debiasedOffsets, plan, resident, productTerms, part } = inp;
  const m = sets.length;
  const n = sets[0].n;
  const sums = new Float64Array(m * m);

  // The steps of every panel (the same grid and order as the tensor path), then this part's share.
  const panels: { a: number; h: number; chunks: Chunk[]; slot: number }[] = [];
  let step = 0;
  let total = 0;
  for (let a = 0; a < n; a += plan.panelRows) {
    const h = Math.min(plan.panelRows, n - a);
    const chunks: Chunk[] = [];
    let at = 0;
    for (let c = a; c < n; c += plan.chunkCols) {
      const w = Math.min(plan.chunkCols, n - c);
      if (part && step++ % part.count !== part.index) continue;
      chunks.push({ c, w, at, diagonal: c < a + h, upper: c === a && w === h });
      at += h * w;
    }
    if (chunks.length) panels.push({ a, h, chunks, slot: at });
    total += chunks.length;
  }

  // Means first (every set's non-finite values are refused before the heavy work). The rest of the
  // stats comes from the first pass that centres all rows of a set: the resident copies, or the
  // first panel; a worker part whose first panel starts lower takes setStats' own pass.
  const means = sets.map(columnMeans);
  const stats: (SetStats | undefined)[] = panels[0]?.a === 0 || resident ? new Array(m) : sets.map(setStats);
  const centre = (k: number, a: number, rows: number, out: Float32Array): Float32Array => {
    const z = centreRows(sets[k], means[k], a, rows, out, stats[k] ? null : new Float64Array(n));
    if (!stats[k]) stats[k] = statsFromSums(sets[k], means[k], z.rowSq!, z.trace);
    return z.values;
  };
  const centredCopies = resident ? sets.map((s, k) => centre(k, 0, n, new Float32Array(n * s.dim))) : null;
  const scratch = resident ? null : new Float32Array(n * Math.max(...sets.map((s) => s.dim)));
  const offsets: (Float32Array | undefined)[] = new Array(m);

  const stacked = new Float32Array(m * Math.max(0, ...panels.map((p) => p.slot)));
  const product = new Float32Array(m * m);
  let done = 0;
  for (const { a, h, chunks, slot } of panels) {
    for (let k = 0; k < m; k++) {
      const d = sets[k].dim;
      // Rows a..n of the centred (unscaled) set: the panel's rows first, the chunks' rows after them.
      const z = centredCopies ? centredCopies[k].subarray(a * d) : centre(k, a, n - a, scratch!);
      const st = stats[k]!;
      const alpha = st.scale * st.scale; // the Gram of the unit-RMS features, as on the tensor path
      if (debiasedOffsets) offsets[k] ??= debiasedOffsets(st);
      for (const ch of chunks) {
        const tile = stacked.subarray(k * slot + ch.at, k * slot + ch.at + h * ch.w);
        if (ch.upper) {
          blas.ssyrkUpper(h, d, alpha, z, d, 0, tile, h);
          for (let i = 1; i < h; i++) tile.fill(0, i * h, i * h + i); // (a mirror pass, strided, cost more than the ssyrk's savings)
        } else {
          blas.sgemm(false, true, h, ch.w, d, alpha, z, d, z.subarray((ch.c - a) * d), d, 0, tile, ch.w);
        }
        if (offsets[k]) uCentre(tile, offsets[k]!, a, h, ch.c, ch.w, ch.upper);
      }
      await yieldToEventLoop(); // each set's tiles take a while: let timers, signals and messages through
    }
    for (const ch of chunks) {
      // A chunk right of the diagonal block stands for its mirror image too; so does the upper
      // triangle of an ssyrk block, whose diagonal is then counted once too often (subtracted below).
      const weight = ch.diagonal && !ch.upper ? 1 : 2;
      const size = h * ch.w;
      for (let off = 0; off < size; off += productTerms) {
        const g = Math.min(productTerms, size - off);
        blas.ssyrkUpper(m, g, 1, stacked.subarray(ch.at + off), slot, 0, product, m);
        for (let k = 0; k < m; k++) {
          for (let l = k; l < m; l++) {
            const v = weight * product[k * m + l];
            sums[k * m + l] += v;
            if (l !== k) sums[l * m + k] += v;
          }
        }
      }
      if (ch.upper) {
        for (let k = 0; k < m; k++) {
          for (let l = k; l < m; l++) {
            let s = 0;
            for (let i = 0; i < h; i++) s += stacked[k * slot + ch.at + i * h + i] * stacked[l * slot + ch.at + i * h + i];
            sums[k * m + l] -= s;
            if (l !== k) sums[l * m + k] -= s;
          }
        }
      }
      inp.onProgress?.(++done, total);
    }
  }
  return { sums, stats: stats.map((st, k) => st ?? setStats(sets[k])) };
}

/**
 * Default plan on the host: one chunk per panel's diagonal block (so it is one ssyrk) and panels as
 * tall as the budget allows: the stacked tiles of a panel (sets x h x n floats) plus, when not
 * resident, the scratch of one centred set (n x widest). Worker parts get at least 2 panels each
 * so the steps can be shared.
 */
export function planHost(n: number, m: number, maxDim: number, resident: boolean, budgetBytes: number, parts: number): HostPlan {
  const free = budgetBytes - (resident ? 0 : 4 * n * maxDim);
  let h = Math.max(1, Math.floor(free / (4 * m * n)));
  if (parts > 1) h = Math.min(h, Math.ceil(n / (2 * parts)));
  h = Math.min(h, n);
  return { panelRows: h, chunkCols: h };
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * x - mean (float64, rounded once to float32) of rows a..a+rows of a set, into out (row-major,
 * rows x dim); with rowSq given, also the squared norms of the float64 differences and their sum
 * (setStats' second pass, fused).
 */
function centreRows(set: ActivationSet, mean: Float64Array, a: number, rows: number, out: Float32Array, rowSq: Float64Array | null): { values: Float32Array; rowSq: Float64Array | null; trace: number } {
  const { dim, data } = set;
  let trace = 0;
  for (let i = 0; i < rows; i++) {
    const src = (a + i) * dim;
    const dst = i * dim;
    if (rowSq) {
      let s = 0;
      for (let j = 0; j < dim; j++) {
        const c = data[src + j] - mean[j];
        out[dst + j] = c;
        s += c * c;
      }
      rowSq[a + i] = s;
      trace += s;
    } else {
      for (let j = 0; j < dim; j++) out[dst + j] = data[src + j] - mean[j];
    }
  }
  return { values: out.subarray(0, rows * dim), rowSq, trace };
}

/** U(K)_ij = K_ij + u_i + u_j off the Gram diagonal, 0 on it (see uOffsets in engine.ts). */
function uCentre(tile: Float32Array, u: Float32Array, a: number, h: number, c: number, w: number, upperOnly: boolean): void {
  for (let i = 0; i < h; i++) {
    const ui = u[a + i];
    const row = i * w;
    for (let j = upperOnly ? i : 0; j < w; j++) tile[row + j] = a + i === c + j ? 0 : tile[row + j] + ui + u[c + j];
  }
}
