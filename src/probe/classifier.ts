import * as tf from '@tensorflow/tfjs';
import type { DatasetName } from '../data/index.js';
import { readMeta } from '../models/checkpoint.js';
import type { ProbeMeta } from './meta.js';
import { attachHead, loadModelForAnalysis } from '../models/classifier.js';

export { attachHead };

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

/** Load a checkpoint (trained or fully fine-tuned) or a linear probe (encoder + head) as a classifier. */
export async function loadClassifier(dir: string): Promise<Classifier> {
  const { model, meta, probe } = await loadModelForAnalysis(dir);
  if (probe) {
    // The probe may be trained on another dataset than its encoder (transfer): its own meta says which.
    const p = await readMeta<ProbeMeta>(dir);
    return { name: p.name, model, dataset: p.dataset, dataDir: p.dataDir, inputShape: p.inputShape, numClasses: p.numClasses, kind: 'probe' };
  }
  return { name: meta.name, model, dataset: meta.config.dataset, dataDir: meta.config.dataDir, inputShape: meta.inputShape, numClasses: meta.numClasses, kind: 'checkpoint' };
}
