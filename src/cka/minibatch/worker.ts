import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../../backend/index.js';
import { InputError } from '../../errors.js';
import { minibatchTerms, planBatches, setBatches } from './batches.js';
import type { MinibatchWorkerData, MinibatchWorkerMessage } from './workers.js';

/** One worker thread of minibatchStateOfSetsInWorkers: its own backend instance, its share of the batches. */
const { sets, config, shard, part, run, backend } = workerData as MinibatchWorkerData;
const post = (msg: MinibatchWorkerMessage) => parentPort!.postMessage(msg);
try {
  await initBackend(backend);
  const spans = planBatches(sets[0].n, config.batchSize, shard).filter((_, k) => k % part.count === part.index);
  for await (const terms of minibatchTerms(setBatches(sets, spans), sets.map((s) => s.name), config, run)) post({ type: 'batch', terms });
  post({ type: 'done' });
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  post({ type: 'error', message: e.message, input: err instanceof InputError, stack: e.stack });
}
