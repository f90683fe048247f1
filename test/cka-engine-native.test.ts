import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Matrix } from 'ml-matrix';
import { initBackend } from '../src/backend/index.js';
import { hostOpenBlas, nativeSummary, setNativeEnabled } from '../src/backend/native/index.js';
import type { ActivationSet } from '../src/formats/activations.js';
import { linearCkaMatrix, type CkaEngineOptions, type CkaEstimator } from '../src/cka/engine/engine.js';
import { planHost } from '../src/cka/engine/host-sums.js';
import { minibatchStateOfSets } from '../src/cka/minibatch/batches.js';
import { minibatchMatrix } from '../src/cka/minibatch/result.js';
import { hsicBiased, hsicUnbiased, gram, centerColumns, linearCkaBiased, linearCkaDebiased, matrixFromSet, minibatchCka } from '../src/cka/measures/reference.js';
import { randomSet, relatedSet, withOffset } from './cka-sets.js';

// The CKA engines with native OpenBLAS (the tiled engine's host path, host-sums.ts; the minibatch
// engine's ssyrk Grams) against the same engines on plain wasm kernels and a float64 ml-matrix
// reference. Skipped, with the reason, where OpenBLAS is not loaded.

await initBackend('wasm');
const skip = nativeSummary()?.openblas ? false : 'OpenBLAS not loaded (libopenblas0-pthread not installed, koffi missing, or ROBUSTSIM_NATIVE=off)';

after(() => setNativeEnabled(true));

function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

const N = 45;
const a = randomSet('a', 3, 1, N);
const b = relatedSet('b', a, 8, 2);
const c = relatedSet('c', b, 70, 3); // wider than n
const d = randomSet('d', 40, 4, N);
const SETS = [a, b, c, d];

const reference = (est: CkaEstimator, x: ActivationSet, y: ActivationSet) => (est === 'biased' ? linearCkaBiased : linearCkaDebiased)(matrixFromSet(x), matrixFromSet(y));
const referenceHsic = (est: CkaEstimator, x: ActivationSet, y: ActivationSet) => {
  if (est === 'debiased') return hsicUnbiased(gram(matrixFromSet(x)), gram(matrixFromSet(y)));
  return hsicBiased(gram(centerColumns(matrixFromSet(x))), gram(centerColumns(matrixFromSet(y))));
};

/** Counts the OpenBLAS calls the engine makes while `run` runs (the host path makes them; the tensor path only through kernels). */
async function countingBlas<T>(run: () => Promise<T>): Promise<{ result: T; calls: number }> {
  const blas = hostOpenBlas()!;
  const { sgemm, ssyrkUpper } = blas;
  let calls = 0;
  blas.sgemm = (...args) => (calls++, sgemm(...args));
  blas.ssyrkUpper = (...args) => (calls++, ssyrkUpper(...args));
  try {
    return { result: await run(), calls };
  } finally {
    blas.sgemm = sgemm;
    blas.ssyrkUpper = ssyrkUpper;
  }
}

async function wasmOnly<T>(run: () => Promise<T>): Promise<T> {
  setNativeEnabled(false);
  try {
    return await run();
  } finally {
    setNativeEnabled(true);
  }
}

