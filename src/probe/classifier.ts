import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import type { DatasetName } from '../data/index.js';
import { loadCheckpoint, readMeta } from '../models/checkpoint.js';
import type { CheckpointMeta } from '../train/meta.js';
import type { ProbeMeta } from './meta.js';

/** A model mapping images to logits, whatever directory it came from, with what evaluation needs. */
export interface Classifier {
  name: string;
  model: tf.LayersModel;
  dataset: DatasetName;
  dataDir?: string;
  inputShape: [number, number, number];
  numClasses: number;
  /** 'checkpoint' (trained or fully fine-tuned) or 'probe' (frozen encoder + saved linear head). */
  kind: 'checkpoint' | 'probe';
}

/**
 * Attach a new dense head (`units` classes) to the output of `featureLayer` of an encoder.
 * The head takes the name 'logits' so the result keeps the tap-point names of the encoder.
 */
export function attachHead(encoder: tf.LayersModel, featureLayer: string, units: number, seed: number): { model: tf.LayersModel; head: tf.layers.Layer } {
  const known = encoder.layers.map((l) => l.name);
  if (!known.includes(featureLayer)) throw new InputError(`--feature-layer: '${featureLayer}' is not a layer of the encoder (tap points end with pool, logits)`);
  const features = encoder.getLayer(featureLayer).output as tf.SymbolicTensor;
  if (features.shape.length !== 2) throw new InputError(`--feature-layer: '${featureLayer}' outputs shape [${features.shape.join(', ')}]; a linear head needs flat features (e.g. pool)`);
  const head = tf.layers.dense({ name: 'logits', units, kernelInitializer: tf.initializers.glorotUniform({ seed }) });
  const logits = head.apply(features) as tf.SymbolicTensor;
  const model = tf.model({ inputs: encoder.inputs, outputs: logits, name: 'robustsim' });
  // The encoder's own head is not part of the new model: free its weights now. Dispose only the
  // returned model afterwards (it owns every remaining encoder layer), never the encoder as well.
  for (const layer of encoder.layers) if (!model.layers.includes(layer)) layer.dispose();
  return { model, head };
}

/** Load a checkpoint (trained or fully fine-tuned) or a linear probe (encoder + head) as a classifier. */
export async function loadClassifier(dir: string): Promise<Classifier> {
  const meta = await readMeta<{ format?: string }>(dir);
  if (meta.format === 'robustsim-probe/1') {
    const probe = meta as ProbeMeta;
    const encoderDir = path.resolve(dir, probe.encoder);
    const { model: encoder } = await loadCheckpoint<CheckpointMeta>(encoderDir);
    const { model: saved } = await loadCheckpoint<ProbeMeta>(dir);
    const { model } = attachHead(encoder, probe.featureLayer, probe.numClasses, 0);
    model.getLayer('logits').setWeights(saved.getLayer('logits').getWeights());
    saved.dispose();
    return { name: probe.name, model, dataset: probe.dataset, dataDir: probe.dataDir, inputShape: probe.inputShape, numClasses: probe.numClasses, kind: 'probe' };
  }
  if (meta.format !== 'robustsim-checkpoint/1') throw new InputError(`${path.join(dir, 'meta.json')}: unknown format '${meta.format}' (expected a robustsim checkpoint or probe)`);
  const { model, meta: m } = await loadCheckpoint<CheckpointMeta>(dir);
  return { name: m.name, model, dataset: m.config.dataset, dataDir: m.config.dataDir, inputShape: m.inputShape, numClasses: m.numClasses, kind: 'checkpoint' };
}
