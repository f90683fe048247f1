import * as path from 'node:path';
import type { TrainRequest } from '../src/train/loop.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import type { TrainCheckpointMeta as CheckpointMeta } from '../src/train/meta.js';

export const CIFAR_FIXTURE = path.resolve('fixtures/cifar10');

/** A training run small enough for a test: 48 fixture images, a width-4 convnet, 2 epochs of 3 steps. */
export function tinyTrainRequest(out: string, extra: Partial<TrainRequest> = {}): TrainRequest {
  return {
    out,
    dataset: 'cifar10',
    dataDir: CIFAR_FIXTURE,
    limit: 48,
    evalLimit: 16,
    arch: 'convnet',
    width: 4,
    epochs: 2,
    batchSize: 16,
    optimizer: 'sgd',
    lr: 0.05,
    evalAttack: { norm: 'linf', eps: 0.03, stepSize: 0.01, steps: 1, randomStart: false, restarts: 1, seed: 0 },
    seed: 5,
    ...extra,
  };
}

/** The saved model's weights of a checkpoint directory. */
export async function checkpointWeights(dir: string): Promise<Float32Array[]> {
  const { model } = await loadCheckpoint<CheckpointMeta>(dir);
  const values = model.getWeights().map((w) => w.dataSync() as Float32Array);
  model.dispose();
  return values;
}

/** One epoch on 32 fixture images: the smallest encoder checkpoint that probes, capture and fine-tuning can read. */
export function tinyEncoderRequest(out: string, extra: Partial<TrainRequest> = {}): TrainRequest {
  return {
    out,
    dataset: 'cifar10',
    dataDir: CIFAR_FIXTURE,
    limit: 32,
    evalLimit: 8,
    arch: 'convnet',
    width: 4,
    epochs: 1,
    batchSize: 16,
    evalAttack: { norm: 'linf', eps: 0.03, stepSize: 0.015, steps: 1, randomStart: false, restarts: 1, seed: 0 },
    ...extra,
  };
}
