import type { SimilarityTable } from '../formats/similarity.js';

/**
 * Splitting one similarity table into the matrices a reader wants to see.
 * Set names are `<layer>@<input>` (input 'clean' or 'adv') or a bare layer name (external data).
 * Everything here keeps the table's index order, which is network order.
 */

/** One set name split into its layer and its input kind ('' for a bare layer name). */
export interface SetName {
  layer: string;
  input: string;
}

export function parseSetName(name: string): SetName {
  const at = name.lastIndexOf('@');
  if (at <= 0) return { layer: name, input: '' };
  return { layer: name.slice(0, at), input: name.slice(at + 1) };
}

/** A named rectangular block of CKA values, rows and columns labelled by layer name in network order. */
export interface SubMatrix {
  /** Short identifier, e.g. 'clean x adv' or 'A x B (adv)'. */
  key: string;
  /** What the rows are (e.g. 'clean' or 'SL-AT (adv)'), used as the y axis title. */
  rowAxis: string;
  /** What the columns are, used as the x axis title. */
  colAxis: string;
  rowLayers: string[];
  colLayers: string[];
  /** values[i * colLayers.length + j] = CKA(rowLayers[i], colLayers[j]). */
  values: Float64Array;
}

/** Labels for the two sides of a table that compares two activation files. */
export interface SideLabels {
  rows: string;
  cols: string;
}

interface Group {
  input: string;
  /** Indices into the table's rows or cols, in index order. */
  indices: number[];
  layers: string[];
}

/** Group set indices by input kind, each group in index order; kinds ordered clean first, then by first appearance. */
function groupByInput(names: string[]): Group[] {
  const groups = new Map<string, Group>();
  names.forEach((name, index) => {
    const { layer, input } = parseSetName(name);
    let g = groups.get(input);
    if (!g) groups.set(input, (g = { input, indices: [], layers: [] }));
    g.indices.push(index);
    g.layers.push(layer);
  });
  const rank = (k: string): number => (k === 'clean' ? 0 : k === 'adv' ? 1 : 2);
  // Array.prototype.sort is stable, so kinds of equal rank keep their order of appearance.
  return [...groups.values()].sort((a, b) => rank(a.input) - rank(b.input));
}

/**
 * True for a within-model table: rows and columns are the same sets in the same order, and the
 * metadata does not say they came from two different files. Two models of one architecture have
 * identical set names, so names alone cannot tell the cases apart.
 */
export function isSelfSimilarity(sim: SimilarityTable): boolean {
  const { rows_from: rowsFrom, cols_from: colsFrom, inputs } = sim.metadata;
  if (rowsFrom !== undefined || colsFrom !== undefined) {
    if (JSON.stringify(rowsFrom) !== JSON.stringify(colsFrom)) return false;
  } else if (Array.isArray(inputs) && new Set(inputs.map(String)).size > 1) {
    return false;
  }
  return sim.rows.length === sim.cols.length && sim.rows.every((r, i) => r === sim.cols[i]);
}

function block(sim: SimilarityTable, rows: Group, cols: Group, key: string, rowAxis: string, colAxis: string): SubMatrix {
  const nc = sim.cols.length;
  const values = new Float64Array(rows.indices.length * cols.indices.length);
  rows.indices.forEach((ri, i) => {
    cols.indices.forEach((ci, j) => {
      values[i * cols.indices.length + j] = sim.cka[ri * nc + ci];
    });
  });
  return { key, rowAxis, colAxis, rowLayers: rows.layers.slice(), colLayers: cols.layers.slice(), values };
}

function kindName(input: string): string {
  return input === '' ? 'all' : input;
}

/**
 * The sub-matrices of one table.
 * - Self-similarity (rows = cols): `k x k` for every input kind, then `a x b` for every pair of kinds
 *   (clean before adv, so `clean x adv` has clean layers on the rows). Bare names give one matrix.
 * - Two files (rows from A, cols from B): one `A x B (k)` per input kind present on both sides; when the
 *   sides share no kind (e.g. A@clean vs B@adv on purpose), one matrix per (row kind, col kind) pair.
 */
