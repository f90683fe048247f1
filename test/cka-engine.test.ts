import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../src/errors.js';
import type { ActivationSet } from '../src/formats/activations.js';
import { linearCkaMatrix, planTiles, type CkaEngineOptions, type CkaEstimator } from '../src/cka/engine/engine.js';
import { gram, centerColumns, hsicBiased, hsicUnbiased, linearCkaBiased, linearCkaDebiased, matrixFromSet } from '../src/cka/measures/reference.js';
import { randomSet as sharedRandomSet, relatedSet, withOffset } from './cka-sets.js';

const N = 30;

const randomSet = (name: string, dim: number, seed: number, n = N): ActivationSet => sharedRandomSet(name, dim, seed, n);

const a = randomSet('a', 3, 1);
const b = relatedSet('b', a, 8, 2);
const c = relatedSet('c', b, 17, 3);
const d = randomSet('d', 40, 4);
const SETS = [a, b, c, d];

const referenceCka = (est: CkaEstimator) => (x: ActivationSet, y: ActivationSet) =>
  (est === 'biased' ? linearCkaBiased : linearCkaDebiased)(matrixFromSet(x), matrixFromSet(y));

function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof InputError && pattern.test(err.message));
}

test('setup: cpu backend', async () => {
  await tf.setBackend('cpu');
  await tf.ready();
  assert.equal(tf.getBackend(), 'cpu');
});

for (const estimator of ['biased', 'debiased'] as const) {
  test(`${estimator}: all pairs match the float64 reference within 1e-4 (sets of width 3..40)`, async () => {
    const res = await linearCkaMatrix(SETS, null, { estimator });
    const ref = referenceCka(estimator);
    assert.deepEqual(res.rows, ['a', 'b', 'c', 'd']);
    assert.deepEqual(res.cols, res.rows);
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        const want = ref(SETS[i], SETS[j]);
        assert.ok(Math.abs(res.cka[i * 4 + j] - want) < 1e-4, `${estimator} CKA(${SETS[i].name}, ${SETS[j].name}) = ${res.cka[i * 4 + j]}, reference ${want}`);
      }
    }
    // The data is meant to exercise the whole range, not only the diagonal.
    assert.ok(res.cka[0 * 4 + 1] > 0.3 && res.cka[0 * 4 + 1] < 0.99);
  });

  test(`${estimator}: HSIC values are those of the original (unscaled) features`, async () => {
    const big = withOffset({ ...b, data: b.data.map((v) => v * 30) }, 2, 'b30');
    const res = await linearCkaMatrix([a, big], null, { estimator });
    const hsic = estimator === 'biased' ? hsicBiased : hsicUnbiased;
    const K = gram(centerColumns(matrixFromSet(a)));
    const L = gram(centerColumns(matrixFromSet(big)));
    const want = [hsic(K, K), hsic(K, L), hsic(L, K), hsic(L, L)];
    for (let k = 0; k < 4; k++) assert.ok(Math.abs(res.hsic[k] - want[k]) <= 1e-5 * Math.abs(want[k]), `hsic[${k}] ${res.hsic[k]} vs ${want[k]}`);
    assert.ok(Math.abs(res.hsicRows[1] - want[3]) <= 1e-5 * want[3]);
  });

  test(`${estimator}: rows x cols variant (model A vs model B) matches the reference`, async () => {
    const rows = [a, c];
    const cols = [relatedSet('a', a, 5, 10), b, d];
    const res = await linearCkaMatrix(rows, cols, { estimator });
    assert.deepEqual(res.rows, ['a', 'c']);
    assert.deepEqual(res.cols, ['a', 'b', 'd']);
    const ref = referenceCka(estimator);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) {
      assert.ok(Math.abs(res.cka[i * 3 + j] - ref(rows[i], cols[j])) < 1e-4, `(${i}, ${j})`);
    }
    const sym = await linearCkaMatrix(SETS, null, { estimator });
    // b is both a column here and a row of the symmetric run: the values must agree.
    assert.ok(Math.abs(res.cka[1 * 3 + 1] - sym.cka[2 * 4 + 1]) < 1e-6);
  });

  test(`${estimator}: blocked, chunked, resident and streamed runs agree with the single-tile run`, async () => {
    const whole = await linearCkaMatrix(SETS, null, { estimator, blockRows: N });
    assert.equal(whole.blockRows, N);
    const variants: Array<Partial<CkaEngineOptions>> = [
      { blockRows: 1, chunkCols: 1 },
      { blockRows: 4, chunkCols: 2 },
      { blockRows: 7, chunkCols: 7, residentBytes: 0 },
      { blockRows: 8, chunkCols: 3 },
      { blockRows: 100, chunkCols: 4, residentBytes: 0 },
      { memoryBytes: 1 },
    ];
    for (const v of variants) {
      const res = await linearCkaMatrix(SETS, null, { estimator, ...v });
      assert.ok(maxAbsDiff(res.cka, whole.cka) < 1e-6, `${JSON.stringify(v)}: differs by ${maxAbsDiff(res.cka, whole.cka)}`);
      if (v.blockRows !== undefined && v.blockRows < N) assert.ok(res.blockRows < N, 'really blocked');
    }
  });

  test(`${estimator}: a +500 offset on the features changes CKA by less than 1e-4`, async () => {
    const centred = await linearCkaMatrix([b, c], null, { estimator });
    const shifted = await linearCkaMatrix([withOffset(b, 500), withOffset(c, -500)], null, { estimator, blockRows: 8, chunkCols: 4 });
    assert.ok(maxAbsDiff(centred.cka, shifted.cka) < 1e-4, `differs by ${maxAbsDiff(centred.cka, shifted.cka)}`);
  });
}

