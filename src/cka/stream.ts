import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { loadDataset, gatherBatch, type DatasetName, type Dataset } from '../data/index.js';
import { loadModelForAnalysis, type ProbeReference } from '../models/classifier.js';
import { tapModel } from '../models/architectures.js';
import { batchTensors } from '../models/inputs.js';
import { crossEntropyLoss } from '../attacks/losses.js';
import { pgdAttack, validatePgd, type PgdOptions } from '../attacks/pgd.js';
import { activeBackend } from '../backend/index.js';
import { provenance } from '../util/provenance.js';
import { subSeed } from '../util/rng.js';
import type { CheckpointMeta } from '../models/checkpoint-meta.js';
import { describeModel, type CaptureSource, type InputKind } from './capture.js';
import { accumulateMinibatches, planBatches, type BatchSpan, type MinibatchBatch, type Shard } from './minibatch.js';
import { emptyState, validateConfig, type MinibatchConfig } from './minibatch-state.js';
import { accumulateInWorkers, type StreamAccumulation } from './stream-workers.js';
import { threadBackend } from '../parallel/threads.js';
import type { Formulation, Kernel } from './minibatch-hsic.js';
import { qualifiedName, writeMinibatchResults, type SetGroup, type WrittenSimilarity } from './minibatch-output.js';

/**
 * Minibatch CKA fused with capture: the models run batch by batch on clean and/or PGD adversarial
 * inputs, every tap point's activations go straight into the per-batch HSIC of all pairs, and only
 * the float64 accumulators outlive a batch, so memory does not grow with n (beyond the dataset
 * itself). The inputs, attack seeds and set names are those of `captureActivations`, so a capture
 * followed by the reference minibatch CKA sees exactly the same numbers.
 * With two models every adversarial input is an attack on the model it is fed to.
 */
export interface StreamCkaOptions extends CaptureSource {
  /** One or two checkpoint directories (model A, model B). */
  models: string[];
  /** Output directory: similarity.arrow (and a/, b/ with two models), accumulators.{json,npy}. */
  out: string;
  /** Poisson bootstrap replicates (0 = no confidence intervals). */
  bootstrap?: number;
  /** Permutation-null replicates (0 = no null). */
  permutations?: number;
  /** Gram kernel: linear CKA (default) or RBF-kernel CKA. */
  kernel?: Kernel;
  /** Per-batch HSIC formulation (default auto; see hsic-plan.ts). */
  formulation?: Formulation;
  shard?: Shard;
  /**
   * Worker threads, each with its own backend instance (wasm or cpu), splitting the batches
   * (default 1: this thread). See docs/benchmarks.md for the measured effect.
   */
  workers?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface StreamCkaResult {
  written: WrittenSimilarity[];
  sets: string[];
  batches: number;
  samples: number;
}

interface LoadedModel {
  key: string;
  checkpoint: string;
  model: tf.LayersModel;
  taps: tf.LayersModel;
  meta: CheckpointMeta;
  probe?: ProbeReference;
  layers: string[];
  attack: PgdOptions;
}

export async function streamMinibatchCka(opts: StreamCkaOptions): Promise<StreamCkaResult> {
  validateStream(opts);
  const workers = opts.workers ?? 1;
  threadBackend(workers);
  const { state, context } = workers > 1 ? await accumulateInWorkers(opts, workers) : await accumulateStream(opts);
  const info = { shard: opts.shard ?? null, workers, provenance: provenance(activeBackend()) };
  const written = await writeMinibatchResults(opts.out, { state, context, info }, { provenance: info.provenance, shard: info.shard });
  return { written, sets: state.sets, batches: state.batchIds.length, samples: state.samples };
}

function validateStream(opts: StreamCkaOptions): void {
  if (opts.models.length < 1 || opts.models.length > 2) throw new InputError(`--model: give one or two checkpoints, got ${opts.models.length}`);
  if (opts.inputs.length === 0) throw new InputError('--inputs: expected clean, adv or clean,adv');
  for (const k of opts.inputs) if (k !== 'clean' && k !== 'adv') throw new InputError(`--inputs: unknown input '${k}' (expected clean or adv)`);
  if (new Set(opts.inputs).size !== opts.inputs.length) throw new InputError(`--inputs: '${opts.inputs.join(',')}' lists an input twice`);
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
  const models: LoadedModel[] = [];
  try {
    for (const [i, checkpoint] of opts.models.entries()) models.push(await loadModel(checkpoint, 'ab'[i], opts));
    const a = models[0].meta;
    for (const m of models.slice(1)) {
      if (m.meta.inputShape.join('x') !== a.inputShape.join('x')) {
        throw new InputError(`--model: ${m.checkpoint} takes ${m.meta.inputShape.join('x')} images but ${models[0].checkpoint} takes ${a.inputShape.join('x')}; both models must see the same inputs`);
      }
    }
    const datasetName = opts.dataset ?? a.config.dataset;
    const split = opts.split ?? 'test';
    const ds = await loadDataset({ name: datasetName, split, dataDir: opts.dataDir ?? a.config.dataDir, seed: opts.seed, limit: opts.n });
    if (ds.height !== a.inputShape[0] || ds.width !== a.inputShape[1] || ds.channels !== a.inputShape[2]) {
      throw new InputError(`--dataset: ${datasetName} images are ${ds.height}x${ds.width}x${ds.channels} but ${models[0].checkpoint} expects ${a.inputShape.join('x')}`);
    }
    const spans = planBatches(ds.n, opts.batchSize, opts.shard).filter((_, k) => !part || k % part.count === part.index);
    const groups: SetGroup[] = models.map((m) => ({ key: m.key, source: m.checkpoint, metadata: describeLoaded(m) }));
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
      attack: opts.inputs.includes('adv') ? Object.fromEntries(models.map((m) => [m.key, { name: 'pgd', loss: 'cross-entropy', mode: 'inference', target: 'the model fed', ...m.attack }])) : null,
    };
    return { state, context };
  } finally {
    // The tap model shares the model's layers (weights); disposing the model frees them.
    for (const m of models) m.model.dispose();
  }
}

