import * as tf from '@tensorflow/tfjs';

/**
 * The weight exchange of data-parallel replicas (src/parallel/replicas.ts): weights, gradients and
 * moving statistics cross threads as flat Float32Arrays in fixed orders, and a batch is cut into
 * contiguous shards, one per thread.
 */

/** A contiguous slice [start, end) of a batch. */
export interface ShardRange {
  start: number;
  end: number;
}

/** Split n samples into `count` contiguous shards, sizes differing by at most one (earlier shards larger). */
export function shardRanges(n: number, count: number): ShardRange[] {
  const base = Math.floor(n / count);
  const extra = n % count;
  const out: ShardRange[] = [];
  let start = 0;
  for (let k = 0; k < count; k++) {
    const end = start + base + (k < extra ? 1 : 0);
    out.push({ start, end });
    start = end;
  }
  return out;
}

/** sum_k weights[k] * parts[k], elementwise, accumulated in double precision. */
export function weightedSum(parts: ArrayLike<number>[], weights: number[]): Float32Array {
  const out = new Float32Array(parts[0].length);
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (let k = 0; k < parts.length; k++) s += weights[k] * parts[k][i];
    out[i] = s;
  }
  return out;
}

export function flatSize(shapes: number[][]): number {
  return shapes.reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0);
}

/** Copy tensors into one flat array, in order. */
export function flatten(tensors: tf.Tensor[], into?: Float32Array): Float32Array {
  const out = into ?? new Float32Array(flatSize(tensors.map((t) => t.shape)));
  let offset = 0;
  for (const t of tensors) {
    const v = t.dataSync() as Float32Array;
    out.set(v, offset);
    offset += v.length;
  }
  return out;
}

/** The tensors of `shapes` cut from a flat array (caller disposes). */
export function unflatten(flat: Float32Array, shapes: number[][]): tf.Tensor[] {
  let offset = 0;
  return shapes.map((shape) => {
    const size = shape.reduce((a, b) => a * b, 1);
    // slice(): a private copy (a SharedArrayBuffer view must not become a tensor's storage).
    const t = tf.tensor(flat.slice(offset, offset + size), shape, 'float32');
    offset += size;
    return t;
  });
}

/** What a replica hands back for its shard: its share of the objective's gradient and of the batch figures. */
export interface ShardResult {
  /** Gradients in the replica's `vars` order; the shards' sum is the batch gradient. */
  grads: Float32Array;
  /** This shard's share of the batch loss (the shares sum to the batch loss). */
  loss: number;
  correct: number;
}

/**
 * What every kind of replica exchanges with the main thread: the weights it broadcasts, the moving
 * statistics it averages and the variables whose gradients it returns, as flat arrays in fixed orders.
 */
export abstract class ReplicaWeights {
  /** Non-trainable weights (BatchNorm moving statistics), averaged over replicas after each step. */
  readonly stats: tf.LayerVariable[];

  constructor(
    /** The weights a step changes (trainable and not), the broadcast order. */
    readonly weights: tf.LayerVariable[],
    /** The trained variables, the gradient order. */
    readonly vars: tf.Variable[],
  ) {
    this.stats = weights.filter((w) => !w.trainable);
  }

  get weightShapes(): number[][] {
    return this.weights.map((w) => w.shape as number[]);
  }
  get statShapes(): number[][] {
    return this.stats.map((w) => w.shape as number[]);
  }
  get varShapes(): number[][] {
    return this.vars.map((v) => v.shape);
  }

  readWeights(into?: Float32Array): Float32Array {
    return flatten(this.weights.map((w) => w.read()), into);
  }
  readStats(into?: Float32Array): Float32Array {
    return flatten(this.stats.map((w) => w.read()), into);
  }
  writeWeights(flat: Float32Array): void {
    writeFlat(this.weights, flat);
  }
  writeStats(flat: Float32Array): void {
    writeFlat(this.stats, flat);
  }
}

/** Write a flat array into variables, in order. */
export function writeFlat(targets: tf.LayerVariable[], flat: Float32Array): void {
  const tensors = unflatten(flat, targets.map((w) => w.shape as number[]));
  targets.forEach((w, i) => w.write(tensors[i]));
  tf.dispose(tensors);
}
