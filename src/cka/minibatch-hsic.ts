import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';

/**
 * The unbiased HSIC (Song et al. 2012) of every pair of sets on one minibatch, on the active tfjs
 * backend, with one download per batch.
 *
 * For each set X (b x p, any trailing shape flattened): centre the columns over the batch and
 * scale to unit RMS (float32 range and precision; the unbiased HSIC ignores per-column offsets, so
 * the centring only protects precision: a +500 offset costs nothing), K = Z Z^T, and U-centre
 * it: zero diagonal, K~_ij - r_i/(b-2) - r_j/(b-2) + s/((b-1)(b-2)) off it (r the row sums of
 * K~, s their total). Then <U(K), U(L)>_F / (b(b-3)) is the unbiased HSIC, so with G the matrix
 * whose rows are the flattened U(K) of all sets, every pair comes from one product G G^T.
 * G's b^2 columns are split into groups of at most PRODUCT_TERMS so that every float32 sum is
 * short; the group sums are added in float64 on the host.
 *
 * The permutation null: for a permutation P of the batch, U(P L P^T) = P U(L) P^T, so the HSIC
 * of every row set with every permuted column set is one more product G (P G P^T)^T.
 */
export interface BatchHsic {
  /** Batch size. */
  b: number;
  /** m x m unbiased HSIC of the batch, on the sets' own scale. */
  hsic: Float64Array;
  /** perms.length x m x m: HSIC(K_k, P L_l P^T) for each permutation P. */
  nullHsic: Float64Array;
}

/** Longest float32 sum in the products (see engine.ts for the measured error of longer sums). */
const PRODUCT_TERMS = 16384;

/** The smallest batch the unbiased HSIC is defined on (it divides by b(b-3)). */
export const MIN_BATCH = 4;

/**
 * HSIC of every pair of `sets` (each a tensor whose first axis is the same b samples) and, for each
 * permutation of 0..b-1 in `perms`, of every set with every permuted set. The inputs are not disposed.
 */
