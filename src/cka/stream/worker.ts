import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendChoice } from '../../backend/index.js';
import { InputError } from '../../errors.js';
import type { Shard } from '../minibatch/batches.js';
import { accumulateStream, type StreamCkaOptions } from './stream.js';
import type { WorkerMessage } from './workers.js';

/** One worker thread of accumulateInWorkers: its own backend instance, its share of the batches. */
const { opts, part, backend } = workerData as { opts: StreamCkaOptions; part: Shard; backend: BackendChoice };
const post = (msg: WorkerMessage) => parentPort!.postMessage(msg);
try {
  await initBackend(backend);
  const result = await accumulateStream(opts, part, (samples, total) => post({ type: 'progress', samples, total }));
  post({ type: 'done', result });
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  post({ type: 'error', message: e.message, input: err instanceof InputError, stack: e.stack });
}
