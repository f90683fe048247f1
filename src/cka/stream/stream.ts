import { InputError } from '../../errors.js';
import type { Dataset } from '../../data/index.js';
import { activeBackend } from '../../backend/index.js';
import { provenance } from '../../util/provenance.js';
import { threadBackend } from '../../parallel/threads.js';
import { captureBatches, closeCaptureModel, describeAttack, describeModel, loadCaptureData, openCaptureModel, validateAttackLoss, validateInputs, type CaptureModel } from '../capture/source.js';
import { accumulateMinibatches, planBatches, type BatchSpan, type MinibatchBatch, type Shard } from '../minibatch/batches.js';
import { emptyState, validateConfig, type MinibatchConfig } from '../minibatch/state.js';
import { accumulateInWorkers } from './workers.js';
import type { StreamAccumulation, StreamCkaOptions, StreamCkaResult } from './options.js';
import { qualifiedName, writeMinibatchResults, type SetGroup } from '../minibatch/output.js';

export type { StreamCkaOptions, StreamCkaResult, StreamAccumulation } from './options.js';

/**
 * The streamed minibatch run behind runSimilarity (models source): accumulate on this thread or
 * split over worker threads, then write the tables. The combination rules have been applied.
 */
export async function streamMinibatch(opts: StreamCkaOptions): Promise<StreamCkaResult> {
  validateStream(opts);
  const workers = opts.workers ?? 1;
  threadBackend(workers);
  const { state, context } = workers > 1 ? await accumulateInWorkers(opts, workers) : await accumulateStream(opts);
  const info = { shard: opts.shard ?? null, workers, provenance: provenance(activeBackend()) };
  const written = await writeMinibatchResults(opts.out, { state, context, info }, { provenance: info.provenance, shard: info.shard }, opts.notes);
  return { written, sets: state.sets, batches: state.batchIds.length, samples: state.samples };
}

function validateStream(opts: StreamCkaOptions): void {
  if (opts.models.length < 1 || opts.models.length > 2) throw new InputError(`--model: give one or two checkpoints, got ${opts.models.length}`);
  validateInputs(opts.inputs);
  validateAttackLoss(opts.attackLoss);
  validateConfig(configOf(opts));
}

function configOf(opts: StreamCkaOptions): MinibatchConfig {
  return { batchSize: opts.batchSize, seed: opts.seed, bootstrap: opts.bootstrap ?? 0, permutations: opts.permutations ?? 0, kernel: opts.kernel ?? 'linear' };
}


/**
 * Load the models and data and accumulate this process's batches: those of `opts.shard`, and of
 * them, with `part`, every part.count-th (the share of one worker thread). `onBatch` gets the
 * samples of each batch done and the total this call will do.
 */
export async function accumulateStream(opts: StreamCkaOptions, part?: Shard, onBatch?: (samples: number, total: number) => void): Promise<StreamAccumulation> {
  validateStream(opts);
  const models: CaptureModel[] = [];
  try {
    for (const [i, checkpoint] of opts.models.entries()) models.push(await openCaptureModel(checkpoint, 'ab'[i], opts));
    const { ds, datasetName, split } = await loadCaptureData(models, opts);
    const spans = planBatches(ds.n, opts.batchSize, opts.shard).filter((_, k) => !part || k % part.count === part.index);
    const groups: SetGroup[] = models.map((m) => ({ key: m.key, source: m.checkpoint, metadata: describeModel(m.checkpoint, m.meta, m.probe) }));
    const sets = models.flatMap((m) => opts.inputs.flatMap((kind) => m.layers.map((l) => qualifiedName(groups, m.key, `${l}@${kind}`))));
    const state = emptyState(sets, configOf(opts));
    const total = spans.reduce((s, x) => s + x.size, 0);
    let done = 0;
    await accumulateMinibatches(modelBatches(models, ds, spans, opts), state, (_, b) => {
      onBatch?.(b, total);
      opts.onProgress?.((done += b), total);
    }, { formulation: opts.formulation });
    const context = {
      groups,
      inputs: opts.inputs,
      layers: Object.fromEntries(models.map((m) => [m.key, m.layers])),
      dataset: { name: datasetName, split, n: ds.n, seed: opts.seed, source: ds.source },
      attack: opts.inputs.includes('adv') ? Object.fromEntries(models.map((m) => [m.key, describeAttack(m, opts.inputs, { target: 'the model fed' })])) : null,
    };
    return { state, context };
  } finally {
    for (const m of models) closeCaptureModel(m);
  }
}

/** The capture source's batches as minibatch input: every view's tap outputs, in the state's set order. */
async function* modelBatches(models: CaptureModel[], ds: Dataset, spans: BatchSpan[], opts: StreamCkaOptions): AsyncGenerator<MinibatchBatch> {
  for await (const batch of captureBatches(models, ds, spans, opts.inputs, opts.seed)) {
    yield { id: batch.span.id, sets: batch.views.flatMap((v) => v.outputs) };
  }
}