export async function batchHsic(sets: tf.Tensor[], perms: Int32Array[] = [], kernel: Kernel = 'linear'): Promise<BatchHsic> {
  if (sets.length === 0) throw new InputError('minibatch cka: no sets');
  const b = sets[0].shape[0];
  if (!(b >= MIN_BATCH)) throw new InputError(`minibatch cka: a batch of ${b} samples; the unbiased HSIC needs at least ${MIN_BATCH} (it divides by b(b-3))`);
  for (const s of sets) if (s.shape[0] !== b) throw new Error(`batchHsic: sets of ${s.shape[0]} and ${b} samples in one batch`);
  for (const p of perms) if (p.length !== b) throw new Error(`batchHsic: permutation of length ${p.length} for a batch of ${b}`);
  const m = sets.length;
  const group = rowsPerGroup(b);
  const groups = b / group;
  const out = tf.tidy(() => {
    const offDiagonal = tf.sub(tf.onesLike(tf.eye(b)), tf.eye(b)) as tf.Tensor2D;
    const scales: tf.Tensor[] = [];
    const centred: tf.Tensor2D[] = [];
    for (const s of sets) {
      const [u, scale] = uCentredGram(s, offDiagonal, b, kernel);
      centred.push(u);
      scales.push(scale);
    }
    const stacked = tf.stack(centred) as tf.Tensor3D; // (m, b, b)
    const asGroups = (g: tf.Tensor3D) => tf.transpose(tf.reshape(g, [m, groups, group * b]), [1, 0, 2]) as tf.Tensor3D; // (groups, m, group*b)
    const left = asGroups(stacked);
    const product = (right: tf.Tensor3D) => tf.matMul(left, tf.transpose(right, [0, 2, 1])); // (groups, m, m)
    const parts: tf.Tensor[] = [tf.stack(scales), tf.reshape(product(left), [-1])];
    for (const p of perms) {
      const idx = tf.tensor1d(p, 'int32');
      const permuted = tf.gather(tf.gather(stacked, idx, 1), idx, 2) as tf.Tensor3D;
      parts.push(tf.reshape(product(asGroups(permuted)), [-1]));
    }
    return tf.concat(parts.map((t) => tf.reshape(t, [-1])));
  });
  let values: Float32Array;
  try {
    values = (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
  const scale = Float64Array.from(values.subarray(0, m));
  const denom = b * (b - 3);
  const unpack = (offset: number, target: Float64Array, at: number) => {
    for (let k = 0; k < m; k++) {
      for (let l = 0; l < m; l++) {
        let s = 0;
        for (let g = 0; g < groups; g++) s += values[offset + g * m * m + k * m + l];
        // Back to the sets' own scale: Z = scale * (X - mean), so HSIC_Z = scale_k^2 scale_l^2 HSIC_X.
        target[at + k * m + l] = s / denom / (scale[k] * scale[k] * scale[l] * scale[l]);
      }
    }
  };
  const hsic = new Float64Array(m * m);
  unpack(m, hsic, 0);
  const nullHsic = new Float64Array(perms.length * m * m);
  perms.forEach((_, p) => unpack(m + (p + 1) * groups * m * m, nullHsic, p * m * m));
  return { b, hsic, nullHsic };
}

/**
 * The kernel of the Gram matrices: linear (K = X X^T) or RBF with the median-distance bandwidth of
 * Kornblith et al.'s notebook, K_ij = exp(-d_ij^2 / (2 median(d^2))), the median taken over all b^2
 * entries of the batch's squared-distance matrix (diagonal included, as np.median does there).
 */
export type Kernel = 'linear' | 'rbf';

/**
 * U(K) of one set (b x b) and the factor its HSIC terms must be divided by, squared per set: the
 * scale its features were multiplied by for the linear kernel (a scalar tensor), 1 for RBF (which
 * is invariant to the scale of the features).
 */
function uCentredGram(set: tf.Tensor, offDiagonal: tf.Tensor2D, b: number, kernel: Kernel): [tf.Tensor2D, tf.Tensor] {
  const x = tf.reshape(tf.cast(set, 'float32'), [b, -1]) as tf.Tensor2D;
  const xc = tf.sub(x, tf.mean(x, 0, true));
  const meanSquare = tf.mean(tf.square(xc));
  // A set constant over the batch has K = 0 and contributes nothing; scale 1 keeps it finite.
  const scale = tf.where(tf.greater(meanSquare, 0), tf.rsqrt(meanSquare), tf.onesLike(meanSquare));
  const z = tf.mul(xc, scale);
  // Measured on wasm: an explicit transpose before matMul is several times faster than transposeB.
  const dot = tf.matMul(z, tf.transpose(z)) as tf.Tensor2D;
  const k = tf.mul(kernel === 'rbf' ? rbfFromDot(dot, b) : dot, offDiagonal);
  const r = tf.sum(k, 1);
  const total = tf.sum(r);
  const rCol = tf.reshape(tf.div(r, b - 2), [b, 1]);
  const rRow = tf.reshape(tf.div(r, b - 2), [1, b]);
  const u = tf.mul(tf.add(tf.sub(tf.sub(k, rCol), rRow), tf.div(total, (b - 1) * (b - 2))), offDiagonal) as tf.Tensor2D;
  return [u, kernel === 'rbf' ? tf.onesLike(scale) : scale];
}

/** RBF Gram from the linear Gram of (centred, unit-RMS) features, median-distance bandwidth. */
function rbfFromDot(dot: tf.Tensor2D, b: number): tf.Tensor2D {
  const sq = tf.reshape(tf.sum(tf.mul(dot, tf.eye(b)), 1), [b, 1]);
  // Rounding can make a distance slightly negative; it is 0.
  const d2 = tf.relu(tf.sub(tf.add(sq, tf.transpose(sq)), tf.mul(dot, 2)));
  const count = b * b;
  const half = Math.floor(count / 2);
  // The largest half + 1 values, descending: the median is at the end (odd count) or the mean of the last two.
  const top = tf.topk(tf.reshape(d2, [-1]), half + 1).values;
  const median = count % 2 === 1 ? tf.slice(top, [half], [1]) : tf.mean(tf.slice(top, [half - 1], [2]));
  // All samples identical: every distance is 0 and so is the median; any bandwidth gives K = 1.
  const bandwidth = tf.where(tf.greater(median, 0), median, tf.onesLike(median));
  return tf.exp(tf.div(tf.neg(d2), tf.mul(bandwidth, 2))) as tf.Tensor2D;
}

/** The largest divisor g of b with g * b <= PRODUCT_TERMS (at least 1). */
function rowsPerGroup(b: number): number {
  for (let g = Math.max(1, Math.min(b, Math.floor(PRODUCT_TERMS / b))); g > 1; g--) if (b % g === 0) return g;
  return 1;
}
