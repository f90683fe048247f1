import * as tf from '@tensorflow/tfjs';
import { gramOf, hostOpenBlas, productOf } from '../../backend/native/gram.js';
import { InputError } from '../../errors.js';
import type { ActivationSet } from '../../formats/activations.js';
import { setStats, type SetStats } from './set-stats.js';
import { centredFeatures, type CentredFeatures } from './centred-features.js';
import { hostCkaSums, planHost } from './host-sums.js';

/**
 * All-pairs linear CKA on the active tfjs backend; with native OpenBLAS on the wasm backend, the same
 * sums on host memory without tensors (host-sums.ts).
 *
 * For every set X (n x p): centre the columns (means in float64 on the host); K = Xc Xc^T is then
 * already double-centred (H K H = K). The biased HSIC of two sets is <K, L>_F / (n-1)^2; the
 * unbiased one is <U(K), U(L)>_F / (n(n-3)) with U the U-centring (see reference.ts). So with G
 * the matrix whose rows are the flattened (U-)centred Grams of all sets, every HSIC at once is
 * G G^T / denominator: one product over the n^2 columns of G.
 *
 * Those n^2 columns are processed tile by tile, so no full Gram is ever held: panels of
 * `panelRows` sample rows a..a+h, and in each panel column chunks c..c+w with c >= a only
 * (the Grams are symmetric: a chunk right of the panel's diagonal block stands for itself and its
 * mirror image and counts twice). A tile of every set's Gram is matMul(panel, chunk^T); both
 * centrings are formed tile by tile (Xc Xc^T needs no further centring; for U-centring the row
 * sums of the zero-diagonal K are -diag(K)). The tile's contribution to G G^T is one batched
 * product whose float32 sums run over at most PRODUCT_TERMS entries, downloaded and accumulated
 * in float64 on the host (measured on wasm: a float32 sum of 524k positive terms is off by
 * ~1.6e-4 relative, of 16k terms by ~2.5e-6).
 */
export type CkaEstimator = 'biased' | 'debiased';

export interface CkaEngineOptions {
  estimator: CkaEstimator;
  /** Sample rows per panel (default: as many as `memoryBytes` allows); rounded down to a multiple of chunkCols. */
  blockRows?: number;
  /** Width of the column chunks (default 512; 256 or 128 when n is below 3072 or 1536, see defaultChunkCols). */
  chunkCols?: number;
  /** Budget for the panels and tiles of one step, in bytes (default 1 GiB). */
  memoryBytes?: number;
  /**
   * Keep every set's centred features on the backend when they take at most this many bytes in
   * all (default 1 GiB); otherwise each panel and chunk is uploaded and centred when needed, and
   * this allowance is added to `memoryBytes`. Peak backend memory is about the sum of the two.
   */
  residentBytes?: number;
  /** Called after each tile step with (steps done, total steps). */
  onProgress?: (done: number, total: number) => void;
  /**
   * Compute only tile steps s with s % count == index (a worker thread's share; see
   * engine-workers.ts). The result's `sums` then hold this share's part of G G^T only.
   */
  part?: { index: number; count: number };
}

export interface CkaMatrix {
  rows: string[];
  cols: string[];
  n: number;
  estimator: CkaEstimator;
  /** cka[i * cols.length + j] = CKA(rows[i], cols[j]). Not clamped. */
  cka: Float64Array;
  /** HSIC of the same pairs (of the original, unscaled features). */
  hsic: Float64Array;
  /** HSIC(K, K) of each row set and of each column set. */
  hsicRows: Float64Array;
  hsicCols: Float64Array;
  /** The panel height and chunk width used. */
  blockRows: number;
  chunkCols: number;
  /** Whether the centred features stayed on the backend. */
  resident: boolean;
}

