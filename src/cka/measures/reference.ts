import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import type { ActivationSet } from '../../formats/activations.js';

/**
 * Float64 reference for linear CKA on ml-matrix: one short pure function per formula of
 * SPEC.md "Representation similarity". Slow (O(n^2 p) and O(n^3) products in plain JS), meant
 * for checking the engine on small inputs, never for real data.
 */

/** Activations (n x p) as a float64 matrix. */
export function matrixFromSet(set: ActivationSet): Matrix {
  const m = new Matrix(set.n, set.dim);
  for (let i = 0; i < set.n; i++) for (let j = 0; j < set.dim; j++) m.set(i, j, set.data[i * set.dim + j]);
  return m;
}

/** X with each column's mean subtracted. */
export function centerColumns(X: Matrix): Matrix {
  const means = X.mean('column');
  return X.clone().subRowVector(means);
}

/** The linear-kernel Gram matrix K = X X^T. */
export function gram(X: Matrix): Matrix {
  return X.mmul(X.transpose());
}

/** The centring matrix H = I - (1/n) 1 1^T. */
export function centeringMatrix(n: number): Matrix {
  return Matrix.eye(n).sub(Matrix.ones(n, n).div(n));
}

/** Biased HSIC (Gretton et al.): tr(K H L H) / (n-1)^2. */
export function hsicBiased(K: Matrix, L: Matrix): number {
  const n = K.rows;
  const H = centeringMatrix(n);
  return K.mmul(H).mmul(L).mmul(H).trace() / (n - 1) ** 2;
}

/** K with its diagonal set to zero (the K~ of Song et al.). */
export function zeroDiagonal(K: Matrix): Matrix {
  const out = K.clone();
  for (let i = 0; i < out.rows; i++) out.set(i, i, 0);
  return out;
}

/**
 * Unbiased HSIC (Song et al. 2012), SPEC.md's formula: with K~, L~ the zero-diagonal Grams,
 * [tr(K~ L~) + (1^T K~ 1)(1^T L~ 1)/((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n(n-3)).
 */
export function hsicUnbiased(K: Matrix, L: Matrix): number {
  const n = K.rows;
  if (n < 4) throw new Error(`hsicUnbiased: needs n >= 4 samples, got ${n}`);
  const Kt = zeroDiagonal(K);
  const Lt = zeroDiagonal(L);
  const ones = Matrix.ones(n, 1);
  const trace = Kt.mmul(Lt).trace();
  const sums = Kt.sum() * Lt.sum() / ((n - 1) * (n - 2));
  const cross = ones.transpose().mmul(Kt).mmul(Lt).mmul(ones).get(0, 0);
  return (trace + sums - (2 / (n - 2)) * cross) / (n * (n - 3));
}

/**
 * U-centring (Szekely & Rizzo 2014): zero diagonal and, off the diagonal,
 * K_ij - r_i/(n-2) - r_j/(n-2) + s/((n-1)(n-2)) with r the row sums and s the total of K~.
 * Then <U(K), U(L)>_F / (n(n-3)) equals the unbiased HSIC, which is what the engine computes.
 */
export function uCenter(K: Matrix): Matrix {
  const n = K.rows;
  const Kt = zeroDiagonal(K);
  const rowSums = Kt.sum('row');
  const total = Kt.sum();
  const U = new Matrix(n, n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      U.set(i, j, Kt.get(i, j) - rowSums[i] / (n - 2) - rowSums[j] / (n - 2) + total / ((n - 1) * (n - 2)));
    }
  }
  return U;
}

/** The Frobenius inner product <A, B> = sum_ij A_ij B_ij. */
export function frobeniusDot(A: Matrix, B: Matrix): number {
  let s = 0;
  for (let i = 0; i < A.rows; i++) for (let j = 0; j < A.columns; j++) s += A.get(i, j) * B.get(i, j);
  return s;
}

/** CKA from an HSIC estimator: HSIC(K,L) / sqrt(HSIC(K,K) HSIC(L,L)). */
export function ckaFromHsic(hsic: (K: Matrix, L: Matrix) => number, K: Matrix, L: Matrix): number {
  return hsic(K, L) / Math.sqrt(hsic(K, K) * hsic(L, L));
}

/** Linear CKA (Kornblith et al. 2019) with the biased HSIC, from activations X (n x p1), Y (n x p2). */
export function linearCkaBiased(X: Matrix, Y: Matrix): number {
  return ckaFromHsic(hsicBiased, gram(centerColumns(X)), gram(centerColumns(Y)));
}

/** Linear CKA with the unbiased HSIC in place of the biased one. */
export function linearCkaDebiased(X: Matrix, Y: Matrix): number {
  return ckaFromHsic(hsicUnbiased, gram(centerColumns(X)), gram(centerColumns(Y)));
}

/**
 * Minibatch CKA (Nguyen, Raghu, Kornblith 2021): the unbiased HSIC terms are averaged over
 * minibatches (xBatches[b] and yBatches[b] hold the same samples), then combined:
 * mean HSIC_1(K,L) / sqrt(mean HSIC_1(K,K) mean HSIC_1(L,L)).
 */
export function minibatchCka(xBatches: Matrix[], yBatches: Matrix[]): number {
  if (xBatches.length !== yBatches.length || xBatches.length === 0) throw new Error('minibatchCka: needs the same, non-zero number of X and Y batches');
  let kl = 0;
  let kk = 0;
  let ll = 0;
  for (let b = 0; b < xBatches.length; b++) {
    const K = gram(xBatches[b]);
    const L = gram(yBatches[b]);
    kl += hsicUnbiased(K, L);
    kk += hsicUnbiased(K, K);
    ll += hsicUnbiased(L, L);
  }
  // The 1/batches of each mean cancels in the ratio.
  return kl / Math.sqrt(kk * ll);
}

/**
 * RBF-kernel Gram as in Kornblith et al.'s notebook (gram_rbf with threshold 1):
 * exp(-d_ij^2 / (2 median(d^2))), the median over all n^2 squared distances.
 */
export function gramRbf(X: Matrix): Matrix {
  const n = X.rows;
  const dot = gram(X);
  const d2 = new Matrix(n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) d2.set(i, j, dot.get(i, i) + dot.get(j, j) - 2 * dot.get(i, j));
  const sorted = d2.to1DArray().sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
  const K = new Matrix(n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) K.set(i, j, Math.exp(-d2.get(i, j) / (2 * median)));
  return K;
}

/** Minibatch CKA with a kernel of choice (e.g. gramRbf per batch). */
export function minibatchKernelCka(kernel: (X: Matrix) => Matrix, xBatches: Matrix[], yBatches: Matrix[]): number {
  let kl = 0;
  let kk = 0;
  let ll = 0;
  for (let b = 0; b < xBatches.length; b++) {
    const K = kernel(xBatches[b]);
    const L = kernel(yBatches[b]);
    kl += hsicUnbiased(K, L);
    kk += hsicUnbiased(K, K);
    ll += hsicUnbiased(L, L);
  }
  return kl / Math.sqrt(kk * ll);
}

/**
 * Orthogonal Procrustes similarity straight from the definition: X, Y centred and scaled to unit
 * Frobenius norm, the nuclear norm of X^T Y from its singular value decomposition.
 */
export function procrustesSimilarity(X: Matrix, Y: Matrix): number {
  const x = centerColumns(X);
  const y = centerColumns(Y);
  x.div(x.norm('frobenius'));
  y.div(y.norm('frobenius'));
  const svd = new SingularValueDecomposition(x.transpose().mmul(y), { autoTranspose: true });
  return svd.diagonal.reduce((s, v) => s + v, 0);
}
