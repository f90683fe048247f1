import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { InputError } from '../../errors.js';
import type { ActivationSet } from '../../formats/activations.js';

/**
 * Orthogonal Procrustes similarity (Ding, Denain, Steinhardt 2021; Williams et al. 2021), a second
 * measure to cross-check CKA: with X, Y centred and scaled to unit Frobenius norm,
 * min over orthogonal Q of ||X Q - Y||_F^2 = 2 - 2 ||X^T Y||_*, so the similarity ||X^T Y||_* is 1
 * for representations equal up to rotation (and reflection) and the distance is sqrt(2 - 2 s).
 * Sets of different widths are compared as if the narrower were padded with zero columns.
 *
 * It needs all samples at once (the nuclear norm does not split over minibatches), so it exists
 * for stored activations only. Float64 on the host: each set is reduced once to R (n x r,
 * r = min(n, p)) with R R^T = X X^T, and since X^T Y = V_x (R_x^T R_y) V_y^T with orthonormal V,
 * ||X^T Y||_* = ||R_x^T R_y||_*, the sum of the square roots of the eigenvalues of the smaller
 * Gram of R_x^T R_y. Cost: O(r^3) per pair, which suits cross-checks on thousands of samples.
 */
export interface ProcrustesMatrix {
  rows: string[];
  cols: string[];
  /** similarity[i * cols.length + j] = ||X_i^T Y_j||_* in [0, 1]. */
  similarity: Float64Array;
  /** sqrt(2 - 2 similarity): the Procrustes distance of the normalised sets. */
  distance: Float64Array;
}

/** Eigenvalues below this fraction of the largest are rounding noise and dropped. */
const RELATIVE_EIGEN_FLOOR = 1e-12;

export function procrustesMatrix(rowSets: ActivationSet[], colSets: ActivationSet[] | null): ProcrustesMatrix {
  const cols = colSets ?? rowSets;
  const n = rowSets[0]?.n;
  for (const s of [...rowSets, ...cols]) {
    if (s.n !== n) throw new InputError(`procrustes: set '${s.name}' has ${s.n} samples but '${rowSets[0].name}' has ${n}; every set must hold the same samples`);
  }
  const reduced = new Map<ActivationSet, Matrix>();
  const reduce = (s: ActivationSet) => {
    let r = reduced.get(s);
    if (!r) reduced.set(s, (r = reducedRepresentation(s)));
    return r;
  };
  const similarity = new Float64Array(rowSets.length * cols.length);
  rowSets.forEach((x, i) => {
    cols.forEach((y, j) => {
      similarity[i * cols.length + j] = colSets === null && j < i ? similarity[j * cols.length + i] : nuclearNorm(reduce(x).transpose().mmul(reduce(y)));
    });
  });
  return {
    rows: rowSets.map((s) => s.name),
    cols: cols.map((s) => s.name),
    similarity,
    distance: similarity.map((v) => Math.sqrt(Math.max(0, 2 - 2 * v))),
  };
}

/** R (n x r) with R R^T = Xc Xc^T for the centred, unit-Frobenius X. */
export function reducedRepresentation(set: ActivationSet): Matrix {
  const { n, dim, data, name } = set;
  const x = new Matrix(n, dim);
  const means = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) means[j] += data[i * dim + j] / n;
  let norm2 = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) {
      const v = data[i * dim + j] - means[j];
      if (!Number.isFinite(v)) throw new InputError(`set '${name}': non-finite value at sample ${i}, feature ${j}`);
      x.set(i, j, v);
      norm2 += v * v;
    }
  }
  if (!(norm2 > 0)) throw new InputError(`set '${name}': every feature is constant over the ${n} samples, so the Procrustes similarity is undefined`);
  x.div(Math.sqrt(norm2));
  if (dim <= n) return x;
  const eig = new EigenvalueDecomposition(x.mmul(x.transpose()), { assumeSymmetric: true });
  const values = eig.realEigenvalues;
  const vectors = eig.eigenvectorMatrix;
  const floor = RELATIVE_EIGEN_FLOOR * Math.max(...values);
  const keep = values.map((v, k) => [v, k] as const).filter(([v]) => v > floor);
  const r = new Matrix(n, keep.length);
  keep.forEach(([v, k], c) => {
    const s = Math.sqrt(v);
    for (let i = 0; i < n; i++) r.set(i, c, vectors.get(i, k) * s);
  });
  return r;
}

/** Sum of the singular values of M, from the eigenvalues of its smaller Gram. */
export function nuclearNorm(m: Matrix): number {
  const g = m.rows <= m.columns ? m.mmul(m.transpose()) : m.transpose().mmul(m);
  const values = new EigenvalueDecomposition(g, { assumeSymmetric: true }).realEigenvalues;
  return values.reduce((s, v) => s + Math.sqrt(Math.max(0, v)), 0);
}