test('planTiles: panels start on the chunk grid and the memory budget caps the panel height', () => {
  for (const [n, opts] of [
    [10000, { blockRows: 1000 }],
    [10000, { memoryBytes: 64 * 1024 * 1024 }],
    [100, { blockRows: 30, chunkCols: 7 }],
  ] as const) {
    const p = planTiles(n, 72, 200000, false, opts);
    assert.ok(p.panelRows === n || p.panelRows % p.chunkCols === 0, JSON.stringify(p));
  }
  const tight = planTiles(10000, 72, 216000, false, { memoryBytes: 1024 ** 3 });
  assert.ok(4 * (tight.panelRows * 216000 + 3 * 72 * tight.panelRows * tight.chunkCols) <= 1024 ** 3, JSON.stringify(tight));
  assert.equal(planTiles(50, 3, 100, true, {}).panelRows, 50);
});

test('bad inputs are InputErrors naming the set or the problem', async () => {
  const nan = randomSet('has_nan', 4, 7);
  nan.data[9] = NaN;
  await rejects(linearCkaMatrix([a, nan], null, { estimator: 'biased' }), /has_nan.*non-finite/);
  const inf = randomSet('has_inf', 4, 7);
  inf.data[0] = Infinity;
  await rejects(linearCkaMatrix([inf], [a], { estimator: 'debiased' }), /has_inf.*non-finite/);
  const constant: ActivationSet = { name: 'flat', n: N, dim: 3, data: new Float32Array(N * 3).fill(500.25) };
  await rejects(linearCkaMatrix([a, constant], null, { estimator: 'biased' }), /flat.*zero variance/);
  await rejects(linearCkaMatrix([randomSet('tiny', 2, 1, 3)], null, { estimator: 'biased' }), /at least 4/);
  await rejects(linearCkaMatrix([a, randomSet('short', 2, 1, N - 1)], null, { estimator: 'biased' }), /short.*29 samples/);
  await rejects(linearCkaMatrix([a, a], null, { estimator: 'biased' }), /'a' appears twice/);
  await rejects(linearCkaMatrix([a], null, { estimator: 'unbiased' as CkaEstimator }), /estimator/);
  await rejects(linearCkaMatrix([a], null, { estimator: 'biased', blockRows: 0 }), /blockRows/);
});

test('debiased CKA of a set with one outlying sample is refused, not reported as noise', async () => {
  // One sample differs from all others: the U-centred Gram is exactly zero.
  const spike: ActivationSet = { name: 'spike', n: N, dim: 2, data: new Float32Array(N * 2) };
  spike.data[6] = 3;
  spike.data[7] = -1;
  await rejects(linearCkaMatrix([a, spike], null, { estimator: 'debiased' }), /spike.*debiased self-HSIC/);
  const biased = await linearCkaMatrix([a, spike], null, { estimator: 'biased' });
  assert.ok(Math.abs(biased.cka[3] - 1) < 1e-6);
});