const DEFAULT_MEMORY_BYTES = 1024 * 1024 * 1024;
const DEFAULT_RESIDENT_BYTES = 1024 * 1024 * 1024;
const DEFAULT_CHUNK_COLS = 512;
/** Longest float32 sum in the tile products (see the module comment). */
const PRODUCT_TERMS = 16384;
/**
 * A self-HSIC below this fraction of tr(K)^2 / n (a lower bound of ||K||_F^2) is float32 noise,
 * not signal: the set's (U-)centred Gram is zero and its CKA undefined.
 */
const DEGENERATE_SELF_HSIC = 1e-8;

/**
 * CKA of every row set with every column set; with `colSets` null, of the row sets with
 * themselves (symmetric matrix). Sets may differ in width but must share n >= 4 samples, in the
 * same order.
 */
export async function linearCkaMatrix(rowSets: ActivationSet[], colSets: ActivationSet[] | null, opts: CkaEngineOptions): Promise<CkaMatrix> {
  const { prepared, sums } = await linearCkaSums(rowSets, colSets, opts);
  return finishCka(prepared, sums);
}

/** What finishing needs besides the sums: the sets (union of rows and columns), their stats and the plan. */
export interface PreparedCka {
  union: ActivationSet[];
  stats: SetStats[];
  rowIdx: number[];
  colIdx: number[];
  n: number;
  estimator: CkaEstimator;
  plan: TilePlan;
  resident: boolean;
}

/** The float64 sums of G G^T (union x union) of linearCkaMatrix, for all tiles or for opts.part's share. */
export async function linearCkaSums(rowSets: ActivationSet[], colSets: ActivationSet[] | null, opts: CkaEngineOptions): Promise<{ prepared: PreparedCka; sums: Float64Array }> {
  const cols = colSets ?? rowSets;
  validateSets(rowSets, cols, opts);
  const n = rowSets[0].n;
  // Each distinct set is processed once even when it is both a row and a column.
  const union: ActivationSet[] = [...rowSets, ...cols.filter((s) => !rowSets.includes(s))];
  const rowIdx = rowSets.map((s) => union.indexOf(s));
  const colIdx = cols.map((s) => union.indexOf(s));
  const m = union.length;
  const sumDims = union.reduce((s, x) => s + x.dim, 0);
  const residentBytes = opts.residentBytes ?? DEFAULT_RESIDENT_BYTES;
  const resident = union.reduce((s, x) => s + 4 * x.n * x.dim, 0) <= residentBytes;
  // When streaming, the unused resident allowance goes to taller panels (fewer re-uploads).
  const memoryBytes = (opts.memoryBytes ?? DEFAULT_MEMORY_BYTES) + (resident ? 0 : residentBytes);
  const blas = hostOpenBlas();
  if (blas) {
    // Native OpenBLAS: Grams and products on host memory (host-sums.ts), on the tensor path's grid
    // when the caller fixes it, else in panels as tall as the budget allows.
    const fixed = opts.blockRows !== undefined || opts.chunkCols !== undefined;
    const maxDim = Math.max(...union.map((s) => s.dim));
    const hostPlan = fixed ? planTiles(n, m, sumDims, resident, { ...opts, memoryBytes }) : planHost(n, m, maxDim, resident, memoryBytes, opts.part?.count ?? 1);
    const debiasedOffsets = opts.estimator === 'debiased' ? (st: SetStats) => uOffsets(st, n) : null;
    const { sums, stats } = await hostCkaSums({ blas, sets: union, debiasedOffsets, plan: hostPlan, resident, productTerms: PRODUCT_TERMS, part: opts.part, onProgress: opts.onProgress });
    return { prepared: { union, stats, rowIdx, colIdx, n, estimator: opts.estimator, plan: hostPlan, resident }, sums };
  }
  const stats = union.map(setStats);
  const plan = planTiles(n, m, sumDims, resident, { ...opts, memoryBytes });

  const sums = new Float64Array(m * m);
  const features: CentredFeatures[] = [];
  try {
    for (let k = 0; k < m; k++) features.push(centredFeatures(union[k], stats[k], resident, plan.chunkCols));
    const offsets = opts.estimator === 'debiased' ? stats.map((st) => uOffsets(st, n)) : null;
    const all = countSteps(n, plan);
    const total = opts.part ? Math.ceil((all - opts.part.index) / opts.part.count) : all;
    let done = 0;
    let step = 0;
    for (let a = 0; a < n; a += plan.panelRows) {
      const h = Math.min(plan.panelRows, n - a);
      const panels: tf.Tensor2D[] = [];
      try {
        for (const f of features) panels.push(f.panel(a, h));
        for (let c = a; c < n; c += plan.chunkCols) {
          const w = Math.min(plan.chunkCols, n - c);
          if (opts.part && step++ % opts.part.count !== opts.part.index) continue;
          const inDiagonalBlock = c < a + h;
          const products = await tileProducts(features, panels, offsets, a, h, c, w, inDiagonalBlock);
          accumulate(sums, products, m, inDiagonalBlock ? 1 : 2);
          opts.onProgress?.(++done, total);
        }
      } finally {
        tf.dispose(panels);
      }
    }
  } finally {
    for (const f of features) f.dispose();
  }
  return { prepared: { union, stats, rowIdx, colIdx, n, estimator: opts.estimator, plan, resident }, sums };
}

