import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { readActivations } from '../formats/activations.js';
import { readAccumulators } from '../formats/accumulators.js';
import { provenance } from '../util/provenance.js';
import type { ActivationSet } from '../formats/activations.js';
import { requireSameSamples } from './compute.js';
import { minibatchStateOfSets, planBatches, type MinibatchRunOptions, type Shard } from './minibatch.js';
import { minibatchStateOfSetsInWorkers } from './minibatch-workers.js';
import { mergeStates, type MinibatchConfig } from './minibatch-state.js';
import { qualifiedName, writeMinibatchResults, type SetGroup, type WrittenSimilarity } from './minibatch-output.js';

/** Minibatch CKA of stored activations (one file, or two on the same samples), written like the streaming run. */
export async function minibatchSimilarityOfFiles(opts: {
  acts: string;
  acts2?: string;
  sets?: string[];
  out: string;
  config: MinibatchConfig;
  shard?: Shard;
  backend?: string;
  /** Worker threads, each with its own wasm/cpu backend, splitting the batches (default 1: this thread). */
  workers?: number;
  run?: MinibatchRunOptions;
  onProgress?: (done: number, total: number) => void;
}): Promise<WrittenSimilarity[]> {
  const first = await readActivations(opts.acts, { sets: opts.sets });
  const second = opts.acts2 ? await readActivations(opts.acts2, { sets: opts.sets }) : null;
  if (second) requireSameSamples(first, second);
  const groups: SetGroup[] = [{ key: 'a', source: first.source, metadata: first.metadata }];
  if (second) groups.push({ key: 'b', source: second.source, metadata: second.metadata });
  const named = (key: string, sets: ActivationSet[]) => sets.map((s) => ({ ...s, name: qualifiedName(groups, key, s.name) }));
  const sets = [...named('a', first.sets), ...(second ? named('b', second.sets) : [])];
  const workers = opts.workers ?? 1;
  const total = planBatches(sets[0].n, opts.config.batchSize, opts.shard).reduce((s, x) => s + x.size, 0);
  let done = 0;
  const onBatch = (_: number, b: number) => opts.onProgress?.((done += b), total);
  const state =
    workers > 1
      ? await minibatchStateOfSetsInWorkers(sets, opts.config, workers, { shard: opts.shard, run: opts.run, onBatch })
      : await minibatchStateOfSets(sets, opts.config, opts.shard, opts.run, onBatch);
  const info = { shard: opts.shard ?? null, workers, provenance: provenance(opts.backend ?? tf.getBackend()) };
  return writeMinibatchResults(opts.out, { state, context: { groups }, info }, { provenance: info.provenance, shard: info.shard });
}

/** `cka-merge`: add up the accumulators of runs over disjoint shards and write the tables of the whole. */
export async function mergeMinibatchRuns(dirs: string[], out: string): Promise<WrittenSimilarity[]> {
  if (dirs.length === 0) throw new InputError('cka-merge: name at least one directory to merge');
  const saved = [];
  for (const d of dirs) saved.push(await readAccumulators(d));
  const context = JSON.stringify(saved[0].context);
  saved.forEach((s, i) => {
    if (JSON.stringify(s.context) !== context) {
      throw new InputError(`cka-merge: ${dirs[i]} was made from other models, data or options than ${dirs[0]} (their accumulators.json 'context' differ); shards must come from one command`);
    }
  });
  const state = mergeStates(saved.map((s) => s.state));
  const info = { merged_from: dirs, shards: saved.map((s) => s.info.shard ?? null), provenance: provenance() };
  return writeMinibatchResults(out, { state, context: saved[0].context, info }, { merged_from: dirs, provenance: info.provenance });
}
