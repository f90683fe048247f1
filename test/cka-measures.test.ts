import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Matrix } from 'ml-matrix';
import type { ActivationSet } from '../src/formats/activations.js';
import { minibatchStateOfSets } from '../src/cka/minibatch/batches.js';
import { minibatchMatrix } from '../src/cka/minibatch/result.js';
import { procrustesMatrix } from '../src/cka/measures/procrustes-matrix.js';
import { ckaFromHsic, gramRbf, hsicUnbiased, matrixFromSet, minibatchKernelCka, procrustesSimilarity } from '../src/cka/measures/reference.js';
import { randomSet } from './cka-sets.js';

/** A nonlinear relative of `base` (squares of its columns plus noise): RBF and linear CKA disagree on it. */
function curvedSet(name: string, base: ActivationSet, dim: number, seed: number): ActivationSet {
  const s = randomSet(name, dim, seed, base.n);
  for (let i = 0; i < base.n; i++) for (let j = 0; j < dim; j++) s.data[i * dim + j] = 0.3 * s.data[i * dim + j] + 2 * base.data[i * base.dim + (j % base.dim)] ** 2;
  return s;
}

const N = 48;
const x = randomSet('x', 4, 1, N);
const y = curvedSet('y', x, 6, 2);
const z = randomSet('z', 50, 3, N); // wider than n: exercises the reduced representation
const SETS = [x, y, z];

function batches(set: ActivationSet, size: number): Matrix[] {
  const out: Matrix[] = [];
  for (let s = 0; s < set.n; s += size) out.push(matrixFromSet({ ...set, n: Math.min(size, set.n - s), data: set.data.subarray(s * set.dim, Math.min(set.n, s + size) * set.dim) }));
  return out;
}

test('setup: cpu backend', async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

test('RBF-kernel minibatch CKA (median bandwidth per batch) equals the float64 reference within 1e-4', async () => {
  const state = await minibatchStateOfSets(SETS, { batchSize: 16, seed: 0, bootstrap: 0, permutations: 0, kernel: 'rbf' });
  const res = minibatchMatrix(state, state.sets, state.sets);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const ref = minibatchKernelCka(gramRbf, batches(SETS[i], 16), batches(SETS[j], 16));
      assert.ok(Math.abs(res.cka[i * 3 + j] - ref) < 1e-4, `${i},${j}: ${res.cka[i * 3 + j]} vs ${ref}`);
    }
  }
  const linear = minibatchMatrix(await minibatchStateOfSets(SETS, { batchSize: 16, seed: 0, bootstrap: 0, permutations: 0 }), state.sets, state.sets);
  assert.ok(Math.abs(linear.cka[1] - res.cka[1]) > 0.02, `the kernels should disagree on a curved relation: linear ${linear.cka[1]}, rbf ${res.cka[1]}`);
});

test('RBF-kernel CKA with one batch of all n equals the debiased full-data RBF CKA', async () => {
  const state = await minibatchStateOfSets([x, y], { batchSize: N, seed: 0, bootstrap: 0, permutations: 0, kernel: 'rbf' });
  const res = minibatchMatrix(state, state.sets, state.sets);
  const ref = ckaFromHsic(hsicUnbiased, gramRbf(matrixFromSet(x)), gramRbf(matrixFromSet(y)));
  assert.ok(Math.abs(res.cka[1] - ref) < 1e-4, `${res.cka[1]} vs ${ref}`);
});

test('orthogonal Procrustes similarity equals the SVD reference, is 1 under rotation, ignores offsets', () => {
  const res = procrustesMatrix(SETS, null);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const ref = procrustesSimilarity(matrixFromSet(SETS[i]), matrixFromSet(SETS[j]));
      assert.ok(Math.abs(res.similarity[i * 3 + j] - ref) < 1e-8, `${i},${j}: ${res.similarity[i * 3 + j]} vs ${ref}`);
    }
  }
  assert.ok(res.similarity[0 * 3 + 2] < 0.9, 'unrelated sets are not similar');
  // Rotate x by 90 degrees in its first two features and shift it by +500.
  const rotated: ActivationSet = { ...x, name: 'rot', data: Float32Array.from(x.data) };
  for (let i = 0; i < N; i++) {
    const [a, b] = [x.data[i * 4], x.data[i * 4 + 1]];
    rotated.data[i * 4] = -b + 500;
    rotated.data[i * 4 + 1] = a + 500;
  }
  const rot = procrustesMatrix([x], [rotated]);
  assert.ok(Math.abs(rot.similarity[0] - 1) < 1e-5, `${rot.similarity[0]}`);
  assert.ok(rot.distance[0] < 5e-3);
});
