import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { loadCheckpoint, readMeta } from './checkpoint.js';
import type { CheckpointMeta } from './checkpoint-meta.js';

/**
 * What a linear-probe directory (meta.json format `robustsim-probe/1`, written by the probe stage)
 * must say for the model to be rebuilt: which encoder, which layer the head reads, how many classes.
 */
export interface ProbeReference {
  format: 'robustsim-probe/1';
  name: string;
  /** Encoder checkpoint, relative to the probe directory. */
  encoder: string;
  featureLayer: string;
  numClasses: number;
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

export function isProbeDir(meta: { format?: string }): meta is ProbeReference {
  return meta.format === 'robustsim-probe/1';
}

/**
 * A model to analyse (capture, stream CKA): a checkpoint as saved, or a linear probe rebuilt as its
 * frozen encoder with the probe's head. For a probe, `meta` is the encoder's meta (tap points,
 * training config) under the probe's name, and `probe` says which head was attached.
 */
export async function loadModelForAnalysis(dir: string): Promise<{ model: tf.LayersModel; meta: CheckpointMeta; probe?: ProbeReference }> {
  const head = await readMeta<{ format?: string }>(dir);
  if (!isProbeDir(head)) {
    if (head.format !== 'robustsim-checkpoint/1') throw new InputError(`${path.join(dir, 'meta.json')}: unknown format '${head.format}' (expected a robustsim checkpoint or probe)`);
    return loadCheckpoint<CheckpointMeta>(dir);
  }
  const encoderDir = path.resolve(dir, head.encoder);
  const { model: encoder, meta: encoderMeta } = await loadCheckpoint<CheckpointMeta>(encoderDir);
  const { model: saved } = await loadCheckpoint<ProbeReference>(dir);
  const { model } = attachHead(encoder, head.featureLayer, head.numClasses, 0);
  model.getLayer('logits').setWeights(saved.getLayer('logits').getWeights());
  saved.dispose();
  return { model, meta: { ...encoderMeta, name: head.name, numClasses: head.numClasses }, probe: head };
}
