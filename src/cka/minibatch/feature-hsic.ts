import * as tf from '@tensorflow/tfjs';

/**
 * The unbiased HSIC numerators of a batch in feature space (no b x b Gram), for every pair with
 * at least one feature set. With K = X X^T, K~ = K with zero diagonal, k = diag(K) and
 * K 1 = X (X^T 1) (exact for any X, so per-column offsets left by the float32 centring cancel as
 * they do in U-centring):
 *   b(b-3) HSIC(K, L) = tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((b-1)(b-2)) - 2/(b-2) (K~ 1)^T (L~ 1)
 *   tr(K~ L~) = ||X^T Y||_F^2 - k^T l,   1^T K~ 1 = 1^T K 1 - 1^T k,   K~ 1 = K 1 - k.
 * The ||X^T Y||_F^2 of all pairs are the block sums of the squared Z_F^T Z (Z the concatenated
 * features; an indicator product forms the block sums), and k^T l and (K~1)^T (L~1) of all pairs
 * are two m x m products. For the permutation null, L -> P L P^T means Y -> Y[p], l -> l[p],
 * L~1 -> (L~1)[p]: the same products with the column side's rows gathered by p. Pairs (Gram set,
 * feature set) of a null replicate need Z_S^T Z_F[p], a further product.
 */

/**
 * The flat tensor of everything the numerators need, in this order: 1^T K~ 1 of every set (m);
 * then per replicate r = 0 (unpermuted), 1..P: block sums (f x m), k^T l[p] (m x m),
 * (K~1)^T (L~1)[p] (m x m), and for r >= 1 with Gram sets, block sums of Z_S^T Z_F[p] (g x f).
 * Call inside tf.tidy; `z` are the b x d_k features (centred, scaled) of all sets.
 */
export function featureTerms(z: tf.Tensor2D[], feature: boolean[], perms: Int32Array[]): tf.Tensor1D {
  const m = z.length;
  const widths = z.map((t) => t.shape[1]);
  const fIdx = feature.flatMap((f, k) => (f ? [k] : []));
  const gIdx = feature.flatMap((f, k) => (f ? [] : [k]));
  const all = m === 1 ? z[0] : (tf.concat(z, 1) as tf.Tensor2D); // (b, D)
  const pick = (idx: number[]) => (idx.length === m ? all : idx.length === 1 ? z[idx[0]] : (tf.concat(idx.map((k) => z[k]), 1) as tf.Tensor2D));
  const zF = pick(fIdx);
  const zFt = tf.transpose(zF); // explicit transpose: faster than transposeA on wasm
  const indicatorT = (idx: number[]) => indicator(idx.map((k) => widths[k])); // (|idx|, D_idx)
  const allInd = tf.transpose(indicatorT(feature.map((_, k) => k))); // (D, m)
  const fIndT = indicatorT(fIdx); // (f, D_F)
  const blocks = (c: tf.Tensor, rowsT: tf.Tensor2D, cols: tf.Tensor2D) => tf.matMul(rowsT, tf.matMul(tf.square(c) as tf.Tensor2D, cols));

  const diag = tf.stack(z.map((t) => tf.sum(tf.square(t), 1)), 1) as tf.Tensor2D; // (b, m): k_ii
  const k1 = tf.stack(z.map((t) => tf.reshape(tf.matMul(t, tf.reshape(tf.sum(t, 0), [-1, 1])), [-1])), 1) as tf.Tensor2D; // (b, m): K 1
  const offDiag1 = tf.sub(k1, diag) as tf.Tensor2D; // K~ 1
  const sums = tf.sum(offDiag1, 0); // 1^T K~ 1
  const diagT = tf.transpose(diag);
  const offDiag1T = tf.transpose(offDiag1);

  const parts: tf.Tensor[] = [sums];
  const zS = gIdx.length > 0 && perms.length > 0 ? tf.transpose(pick(gIdx)) : null;
  const gIndT = zS ? indicatorT(gIdx) : null;
  const fInd = zS ? tf.transpose(fIndT) : null;
  // Each replicate in its own scope: its D_F x D products are freed before the next one's.
  const replicate = (p: Int32Array | null) =>
    tf.tidy(() => {
      const idx = p ? tf.tensor1d(p, 'int32') : null;
      const rows = (t: tf.Tensor2D) => (idx ? (tf.gather(t, idx, 0) as tf.Tensor2D) : t);
      const out = [blocks(tf.matMul(zFt, rows(all)), fIndT, allInd), tf.matMul(diagT, rows(diag)), tf.matMul(offDiag1T, rows(offDiag1))];
      if (idx && zS) out.push(blocks(tf.matMul(zS, rows(zF)), gIndT!, fInd!));
      return tf.concat(out.map((t) => tf.reshape(t, [-1])));
    });
  parts.push(replicate(null));
  for (const p of perms) parts.push(replicate(p));
  return tf.concat(parts.map((t) => tf.reshape(t, [-1]))) as tf.Tensor1D;
}

/** (count x total width) 0/1 matrix: row j is 1 on the columns of the j-th group of `widths`. */
function indicator(widths: number[]): tf.Tensor2D {
  const total = widths.reduce((s, d) => s + d, 0);
  const v = new Float32Array(widths.length * total);
  let at = 0;
  widths.forEach((d, j) => {
    v.fill(1, j * total + at, j * total + at + d);
    at += d;
  });
  return tf.tensor2d(v, [widths.length, total]);
}

/** How many values featureTerms produces. */
export function featureTermCount(m: number, feature: boolean[], permutations: number): number {
  const f = feature.filter(Boolean).length;
  const g = m - f;
  return m + (1 + permutations) * (f * m + 2 * m * m) + permutations * (g > 0 ? g * f : 0);
}

/**
 * b(b-3) HSIC of every pair with at least one feature set, replicate by replicate ((1 + P) x m x m,
 * NaN where both sets take the Gram path), on the scale of the features given, in float64.
 */
export function featureNumerators(values: Float32Array, offset: number, b: number, feature: boolean[], permutations: number): Float64Array {
  const m = feature.length;
  const fPos = new Map(feature.flatMap((f, k) => (f ? [k] : [])).map((k, i) => [k, i]));
  const gPos = new Map(feature.flatMap((f, k) => (f ? [] : [k])).map((k, i) => [k, i]));
  const f = fPos.size;
  const g = gPos.size;
  const sums = values.subarray(offset, offset + m);
  const out = new Float64Array((1 + permutations) * m * m).fill(NaN);
  let at = offset + m;
  for (let r = 0; r <= permutations; r++) {
    const blocks = values.subarray(at, (at += f * m));
    const diagDot = values.subarray(at, (at += m * m));
    const offDot = values.subarray(at, (at += m * m));
    const cross = r > 0 && g > 0 ? values.subarray(at, (at += g * f)) : null;
    for (let k = 0; k < m; k++) {
      for (let l = 0; l < m; l++) {
        const fk = fPos.get(k);
        const fl = fPos.get(l);
        let frob: number;
        if (fk !== undefined) frob = blocks[fk * m + l];
        else if (fl === undefined) continue; // a Gram pair
        else frob = cross ? cross[gPos.get(k)! * f + fl] : blocks[fl * m + k]; // unpermuted: symmetric
        const trace = frob - diagDot[k * m + l];
        out[r * m * m + k * m + l] = trace + (sums[k] * sums[l]) / ((b - 1) * (b - 2)) - (2 * offDot[k * m + l]) / (b - 2);
      }
    }
  }
  if (at !== offset + featureTermCount(m, feature, permutations)) throw new Error('featureNumerators: layout mismatch (a bug)');
  return out;
}
