import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { loadDataset, gatherBatch, type DatasetName } from '../data/index.js';
import { loadModelForAnalysis, type ProbeReference } from '../models/classifier.js';
import { tapModel } from '../models/architectures.js';
import { batchTensors } from '../models/inputs.js';
import { crossEntropyLoss } from '../attacks/losses.js';
import { pgdAttack, validatePgd, type PerSampleLoss, type PgdOptions } from '../attacks/pgd.js';
import { contrastiveLoss } from '../attacks/contrastive.js';
import { loadProjectionEmbedder, type ProjectionEmbedder } from '../models/projection.js';
import * as path from 'node:path';
import { writeActivations } from '../formats/activations.js';
import { activeBackend } from '../backend/index.js';
import { provenance } from '../util/provenance.js';
import { subSeed } from '../util/rng.js';
import type { CheckpointMeta } from '../models/checkpoint-meta.js';

export type InputKind = 'clean' | 'adv';

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
  /** Tap points; all of the model's by default. */
  layers?: string[];
  inputs: InputKind[];
  /** PGD settings (model in inference mode); override the model's eval attack. */
  attack?: Partial<PgdOptions>;
}

export interface CaptureOptions extends CaptureSource {
  checkpoint: string;
  /**
   * What the attack maximises: the cross-entropy of the true label (default), or the contrastive loss
   * through the model's projection head against the clean input ("threat model I"; cl/scl models).
   */
  attackLoss?: 'cross-entropy' | 'contrastive';
  /** Output Arrow file. */
  out: string;
  onProgress?: (done: number, total: number) => void;
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

export interface CaptureResult {
  out: string;
  n: number;
  sets: string[];
  cleanAccuracy: number;
  advAccuracy?: number;
}

/**
 * Activations of every tap point on clean inputs and on PGD adversarial inputs, for the same
 * samples, written as one Arrow file (`<layer>@clean`, `<layer>@adv` columns).
 */
export async function captureActivations(opts: CaptureOptions): Promise<CaptureResult> {
  if (!Number.isInteger(opts.n) || opts.n < 4) throw new InputError(`--n: expected an integer >= 4 (CKA needs at least 4 samples), got ${opts.n}`);
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new InputError(`--batch-size: expected a positive integer, got ${opts.batchSize}`);
  if (opts.inputs.length === 0) throw new InputError(`--inputs: expected clean, adv or clean,adv`);
  for (const k of opts.inputs) if (k !== 'clean' && k !== 'adv') throw new InputError(`--inputs: unknown input '${k}' (expected clean or adv)`);
  const { model, meta, probe } = await loadModelForAnalysis(opts.checkpoint);
  let embedder: ProjectionEmbedder | undefined;
  try {
    const layers = opts.layers?.length ? opts.layers : meta.taps;
    const unknown = layers.filter((l) => !meta.taps.includes(l));
    if (unknown.length) {
      throw new InputError(`--layers: unknown layer name(s) ${unknown.join(', ')} for ${opts.checkpoint} (tap points: ${meta.taps.join(', ')})`);
    }
    // Keep network order whatever order the user listed them in.
    const ordered = meta.taps.filter((t) => layers.includes(t));
    const attack: PgdOptions = { ...meta.config.evalAttack, ...opts.attack } as PgdOptions;
    const attackLoss = opts.attackLoss ?? 'cross-entropy';
    if (attackLoss === 'contrastive' && opts.inputs.includes('adv')) {
      // A probe's projection head is its encoder's.
      embedder = await loadProjectionEmbedder(probe ? path.resolve(opts.checkpoint, probe.encoder) : opts.checkpoint, model);
      if (!embedder) throw new InputError(`--attack-loss: ${opts.checkpoint} has no projection head (only cl/scl checkpoints do); use cross-entropy`);
    }
    const lossFor = (x: tf.Tensor4D, y: tf.Tensor1D): { loss: PerSampleLoss; dispose(): void } => {
      if (!embedder) return { loss: crossEntropyLoss(model, y), dispose: () => {} };
      const positives = embedder.embed(x);
      return { loss: contrastiveLoss(embedder.embed, positives, embedder.temperature), dispose: () => positives.dispose() };
    };
    validatePgd(attack);
    const datasetName = opts.dataset ?? meta.config.dataset;
    const ds = await loadDataset({ name: datasetName, split: opts.split ?? 'test', dataDir: opts.dataDir ?? (datasetName === meta.config.dataset ? meta.config.dataDir : undefined), seed: opts.seed, limit: opts.n });
    if (ds.height !== meta.inputShape[0] || ds.width !== meta.inputShape[1] || ds.channels !== meta.inputShape[2]) {
      throw new InputError(`--dataset: ${datasetName} images are ${ds.height}x${ds.width}x${ds.channels} but ${opts.checkpoint} expects ${meta.inputShape.join('x')}`);
    }
    if (ds.n < 4) throw new InputError(`--n: only ${ds.n} samples available in ${datasetName} ${opts.split ?? 'test'}; CKA needs at least 4`);

    const taps = tapModel(model, ordered);
    const logitsIndex = ordered.indexOf('logits');
    const dims = taps.outputs.map((o) => o.shape.slice(1).reduce((a, b) => (a as number) * (b as number), 1) as number);
    const buffers = new Map<string, Float32Array>();
    for (const kind of opts.inputs) ordered.forEach((l, i) => buffers.set(`${l}@${kind}`, new Float32Array(ds.n * dims[i])));
    const correct: Record<InputKind, number> = { clean: 0, adv: 0 };
    const shape: [number, number, number] = [ds.height, ds.width, ds.channels];

    for (let start = 0; start < ds.n; start += opts.batchSize) {
      const idx = Array.from({ length: Math.min(opts.batchSize, ds.n - start) }, (_, i) => start + i);
      const batch = gatherBatch(ds, idx);
      const { x, y } = batchTensors(batch.x, batch.y, shape);
      for (const kind of opts.inputs) {
        let input = x;
        if (kind === 'adv') {
          const objective = lossFor(x, y);
          input = pgdAttack(objective.loss, x, { ...attack, seed: subSeed(opts.seed, 'capture', start) });
          objective.dispose();
        }
        const outs = tf.tidy(() => {
          const o = taps.predict(input) as tf.Tensor | tf.Tensor[];
          return Array.isArray(o) ? o : [o];
        });
        for (let i = 0; i < ordered.length; i++) {
          const values = (await outs[i].data()) as Float32Array;
          buffers.get(`${ordered[i]}@${kind}`)!.set(values, start * dims[i]);
        }
        const logits = logitsIndex >= 0 ? outs[logitsIndex] : (model.predict(input) as tf.Tensor);
        const hits = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(y, 'int32')), 'float32')));
        correct[kind] += (await hits.data())[0];
        tf.dispose([...outs, hits]);
        if (logitsIndex < 0) logits.dispose();
        if (input !== x) input.dispose();
      }
      tf.dispose([x, y]);
      opts.onProgress?.(start + idx.length, ds.n);
    }

    const sets = opts.inputs.flatMap((kind) =>
      ordered.map((l, i) => ({ name: `${l}@${kind}`, n: ds.n, dim: dims[i], data: buffers.get(`${l}@${kind}`)! })),
    );
    const result: CaptureResult = {
      out: opts.out,
      n: ds.n,
      sets: sets.map((s) => s.name),
      cleanAccuracy: opts.inputs.includes('clean') ? correct.clean / ds.n : NaN,
      advAccuracy: opts.inputs.includes('adv') ? correct.adv / ds.n : undefined,
    };
    await writeActivations(opts.out, {
      sampleIds: ds.ids,
      labels: ds.labels,
      sets,
      metadata: {
        model: describeModel(opts.checkpoint, meta, probe),
        attack: opts.inputs.includes('adv')
          ? { name: 'pgd', loss: attackLoss, ...(embedder ? { temperature: embedder.temperature } : {}), mode: 'inference', ...attack }
          : null,
        dataset: { name: datasetName, split: opts.split ?? 'test', n: ds.n, seed: opts.seed },
        accuracy: { clean: result.cleanAccuracy, adv: result.advAccuracy ?? null },
        provenance: provenance(activeBackend()),
      },
    });
    return result;
  } finally {
    embedder?.dispose();
    model.dispose();
  }
}
