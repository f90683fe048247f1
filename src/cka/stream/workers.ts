import { Worker } from 'node:worker_threads';
import { awaitWorker } from '../../util/worker.js';
import { activeBackend } from '../../backend/index.js';
import type { BackendChoice } from '../../backend/index.js';
import { mergeStates } from '../minibatch/state.js';
import type { StreamAccumulation, StreamCkaOptions } from './options.js';

/** Messages from stream-worker.ts. */
export type WorkerMessage =
  | { type: 'progress'; samples: number; total: number }
  | { type: 'done'; result: StreamAccumulation }
  | { type: 'error'; message: string; input: boolean; stack?: string };

/**
 * The fused stream split over `count` worker threads: worker j takes every count-th batch of this
 * process's share, runs the models and the per-batch HSIC on its own backend instance, and hands
 * back its accumulators, which are merged (sums over disjoint batches: the same as one thread).
 */
export async function accumulateInWorkers(opts: StreamCkaOptions, count: number): Promise<StreamAccumulation> {
  const backend = activeBackend() as BackendChoice;
  const { onProgress, ...plain } = opts;
  const totals = new Array<number>(count).fill(0);
  let done = 0;
  const results = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      awaitWorker<WorkerMessage, StreamAccumulation>(
        new Worker(new URL('./worker.js', import.meta.url), { workerData: { opts: plain, part: { index, count }, backend } }),
        `worker ${index}`,
        (msg) => {
          if (msg.type === 'progress') {
            totals[index] = msg.total;
            onProgress?.((done += msg.samples), totals.reduce((s, t) => s + t, 0));
            return undefined;
          }
          return msg.type === 'done' ? { result: msg.result } : { failure: msg };
        },
      ),
    ),
  );
  const context = JSON.stringify(results[0].context);
  if (results.some((r) => JSON.stringify(r.context) !== context)) throw new Error('workers disagree on the run context (a bug)');
  return { state: mergeStates(results.map((r) => r.state), 'workers'), context: results[0].context };
}
