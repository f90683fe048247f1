import * as tf from '@tensorflow/tfjs';

/**
 * Per-sample bookkeeping shared by the attacks that work on a shrinking set of samples (the ones
 * still robust): predictions, and writing attacked rows back into the full batch.
 */

/** The model's logits in inference mode; the only access to the model Square needs. */
export type LogitsFn = (x: tf.Tensor4D) => tf.Tensor2D;

export function logitsOf(model: tf.LayersModel): LogitsFn {
  return (x) => model.apply(x, { training: false }) as tf.Tensor2D;
}

/** 1 where argmax(logits(x)) equals y, read back to the CPU. */
export function correctFlags(logits: LogitsFn, x: tf.Tensor4D, y: tf.Tensor1D): Uint8Array {
  const hits = tf.tidy(() => tf.cast(tf.equal(tf.argMax(logits(x), 1), tf.cast(y, 'int32')), 'int32'));
  const out = Uint8Array.from(hits.dataSync());
  hits.dispose();
  return out;
}

/** Rows `indices` of t (a new tensor). */
export function gatherRows<T extends tf.Tensor>(t: T, indices: number[]): T {
  return tf.tidy(() => tf.gather(t, tf.tensor1d(indices, 'int32'))) as T;
}

/** A copy of `full` whose rows `indices` are replaced by the rows of `rows` (same order). */
export function replaceRows(full: tf.Tensor4D, indices: number[], rows: tf.Tensor4D): tf.Tensor4D {
  if (indices.length === 0) return tf.clone(full);
  return tf.tidy(() => {
    const idx = tf.tensor2d(indices, [indices.length, 1], 'int32');
    const scattered = tf.scatterND(idx, rows, full.shape);
    const mask = tf.greater(tf.scatterND(idx, tf.ones([indices.length]), [full.shape[0]]), 0.5);
    return tf.where(tf.broadcastTo(tf.reshape(mask, [-1, 1, 1, 1]), full.shape), scattered, full) as tf.Tensor4D;
  });
}

/** For each sample, the class ranked `rank` (1 = top) by its logits. */
export function rankedClass(logits: tf.Tensor2D, rank: number): tf.Tensor1D {
  return tf.tidy(() => {
    const { indices } = tf.topk(logits, rank, true);
    return tf.reshape(tf.slice(indices, [0, rank - 1], [-1, 1]), [-1]) as tf.Tensor1D;
  });
}

/** Positions k with flags[k] set. */
export function positionsWhere(flags: ArrayLike<number>, value = 1): number[] {
  const out: number[] = [];
  for (let k = 0; k < flags.length; k++) if (flags[k] === value) out.push(k);
  return out;
}

/** Number of classes the model predicts (one forward pass on one sample). */
export function classCount(logits: LogitsFn, x: tf.Tensor4D): number {
  const z = tf.tidy(() => logits(tf.slice(x, [0, 0, 0, 0], [1, -1, -1, -1])));
  const k = z.shape[1];
  z.dispose();
  return k;
}