for (const estimator of ['biased', 'debiased'] as const) {
  test(`${estimator}: native host engine = wasm engine = float64 reference (default, fixed grids, streamed, one-row panels)`, { skip }, async () => {
    assert.ok(hostOpenBlas(), 'the host path is on with OpenBLAS on the wasm backend');
    const wasm = await wasmOnly(() => linearCkaMatrix(SETS, null, { estimator }));
    const variants: Array<Partial<CkaEngineOptions>> = [
      {},
      { residentBytes: 0 },
      { blockRows: 8, chunkCols: 4 },
      { blockRows: 10, chunkCols: 10, residentBytes: 0 },
      { blockRows: 1, chunkCols: 1 },
      { memoryBytes: 4 * 4 * N * 5, residentBytes: 0 }, // budget for 5-row panels after the scratch
    ];
    for (const v of variants) {
      const before = tf.memory().numTensors;
      const { result: res, calls } = await countingBlas(() => linearCkaMatrix(SETS, null, { estimator, ...v }));
      assert.equal(tf.memory().numTensors, before, `${JSON.stringify(v)}: no tensors made or leaked`);
      assert.ok(calls > 0, `${JSON.stringify(v)}: ran on the host path`);
      assert.ok(maxAbsDiff(res.cka, wasm.cka) < 1e-5, `${JSON.stringify(v)}: native vs wasm ${maxAbsDiff(res.cka, wasm.cka)}`);
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 4; j++) {
          const ref = reference(estimator, SETS[i], SETS[j]);
          assert.ok(Math.abs(res.cka[i * 4 + j] - ref) < 1e-5, `${JSON.stringify(v)} (${i}, ${j}): ${res.cka[i * 4 + j]} vs ${ref}`);
          const h = referenceHsic(estimator, SETS[i], SETS[j]);
          assert.ok(Math.abs(res.hsic[i * 4 + j] - h) < 1e-4 * Math.abs(referenceHsic(estimator, SETS[i], SETS[i])), `hsic (${i}, ${j})`);
        }
      }
    }
  });

  test(`${estimator}: native rows x cols and a +500 offset match the reference`, { skip }, async () => {
    const res = await linearCkaMatrix([a, b], [c, d, b], { estimator, blockRows: 16, chunkCols: 16 });
    assert.deepEqual(res.cols, ['c', 'd', 'b']);
    const cols = [c, d, b];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) assert.ok(Math.abs(res.cka[i * 3 + j] - reference(estimator, [a, b][i], cols[j])) < 1e-5);
    const centred = await linearCkaMatrix([b, c], null, { estimator });
    const shifted = await linearCkaMatrix([withOffset(b, 500), withOffset(c, -500)], null, { estimator, residentBytes: 0 });
    assert.ok(maxAbsDiff(centred.cka, shifted.cka) < 1e-4, `+500 offset: ${maxAbsDiff(centred.cka, shifted.cka)}`);
  });
}

test('planHost: one panel when every stacked tile fits, taller panels never over the budget, shares for workers', () => {
  assert.deepEqual(planHost(2048, 36, 16384, false, 2 ** 31, 1), { panelRows: 2048, chunkCols: 2048 });
  const tight = planHost(10000, 36, 16384, false, 2 ** 31, 1);
  assert.ok(tight.panelRows < 10000 && tight.panelRows === tight.chunkCols);
  assert.ok(4 * 36 * tight.panelRows * 10000 + 4 * 10000 * 16384 <= 2 ** 31);
  assert.deepEqual(planHost(2048, 36, 16384, false, 2 ** 31, 2), { panelRows: 512, chunkCols: 512 });
  assert.equal(planHost(100, 4, 10, true, 0, 1).panelRows, 1);
});

test('two worker threads on the host path give the matrix of one thread', { skip }, async () => {
  const { linearCkaMatrixInWorkers } = await import('../src/cka/engine/workers.js');
  for (const estimator of ['biased', 'debiased'] as const) {
    const one = await linearCkaMatrix(SETS, null, { estimator });
    const two = await linearCkaMatrixInWorkers(SETS, null, { estimator }, 2);
    assert.ok(maxAbsDiff(one.cka, two.cka) < 1e-6, `${estimator}: ${maxAbsDiff(one.cka, two.cka)}`);
  }
});

test('minibatch engine: native ssyrk Grams = wasm kernels = float64 reference minibatch CKA; no leaks', { skip }, async () => {
  const config = { batchSize: 15, seed: 3, bootstrap: 0, permutations: 0 };
  const before = tf.memory().numTensors;
  const native = minibatchMatrix(await minibatchStateOfSets(SETS, config), SETS.map((s) => s.name), SETS.map((s) => s.name));
  assert.equal(tf.memory().numTensors, before);
  const wasm = minibatchMatrix(await wasmOnly(() => minibatchStateOfSets(SETS, config)), SETS.map((s) => s.name), SETS.map((s) => s.name));
  assert.ok(maxAbsDiff(native.cka, wasm.cka) < 1e-5, `native vs wasm ${maxAbsDiff(native.cka, wasm.cka)}`);
  const batches = (s: ActivationSet) => [0, 15, 30].map((r) => new Matrix(Array.from({ length: 15 }, (_, i) => Array.from(s.data.subarray((r + i) * s.dim, (r + i + 1) * s.dim)))));
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) assert.ok(Math.abs(native.cka[i * 4 + j] - minibatchCka(batches(SETS[i]), batches(SETS[j]))) < 1e-4, `(${i}, ${j})`);
});
