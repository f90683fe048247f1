import * as arrow from 'apache-arrow';
import { InputError } from '../errors.js';
import { decodedMetadataOf, readArrowFile, requireColumn, withMetadata, writeArrowFile } from './arrow-file.js';

/**
 * similarity.arrow: one row per (row set, column set) pair.
 * Set names are `<layer>@<input>` (e.g. `block3@adv`) or a bare layer name for external data.
 * `row_index`/`col_index` give the position of each set in network order.
 */
export interface SimilarityTable {
  rows: string[];
  cols: string[];
  /** cka[i * cols.length + j] is the similarity of rows[i] and cols[j]. */
  cka: Float64Array;
  /** Optional extra float64 columns with the same layout as `cka` (e.g. ci_low). */
  extra?: Record<string, Float64Array>;
  metadata: SimilarityMetadata;
}

export interface SimilarityMetadata {
  /** 'biased' | 'debiased' | 'minibatch' ... */
  estimator: string;
  n: number;
  /** The activation files the rows and columns came from. */
  inputs: string[];
  /** Anything else that made this artefact (command, backend, versions, model metadata). */
  [key: string]: unknown;
}

export function similarityToTable(sim: SimilarityTable): arrow.Table {
  const nr = sim.rows.length;
  const nc = sim.cols.length;
  if (sim.cka.length !== nr * nc) throw new Error(`similarity: cka has ${sim.cka.length} values, expected ${nr * nc}`);
  const row: string[] = [];
  const col: string[] = [];
  const rowIndex = new Int32Array(nr * nc);
  const colIndex = new Int32Array(nr * nc);
  for (let i = 0; i < nr; i++) {
    for (let j = 0; j < nc; j++) {
      const k = i * nc + j;
      row.push(sim.rows[i]);
      col.push(sim.cols[j]);
      rowIndex[k] = i;
      colIndex[k] = j;
    }
  }
  const columns: Record<string, arrow.Vector> = {
    row: arrow.vectorFromArray(row, new arrow.Utf8()),
    col: arrow.vectorFromArray(col, new arrow.Utf8()),
    row_index: arrow.makeVector(rowIndex),
    col_index: arrow.makeVector(colIndex),
    cka: arrow.makeVector(Float64Array.from(sim.cka)),
  };
  for (const [name, values] of Object.entries(sim.extra ?? {})) {
    if (values.length !== nr * nc) throw new Error(`similarity: column ${name} has wrong length`);
    columns[name] = arrow.makeVector(Float64Array.from(values));
  }
  const md: Record<string, string> = {};
  for (const [k, v] of Object.entries(sim.metadata)) md[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return withMetadata(new arrow.Table(columns), md);
}

export async function writeSimilarity(file: string, sim: SimilarityTable): Promise<void> {
  await writeArrowFile(file, similarityToTable(sim));
}

export async function readSimilarity(file: string): Promise<SimilarityTable> {
  const table = await readArrowFile(file);
  const rowCol = requireColumn(table, file, 'row');
  const colCol = requireColumn(table, file, 'col');
  const ri = requireColumn(table, file, 'row_index');
  const ci = requireColumn(table, file, 'col_index');
  const ckaCol = requireColumn(table, file, 'cka');
  const nr = table.numRows === 0 ? 0 : Number(Math.max(...(ri.toArray() as Int32Array))) + 1;
  const nc = table.numRows === 0 ? 0 : Number(Math.max(...(ci.toArray() as Int32Array))) + 1;
  if (nr * nc !== table.numRows) throw new InputError(`${file}: ${table.numRows} rows do not form a ${nr} x ${nc} matrix`);
  const rows = new Array<string>(nr);
  const cols = new Array<string>(nc);
  const cka = new Float64Array(nr * nc).fill(NaN);
  const known = new Set(['row', 'col', 'row_index', 'col_index', 'cka']);
  const extraNames = table.schema.fields.map((f) => f.name).filter((n) => !known.has(n));
  const extra: Record<string, Float64Array> = {};
  for (const name of extraNames) extra[name] = new Float64Array(nr * nc);
  for (let k = 0; k < table.numRows; k++) {
    const i = Number(ri.get(k));
    const j = Number(ci.get(k));
    rows[i] = String(rowCol.get(k));
    cols[j] = String(colCol.get(k));
    cka[i * nc + j] = Number(ckaCol.get(k));
    for (const name of extraNames) extra[name][i * nc + j] = Number(table.getChild(name)!.get(k));
  }
  const metadata = decodedMetadataOf(table);
  if (typeof metadata.estimator !== 'string') throw new InputError(`${file}: schema metadata lacks 'estimator'`);
  return { rows, cols, cka, extra: extraNames.length ? extra : undefined, metadata: metadata as SimilarityMetadata };
}
