import * as arrow from 'apache-arrow';
import { InputError } from '../errors.js';
import { decodedMetadataOf, readArrowFile, requireColumn, withMetadata, writeArrowFile } from './arrow-file.js';

/**
 * eval.arrow: one row per (model, attack, eps) evaluation with its accuracy and the per-sample
 * correctness (List<Bool>, in the order of `sample_id`, the samples' ids in their source split).
 */
export interface EvalTableRow {
  model: string;
  attack: string;
  eps: number;
  norm: string;
  steps: number;
  restarts: number;
  n: number;
  accuracy: number;
  correct: Uint8Array;
}

const boolList = () => new arrow.List(new arrow.Field('item', new arrow.Bool(), false));

export function evalToTable(rows: EvalTableRow[], sampleIds: Int32Array, metadata: Record<string, unknown>): arrow.Table {
  for (const r of rows) if (r.correct.length !== sampleIds.length) throw new Error(`eval: row ${r.model}/${r.attack} has ${r.correct.length} samples, expected ${sampleIds.length}`);
  const table = new arrow.Table({
    model: arrow.vectorFromArray(rows.map((r) => r.model), new arrow.Utf8()),
    attack: arrow.vectorFromArray(rows.map((r) => r.attack), new arrow.Utf8()),
    eps: arrow.makeVector(Float64Array.from(rows.map((r) => r.eps))),
    norm: arrow.vectorFromArray(rows.map((r) => r.norm), new arrow.Utf8()),
    steps: arrow.makeVector(Int32Array.from(rows.map((r) => r.steps))),
    restarts: arrow.makeVector(Int32Array.from(rows.map((r) => r.restarts))),
    n: arrow.makeVector(Int32Array.from(rows.map((r) => r.n))),
    accuracy: arrow.makeVector(Float64Array.from(rows.map((r) => r.accuracy))),
    correct: arrow.vectorFromArray(rows.map((r) => Array.from(r.correct, (v) => v === 1)), boolList()),
  });
  const md: Record<string, string> = { sample_ids: JSON.stringify(Array.from(sampleIds)) };
  for (const [k, v] of Object.entries(metadata)) md[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return withMetadata(table, md);
}

export async function writeEval(file: string, rows: EvalTableRow[], sampleIds: Int32Array, metadata: Record<string, unknown>): Promise<void> {
  await writeArrowFile(file, evalToTable(rows, sampleIds, metadata));
}

export async function readEval(file: string): Promise<{ rows: EvalTableRow[]; sampleIds: Int32Array; metadata: Record<string, unknown> }> {
  const table = await readArrowFile(file);
  const cols = ['model', 'attack', 'eps', 'norm', 'steps', 'restarts', 'n', 'accuracy', 'correct'].map((c) => requireColumn(table, file, c));
  const rows: EvalTableRow[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const [model, attack, eps, norm, steps, restarts, n, accuracy, correct] = cols.map((c) => c.get(i));
    const flags = (correct as arrow.Vector).toArray() as ArrayLike<boolean>;
    rows.push({
      model: String(model),
      attack: String(attack),
      eps: Number(eps),
      norm: String(norm),
      steps: Number(steps),
      restarts: Number(restarts),
      n: Number(n),
      accuracy: Number(accuracy),
      correct: Uint8Array.from(Array.from(flags, (b) => (b ? 1 : 0))),
    });
  }
  const metadata = decodedMetadataOf(table);
  if (!Array.isArray(metadata.sample_ids)) throw new InputError(`${file}: schema metadata lacks 'sample_ids'`);
  const sampleIds = Int32Array.from(metadata.sample_ids as number[]);
  delete metadata.sample_ids;
  return { rows, sampleIds, metadata };
}
