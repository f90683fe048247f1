import type { ProjectionConfig } from '../models/projection.js';
import type { ArchConfig } from '../models/architectures.js';
import type { Provenance } from '../util/provenance.js';
import type { TrainConfig } from './options.js';

export interface EpochMetrics {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy: number;
  imagesPerSecond: number;
  seconds: number;
}

/** meta.json of a checkpoint: what the model is and everything that made it. */
export interface CheckpointMeta {
  format: 'robustsim-checkpoint/1';
  name: string;
  config: TrainConfig;
  archConfig: ArchConfig;
  inputShape: [number, number, number];
  numClasses: number;
  classNames: string[];
  /** Tap-point layer names in network order. */
  taps: string[];
  /** Contrastive schemes: the projection head on the pooled features (weights in projection.weights.*). */
  projection?: ProjectionConfig;
  trainSamples: number;
  /** Training progress: epochs fully done, and optimizer steps into the current epoch. */
  progress: { epochsDone: number; stepInEpoch: number; globalStep: number; complete: boolean };
  history: EpochMetrics[];
  /** Final figures once training completed. */
  metrics?: { cleanAccuracy: number; robustAccuracy: number; evalSamples: number; evalAttack: TrainConfig['evalAttack'] };
  backend: string;
  provenance: Provenance;
}
