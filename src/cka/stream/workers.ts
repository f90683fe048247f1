import { runTasks } from '../../parallel/threads.js';
import { mergeStates } from '../minibatch/state.js';
import type { Shard } from '../minibatch/batches.js';
import type { StreamAccumulation } from './options.js';

/** What stream-worker.ts is given: the stream's options (`O`: StreamCkaOptions less its callback) and its part of the batches. */
export interface StreamWorkerData<O> {
  opts: O;
  part: Shard;
}

/** stream-worker.ts's progress: the samples of a batch done, and the total its share will do. */
export interface StreamWorkerProgress {
  samples: number;
  total: number;
}

/**
 * The fused stream split over `count` worker threads: worker j takes every count-th batch of this
 * process's share, runs the models and the per-batch HSIC on its own backend instance, and hands
 * back its accumulators, which are merged (sums over disjoint batches: the same as one thread).
 */
export async function accumulateInWorkers<O extends { onProgress?: (done: number, total: number) => void }>(opts: O, count: number): Promise<StreamAccumulation> {
  const { onProgress, ...plain } = opts;
  const totals = new Array<number>(count).fill(0);
  let done = 0;
  const results = await runTasks<StreamWorkerData<typeof plain>, StreamAccumulation, StreamWorkerProgress>({
    script: new URL('./worker.js', import.meta.url),
    count,
    data: (index) => ({ opts: plain, part: { index, count } }),
    onProgress: (index, { samples, total }) => {
      totals[index] = total;
      onProgress?.((done += samples), totals.reduce((s, t) => s + t, 0));
    },
  });
  const context = JSON.stringify(results[0].context);
  if (results.some((r) => JSON.stringify(r.context) !== context)) throw new Error('workers disagree on the run context (a bug)');
  return { state: mergeStates(results.map((r) => r.state), 'workers'), context: results[0].context };
}
