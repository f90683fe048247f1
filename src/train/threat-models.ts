import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { loadCheckpoint } from '../models/checkpoint.js';
import { PROJECTION_GROUP } from '../models/projection.js';
import type { PerSampleLoss } from '../attacks/pgd.js';
import { oneSidedContrastiveLoss } from '../attacks/contrastive.js';
import { embed } from './methods.js';
import { disposeLearner, makeLearner, type Learner } from './learner.js';
import type { TrainCheckpointMeta as CheckpointMeta } from './meta.js';

/**
 * "Threat model I" of the adversarial contrastive papers: the attack maximises the contrastive loss,
 * through the projection head, between the attacked image and the clean image itself (in-batch
 * negatives), with no labels and no classifier: the one-sided objective (oneSidedContrastiveLoss of
 * src/attacks/contrastive.ts), as evaluation's `contrastive[N]` and capture's contrastive attack
 * (docs/evaluation.md says why). For a cl/scl checkpoint this gives `pgdAttack` the objective of a batch.
 */
export interface ContrastiveThreatModel {
  learner: Learner;
  /** The attack objective for a clean batch x (its embeddings are computed once, then fixed). */
  lossFor(x: tf.Tensor4D): { loss: PerSampleLoss; dispose(): void };
  dispose(): void;
}

export async function loadContrastiveThreatModel(dir: string): Promise<ContrastiveThreatModel> {
  const probe = await loadCheckpoint<CheckpointMeta>(dir);
  const meta = probe.meta;
  probe.model.dispose();
  if (!meta.projection) {
    throw new InputError(`${dir}: the contrastive-loss attack needs a projection head, and this '${meta.config.scheme}' checkpoint has none (use the cross-entropy attack)`);
  }
  const ckpt = await loadCheckpoint<CheckpointMeta>(dir, { extraWeights: [PROJECTION_GROUP] });
  // Only the encoder and projection head matter here; method-specific parts (ACL's second BN stream,
  // rcl-bound's discriminator) are not needed, so build the learner as plain contrastive training.
  const learner = makeLearner(ckpt.model, { ...meta.config, method: 'none' }, meta.projection, ckpt.extraWeights);
  return {
    learner,
    lossFor(x) {
      const embedClean = (images: tf.Tensor4D) => embed(learner, images, false);
      const positives = embedClean(x);
      return { loss: oneSidedContrastiveLoss(embedClean, positives, learner.cfg.temperature), dispose: () => positives.dispose() };
    },
    dispose: () => disposeLearner(learner),
  };
}
