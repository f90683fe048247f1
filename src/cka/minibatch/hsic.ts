import * as tf from '@tensorflow/tfjs';
import { gramOf } from '../../backend/native/gram.js';
import { InputError } from '../../errors.js';
import { featureNumerators, featureTerms } from './feature-hsic.js';
import { planFormulation, type Formulation } from './hsic-plan.js';
import type { Kernel } from '../../formats/accumulators.js';

export type { Formulation } from './hsic-plan.js';

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
 *
 * That is the Gram path. Sets whose features are cheaper to use directly (by the flop model of
 * hsic-plan.ts: when the feature sets' total width is about the batch size or less) skip their
 * Gram: every pair involving them comes from Z_F^T Z in feature space (feature-hsic.ts). Both go
 * into the same single download.
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

/** Largest Z_F^T Z product and its square (float32) the feature path may form; 'auto' stays far below. */
const FEATURE_PRODUCT_BYTES = 2 ** 30;

/** The smallest batch the unbiased HSIC is defined on (it divides by b(b-3)). */
export const MIN_BATCH = 4;

/**
 * HSIC of every pair of `sets` (each a tensor whose first axis is the same b samples) and, for each
 * permutation of 0..b-1 in `perms`, of every set with every permuted set. The inputs are not disposed.
 */
export async function batchHsic(sets: tf.Tensor[], perms: Int32Array[] = [], kernel: Kernel = 'linear', formulation: Formulation = 'auto'): Promise<BatchHsic> {
  if (sets.length === 0) throw new InputError('minibatch cka: no sets');
  const b = sets[0].shape[0];
  if (!(b >= MIN_BATCH)) throw new InputError(`minibatch cka: a batch of ${b} samples; the unbiased HSIC needs at least ${MIN_BATCH} (it divides by b(b-3))`);
  for (const s of sets) if (s.shape[0] !== b) throw new Error(`batchHsic: sets of ${s.shape[0]} and ${b} samples in one batch`);
  for (const p of perms) if (p.length !== b) throw new Error(`batchHsic: permutation of length ${p.length} for a batch of ${b}`);
  if (kernel === 'rbf' && formulation === 'feature') throw new InputError('--formulation feature: the RBF kernel has no feature space to work in; use gram or auto');
  const widths = sets.map((s) => s.size / b);
  // The RBF kernel is not a product of features: Gram path only.
  const feature = kernel === 'rbf' ? new Array<boolean>(sets.length).fill(false) : planFormulation(b, widths, perms.length, formulation);
  return batchHsicPlanned(sets, perms, kernel, feature);
}

/** batchHsic with the path of every set given: feature[k] = true puts set k on the feature path (linear kernel only). */
export async function batchHsicPlanned(sets: tf.Tensor[], perms: Int32Array[], kernel: Kernel, feature: boolean[]): Promise<BatchHsic> {
  const m = sets.length;
  const b = sets[0].shape[0];
  if (feature.length !== m) throw new Error(`batchHsicPlanned: ${feature.length} path flags for ${m} sets`);
  if (kernel === 'rbf' && feature.some(Boolean)) throw new Error('batchHsicPlanned: the RBF kernel has no feature path');
  const widthOf = (k: number) => sets[k].size / b;
  const featureWidth = feature.reduce((s, f, k) => s + (f ? widthOf(k) : 0), 0);
  const totalWidth = sets.reduce((s, _, k) => s + widthOf(k), 0);
  if (2 * 4 * featureWidth * totalWidth > FEATURE_PRODUCT_BYTES) {
    throw new InputError(
      `--formulation feature: the feature sets' ${featureWidth} features against all ${totalWidth} need ${((8 * featureWidth * totalWidth) / 2 ** 30).toFixed(1)} GiB of products per batch (limit ${FEATURE_PRODUCT_BYTES / 2 ** 30} GiB); use gram or auto`,
    );
  }
  const gramIdx = feature.flatMap((f, k) => (f ? [] : [k]));
  const g = gramIdx.length;
  const group = rowsPerGroup(b);
  const groups = b / group;
  const out = tf.tidy(() => {
    const scaled = sets.map((s) => centredScaled(s, b));
    const parts: tf.Tensor[] = [tf.stack(scaled.map(([, scale]) => (kernel === 'rbf' ? tf.onesLike(scale) : scale)))];
    if (g > 0) {
      const offDiagonal = tf.sub(tf.onesLike(tf.eye(b)), tf.eye(b)) as tf.Tensor2D;
      const stacked = tf.stack(gramIdx.map((k) => uCentredGram(scaled[k][0], offDiagonal, b, kernel))) as tf.Tensor3D; // (g, b, b)
      const asGroups = (t: tf.Tensor3D) => tf.transpose(tf.reshape(t, [g, groups, group * b]), [1, 0, 2]) as tf.Tensor3D; // (groups, g, group*b)
      const left = asGroups(stacked);
      const product = (right: tf.Tensor3D) => tf.matMul(left, tf.transpose(right, [0, 2, 1])); // (groups, g, g)
      parts.push(product(left));
      for (const p of perms) {
        const idx = tf.tensor1d(p, 'int32');
        parts.push(product(asGroups(tf.gather(tf.gather(stacked, idx, 1), idx, 2) as tf.Tensor3D)));
      }
    }
    if (g < m) parts.push(featureTerms(scaled.map(([z]) => z), feature, perms));
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
  const gramValues = (1 + perms.length) * groups * g * g;
  const featureValues = g < m ? featureNumerators(values, m + gramValues, b, feature, perms.length) : null;
  const unpack = (r: number, target: Float64Array, at: number) => {
    const offset = m + r * groups * g * g;
    for (let k = 0; k < m; k++) {
      for (let l = 0; l < m; l++) {
        let s = 0;
        if (feature[k] || feature[l]) s = featureValues![r * m * m + k * m + l];
        else for (let q = 0; q < groups; q++) s += values[offset + q * g * g + gramIdx.indexOf(k) * g + gramIdx.indexOf(l)];
        // Back to the sets' own scale: Z = scale * (X - mean), so HSIC_Z = scale_k^2 scale_l^2 HSIC_X.
        target[at + k * m + l] = s / denom / (scale[k] * scale[k] * scale[l] * scale[l]);
      }
    }
  };
  const hsic = new Float64Array(m * m);
  unpack(0, hsic, 0);
  const nullHsic = new Float64Array(perms.length * m * m);
  perms.forEach((_, p) => unpack(p + 1, nullHsic, p * m * m));
  return { b, hsic, nullHsic };
}

/** The kernel of the Gram matrices (the accumulators record it: src/formats/accumulators.ts). */
export type { Kernel };

/**
 * A set's features (b x p) centred over the batch and scaled to unit RMS, and that scale (a scalar
 * tensor; its HSIC terms are divided by its square per set). A set constant over the batch keeps
 * scale 1 (K = 0, contributing nothing).
 */
function centredScaled(set: tf.Tensor, b: number): [tf.Tensor2D, tf.Tensor] {
  const x = tf.reshape(tf.cast(set, 'float32'), [b, -1]) as tf.Tensor2D;
  const xc = tf.sub(x, tf.mean(x, 0, true));
  const meanSquare = tf.mean(tf.square(xc));
  const scale = tf.where(tf.greater(meanSquare, 0), tf.rsqrt(meanSquare), tf.onesLike(meanSquare));
  return [tf.mul(xc, scale) as tf.Tensor2D, scale];
}

/** U(K) (b x b) of centred, scaled features z, K the linear or RBF Gram. */
function uCentredGram(z: tf.Tensor2D, offDiagonal: tf.Tensor2D, b: number, kernel: Kernel): tf.Tensor2D {
  const dot = gramOf(z); // ssyrk with native OpenBLAS, else transpose + matMul
  const k = tf.mul(kernel === 'rbf' ? rbfFromDot(dot, b) : dot, offDiagonal);
  const r = tf.sum(k, 1);
  const total = tf.sum(r);
  const rCol = tf.reshape(tf.div(r, b - 2), [b, 1]);
  const rRow = tf.reshape(tf.div(r, b - 2), [1, b]);
  return tf.mul(tf.add(tf.sub(tf.sub(k, rCol), rRow), tf.div(total, (b - 1) * (b - 2))), offDiagonal) as tf.Tensor2D;
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
