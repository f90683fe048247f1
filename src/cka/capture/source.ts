import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { InputError } from '../../errors.js';
import { loadDataset, gatherBatch, type DatasetName, type Dataset } from '../../data/index.js';
import { loadModelForAnalysis, type ProbeReference } from '../../models/classifier.js';
import { tapModel, tapPoints, type TapSet } from '../../models/architectures.js';
import { batchTensors } from '../../models/inputs.js';
import { loadProjectionEmbedder, type ProjectionEmbedder } from '../../models/projection.js';
import { crossEntropyLoss } from '../../attacks/losses.js';
import { pgdAttack, validatePgd, type PerSampleLoss, type PgdOptions } from '../../attacks/pgd.js';
import { oneSidedContrastiveLoss } from '../../attacks/contrastive.js';
import { subSeed } from '../../util/rng.js';
import type { CheckpointMeta } from '../../models/checkpoint-meta.js';

/**
 * The one capture source behind `capture` (activations to a file) and `cka --model` (activations
 * straight into minibatch HSIC): which samples, which tap points, and how the adversarial inputs
 * are made. Both consumers get the same inputs, attack seeds and set names from here, so a capture
 * followed by minibatch CKA sees exactly the numbers of the fused stream.
 */
export type InputKind = 'clean' | 'adv';

/** What the attack maximises: the true label's cross-entropy, or the contrastive loss through the projection head ("threat model I"; cl/scl models). */
export type AttackLoss = 'cross-entropy' | 'contrastive';

export const ATTACK_LOSSES: readonly AttackLoss[] = ['cross-entropy', 'contrastive'];

/** Which samples are run through a model, and how its adversarial inputs are made. */
export interface CaptureSource {
  /** Defaults to the dataset the model was trained on. */
  dataset?: DatasetName;
  dataDir?: string;
  split?: 'train' | 'test';
  /** Number of evaluation samples (the first n after the seeded shuffle). */
  n: number;
  seed: number;
  batchSize: number;
  /** Tap points; all of the tap set's by default. */
  layers?: string[];
  /** Which layers are tap points (default `blocks`). */
  tapSet?: TapSet;
  inputs: InputKind[];
  /** PGD settings (model in inference mode); override the model's eval attack. */
  attack?: Partial<PgdOptions>;
  /** Default cross-entropy. */
  attackLoss?: AttackLoss;
}

/** A model opened for capture: its tap model, its attack and, for the contrastive attack, its embedder. */
export interface CaptureModel {
  /** 'a' or 'b' (the order given). */
  key: string;
  checkpoint: string;
  model: tf.LayersModel;
  /** Shares the model's layers: disposing the model frees both. */
  taps: tf.LayersModel;
  meta: CheckpointMeta;
  probe?: ProbeReference;
  /** Tap points in network order. */
  layers: string[];
  attack: PgdOptions;
  attackLoss: AttackLoss;
  embedder?: ProjectionEmbedder;
}

export function validateInputs(inputs: string[]): void {
  if (inputs.length === 0) throw new InputError('--inputs: expected clean, adv or clean,adv');
  for (const k of inputs) if (k !== 'clean' && k !== 'adv') throw new InputError(`--inputs: unknown input '${k}' (expected clean or adv)`);
  if (new Set(inputs).size !== inputs.length) throw new InputError(`--inputs: '${inputs.join(',')}' lists an input twice`);
}

export function validateAttackLoss(loss: string | undefined): void {
  if (loss !== undefined && !ATTACK_LOSSES.includes(loss as AttackLoss)) throw new InputError(`--attack-loss: '${loss}', expected ${ATTACK_LOSSES.join(' or ')}`);
}

/** Load a checkpoint for capture; every failure after loading disposes what was loaded. */
export async function openCaptureModel(checkpoint: string, key: string, source: Pick<CaptureSource, 'layers' | 'tapSet' | 'attack' | 'attackLoss' | 'inputs'>): Promise<CaptureModel> {
  validateAttackLoss(source.attackLoss);
  const { model, meta, probe } = await loadModelForAnalysis(checkpoint);
  let embedder: ProjectionEmbedder | undefined;
  try {
    const available = tapPoints(model, meta.taps, source.tapSet);
    const layers = source.layers?.length ? source.layers : available;
    const unknown = layers.filter((l) => !available.includes(l));
    if (unknown.length) throw new InputError(`--layers: unknown layer name(s) ${unknown.join(', ')} for ${checkpoint} (tap points${source.tapSet === 'all' ? ' with --taps all' : ''}: ${available.join(', ')})`);
    // Network order whatever order the user listed them in.
    const ordered = available.filter((t) => layers.includes(t));
    const attack = { ...meta.config.evalAttack, ...source.attack } as PgdOptions;
    validatePgd(attack);
    const attackLoss = source.attackLoss ?? 'cross-entropy';
    if (attackLoss === 'contrastive' && source.inputs.includes('adv')) {
      // A probe's projection head is its encoder's.
      embedder = await loadProjectionEmbedder(probe ? path.resolve(checkpoint, probe.encoder) : checkpoint, model);
      if (!embedder) throw new InputError(`--attack-loss: ${checkpoint} has no projection head (only cl/scl checkpoints do); use cross-entropy`);
    }
    return { key, checkpoint, model, taps: tapModel(model, ordered), meta, probe, layers: ordered, attack, attackLoss, embedder };
  } catch (err) {
    embedder?.dispose();
    model.dispose();
    throw err;
  }
}

export function closeCaptureModel(m: CaptureModel): void {
  m.embedder?.dispose();
  m.model.dispose();
}

