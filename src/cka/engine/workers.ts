import { runTasks, threadBackend } from '../../parallel/threads.js';
import type { ActivationSet } from '../../formats/activations.js';
import { shareSet } from '../shared-set.js';
import { finishCka, type CkaEngineOptions, type CkaMatrix, type PreparedCka } from './engine.js';

/** What engine-worker.ts is given: the shared sets, which of them are rows and columns, and its part of the tiles. */
export interface EngineWorkerData {
  sets: ActivationSet[];
  rowIdx: number[];
  colIdx: number[] | null;
  opts: CkaEngineOptions;
}
/** engine-worker.ts's result: its float64 share of G G^T. */
export type EngineWorkerResult = { prepared: PreparedCka; sums: Float64Array };

/**
 * linearCkaMatrix split over `count` worker threads, each with its own backend instance (wasm or
 * cpu): worker j computes the tile steps s with s % count == j and returns its float64 share of
 * G G^T; the shares are added and finished here. The sets' data is shared with the workers through
 * SharedArrayBuffers (copied once unless it already lives in one).
 */
export async function linearCkaMatrixInWorkers(rowSets: ActivationSet[], colSets: ActivationSet[] | null, opts: CkaEngineOptions, count: number): Promise<CkaMatrix> {
  const backend = threadBackend(count);
  const union = [...rowSets, ...(colSets ?? []).filter((s) => !rowSets.includes(s))];
  const shared = union.map(shareSet);
  const rowIdx = rowSets.map((s) => union.indexOf(s));
  const colIdx = colSets ? colSets.map((s) => union.indexOf(s)) : null;
  const { onProgress, ...plain } = opts;
  let done = 0;
  const totals = new Array<number>(count).fill(0);
  const results = await runTasks<EngineWorkerData, EngineWorkerResult, number>({
    script: new URL('./worker.js', import.meta.url),
    count,
    backend,
    data: (index) => ({ sets: shared, rowIdx, colIdx, opts: { ...plain, part: { index, count } } }),
    onProgress: (index, total) => {
      totals[index] = total;
      onProgress?.(++done, totals.reduce((s, t) => s + t, 0));
    },
  });
  const sums = new Float64Array(results[0].sums.length);
  for (const r of results) for (let k = 0; k < sums.length; k++) sums[k] += r.sums[k];
  return finishCka(results[0].prepared, sums);
}
