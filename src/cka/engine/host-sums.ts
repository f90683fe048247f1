import type { ActivationSet } from '../../formats/activations.js';
import type { OpenBlas } from '../../backend/native/openblas.js';
import type { SetStats } from './set-stats.js';

/**
 * The tiled engine's sums of G G^T computed on host memory with OpenBLAS (no tensors): the path of
 * linearCkaSums when native OpenBLAS is loaded (engine.ts). Same tiles, same centring, same float32
 * sums of at most `productTerms` terms added in float64 as the tensor path; what it drops are the
 * wasm passes around the GEMMs (uploads, centring on the backend, transposes, tile stacking):
 *
 * - each set is centred and scaled ((x - mean) * scale, mean in float64, rounded once to float32)
 *   into host memory: once for the whole run when the centred copies fit `residentBytes`, else one
 *   set at a time into a scratch buffer per panel (rows a..n: each panel needs the rows right of it);
 * - a Gram tile K[a:a+h, c:c+w] is one sgemm of the centred rows (row-major, no transpose pass),
 *   written straight into that set's slot of one stacked buffer (sets x tile entries); a panel's
 *   diagonal block, when it is one chunk, is one ssyrk (half the flops) with its upper triangle
 *   mirrored;
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
  stats: SetStats[];
  /** U-centring offsets per set (debiased), or null (biased). */
  offsets: Float32Array[] | null;
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
}

export async function hostCkaSums(inp: HostSumsInput): Promise<Float64Array> {
  const { blas, sets, stats, offsets, plan, resident, productTerms, part } = inp;
  const m = sets.length;
  const n = sets[0].n;
  const sums = new Float64Array(m * m);
  const means = stats.map((st) => Float64Array.from(st.meanHi, (hi, j) => hi + st.meanLo[j]));
  const centredCopies = resident ? sets.map((s, k) => centreRows(s, means[k], stats[k].scale, 0, n, new Float32Array(n * s.dim))) : null;
  const maxDim = Math.max(...sets.map((s) => s.dim));
  const scratch = resident ? null : new Float32Array(n * maxDim);

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
      chunks.push({ c, w, at, diagonal: c < a + h });
      at += h * w;
    }
    if (chunks.length) panels.push({ a, h, chunks, slot: at });
    total += chunks.length;
  }
  const stacked = new Float32Array(m * Math.max(0, ...panels.map((p) => p.slot)));
  const product = new Float32Array(m * m);
  let done = 0;

  for (const { a, h, chunks, slot } of panels) {
    for (let k = 0; k < m; k++) {
      const d = sets[k].dim;
      // Rows a..n of the centred set: the panel's rows first, the chunks' rows after them.
      const z = centredCopies ? centredCopies[k].subarray(a * d) : centreRows(sets[k], means[k], stats[k].scale, a, n - a, scratch!);
      for (const ch of chunks) {
        const tile = stacked.subarray(k * slot + ch.at, k * slot + ch.at + h * ch.w);
        if (ch.diagonal && ch.c === a && ch.w === h) {
          blas.ssyrkUpper(h, d, 1, z, d, 0, tile, h);
          for (let i = 1; i < h; i++) for (let j = 0; j < i; j++) tile[i * h + j] = tile[j * h + i];
        } else {
          blas.sgemm(false, true, h, ch.w, d, 1, z, d, z.subarray((ch.c - a) * d), d, 0, tile, ch.w);
        }
        if (offsets) uCentre(tile, offsets[k], a, h, ch.c, ch.w);
      }
      await yieldToEventLoop(); // each set's tiles take a while: let timers, signals and messages through
    }
    for (const ch of chunks) {
      const weight = ch.diagonal ? 1 : 2; // a chunk right of the diagonal block stands for its mirror image too
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
      inp.onProgress?.(++done, total);
    }
  }
  return sums;
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

/** (x - mean) * scale of rows a..a+rows of a set, into out (row-major, rows x dim). */
function centreRows(set: ActivationSet, mean: Float64Array, scale: number, a: number, rows: number, out: Float32Array): Float32Array {
  const { dim, data } = set;
  for (let i = 0; i < rows; i++) {
    const src = (a + i) * dim;
    const dst = i * dim;
    for (let j = 0; j < dim; j++) out[dst + j] = (data[src + j] - mean[j]) * scale;
  }
  return out.subarray(0, rows * dim);
}

/** U(K)_ij = K_ij + u_i + u_j off the Gram diagonal, 0 on it (see uOffsets in engine.ts). */
function uCentre(tile: Float32Array, u: Float32Array, a: number, h: number, c: number, w: number): void {
  for (let i = 0; i < h; i++) {
    const ui = u[a + i];
    const row = i * w;
    for (let j = 0; j < w; j++) tile[row + j] = a + i === c + j ? 0 : tile[row + j] + ui + u[c + j];
  }
}