async function loadModel(checkpoint: string, key: string, opts: StreamCkaOptions): Promise<LoadedModel> {
  const { model, meta, probe } = await loadModelForAnalysis(checkpoint);
  const layers = opts.layers?.length ? opts.layers : meta.taps;
  const unknown = layers.filter((l) => !meta.taps.includes(l));
  if (unknown.length) {
    model.dispose();
    throw new InputError(`--layers: unknown layer name(s) ${unknown.join(', ')} for ${checkpoint} (tap points: ${meta.taps.join(', ')})`);
  }
  const ordered = meta.taps.filter((t) => layers.includes(t));
  const attack = { ...meta.config.evalAttack, ...opts.attack } as PgdOptions;
  try {
    validatePgd(attack);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { key, checkpoint, model, taps: tapModel(model, ordered), meta, probe, layers: ordered, attack };
}

function describeLoaded(m: LoadedModel): Record<string, unknown> {
  return describeModel(m.checkpoint, m.meta, m.probe);
}

/** Every model's tap outputs on every input kind, batch by batch, in the state's set order. */
async function* modelBatches(models: LoadedModel[], ds: Dataset, spans: BatchSpan[], opts: StreamCkaOptions): AsyncGenerator<MinibatchBatch> {
  const shape: [number, number, number] = [ds.height, ds.width, ds.channels];
  for (const span of spans) {
    const batch = gatherBatch(ds, Array.from({ length: span.size }, (_, i) => span.start + i));
    const { x, y } = batchTensors(batch.x, batch.y, shape);
    const outputs: tf.Tensor[] = [];
    try {
      for (const m of models) {
        for (const kind of opts.inputs) {
          // The same attack seed per batch as `capture`, so both see the same adversarial inputs.
          const input = kind === 'adv' ? pgdAttack(crossEntropyLoss(m.model, y), x, { ...m.attack, seed: subSeed(opts.seed, 'capture', span.start) }) : x;
          try {
            const o = m.taps.predict(input) as tf.Tensor | tf.Tensor[];
            outputs.push(...(Array.isArray(o) ? o : [o]));
          } finally {
            if (input !== x) input.dispose();
          }
        }
      }
      yield { id: span.id, sets: outputs };
    } finally {
      tf.dispose([x, y, ...outputs]);
    }
  }
}
