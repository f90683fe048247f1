import { runTasks, threadBackend } from '../../parallel/threads.js';
import type { ActivationSet } from '../../formats/activations.js';
import { planBatches, requireBatchableSets, type BatchTerms, type MinibatchRunOptions, type Shard } from './batches.js';
import { addBatch, emptyState, type MinibatchConfig, type MinibatchState } from './state.js';
import { shareSet } from '../shared-set.js';

/** What a worker is given: the shared sets and its share of the batches. */
export interface MinibatchWorkerData {
  sets: ActivationSet[];
  config: MinibatchConfig;
  shard?: Shard;
  part: Shard;
  run: MinibatchRunOptions;
}

/**
 * minibatchStateOfSets split over `count` worker threads, each with its own backend instance (wasm
 * or cpu): worker j computes the per-batch HSIC terms of every count-th batch of the plan (of
 * `shard`'s share) and posts each batch's terms; this thread adds them to the state in the plan's
 * batch order, exactly as one thread would, so the state is bit-for-bit that of one thread whenever
 * the backends compute the same per-batch terms (the same kernels on the same inputs do). The
 * bootstrap weights and permutations depend only on the seed and the batch id, so the statistics
 * split the same way. The sets' data is shared through SharedArrayBuffers (copied once unless it
 * already lives in one).
 */
export async function minibatchStateOfSetsInWorkers(
  sets: ActivationSet[],
  config: MinibatchConfig,
  count: number,
  opts: { shard?: Shard; run?: MinibatchRunOptions; onBatch?: (id: number, samples: number) => void } = {},
): Promise<MinibatchState> {
  const backend = threadBackend(count);
  const n = requireBatchableSets(sets);
  const state = emptyState(sets.map((s) => s.name), config);
  // Validates the plan here, so a bad --batch-size fails before any thread starts.
  const order = planBatches(n, config.batchSize, opts.shard).map((s) => s.id);
  const shared = sets.map(shareSet);
  const pending = new Map<number, BatchTerms>();
  let next = 0;
  const take = (terms: BatchTerms) => {
    pending.set(terms.id, terms);
    for (let t = pending.get(order[next]); t !== undefined; t = pending.get(order[next])) {
      pending.delete(t.id);
      addBatch(state, t.id, t.b, t.hsic, t.nullHsic);
      opts.onBatch?.(t.id, t.b);
      next++;
    }
  };
  // Each batch's terms arrive as the worker's progress; the workers' results are empty.
  await runTasks<MinibatchWorkerData, null, BatchTerms>({
    script: new URL('./worker.js', import.meta.url),
    count,
    backend,
    data: (index) => ({ sets: shared, config, shard: opts.shard, part: { index, count }, run: opts.run ?? {} }),
    onProgress: (_, terms) => take(terms),
  });
  if (next !== order.length) throw new Error(`minibatch workers: ${order.length - next} of ${order.length} batches never arrived (a bug)`);
  return state;
}
