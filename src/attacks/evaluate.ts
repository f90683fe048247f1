import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/types.js';
import { gatherBatch } from '../data/index.js';
import { batchTensors } from '../models/inputs.js';
import { crossEntropyLoss } from './losses.js';
import { pgdAttack, type PgdOptions } from './pgd.js';

export interface AccuracyResult {
  n: number;
  accuracy: number;
  /** 1 where the (possibly attacked) sample was classified correctly. */
  correct: Uint8Array;
}

/**
 * Top-1 accuracy of `model` on the first `limit` samples of `ds`, clean or under a PGD attack on
 * the cross-entropy of the true label (model in inference mode).
 */
export async function evaluateAccuracy(
  model: tf.LayersModel,
  ds: Dataset,
  opts: { batchSize?: number; limit?: number; attack?: PgdOptions; onBatch?: (done: number, total: number) => void } = {},
): Promise<AccuracyResult> {
  const n = Math.min(opts.limit ?? ds.n, ds.n);
  const batchSize = opts.batchSize ?? 256;
  const correct = new Uint8Array(n);
  const shape: [number, number, number] = [ds.height, ds.width, ds.channels];
  for (let start = 0; start < n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const batch = gatherBatch(ds, idx);
    const { x, y } = batchTensors(batch.x, batch.y, shape);
    const input = opts.attack ? pgdAttack(crossEntropyLoss(model, y), x, { ...opts.attack, seed: opts.attack.seed + start }) : x;
    const hits = tf.tidy(() => tf.equal(tf.argMax(model.apply(input, { training: false }) as tf.Tensor2D, 1), tf.cast(y, 'int32')));
    correct.set(await hits.data(), start);
    tf.dispose([x, y, input, hits]);
    opts.onBatch?.(start + idx.length, n);
  }
  const hitsTotal = correct.reduce((a, b) => a + b, 0);
  return { n, accuracy: n ? hitsTotal / n : NaN, correct };
}
