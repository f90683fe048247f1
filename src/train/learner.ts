import * as tf from '@tensorflow/tfjs';
import type { NamedTensor } from '../models/checkpoint.js';
import { buildProjectionHead, projectionWeights, PROJECTION_GROUP, type ProjectionConfig } from '../models/projection.js';
import { twinWithOwnBatchNorm } from '../models/dual-bn.js';
import { buildDiscriminator } from '../models/discriminator.js';
import { subSeed } from '../util/rng.js';
import type { TrainConfig } from './config.js';
import { METHODS, type MethodSpec } from './methods/index.js';

/**
 * Everything a training method updates. The saved LayersModel (image -> logits) is the same for every
 * scheme and method; method-specific parts live beside it and travel in the checkpoint as extra weight
 * groups: 'projection' (cl/scl), 'adv-bn' (acl: the adversarial BatchNorm stream), 'discriminator'
 * (rcl-bound).
 */
export interface Learner {
  /** The saved model: image -> logits, with the scheme-independent tap points. */
  model: tf.LayersModel;
  /** image -> pooled features (shares the model's layers). */
  features: tf.LayersModel;
  /** Projection head (cl/scl only). */
  head: tf.LayersModel | null;
  /** acl, clae: image -> pooled features through a second set of BatchNorm layers (all else shared). */
  advFeatures: tf.LayersModel | null;
  advBatchNorms: tf.layers.Layer[];
  /** rcl-bound: benign-vs-adversarial discriminator on pooled features. */
  discriminator: tf.LayersModel | null;
  cfg: TrainConfig;
  /** The spec of cfg.method (src/train/methods/): what the step and the replicas train. */
  spec: MethodSpec;
}

export const ADV_BN_GROUP = 'adv-bn';
export const DISCRIMINATOR_GROUP = 'discriminator';

function layerWeights(layers: tf.layers.Layer[]): tf.LayerVariable[] {
  return layers.flatMap((l) => l.weights);
}

/**
 * Whether a method sends images through a BatchNorm stream of its own (ACL's dual BN, CLAE's auxiliary
 * BN): some part or its attack uses the 'adv' stream. Only contrastive objectives have streams.
 */
export function usesAdversarialBatchNorm(spec: MethodSpec, scheme: TrainConfig['scheme']): boolean {
  const c = scheme === 'sl' ? undefined : spec.contrastive;
  return !!c && (c.attack?.stream === 'adv' || c.parts.some((p) => p.stream === 'adv'));
}

/** Whether a method trains a discriminator (rcl-bound's divergence). */
export function usesDiscriminator(spec: MethodSpec, scheme: TrainConfig['scheme']): boolean {
  return scheme !== 'sl' && !!spec.contrastive?.divergence;
}

/** The extra weight groups a run of this configuration saves. */
export function extraGroupsFor(cfg: TrainConfig, spec: MethodSpec = METHODS[cfg.method]): string[] {
  return [
    ...(cfg.scheme === 'sl' ? [] : [PROJECTION_GROUP]),
    ...(usesAdversarialBatchNorm(spec, cfg.scheme) ? [ADV_BN_GROUP] : []),
    ...(usesDiscriminator(spec, cfg.scheme) ? [DISCRIMINATOR_GROUP] : []),
  ];
}

function restore(weights: tf.LayerVariable[], saved: NamedTensor[] | undefined, group: string): void {
  if (!saved) return;
  if (saved.length !== weights.length) throw new Error(`${group}: checkpoint has ${saved.length} weights, the model has ${weights.length}`);
  weights.forEach((w, i) => w.write(saved[i].tensor));
  tf.dispose(saved.map((s) => s.tensor));
}

/**
 * Assemble the learner of `cfg` around `model`; `saved` holds extra weight groups from a checkpoint
 * (consumed: their tensors are disposed). `spec` is cfg.method's (a test may pass a method of its own).
 */
export function makeLearner(
  model: tf.LayersModel,
  cfg: TrainConfig,
  projection: ProjectionConfig | undefined,
  saved: Record<string, NamedTensor[]> = {},
  spec: MethodSpec = METHODS[cfg.method],
): Learner {
  if (!spec) throw new Error(`method '${cfg.method}' has no spec in src/train/methods/ (a bug: options.ts should refuse it)`);
  const features = tf.model({ inputs: model.inputs, outputs: model.getLayer('pool').output as tf.SymbolicTensor });
  const featureDim = features.outputs[0].shape[1] as number;
  let head: tf.LayersModel | null = null;
  if (projection) {
    head = buildProjectionHead(featureDim, projection, subSeed(cfg.seed, 'projection'));
    restore(head.weights, saved[PROJECTION_GROUP], PROJECTION_GROUP);
  }
  let advFeatures: tf.LayersModel | null = null;
  let advBatchNorms: tf.layers.Layer[] = [];
  if (usesAdversarialBatchNorm(spec, cfg.scheme)) {
    ({ twin: advFeatures, batchNorms: advBatchNorms } = twinWithOwnBatchNorm(model, 'pool'));
    restore(layerWeights(advBatchNorms), saved[ADV_BN_GROUP], ADV_BN_GROUP);
  }
  let discriminator: tf.LayersModel | null = null;
  if (usesDiscriminator(spec, cfg.scheme)) {
    discriminator = buildDiscriminator(featureDim, cfg.discHidden, subSeed(cfg.seed, 'discriminator'));
    restore(discriminator.weights, saved[DISCRIMINATOR_GROUP], DISCRIMINATOR_GROUP);
  }
  return { model, features, head, advFeatures, advBatchNorms, discriminator, cfg, spec };
}

/** Every trainable variable, in a fixed order (the optimizer's slots follow it, so resume depends on it). */
export function learnerVariables(l: Learner): tf.Variable[] {
  const weights = [
    ...l.model.trainableWeights,
    ...(l.head?.trainableWeights ?? []),
    ...layerWeights(l.advBatchNorms).filter((w) => w.trainable),
    ...(l.discriminator?.trainableWeights ?? []),
  ];
  return weights.map((w) => w.read() as tf.Variable);
}

/** The extra weight groups to save with the model. */
export function learnerExtraWeights(l: Learner): Record<string, NamedTensor[]> {
  const group = (ws: tf.LayerVariable[]) => ws.map((w, i) => ({ name: `${i}:${w.originalName}`, tensor: w.read() }));
  return {
    ...(l.head ? { [PROJECTION_GROUP]: projectionWeights(l.head) } : {}),
    ...(l.advFeatures ? { [ADV_BN_GROUP]: group(layerWeights(l.advBatchNorms)) } : {}),
    ...(l.discriminator ? { [DISCRIMINATOR_GROUP]: group(l.discriminator.weights) } : {}),
  };
}

/** Every weight the learner owns, model included (tests: snapshot and restore). */
export function learnerWeights(l: Learner): tf.LayerVariable[] {
  return [...l.model.weights, ...(l.head?.weights ?? []), ...layerWeights(l.advBatchNorms), ...(l.discriminator?.weights ?? [])];
}

export function disposeLearner(l: Learner): void {
  l.model.dispose();
  l.head?.dispose();
  l.discriminator?.dispose();
  // The twin's BatchNorm layers belong to no disposed model; free their variables here.
  for (const bn of l.advBatchNorms) bn.dispose();
}
