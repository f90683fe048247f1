import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendChoice } from '../../backend/index.js';
import { InputError } from '../../errors.js';
import type { ActivationSet } from '../activation-set.js';
import { linearCkaSums, type CkaEngineOptions } from './engine.js';
import type { EngineWorkerMessage } from './workers.js';

/** One worker thread of linearCkaMatrixInWorkers: its own backend instance, its share of the tiles. */
const { sets, rowIdx, colIdx, opts, backend } = workerData as { sets: ActivationSet[]; rowIdx: number[]; colIdx: number[] | null; opts: CkaEngineOptions; backend: BackendChoice };
const post = (msg: EngineWorkerMessage) => parentPort!.postMessage(msg);
try {
  await initBackend(backend);
  const rows = rowIdx.map((k) => sets[k]);
  const cols = colIdx ? colIdx.map((k) => sets[k]) : null;
  const { prepared, sums } = await linearCkaSums(rows, cols, { ...opts, onProgress: (_, total) => post({ type: 'progress', total }) });
  post({ type: 'done', prepared, sums });
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  post({ type: 'error', message: e.message, input: err instanceof InputError, stack: e.stack });
}
