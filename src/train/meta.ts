import type { CheckpointMeta } from '../models/checkpoint-meta.js';
import type { TrainConfig } from './options.js';

/** meta.json of a checkpoint written by training (src/models/checkpoint-meta.ts): its config is the run's whole TrainConfig. */
export type TrainCheckpointMeta = CheckpointMeta<TrainConfig>;
