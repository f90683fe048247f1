import type { DatasetName } from '../data/index.js';
import type { PgdOptions } from '../attacks/pgd.js';
import type { Provenance } from '../util/provenance.js';
import type { ArchConfig } from './architectures.js';
import type { ProjectionConfig } from './projection.js';

/**
 * meta.json of a checkpoint (src/models/checkpoint.ts writes and reads the directory). Every stage reads
 * checkpoints, so the format lives here; the training stage writes the full run config into `config`
 * (src/train/meta.ts: TrainCheckpointMeta = CheckpointMeta<TrainConfig>), and a reader outside it sees
 * the fields of RecordedTrainConfig.
 */

/** The part of a checkpoint's recorded training config that readers outside src/train rely on. */
export interface RecordedTrainConfig {
  name: string;
  dataset: DatasetName;
  dataDir?: string;
  arch: string;
  scheme: 'sl' | 'cl' | 'scl';
  regime: 'st' | 'at';
  temperature: number;
  epochs: number;
  /** The attack that made training examples in regime 'at'. */
  attack: PgdOptions;
  /** The attack of the final robust-accuracy figure. */
  evalAttack: PgdOptions;
}

export interface EpochMetrics {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy: number;
  imagesPerSecond: number;
  seconds: number;
}

/** meta.json of a checkpoint: what the model is and everything that made it. */
export interface CheckpointMeta<Config extends RecordedTrainConfig = RecordedTrainConfig> {
  format: 'robustsim-checkpoint/1';
  name: string;
  config: Config;
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
  metrics?: { cleanAccuracy: number; robustAccuracy: number; evalSamples: number; evalAttack: PgdOptions };
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
