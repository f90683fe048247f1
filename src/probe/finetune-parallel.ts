import * as tf from '@tensorflow/tfjs';
import { subSeed } from '../util/rng.js';
import { ShardedReplicas } from '../parallel/replicas.js';
import { flatten, ReplicaWeights, type ShardResult } from '../parallel/weights.js';
import { isAdversarialMode, trainsEncoder, type FineTuneMode } from './meta.js';
import { fineTuneAttack, fineTuneLoss, type ObjectiveSettings } from './objective.js';

/**
 * Data-parallel fine-tuning (docs/decisions.md, "Data-parallel fine-tuning"): the sharded step of
 * src/parallel/replicas.ts (contiguous shards, one per thread; gradients summed on the main thread,
 * one optimizer step, BatchNorm moving statistics averaged, weights broadcast through a
 * SharedArrayBuffer) applied to the fine-tuning model (encoder + head) and objective. The objectives
 * (CE(clean) + w CE(PGD), TRADES with its KL attack) are means over samples with per-sample attacks,
 * so `share` times each shard's objective sums to the batch's.
 */

export interface FineTuneShardSettings extends ObjectiveSettings {
  mode: FineTuneMode;
}

/** The variables a fine-tuning step trains, in the optimizer's (and resume's) order. */
export function fineTuneVariables(model: tf.LayersModel, mode: FineTuneMode): tf.Variable[] {
  return (trainsEncoder(mode) ? model.trainableWeights : model.getLayer('logits').trainableWeights).map((w) => w.read() as tf.Variable);
}

/** What a fine-tuning worker thread starts from (src/probe/finetune-worker.ts). */
export interface FineTuneReplicaInit {
  topology: unknown;
  settings: FineTuneShardSettings;
  shape: [number, number, number];
  /** Every weight of the model once (the frozen encoder of the linear modes is never broadcast again). */
  initial: Float32Array;
}

/** A fine-tuning shard's seeds: its attack's (as train: subSeed(step seed, 'shard', k)). */
export interface FineTuneSeeds {
  attack: number;
}

/**
 * One replica of the fine-tuning model. `weights` are what changes during a step and is broadcast:
 * the whole model's weights in the full modes, the head's in the linear ones (the encoder is frozen and
 * runs in inference mode there, so it has no moving statistics to average either).
 */
export class FineTuneReplica extends ReplicaWeights {
  constructor(
    readonly model: tf.LayersModel,
    readonly settings: FineTuneShardSettings,
  ) {
    super(trainsEncoder(settings.mode) ? model.weights : model.getLayer('logits').weights, fineTuneVariables(model, settings.mode));
  }

  /**
   * The gradient of `scale` times the shard's fine-tuning objective (scale = shard size / batch size),
   * its adversarial batch attacked with `seed`, as the single-thread step does on the whole batch.
   */
  meanShard(x: Float32Array, y: Int32Array, shape: [number, number, number], seed: number, scale: number): ShardResult {
    const { model, settings } = this;
    const xs = tf.tensor4d(x, [y.length, ...shape]);
    const ys = tf.tensor1d(y, 'int32');
    const attack = isAdversarialMode(settings.mode) ? fineTuneAttack(model, xs, ys, settings, seed) : undefined;
    try {
      const training = trainsEncoder(settings.mode);
      const { value, grads } = tf.variableGrads(() => tf.mul(scale, fineTuneLoss(model, xs, ys, attack?.adv, settings, training)) as tf.Scalar, this.vars);
      const flat = flatten(this.vars.map((v) => grads[v.name]));
      const loss = value.dataSync()[0];
      tf.dispose([value, ...Object.values(grads)]);
      return { grads: flat, loss, correct: 0 };
    } finally {
      tf.dispose([xs, ys, ...(attack ? [attack.adv, ...attack.owned] : [])]);
    }
  }
}

export interface FineTuneParallel {
  readonly count: number;
  /** One optimizer step on the batch (x: NHWC floats); `seed` is the step's attack seed. Returns the batch loss. */
  step(x: Float32Array, y: Int32Array, seed: number, optimizer: tf.Optimizer): Promise<number>;
  close(): Promise<void>;
  terminate(): Promise<void>;
}

/**
 * Start `count - 1` fine-tuning worker threads on the active backend, each with a replica of `model`,
 * and return the data-parallel step. The main thread's model stays the one trained and saved.
 */
export async function startFineTuneParallel(model: tf.LayersModel, settings: FineTuneShardSettings, count: number, shape: [number, number, number]): Promise<FineTuneParallel> {
  const main = new FineTuneReplica(model, settings);
  const data: FineTuneReplicaInit = { topology: model.toJSON(null, false), settings, shape, initial: flatten(model.weights.map((w) => w.read())) };
  const script = new URL('./finetune-worker.js', import.meta.url);
  const replicas = await ShardedReplicas.start<FineTuneSeeds>({ count, main, script, data, label: 'training worker' });

  const step = async (x: Float32Array, y: Int32Array, seed: number, optimizer: tf.Optimizer): Promise<number> => {
    const batch = replicas.shard(x, y, (k) => ({ attack: subSeed(seed, 'shard', k) }));
    const { mine, replies } = await replicas.meanShards(batch, (own) => main.meanShard(own.x, own.y, shape, own.seeds.attack, own.scale));
    return replicas.apply(batch, mine, replies, optimizer).loss;
  };

  return {
    count,
    step,
    close: () => replicas.close(),
    terminate: () => replicas.terminate(),
  };
}
