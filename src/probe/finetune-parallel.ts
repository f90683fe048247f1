import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { activeBackend } from '../backend/index.js';
import { subSeed } from '../util/rng.js';
import { applyShards, DATA_PARALLEL_BACKENDS, settleAll, startReplicaThreads } from '../train/data-parallel.js';
import { flatSize, flatten, ReplicaWeights, shardRanges, type ShardResult } from '../train/replica.js';
import { isAdversarialMode, trainsEncoder, type FineTuneMode } from './meta.js';
import { fineTuneAttack, fineTuneLoss, type ObjectiveSettings } from './objective.js';

/**
 * Data-parallel fine-tuning (docs/decisions.md, "Data-parallel fine-tuning"): the machinery of
 * src/train/data-parallel.ts (contiguous shards, one per thread; gradients summed on the main thread,
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
  backend: string;
  topology: unknown;
  settings: FineTuneShardSettings;
  shape: [number, number, number];
  /** Every weight of the model once (the frozen encoder of the linear modes is never broadcast again). */
  initial: Float32Array;
  weights: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  stats: SharedArrayBuffer;
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

/** Validate a worker count (the flag `--workers`); throws InputError. */
export function checkFineTuneWorkers(count: number): void {
  if (!Number.isInteger(count) || count < 1) throw new InputError(`--workers: expected an integer >= 1, got ${count}`);
}

/**
 * Start `count - 1` fine-tuning worker threads on the active backend, each with a replica of `model`,
 * and return the data-parallel step. The main thread's model stays the one trained and saved.
 */
export async function startFineTuneParallel(model: tf.LayersModel, settings: FineTuneShardSettings, count: number, shape: [number, number, number]): Promise<FineTuneParallel> {
  checkFineTuneWorkers(count);
  const backend = activeBackend();
  if (!DATA_PARALLEL_BACKENDS.includes(backend)) {
    throw new InputError(`--workers: ${count} worker threads need a CPU backend (${DATA_PARALLEL_BACKENDS.join(' or ')}), the active backend is '${backend}' (use --workers 1)`);
  }
  const main = new FineTuneReplica(model, settings);
  const weights = new Float32Array(new SharedArrayBuffer(4 * flatSize(main.weightShapes)));
  const topology = model.toJSON(null, false);
  const script = new URL('./finetune-worker.js', import.meta.url);
  const threads = await startReplicaThreads(
    count,
    main,
    (): FineTuneReplicaInit => ({
      backend,
      topology,
      settings,
      shape,
      initial: flatten(model.weights.map((w) => w.read())),
      weights: weights.buffer as SharedArrayBuffer,
      grads: new SharedArrayBuffer(4 * flatSize(main.varShapes)),
      stats: new SharedArrayBuffer(4 * flatSize(main.statShapes)),
    }),
    script,
  );
  const terminate = async () => {
    await Promise.all(threads.map((t) => t.worker.terminate()));
  };
  const size = shape[0] * shape[1] * shape[2];

  const step = async (x: Float32Array, y: Int32Array, seed: number, optimizer: tf.Optimizer): Promise<number> => {
    const n = y.length;
    // Shards with no sample (a last batch smaller than the worker count) sit the step out.
    const ranges = shardRanges(n, count)
      .map((r, k) => ({ ...r, k }))
      .filter((r) => r.end > r.start);
    const part = (r: { start: number; end: number; k: number }) => ({
      x: x.slice(r.start * size, r.end * size),
      y: y.slice(r.start, r.end),
      // As train: shard k attacks with subSeed(step seed, 'shard', k) (augment is unused here).
      seeds: { attack: subSeed(seed, 'shard', r.k), augment: 0 },
      scale: (r.end - r.start) / n,
    });
    main.readWeights(weights);
    const remote = ranges.filter((r) => r.k > 0);
    const pending = remote.map((r) => {
      const p = part(r);
      return threads[r.k - 1].request({ type: 'mean', ...p }, 'shard', [p.x.buffer as ArrayBuffer]);
    });
    const own = part(ranges[0]);
    const mine = main.meanShard(own.x, own.y, shape, own.seeds.attack, own.scale);
    const replies = await settleAll(pending);
    applyShards(main, mine.grads, remote.map((r) => threads[r.k - 1]), ranges, optimizer);
    return mine.loss + replies.reduce((s, r) => s + r.loss, 0);
  };

  return {
    count,
    step,
    close: async () => {
      await Promise.all(threads.map((t) => t.close()));
    },
    terminate,
  };
}
