import { runTask } from '../../parallel/in-worker.js';
import { accumulateStream, type StreamCkaOptions } from './stream.js';
import type { StreamWorkerData, StreamWorkerProgress } from './workers.js';
import type { StreamAccumulation } from './options.js';

/** One worker thread of accumulateInWorkers: its own backend instance, its share of the batches. */
await runTask<StreamWorkerData<StreamCkaOptions>, StreamAccumulation, StreamWorkerProgress>(({ opts, part }, progress) =>
  accumulateStream(opts, part, (samples, total) => progress({ samples, total })),
);
