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
  archConfig: ArchConfig | ImportedArch;
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
  /** Set for a model imported from another framework (`robustsim import`): where it came from and its input convention. */
  imported?: ImportRecord;
}

/** Architecture of an imported model: the graph came from a file, not from a preset. */
export interface ImportedArch {
  family: 'onnx';
  source: string;
  opset: number;
}

/** meta.json's record of an import: the input convention attacks and data loaders rely on. */
export interface ImportRecord {
  source: string;
  format: 'onnx';
  opset: number;
  producer: string;
  inputLayout: string;
  inputShapeNchw: [number, number, number];
  /** Pixel range the original model expects; robustsim feeds [0, 1] pixels and scales at the input. */
  range: [number, number];
  mean: number[] | null;
  std: number[] | null;
  tapPattern: string[] | null;
}
