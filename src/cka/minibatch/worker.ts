import { runTask } from '../../parallel/in-worker.js';
import { minibatchTerms, planBatches, setBatches, type BatchTerms } from './batches.js';
import type { MinibatchWorkerData } from './workers.js';

/** One worker thread of minibatchStateOfSetsInWorkers: its own backend instance, its share of the batches. */
await runTask<MinibatchWorkerData, null, BatchTerms>(async ({ sets, config, shard, part, run }, progress) => {
  const spans = planBatches(sets[0].n, config.batchSize, shard).filter((_, k) => k % part.count === part.index);
  for await (const terms of minibatchTerms(setBatches(sets, spans), sets.map((s) => s.name), config, run)) progress(terms);
  return null;
});
