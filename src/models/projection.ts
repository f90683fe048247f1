import * as tf from '@tensorflow/tfjs';
import { loadCheckpoint, readMeta, type NamedTensor } from './checkpoint.js';

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

/** L2-normalised projection of pooled features (training mode moves the head's statistics, if any). */
export function projectFeatures(head: tf.LayersModel, feats: tf.Tensor2D, training = false): tf.Tensor2D {
  return tf.tidy(() => l2Normalize(head.apply(feats, { training }) as tf.Tensor2D));
}

/**
 * The contrastive embedding of images: the L2-normalised projection of `features(x)` (image -> pooled
 * features, the encoder or its adversarial-BatchNorm twin). The one embedding function of training,
 * its attacks and the evaluation's contrastive attack.
 */
export function embedImages(features: tf.LayersModel, head: tf.LayersModel, x: tf.Tensor4D, training = false): tf.Tensor2D {
  return tf.tidy(() => projectFeatures(head, features.apply(x, { training }) as tf.Tensor2D, training));
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

/** Maps images to L2-normalised projection-head embeddings, for the contrastive-loss attack. */
export interface ProjectionEmbedder {
  embed(x: tf.Tensor4D): tf.Tensor2D;
  temperature: number;
  dispose(): void;
}

/**
 * The projection head saved with a contrastive checkpoint in `dir`, applied to the `pool` features of
 * `model` (the checkpoint's own encoder, or a fine-tuned copy of it). Undefined when the checkpoint
 * has no projection head (supervised schemes).
 */
export async function loadProjectionEmbedder(dir: string, model: tf.LayersModel): Promise<ProjectionEmbedder | undefined> {
  type Meta = { projection?: ProjectionConfig; config?: { temperature?: number } };
  if (!(await readMeta<Meta>(dir)).projection) return undefined;
  const saved = await loadCheckpoint<Meta>(dir, { extraWeights: [PROJECTION_GROUP] });
  saved.model.dispose();
  const weights = saved.extraWeights?.[PROJECTION_GROUP];
  if (!saved.meta.projection || !weights) return undefined;
  const pool = model.getLayer('pool').output as tf.SymbolicTensor;
  const features = tf.model({ inputs: model.inputs, outputs: pool });
  const head = buildProjectionHead(pool.shape[1] as number, saved.meta.projection, 0);
  setProjectionWeights(head, weights);
  tf.dispose(weights.map((w) => w.tensor));
  return {
    embed: (x) => embedImages(features, head, x),
    temperature: saved.meta.config?.temperature ?? 0.5,
    dispose: () => head.dispose(),
  };
}