export function splitMatrices(sim: SimilarityTable, sides: SideLabels = { rows: 'A', cols: 'B' }): SubMatrix[] {
  if (isSelfSimilarity(sim)) {
    const groups = groupByInput(sim.rows);
    const out: SubMatrix[] = [];
    for (const g of groups) out.push(block(sim, g, g, `${kindName(g.input)} x ${kindName(g.input)}`, kindName(g.input), kindName(g.input)));
    for (let a = 0; a < groups.length; a++) {
      for (let b = a + 1; b < groups.length; b++) {
        const ra = kindName(groups[a].input);
        const cb = kindName(groups[b].input);
        out.push(block(sim, groups[a], groups[b], `${ra} x ${cb}`, ra, cb));
      }
    }
    return out;
  }
  const rowGroups = groupByInput(sim.rows);
  const colGroups = groupByInput(sim.cols);
  const side = (label: string, input: string): string => (input === '' ? label : `${label} (${input})`);
  const shared = rowGroups.filter((r) => colGroups.some((c) => c.input === r.input));
  const pairs: [Group, Group][] = shared.length
    ? shared.map((r) => [r, colGroups.find((c) => c.input === r.input)!])
    : rowGroups.flatMap((r) => colGroups.map((c): [Group, Group] => [r, c]));
  return pairs.map(([r, c]) => {
    const key = r.input === c.input ? side(`${sides.rows} x ${sides.cols}`, r.input) : `${side(sides.rows, r.input)} x ${side(sides.cols, c.input)}`;
    return block(sim, r, c, key, side(sides.rows, r.input), side(sides.cols, c.input));
  });
}

/** CKA(layer@clean, layer@adv) for one layer. */
export interface DiagonalPoint {
  layer: string;
  cka: number;
  /** From the optional statistics columns of minibatch CKA (ci_low, ci_high, null_mean). */
  ciLow?: number;
  ciHigh?: number;
  nullMean?: number;
}

/**
 * The clean-vs-adversarial diagonal of a within-model table: for each clean layer in network order that
 * also has an adversarial set, CKA(layer@clean, layer@adv). Empty for tables comparing two files
 * (their rows and columns come from different models) and for tables without both input kinds.
 */
export function cleanAdvDiagonal(sim: SimilarityTable): DiagonalPoint[] {
  if (!isSelfSimilarity(sim)) return [];
  const index = new Map(sim.cols.map((c, j) => [c, j] as const));
  const nc = sim.cols.length;
  const out: DiagonalPoint[] = [];
  sim.rows.forEach((name, i) => {
    const { layer, input } = parseSetName(name);
    if (input !== 'clean') return;
    const j = index.get(`${layer}@adv`);
    if (j === undefined) return;
    const k = i * nc + j;
    const point: DiagonalPoint = { layer, cka: sim.cka[k] };
    if (sim.extra?.ci_low && sim.extra.ci_high) Object.assign(point, { ciLow: sim.extra.ci_low[k], ciHigh: sim.extra.ci_high[k] });
    if (sim.extra?.null_mean) point.nullMean = sim.extra.null_mean[k];
    out.push(point);
  });
  return out;
}

/**
 * The layer that stands for "pooled features": `pool` if present, else the last layer before `logits`,
 * else the last layer. Undefined for an empty list.
 */
export function pooledLayer(layers: string[]): string | undefined {
  if (layers.includes('pool')) return 'pool';
  const logits = layers.indexOf('logits');
  if (logits > 0) return layers[logits - 1];
  if (logits === 0) return undefined;
  return layers[layers.length - 1];
}

/** Merge several layer lists into one order that respects each list's order (first list wins ties). */
export function mergeLayerOrder(lists: string[][]): string[] {
  const out: string[] = [];
  for (const list of lists) {
    let insertAt = 0;
    for (const layer of list) {
      const at = out.indexOf(layer);
      if (at >= 0) {
        insertAt = Math.max(insertAt, at + 1);
      } else {
        out.splice(insertAt, 0, layer);
        insertAt++;
      }
    }
  }
  return out;
}