test('backend memory stays bounded by the tiles, far below the size of the Grams', async () => {
  const n = 256;
  const sets = [8, 16, 24, 32].map((dim, k) => randomSet(`m${k}`, dim, 20 + k, n));
  const gramBytes = sets.length * n * n * 4;
  let res: Awaited<ReturnType<typeof linearCkaMatrix>> | undefined;
  const info = await tf.profile(async () => {
    res = await linearCkaMatrix(sets, null, { estimator: 'debiased', blockRows: 32, chunkCols: 32, residentBytes: 0 });
  });
  assert.equal(res!.resident, false);
  assert.ok(info.peakBytes < gramBytes / 8, `peak ${info.peakBytes} bytes vs ${gramBytes} for all Grams`);
  const whole = await linearCkaMatrix(sets, null, { estimator: 'debiased', blockRows: n });
  assert.ok(maxAbsDiff(res!.cka, whole.cka) < 1e-6);
});

test('no tensors leak across repeated runs (both estimators, resident and streamed)', async () => {
  await linearCkaMatrix(SETS, null, { estimator: 'biased', blockRows: 8, chunkCols: 4 }); // warm-up
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    await linearCkaMatrix(SETS, null, { estimator: 'biased', blockRows: 8, chunkCols: 4 });
    await linearCkaMatrix(SETS, [a, b], { estimator: 'debiased', blockRows: 4, chunkCols: 4, residentBytes: 0 });
    await linearCkaMatrix(SETS, null, { estimator: 'debiased' });
  }
  assert.equal(tf.memory().numTensors, before);
  // A failing run must not leak either (the error comes from the host checks before any tensor).
  const nan = randomSet('nan', 2, 3);
  nan.data[0] = NaN;
  await assert.rejects(linearCkaMatrix([a, nan], null, { estimator: 'biased' }));
  assert.equal(tf.memory().numTensors, before);
});

test('wasm backend: engine matches the float64 reference', async () => {
  const { initBackend } = await import('../src/backend/index.js');
  await initBackend('wasm');
  assert.equal(tf.getBackend(), 'wasm');
  try {
    for (const estimator of ['biased', 'debiased'] as const) {
      const before = tf.memory().numTensors;
      const res = await linearCkaMatrix(SETS, null, { estimator, blockRows: 8, chunkCols: 4 });
      const ref = referenceCka(estimator);
      for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) assert.ok(Math.abs(res.cka[i * 4 + j] - ref(SETS[i], SETS[j])) < 1e-4);
      assert.equal(tf.memory().numTensors, before);
    }
  } finally {
    await tf.setBackend('cpu');
  }
});

test('two worker threads (own wasm instances, shared data) give the same matrix as one thread', async () => {
  const { linearCkaMatrixInWorkers } = await import('../src/cka/engine/workers.js');
  const { initBackend } = await import('../src/backend/index.js');
  await initBackend('wasm');
  try {
    for (const estimator of ['biased', 'debiased'] as const) {
      const one = await linearCkaMatrix(SETS, [c, d], { estimator, chunkCols: 8 });
      let calls = 0;
      const two = await linearCkaMatrixInWorkers(SETS, [c, d], { estimator, chunkCols: 8, onProgress: () => calls++ }, 2);
      assert.deepEqual(two.rows, one.rows);
      assert.deepEqual(two.cols, ['c', 'd']);
      assert.ok(maxAbsDiff(one.cka, two.cka) < 1e-9, `${estimator}: ${maxAbsDiff(one.cka, two.cka)}`);
      assert.ok(maxAbsDiff(one.hsic, two.hsic) < 1e-9 * Math.max(...Array.from(one.hsic, Math.abs)));
      // n = 30 in 8-column chunks: 4 + 3 + 2 + 1 tile steps, shared between the two workers.
      assert.equal(calls, 10);
    }
  } finally {
    await tf.setBackend('cpu');
  }
});
