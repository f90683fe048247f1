import * as tf from '@tensorflow/tfjs';
import type { NamedTensor } from './checkpoint.js';

/**
 * The projection head of contrastive learning (SimCLR's g): an MLP on the encoder's pooled features,
 * whose output is L2-normalised before the contrastive loss. It is a separate LayersModel so the saved
 * encoder+classifier (image -> logits) keeps exactly the supervised model's graph and tap points; the
 * head travels in the checkpoint as the extra weight group 'projection'.
 */
export interface ProjectionConfig {
  /** Hidden units (SimCLR: the feature dimension). */
  hidden: number;
  /** Output dimension (SimCLR: 128). */
  dim: number;
}

export const PROJECTION_GROUP = 'projection';

export function buildProjectionHead(inDim: number, cfg: ProjectionConfig, seed: number): tf.LayersModel {
  const input = tf.input({ shape: [inDim], name: 'features' });
  const hidden = tf.layers
    .dense({ name: 'proj.fc1', units: cfg.hidden, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed }) })
    .apply(input) as tf.SymbolicTensor;
  const out = tf.layers
    .dense({ name: 'proj.fc2', units: cfg.dim, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) })
    .apply(hidden) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'projection' });
}

/** Row-wise L2 normalisation (epsilon keeps the gradient finite at zero). */
export function l2Normalize(z: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.div(z, tf.sqrt(tf.add(tf.sum(tf.square(z), 1, true), 1e-12))) as tf.Tensor2D);
}

/** The head's weights in layer order, for the checkpoint. */
export function projectionWeights(head: tf.LayersModel): NamedTensor[] {
  return head.weights.map((w, i) => ({ name: `${i}:${w.originalName}`, tensor: w.read() }));
}

/** Load saved weights into a freshly built head (same config), checking shapes. */
export function setProjectionWeights(head: tf.LayersModel, saved: NamedTensor[]): void {
  if (saved.length !== head.weights.length) {
    throw new Error(`projection head: checkpoint has ${saved.length} weights, the head has ${head.weights.length}`);
  }
  head.setWeights(saved.map((s) => s.tensor));
}
