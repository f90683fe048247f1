import * as path from 'node:path';
import type { SimilarityTable } from '../formats/similarity.js';
import { cleanAdvDiagonal, isSelfSimilarity, parseSetName, pooledLayer, type SideLabels } from './matrices.js';

/** One similarity table as the report sees it: where it came from and what to call it. */
export interface LabelledSimilarity {
  /** Display name: the model's name, or `A vs B` for a table comparing two models. */
  label: string;
  /** The similarity.arrow file it was read from. */
  source: string;
  sim: SimilarityTable;
  /** Names of the row and column sides (the same model twice for a within-model table). */
  sides: SideLabels;
}

/** CKA between the two models' pooled features on one input kind. */
export interface CrossPooled {
  input: string;
  layer: string;
  cka: number;
}

export interface ReportSummaryRow {
  label: string;
  source: string;
  /** 'self': one model's layers against themselves; 'cross': model A's layers against model B's. */
  kind: 'self' | 'cross';
  estimator: string;
  n: number | null;
  /** The layer standing for pooled features (`pool`, else the last before `logits`); null if none. */
  pooledLayer: string | null;
  /** CKA(pooled@clean, pooled@adv); null when the table has no clean/adv pair for it. */
  pooledCka: number | null;
  /** CKA(logits@clean, logits@adv); null when absent. */
  logitsCka: number | null;
  /** For 'cross' tables: CKA(A pooled@k, B pooled@k) for each input kind k both sides have. */
  crossPooled: CrossPooled[];
}

interface ModelMeta {
  model?: { name?: unknown };
}

function modelName(source: unknown): string | undefined {
  const name = (source as ModelMeta | undefined)?.model?.name;
  return typeof name === 'string' && name.trim() !== '' ? name : undefined;
}

/** File names that say what an artefact is, not which model it belongs to. */
const GENERIC_NAMES = new Set(['similarity', 'activations', 'acts', 'capture']);

/**
 * A name for an artefact when its metadata names no model: its base name without `.arrow`, or its
 * directory's name when the base name is generic (`runs/sl-at/similarity.arrow` -> `sl-at`).
 */
export function nameFromPath(file: string): string {
  const resolved = path.resolve(file);
  const base = path.basename(resolved).replace(/\.arrow$/, '');
  if (!GENERIC_NAMES.has(base)) return base;
  return path.basename(path.dirname(resolved)) || base;
}

/**
 * Labels for a table: the model name from `sources[k].model.name` where present, else a name derived
 * from the file paths. For a two-file table the row side is the source matching `rows_from`.
 */
export function labelSimilarity(sim: SimilarityTable, source: string): { label: string; sides: SideLabels } {
  const md = sim.metadata;
  const sources = Array.isArray(md.sources) ? (md.sources as unknown[]) : [];
  const inputs = Array.isArray(md.inputs) ? md.inputs.map(String) : [];
  if (isSelfSimilarity(sim)) {
    const label = modelName(sources[0]) ?? nameFromPath(source);
    return { label, sides: { rows: label, cols: label } };
  }
  const side = (from: unknown, fallbackIndex: number, fallbackName: string): string => {
    const k = typeof from === 'string' ? inputs.indexOf(from) : -1;
    const byMeta = modelName(sources[k >= 0 ? k : fallbackIndex]);
    if (byMeta) return byMeta;
    if (typeof from === 'string' && from !== '') return nameFromPath(from) || fallbackName;
    return fallbackName;
  };
  let rows = side(md.rows_from, 0, 'A');
  let cols = side(md.cols_from, 1, 'B');
  if (rows === cols) {
    rows = `${rows} (rows)`;
    cols = `${cols} (cols)`;
  }
  return { label: `${rows} vs ${cols}`, sides: { rows, cols } };
}

/** Make labels unique across inputs by numbering repeats: `SL-AT`, `SL-AT (2)`. */
export function uniqueLabels(labels: string[]): string[] {
  const seen = new Map<string, number>();
  return labels.map((l) => {
    const count = (seen.get(l) ?? 0) + 1;
    seen.set(l, count);
    return count === 1 ? l : `${l} (${count})`;
  });
}

function crossPooled(sim: SimilarityTable): CrossPooled[] {
  const out: CrossPooled[] = [];
  const rowSets = sim.rows.map(parseSetName);
  const colIndex = new Map(sim.cols.map((c, j) => [c, j] as const));
  const kinds = [...new Set(rowSets.map((s) => s.input))];
  for (const input of kinds) {
    const layers = rowSets.filter((s) => s.input === input).map((s) => s.layer);
    const colLayers = sim.cols.map(parseSetName).filter((s) => s.input === input).map((s) => s.layer);
    const shared = layers.filter((l) => colLayers.includes(l));
    const layer = pooledLayer(shared);
    if (layer === undefined) continue;
    const name = input === '' ? layer : `${layer}@${input}`;
    const i = sim.rows.indexOf(name);
    const j = colIndex.get(name)!;
    out.push({ input, layer, cka: sim.cka[i * sim.cols.length + j] });
  }
  return out;
}

/**
 * Per input, the headline numbers: clean-vs-adversarial CKA at the pooled features and at the logits
 * (or, for a table comparing two models, their CKA at the pooled features per input kind).
 */
export function reportSummary(inputs: LabelledSimilarity[]): ReportSummaryRow[] {
  return inputs.map(({ label, source, sim }) => {
    const self = isSelfSimilarity(sim);
    const diagonal = cleanAdvDiagonal(sim);
    const layers = diagonal.map((p) => p.layer);
    const pooled = pooledLayer(layers);
    const at = (layer: string | undefined): number | null => {
      const p = layer === undefined ? undefined : diagonal.find((d) => d.layer === layer);
      return p ? p.cka : null;
    };
    const cross = self ? [] : crossPooled(sim);
    return {
      label,
      source,
      kind: self ? 'self' : 'cross',
      estimator: String(sim.metadata.estimator),
      n: typeof sim.metadata.n === 'number' ? sim.metadata.n : null,
      pooledLayer: self ? (pooled ?? null) : (cross[0]?.layer ?? null),
      pooledCka: at(pooled),
      logitsCka: at('logits'),
      crossPooled: cross,
    };
  });
}

/** One line per input, for the terminal and the README: `SL-AT: clean-vs-adv CKA at pool = 0.912 (logits 0.874)`. */
export function formatSummaryLine(row: ReportSummaryRow): string {
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
  if (row.kind === 'cross') {
    const parts = row.crossPooled.map((c) => `${c.input || 'all'} ${f(c.cka)}`);
    return `${row.label}: CKA at ${row.pooledLayer ?? 'pooled features'} = ${parts.length ? parts.join(', ') : 'n/a'}`;
  }
  if (row.pooledCka === null) return `${row.label}: no clean/adv pair in this table`;
  const logits = row.logitsCka === null ? '' : ` (logits ${f(row.logitsCka)})`;
  return `${row.label}: clean-vs-adv CKA at ${row.pooledLayer} = ${f(row.pooledCka)}${logits}`;
}
