import { Worker } from 'node:worker_threads';
import { InputError } from '../../errors.js';
import { awaitWorker } from '../../util/worker.js';
import { activeBackend, type BackendChoice } from '../../backend/index.js';
import type { ActivationSet } from '../activation-set.js';
import { shareSet } from '../shared-set.js';
import { finishCka, type CkaEngineOptions, type CkaMatrix, type PreparedCka } from './engine.js';

/** Messages from engine-worker.ts. */
export type EngineWorkerMessage =
  | { type: 'progress'; total: number }
  | { type: 'done'; prepared: PreparedCka; sums: Float64Array }
  | { type: 'error'; message: string; input: boolean; stack?: string };

/**
 * linearCkaMatrix split over `count` worker threads, each with its own backend instance (wasm or
 * cpu): worker j computes the tile steps s with s % count == j and returns its float64 share of
 * G G^T; the shares are added and finished here. The sets' data is shared with the workers through
 * SharedArrayBuffers (copied once unless it already lives in one).
 */
export async function linearCkaMatrixInWorkers(rowSets: ActivationSet[], colSets: ActivationSet[] | null, opts: CkaEngineOptions, count: number): Promise<CkaMatrix> {
  if (!Number.isInteger(count) || count < 1) throw new InputError(`--workers: expected a positive integer, got ${count}`);
  const backend = activeBackend() as BackendChoice;
  if (count > 1 && backend !== 'wasm' && backend !== 'cpu') {
    throw new InputError(`--workers ${count}: worker threads are for the wasm and cpu backends (one instance per thread); the ${backend} backend uses its device from one thread`);
  }
  const union = [...rowSets, ...(colSets ?? []).filter((s) => !rowSets.includes(s))];
  const shared = union.map(shareSet);
  const rowIdx = rowSets.map((s) => union.indexOf(s));
  const colIdx = colSets ? colSets.map((s) => union.indexOf(s)) : null;
  const { onProgress, ...plain } = opts;
  let done = 0;
  const totals = new Array<number>(count).fill(0);
  const results = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      awaitWorker<EngineWorkerMessage, { prepared: PreparedCka; sums: Float64Array }>(
        new Worker(new URL('./worker.js', import.meta.url), {
          workerData: { sets: shared, rowIdx, colIdx, opts: { ...plain, part: { index, count } }, backend },
        }),
        `worker ${index}`,
        (msg) => {
          if (msg.type === 'progress') {
            totals[index] = msg.total;
            onProgress?.(++done, totals.reduce((s, t) => s + t, 0));
            return undefined;
          }
          return msg.type === 'done' ? { result: msg } : { failure: msg };
        },
      ),
    ),
  );
  const sums = new Float64Array(results[0].sums.length);
  for (const r of results) for (let k = 0; k < sums.length; k++) sums[k] += r.sums[k];
  return finishCka(results[0].prepared, sums);
}
