import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Matrix, QrDecomposition } from 'ml-matrix';
import { makeRng } from '../src/util/rng.js';
import {
  centerColumns,
  frobeniusDot,
  gram,
  hsicBiased,
  hsicUnbiased,
  linearCkaBiased,
  linearCkaDebiased,
  minibatchCka,
  uCenter,
} from '../src/cka/measures/reference.js';

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const rng = makeRng(seed);
  return Matrix.from1DArray(rows, cols, Array.from({ length: rows * cols }, () => rng() * 2 - 1));
}

function randomOrthogonal(p: number, seed: number): Matrix {
  return new QrDecomposition(randomMatrix(p, p, seed)).orthogonalMatrix;
}

const X = randomMatrix(12, 5, 1);
// Y shares structure with X (so CKA is far from 0 and from 1) plus noise.
const Y = X.mmul(randomMatrix(5, 4, 2)).add(randomMatrix(12, 4, 3).mul(0.5));

test('CKA(X, X) = 1 for both estimators', () => {
  assert.ok(Math.abs(linearCkaBiased(X, X) - 1) < 1e-12);
  assert.ok(Math.abs(linearCkaDebiased(X, X) - 1) < 1e-12);
});

test('CKA is invariant to orthogonal transforms and isotropic scaling', () => {
  const Q = randomOrthogonal(5, 4);
  for (const cka of [linearCkaBiased, linearCkaDebiased]) {
    const base = cka(X, Y);
    assert.ok(Math.abs(cka(X.mmul(Q), Y) - base) < 1e-12, 'orthogonal');
    assert.ok(Math.abs(cka(X.clone().mul(7.5), Y.clone().mul(0.01)) - base) < 1e-12, 'scaling');
    assert.ok(base > 0.2 && base < 0.99, `test data should give a CKA strictly inside (0, 1), got ${base}`);
  }
});

test('CKA is not invariant to a general invertible linear map', () => {
  // Stretch one direction by 20: invertible, but not orthogonal times a scalar.
  const A = Matrix.eye(5, 5);
  A.set(0, 0, 20);
  A.set(1, 0, 3);
  for (const cka of [linearCkaBiased, linearCkaDebiased]) {
    assert.ok(Math.abs(cka(X.mmul(A), Y) - cka(X, Y)) > 1e-2);
  }
});

test('biased CKA and HSIC match a hand-computed example', () => {
  // x centred = (-1.5, -0.5, 0.5, 1.5), y centred = (-1.75, 0.25, -0.75, 2.25):
  // x.y = 5.5, |x|^2 = 5, |y|^2 = 8.75, so CKA = 5.5^2 / (5 * 8.75) = 121/175 and
  // HSIC(K, L) = (x.y)^2 / (n-1)^2 = 30.25 / 9.
  const x = Matrix.columnVector([1, 2, 3, 4]);
  const y = Matrix.columnVector([1, 3, 2, 5]);
  assert.ok(Math.abs(linearCkaBiased(x, y) - 121 / 175) < 1e-14);
  assert.ok(Math.abs(hsicBiased(gram(centerColumns(x)), gram(centerColumns(y))) - 30.25 / 9) < 1e-12);
  // HSIC uses H K H, so the uncentred Gram gives the same value.
  assert.ok(Math.abs(hsicBiased(gram(x), gram(y)) - 30.25 / 9) < 1e-12);
});

/** Song et al.'s definition: a U-statistic over all ordered 4-tuples of distinct samples. */
function hsicUnbiasedBruteForce(K: Matrix, L: Matrix): number {
  const n = K.rows;
  let total = 0;
  let count = 0;
  const perms = permutations([0, 1, 2, 3]);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let q = 0; q < n; q++) for (let r = 0; r < n; r++) {
    const idx = [i, j, q, r];
    if (new Set(idx).size < 4) continue;
    let h = 0;
    for (const [t, u, v, w] of perms.map((p) => p.map((k) => idx[k]))) {
      h += K.get(t, u) * L.get(t, u) + K.get(t, u) * L.get(v, w) - 2 * K.get(t, u) * L.get(t, v);
    }
    total += h / 24;
    count++;
  }
  return total / count;
}

function permutations(items: number[]): number[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [x, ...p]));
}

test('unbiased HSIC (SPEC formula) equals the U-statistic definition and the U-centred inner product', () => {
  const A = randomMatrix(7, 3, 5);
  const B = randomMatrix(7, 2, 6).add(A.subMatrix(0, 6, 0, 1));
  const K = gram(A);
  const L = gram(B);
  const formula = hsicUnbiased(K, L);
  assert.ok(Math.abs(formula - hsicUnbiasedBruteForce(K, L)) < 1e-12, `${formula} vs brute force`);
  const viaU = frobeniusDot(uCenter(K), uCenter(L)) / (7 * (7 - 3));
  assert.ok(Math.abs(formula - viaU) < 1e-12, `${formula} vs U-centred ${viaU}`);
  // The unbiased estimator needs no centring of the features: U-centring removes offsets.
  assert.ok(Math.abs(hsicUnbiased(gram(centerColumns(A)), gram(centerColumns(B))) - formula) < 1e-12);
});

test('minibatch CKA with one batch equals debiased CKA, and averages HSIC terms over batches', () => {
  assert.ok(Math.abs(minibatchCka([X], [Y]) - linearCkaDebiased(X, Y)) < 1e-12);
  const halves = (M: Matrix) => [M.subMatrix(0, 5, 0, M.columns - 1), M.subMatrix(6, 11, 0, M.columns - 1)];
  const [x1, x2] = halves(X);
  const [y1, y2] = halves(Y);
  const expected =
    (hsicUnbiased(gram(x1), gram(y1)) + hsicUnbiased(gram(x2), gram(y2))) /
    Math.sqrt((hsicUnbiased(gram(x1), gram(x1)) + hsicUnbiased(gram(x2), gram(x2))) * (hsicUnbiased(gram(y1), gram(y1)) + hsicUnbiased(gram(y2), gram(y2))));
  assert.ok(Math.abs(minibatchCka([x1, x2], [y1, y2]) - expected) < 1e-12);
  assert.notEqual(Math.round(minibatchCka([x1, x2], [y1, y2]) * 1e6), Math.round(linearCkaDebiased(X, Y) * 1e6));
});
