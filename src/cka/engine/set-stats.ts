import { InputError } from '../../errors.js';
import type { ActivationSet } from '../../formats/activations.js';

/**
 * What the engine needs to know about a set before it touches the accelerator, computed on the
 * host in float64 so that large constant offsets (ReLU features near +500, say) do not eat the
 * float32 mantissa when the columns are centred.
 */
export interface SetStats {
  /**
   * Column means split into float32 high and low parts (mean = hi + lo to ~float64 precision):
   * on the device (x - hi) is exact for x near the mean, and subtracting lo afterwards gives the
   * float64-centred value rounded once to float32.
   */
  meanHi: Float32Array;
  meanLo: Float32Array;
  /**
   * 1 / (root mean square of the centred entries). The engine works on scale * (X - mean):
   * CKA is invariant to isotropic scaling, and unit-RMS features keep the float32 sums of
   * squared Gram entries far from overflow and underflow. HSIC values are scaled back on the host.
   */
  scale: number;
  /** Squared norms of the centred, scaled rows: the diagonal of the centred Gram K. */
  rowSq: Float64Array;
  /** tr(K) of the centred, scaled Gram = n * dim. */
  trace: number;
}

/** Column means, finiteness and variance checks, and the Gram diagonal of one set. */
export function setStats(set: ActivationSet): SetStats {
  const { n, dim, data } = set;
  const mean64 = columnMeans(set);
  const rowSq = new Float64Array(n);
  let trace = 0;
  for (let i = 0; i < n; i++) {
    const row = i * dim;
    let s = 0;
    for (let j = 0; j < dim; j++) {
      const c = data[row + j] - mean64[j];
      s += c * c;
    }
    rowSq[i] = s;
    trace += s;
  }
  return statsFromSums(set, mean64, rowSq, trace);
}

/** The float64 column means of a set, refusing non-finite values (first pass of setStats). */
export function columnMeans(set: ActivationSet): Float64Array {
  const { n, dim, data, name } = set;
  if (data.length !== n * dim) throw new InputError(`set '${name}': ${data.length} values, expected n*dim = ${n}*${dim}`);
  const sums = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    const row = i * dim;
    for (let j = 0; j < dim; j++) sums[j] += data[row + j];
  }
  // A float64 sum of finite float32 values cannot overflow, so a non-finite sum means a non-finite
  // value: only then look for the first one (no per-value check in the loop above).
  if (!sums.every(Number.isFinite)) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < dim; j++) {
        const v = data[i * dim + j];
        if (!Number.isFinite(v)) throw new InputError(`set '${name}': non-finite value ${v} at sample ${i}, feature ${j}`);
      }
    }
  }
  return sums.map((s) => s / n);
}

/**
 * The rest of setStats from the column means and the squared norms of the centred (unscaled) rows
 * with their sum, which a caller may have gathered in its own pass over the data (host-sums.ts).
 * Takes ownership of rowSq (scaled in place).
 */
export function statsFromSums(set: ActivationSet, mean64: Float64Array, rowSq: Float64Array, trace: number): SetStats {
  const { n, dim, name } = set;
  if (!(trace > 0)) {
    throw new InputError(`set '${name}': every feature is constant over the ${n} samples (zero variance), so CKA is undefined`);
  }
  const scale = 1 / Math.sqrt(trace / (n * dim));
  const scale2 = scale * scale;
  for (let i = 0; i < n; i++) rowSq[i] *= scale2;
  const meanHi = Float32Array.from(mean64);
  const meanLo = Float32Array.from(mean64, (m, j) => m - meanHi[j]);
  return { meanHi, meanLo, scale, rowSq, trace: trace * scale2 };
}