/** The PGD adversarial input of batch x (samples from `start` on) against model m, seeded as every capture is. */
export function adversarialInput(m: CaptureModel, x: tf.Tensor4D, y: tf.Tensor1D, seed: number, start: number): tf.Tensor4D {
  let objective: { loss: PerSampleLoss; dispose(): void };
  if (m.embedder) {
    const positives = m.embedder.embed(x);
    objective = { loss: oneSidedContrastiveLoss(m.embedder.embed, positives, m.embedder.temperature), dispose: () => positives.dispose() };
  } else {
    objective = { loss: crossEntropyLoss(m.model, y), dispose: () => {} };
  }
  try {
    return pgdAttack(objective.loss, x, { ...m.attack, seed: subSeed(seed, 'capture', start) });
  } finally {
    objective.dispose();
  }
}

/** The attack part of a file's metadata (null without adversarial inputs). */
export function describeAttack(m: CaptureModel, inputs: InputKind[], extra: Record<string, unknown> = {}): Record<string, unknown> | null {
  if (!inputs.includes('adv')) return null;
  return { name: 'pgd', loss: m.attackLoss, ...(m.embedder ? { temperature: m.embedder.temperature } : {}), mode: 'inference', ...extra, ...m.attack };
}

/** The model part of an activation or similarity file's metadata: what was analysed. */
export function describeModel(checkpoint: string, meta: CheckpointMeta, probe?: ProbeReference): Record<string, unknown> {
  return {
    name: meta.name,
    checkpoint,
    arch: meta.config.arch,
    archConfig: meta.archConfig,
    scheme: meta.config.scheme,
    regime: meta.config.regime,
    dataset: meta.config.dataset,
    epochs: meta.progress.epochsDone,
    trainAttack: meta.config.regime === 'at' ? meta.config.attack : null,
    metrics: meta.metrics ?? null,
    // A linear probe is its (frozen) encoder with the probe's head: the attack goes through that head.
    probe: probe ? { encoder: probe.encoder, featureLayer: probe.featureLayer, numClasses: probe.numClasses } : null,
  };
}

export interface CaptureData {
  ds: Dataset;
  datasetName: DatasetName;
  split: 'train' | 'test';
}

/** The evaluation samples every model sees (the first model's dataset by default); the models must take the same images. */
export async function loadCaptureData(models: CaptureModel[], source: Pick<CaptureSource, 'dataset' | 'dataDir' | 'split' | 'n' | 'seed'>): Promise<CaptureData> {
  const first = models[0];
  const a = first.meta;
  for (const m of models.slice(1)) {
    if (m.meta.inputShape.join('x') !== a.inputShape.join('x')) {
      throw new InputError(`--model: ${m.checkpoint} takes ${m.meta.inputShape.join('x')} images but ${first.checkpoint} takes ${a.inputShape.join('x')}; both models must see the same inputs`);
    }
  }
  const datasetName = source.dataset ?? a.config.dataset;
  const split = source.split ?? 'test';
  // The model's data directory is for the dataset it was trained on, not another one.
  const dataDir = source.dataDir ?? (datasetName === a.config.dataset ? a.config.dataDir : undefined);
  const ds = await loadDataset({ name: datasetName, split, dataDir, seed: source.seed, limit: source.n });
  if (ds.height !== a.inputShape[0] || ds.width !== a.inputShape[1] || ds.channels !== a.inputShape[2]) {
    throw new InputError(`--dataset: ${datasetName} images are ${ds.height}x${ds.width}x${ds.channels} but ${first.checkpoint} expects ${a.inputShape.join('x')}`);
  }
  if (ds.n < 4) throw new InputError(`--n: only ${ds.n} samples available in ${datasetName} ${split}; CKA needs at least 4`);
  return { ds, datasetName, split };
}

/** Samples start..start+size-1 of the dataset. */
export interface SampleSpan {
  start: number;
  size: number;
}

/** One model's tap outputs on one kind of input, for one batch. */
export interface CapturedView {
  model: CaptureModel;
  kind: InputKind;
  /** The batch as fed (the clean batch, or its adversarial version). */
  input: tf.Tensor4D;
  /** One tensor per tap point, in the model's layer order. */
  outputs: tf.Tensor[];
}

export interface CapturedBatch<S extends SampleSpan> {
  span: S;
  y: tf.Tensor1D;
  /** Model by model, input kind by kind (in `inputs` order). */
  views: CapturedView[];
}

/**
 * Every model's tap outputs on every input kind, batch by batch. The tensors belong to the source
 * and are disposed when the consumer asks for the next batch (or stops).
 */
export async function* captureBatches<S extends SampleSpan>(models: CaptureModel[], ds: Dataset, spans: S[], inputs: InputKind[], seed: number): AsyncGenerator<CapturedBatch<S>> {
  const shape: [number, number, number] = [ds.height, ds.width, ds.channels];
  for (const span of spans) {
    const batch = gatherBatch(ds, Array.from({ length: span.size }, (_, i) => span.start + i));
    const { x, y } = batchTensors(batch.x, batch.y, shape);
    const views: CapturedView[] = [];
    try {
      for (const m of models) {
        for (const kind of inputs) {
          const input = kind === 'adv' ? adversarialInput(m, x, y, seed, span.start) : x;
          const o = tf.tidy(() => m.taps.predict(input) as tf.Tensor | tf.Tensor[]);
          views.push({ model: m, kind, input, outputs: Array.isArray(o) ? o : [o] });
        }
      }
      yield { span, y, views };
    } finally {
      for (const v of views) {
        tf.dispose(v.outputs);
        if (v.input !== x) v.input.dispose();
      }
      tf.dispose([x, y]);
    }
  }
}