/** CKA, HSIC and checks from the full sums (all tiles, e.g. the shares of several workers added). */
export function finishCka(p: PreparedCka, sums: Float64Array): CkaMatrix {
  return finish(p.union, p.stats, sums, p.rowIdx, p.colIdx, p.n, p.estimator, p.plan, p.resident);
}

function validateSets(rows: ActivationSet[], cols: ActivationSet[], opts: CkaEngineOptions): void {
  if (rows.length === 0) throw new InputError('cka: no row sets given');
  if (cols.length === 0) throw new InputError('cka: no column sets given');
  for (const list of [rows, cols]) {
    const names = list.map((s) => s.name);
    const dup = names.find((x, i) => names.indexOf(x) !== i);
    if (dup !== undefined) throw new InputError(`cka: set '${dup}' appears twice among the ${list === rows ? 'row' : 'column'} sets`);
  }
  const first = rows[0];
  for (const s of [...rows, ...cols]) {
    if (s.n !== first.n) throw new InputError(`cka: set '${s.name}' has ${s.n} samples but '${first.name}' has ${first.n}; every set must hold the same samples`);
    if (!Number.isInteger(s.dim) || s.dim < 1) throw new InputError(`cka: set '${s.name}' has dim ${s.dim}, expected a positive integer`);
  }
  if (first.n < 4) throw new InputError(`cka: ${first.n} samples; linear CKA needs at least 4 (the unbiased HSIC divides by n(n-3))`);
  if (opts.estimator !== 'biased' && opts.estimator !== 'debiased') throw new InputError(`cka: estimator '${opts.estimator}', expected biased or debiased`);
  for (const [key, v] of [['blockRows', opts.blockRows], ['chunkCols', opts.chunkCols]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new InputError(`cka: ${key} ${v}, expected a positive integer`);
  }
  for (const [key, v] of [['memoryBytes', opts.memoryBytes], ['residentBytes', opts.residentBytes]] as const) {
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new InputError(`cka: ${key} ${v}, expected a non-negative number of bytes`);
  }
}

export interface TilePlan {
  panelRows: number;
  chunkCols: number;
}

/**
 * Panel height and chunk width. Panels start on the chunk grid (panelRows is a multiple of
 * chunkCols, or covers all n rows), so every chunk is either inside a panel's diagonal block or
 * wholly right of it. Short panels exploit the Grams' symmetry (work ~ n^2/2 + n*panelRows/2);
 * when streaming, each panel re-uploads the rows right of it, so panels are taller. Measured on
 * wasm (n = 4000, 10 sets, p = 64..2048): one panel of all rows 10 GFLOP/s of useful work,
 * resident 512-row panels 17.7, streaming 1024-row panels 16.3.
 * Memory per step: the m panels (h * sum p) plus tiles, stacked tiles and their transpose
 * (3 m h w), all float32; the budget caps the panel height.
 */
export function planTiles(n: number, m: number, sumDims: number, resident: boolean, opts: Pick<CkaEngineOptions, 'blockRows' | 'chunkCols' | 'memoryBytes'>): TilePlan {
  let chunkCols = Math.min(opts.chunkCols ?? defaultChunkCols(n), n);
  const budgetRows = Math.floor((opts.memoryBytes ?? DEFAULT_MEMORY_BYTES) / (4 * (sumDims + 3 * m * chunkCols)));
  let panelRows = Math.max(1, opts.blockRows ?? Math.min(budgetRows, resident ? chunkCols : 2 * chunkCols));
  if (panelRows >= n) return { panelRows: n, chunkCols };
  chunkCols = Math.min(chunkCols, panelRows);
  panelRows = Math.max(chunkCols, panelRows - (panelRows % chunkCols));
  return { panelRows, chunkCols };
}

/**
 * DEFAULT_CHUNK_COLS, halved (down to 128) while n < 6 chunks: with few chunks on the grid the
 * Grams' symmetry saves little (2 panels: 25% of the tile flops; 4 panels of 8 chunks: 44%).
 * Measured on wasm (n = 2048, 18 ResNet-shaped sets of width 128..16384, streamed): 512-row panels
 * of 256-column chunks took 0.83-0.93x the time of 1024-row panels of 512 columns, the ratio of
 * the tile flops; the GEMMs ran at the same rate in both.
 */
function defaultChunkCols(n: number): number {
  let c = DEFAULT_CHUNK_COLS;
  while (c > 128 && n < 6 * c) c /= 2;
  return c;
}

function countSteps(n: number, plan: TilePlan): number {
  let steps = 0;
  for (let a = 0; a < n; a += plan.panelRows) steps += Math.ceil((n - a) / plan.chunkCols);
  return steps;
}

/**
 * The contribution of one tile (rows a..a+h, columns c..c+w of every Gram) to G G^T: the values
 * of a (groups, m, m) tensor whose sum over groups is the tile's m x m product.
 */
async function tileProducts(features: CentredFeatures[], panels: tf.Tensor2D[], offsets: Float32Array[] | null, a: number, h: number, c: number, w: number, inDiagonalBlock: boolean): Promise<Float32Array> {
  const group = rowsPerGroup(h, w);
  const mask = offsets && inDiagonalBlock ? diagonalMask(a, h, c, w) : null;
  const tiles: tf.Tensor2D[] = [];
  let products: tf.Tensor3D;
  try {
    for (let k = 0; k < features.length; k++) {
      tiles.push(tf.tidy(() => {
        const chunk = features[k].chunkT(c, w);
        let tile = productOf(panels[k], chunk); // K[a:a+h, c:c+w]
        if (offsets) {
          // U(K)_ij = K_ij + u_i + u_j off the diagonal, 0 on it (see uOffsets).
          const u = offsets[k];
          tile = tf.add(tf.add(tile, tf.tensor2d(u.subarray(a, a + h), [h, 1])), tf.tensor2d(u.subarray(c, c + w), [1, w]));
          if (mask) tile = tf.mul(tile, mask);
        }
        // Rows grouped so each float32 sum below runs over at most PRODUCT_TERMS entries.
        return tf.reshape(tile, [h / group, group * w]);
      }));
    }
    products = tf.tidy(() => {
      const stacked = tf.stack(tiles, 1) as tf.Tensor3D; // (groups, m, group * w)
      tf.dispose(tiles.splice(0));
      // ssyrk per group with native OpenBLAS, else transpose + matMul (on wasm, m = 10..72, 1.4-2
      // GFLOP/s, about as fast as transposeB); the Gram tiles dominate anyway.
      return gramOf(stacked);
    });
  } finally {
    tf.dispose(tiles);
    mask?.dispose();
  }
  try {
    return (await products.data()) as Float32Array;
  } finally {
    products.dispose();
  }
}

/** The largest divisor of h with group * w <= PRODUCT_TERMS (at least 1). */
function rowsPerGroup(h: number, w: number): number {
  for (let g = Math.max(1, Math.min(h, Math.floor(PRODUCT_TERMS / w))); g > 1; g--) if (h % g === 0) return g;
  return 1;
}

/** 0 where the tile's entry lies on the Gram diagonal (row a+i = column c+j), 1 elsewhere. */
function diagonalMask(a: number, h: number, c: number, w: number): tf.Tensor2D {
  const f = new Float32Array(h * w).fill(1);
  for (let j = 0; j < w; j++) {
    const i = c + j - a;
    if (i >= 0 && i < h) f[i * w + j] = 0;
  }
  return tf.tensor2d(f, [h, w]);
}

/**
 * u_i = K_ii/(n-2) - tr(K)/(2(n-1)(n-2)): since the centred K has zero row sums, the row sums
 * of its zero-diagonal version are -K_ii, and U-centring reduces to adding u_i + u_j.
 */
function uOffsets(st: SetStats, n: number): Float32Array {
  const c = st.trace / (2 * (n - 1) * (n - 2));
  return Float32Array.from(st.rowSq, (d) => d / (n - 2) - c);
}

/** Add a tile's grouped m x m products, times `weight`, into the float64 running sums. */
function accumulate(sums: Float64Array, products: Float32Array, m: number, weight: number): void {
  const mm = m * m;
  for (let r = 0; r < products.length; r += mm) for (let k = 0; k < mm; k++) sums[k] += weight * products[r + k];
}

function finish(union: ActivationSet[], stats: SetStats[], sums: Float64Array, rowIdx: number[], colIdx: number[], n: number, estimator: CkaEstimator, plan: TilePlan, resident: boolean): CkaMatrix {
  const m = union.length;
  const denom = estimator === 'biased' ? (n - 1) ** 2 : n * (n - 3);
  const scaled = (k: number, l: number) => sums[k * m + l] / denom; // HSIC of the unit-RMS features
  for (let k = 0; k < m; k++) {
    const self = scaled(k, k);
    if (!(self > DEGENERATE_SELF_HSIC * (stats[k].trace ** 2 / n) / denom)) {
      throw new InputError(
        `set '${union[k].name}': its ${estimator} self-HSIC is ${self <= 0 ? self : 'indistinguishable from 0'}; ` +
          'its centred Gram holds no structure beyond per-sample offsets (e.g. only one sample differs from the rest), so CKA is undefined' +
          (estimator === 'debiased' ? ' (the biased estimator may still be defined)' : ''),
      );
    }
  }
  const unscale = (k: number, l: number) => scaled(k, l) / (stats[k].scale ** 2 * stats[l].scale ** 2);
  const nr = rowIdx.length;
  const nc = colIdx.length;
  const cka = new Float64Array(nr * nc);
  const hsic = new Float64Array(nr * nc);
  for (let i = 0; i < nr; i++) {
    for (let j = 0; j < nc; j++) {
      const k = rowIdx[i];
      const l = colIdx[j];
      cka[i * nc + j] = scaled(k, l) / Math.sqrt(scaled(k, k) * scaled(l, l));
      hsic[i * nc + j] = unscale(k, l);
      if (!Number.isFinite(cka[i * nc + j])) throw new Error(`cka: non-finite result for ${union[k].name} x ${union[l].name} (a bug: inputs were checked)`);
    }
  }
  return {
    rows: rowIdx.map((k) => union[k].name),
    cols: colIdx.map((l) => union[l].name),
    n,
    estimator,
    cka,
    hsic,
    hsicRows: Float64Array.from(rowIdx, (k) => unscale(k, k)),
    hsicCols: Float64Array.from(colIdx, (l) => unscale(l, l)),
    blockRows: plan.panelRows,
    chunkCols: plan.chunkCols,
    resident,
  };
}
