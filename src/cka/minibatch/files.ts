import * as tf from '@tensorflow/tfjs';
import { InputError } from '../../errors.js';
import { readAccumulators } from '../../formats/accumulators.js';
import { provenance } from '../../util/provenance.js';
import type { ActivationSet } from '../../formats/activations.js';
import type { MeasureOutput } from '../measures/spec.js';
import { statsBatchWarnings } from '../similarity/stats-rule.js';
import type { ActivationInputs, ResolvedRequest } from '../similarity/request.js';
import type { Kernel } from './hsic.js';
import { minibatchStateOfSets, planBatches } from './batches.js';
import { minibatchStateOfSetsInWorkers } from './workers.js';
import { mergeStates, type MinibatchConfig } from './state.js';
import { qualifiedName, writeMinibatchResults, type SetGroup, type WrittenSimilarity } from './output.js';

/**
 * Minibatch CKA of activations read once (one input, or two on the same samples), written like the
 * streaming run: the implementation of the minibatch estimator for stored activations.
 */
export async function minibatchOfActivations(inputs: ActivationInputs, req: ResolvedRequest, kernel: Kernel): Promise<MeasureOutput> {
  const { first, second } = inputs;
  const config: MinibatchConfig = { batchSize: req.batchSize, seed: req.seed, bootstrap: req.bootstrap, permutations: req.permutations, kernel };
  const groups: SetGroup[] = [{ key: 'a', source: first.source, metadata: first.metadata }];
  if (second) groups.push({ key: 'b', source: second.source, metadata: second.metadata });
  const named = (key: string, sets: ActivationSet[]) => sets.map((s) => ({ ...s, name: qualifiedName(groups, key, s.name) }));
  const sets = [...named('a', first.sets), ...(second ? named('b', second.sets) : [])];
  const run = { formulation: req.formulation };
  const total = planBatches(sets[0].n, config.batchSize, req.shard).reduce((s, x) => s + x.size, 0);
  let done = 0;
  const onBatch = (_: number, b: number) => req.onProgress?.((done += b), total);
  const state =
    req.workers > 1
      ? await minibatchStateOfSetsInWorkers(sets, config, req.workers, { shard: req.shard, run, onBatch })
      : await minibatchStateOfSets(sets, config, req.shard, run, onBatch);
  const info = { shard: req.shard ?? null, workers: req.workers, provenance: provenance(req.backend ?? tf.getBackend()) };
  const written = await writeMinibatchResults(req.out, { state, context: { groups }, info }, { provenance: info.provenance, shard: info.shard }, req.warnings);
  return { written, minibatch: { sets: state.sets, batches: state.batchIds.length, samples: state.samples } };
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
  return writeMinibatchResults(out, { state, context: saved[0].context, info }, { merged_from: dirs, provenance: info.provenance }, statsBatchWarnings(state.batchIds.length, state.config.bootstrap));
}
