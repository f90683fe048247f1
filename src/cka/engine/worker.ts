import { runTask } from '../../parallel/in-worker.js';
import { linearCkaSums } from './engine.js';
import type { EngineWorkerData, EngineWorkerResult } from './workers.js';

/** One worker thread of linearCkaMatrixInWorkers: its own backend instance, its share of the tiles. */
await runTask<EngineWorkerData, EngineWorkerResult, number>(async ({ sets, rowIdx, colIdx, opts }, progress) => {
  const rows = rowIdx.map((k) => sets[k]);
  const cols = colIdx ? colIdx.map((k) => sets[k]) : null;
  return linearCkaSums(rows, cols, { ...opts, onProgress: (_, total) => progress(total) });
});
