import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Matrix } from 'ml-matrix';
import { InputError } from '../src/errors.js';
import type { ActivationSet } from '../src/formats/activations.js';
import { batchHsic } from '../src/cka/minibatch/hsic.js';
import { minibatchStateOfSets, parseShard, planBatches, accumulateMinibatches, type MinibatchBatch } from '../src/cka/minibatch/batches.js';
import { emptyState, mergeStates, type MinibatchConfig } from '../src/cka/minibatch/state.js';
import { minibatchMatrix, quantile } from '../src/cka/minibatch/result.js';
import { gram, hsicUnbiased, linearCkaDebiased, matrixFromSet, minibatchCka } from '../src/cka/measures/reference.js';
import { randomSet, relatedSet, withOffset } from './cka-sets.js';

/** Rows start..start+size of a set as a float64 matrix. */
function rowsOf(set: ActivationSet, start: number, size: number): Matrix {
  return matrixFromSet({ ...set, n: size, data: set.data.subarray(start * set.dim, (start + size) * set.dim) });
}

function referenceMinibatch(x: ActivationSet, y: ActivationSet, batch: number): number {
  const xs: Matrix[] = [];
  const ys: Matrix[] = [];
  for (let s = 0; s < x.n; s += batch) {
    const size = Math.min(batch, x.n - s);
    xs.push(rowsOf(x, s, size));
    ys.push(rowsOf(y, s, size));
  }
  return minibatchCka(xs, ys);
}

const N = 60;
const a = randomSet('a', 3, 1, N);
const b = relatedSet('b', a, 8, 2);
const c = relatedSet('c', b, 33, 3);
const d = randomSet('d', 5, 4, N);
const SETS = [a, b, c, d];
const CONFIG: MinibatchConfig = { batchSize: 16, seed: 7, bootstrap: 0, permutations: 0 };

function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

test('setup: cpu backend', async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

test('minibatch CKA of every pair equals the float64 reference minibatch CKA within 1e-4 (batches 16,16,16,12)', async () => {
  const state = await minibatchStateOfSets(SETS, CONFIG);
  assert.deepEqual(state.batchIds, [0, 1, 2, 3]);
  assert.equal(state.samples, N);
  const res = minibatchMatrix(state, state.sets, state.sets);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      const ref = referenceMinibatch(SETS[i], SETS[j], 16);
      assert.ok(Math.abs(res.cka[i * 4 + j] - ref) < 1e-4, `${SETS[i].name} x ${SETS[j].name}: ${res.cka[i * 4 + j]} vs ${ref}`);
    }
  }
  // The values are not trivially 0 or 1, so the check above has teeth.
  assert.ok(res.cka[0 * 4 + 1] > 0.2 && res.cka[0 * 4 + 1] < 0.99);
  assert.ok(Math.abs(res.cka[0 * 4 + 3]) < 0.3);
});

test('per-batch HSIC equals the reference unbiased HSIC on the sets\' own scale', async () => {
  const x = tf.tensor2d(a.data.subarray(0, 16 * a.dim), [16, a.dim]);
  const y = tf.tensor2d(c.data.subarray(0, 16 * c.dim), [16, c.dim]);
  const terms = await batchHsic([x, y]);
  tf.dispose([x, y]);
  const K = gram(rowsOf(a, 0, 16));
  const L = gram(rowsOf(c, 0, 16));
  const ref = hsicUnbiased(K, L);
  assert.ok(Math.abs(terms.hsic[1] - ref) < 1e-4 * Math.abs(ref), `${terms.hsic[1]} vs ${ref}`);
  assert.ok(Math.abs(terms.hsic[3] - hsicUnbiased(L, L)) < 1e-4 * hsicUnbiased(L, L));
});

test('one batch of all n samples gives the debiased full-data CKA', async () => {
  const state = await minibatchStateOfSets(SETS, { ...CONFIG, batchSize: N });
  const res = minibatchMatrix(state, state.sets, state.sets);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      const ref = linearCkaDebiased(matrixFromSet(SETS[i]), matrixFromSet(SETS[j]));
      assert.ok(Math.abs(res.cka[i * 4 + j] - ref) < 1e-4, `${i},${j}: ${res.cka[i * 4 + j]} vs ${ref}`);
    }
  }
});

test('a +500 offset on the features gives the same CKA in float32', async () => {
  const plain = minibatchMatrix(await minibatchStateOfSets([a, c], CONFIG), ['a', 'c'], ['a', 'c']);
  const shifted = await minibatchStateOfSets([withOffset(a, 500), withOffset(c, 500)], CONFIG);
  const res = minibatchMatrix(shifted, shifted.sets, shifted.sets);
  assert.ok(maxAbsDiff(plain.cka, res.cka) < 1e-4, `${Array.from(plain.cka)} vs ${Array.from(res.cka)}`);
});

test('batches of fewer than 4 samples are refused, naming the flag', async () => {
  await assert.rejects(minibatchStateOfSets(SETS, { ...CONFIG, batchSize: 3 }), (e: unknown) => e instanceof InputError && /--batch-size/.test(e.message));
  // 62 = 3 x 20 + 2: a last batch of 2 is refused, not silently dropped.
  assert.throws(() => planBatches(62, 20), (e: unknown) => e instanceof InputError && /last batch of 2/.test(e.message));
  const x = tf.zeros([3, 2]);
  await assert.rejects(batchHsic([x]), InputError);
  x.dispose();
});

test('sharding: shards partition the batches, and merged shard states equal one run', async () => {
  assert.deepEqual(parseShard('1/3'), { index: 1, count: 3 });
  assert.throws(() => parseShard('3/3'), InputError);
  assert.throws(() => parseShard('x'), InputError);
  const config = { ...CONFIG, bootstrap: 20, permutations: 3 };
  const whole = await minibatchStateOfSets(SETS, config);
  const parts = await Promise.all([0, 1, 2].map((i) => minibatchStateOfSets(SETS, config, { index: i, count: 3 })));
  assert.deepEqual(parts.map((p) => p.batchIds), [[0, 3], [1], [2]]);
  const merged = mergeStates(parts);
  assert.deepEqual(merged.batchIds, whole.batchIds);
  assert.equal(merged.samples, N);
  assert.ok(maxAbsDiff(merged.hsic, whole.hsic) < 1e-12);
  assert.ok(maxAbsDiff(merged.boot, whole.boot) < 1e-12);
  assert.ok(maxAbsDiff(merged.nullHsic, whole.nullHsic) < 1e-12);
  assert.throws(() => mergeStates([parts[0], parts[0]]), (e: unknown) => e instanceof InputError && /both hold batch 0/.test(e.message));
  const other = await minibatchStateOfSets(SETS, { ...config, seed: 8 }, { index: 1, count: 3 });
  assert.throws(() => mergeStates([parts[0], other]), (e: unknown) => e instanceof InputError && /seed/.test(e.message));
});

test('statistics: the bootstrap interval brackets the estimate, the permutation null sits near 0 for unrelated sets', async () => {
  const n = 256;
  const x = randomSet('x', 6, 11, n);
  const y = relatedSet('y', x, 10, 12);
  const z = randomSet('z', 6, 13, n);
  const state = await minibatchStateOfSets([x, y, z], { batchSize: 32, seed: 1, bootstrap: 100, permutations: 8 });
  const res = minibatchMatrix(state, state.sets, state.sets);
  const xy = 1;
  assert.ok(res.ciLow![xy] <= res.cka[xy] && res.cka[xy] <= res.ciHigh![xy], `${res.ciLow![xy]} <= ${res.cka[xy]} <= ${res.ciHigh![xy]}`);
  assert.ok(res.ciHigh![xy] - res.ciLow![xy] > 1e-4, 'the interval has width');
  // Shuffling destroys the x-y relation: the null mean is far below the observed value.
  assert.ok(Math.abs(res.nullMean![xy]) < 0.1 && res.cka[xy] > 0.5, `null ${res.nullMean![xy]}, cka ${res.cka[xy]}`);
  assert.ok(res.nullSd![xy] > 0);
  assert.equal(quantile(Float64Array.from([0, 1, 2, 3, 4]), 0.5), 2);
  assert.equal(quantile(Float64Array.from([0, 10]), 0.25), 2.5);
});

test('no tensor leaks across batches (with permutations)', async () => {
  const counts: number[] = [];
  const state = emptyState(['a', 'b'], { batchSize: 8, seed: 0, bootstrap: 4, permutations: 2 });
  async function* source(): AsyncGenerator<MinibatchBatch> {
    for (let id = 0; id < 5; id++) {
      const sets = [tf.randomNormal([8, 3]), tf.randomNormal([8, 2, 2])];
      try {
        yield { id, sets };
      } finally {
        tf.dispose(sets);
      }
    }
  }
  const before = tf.memory().numTensors;
  await accumulateMinibatches(source(), state, () => counts.push(tf.memory().numTensors));
  assert.equal(counts.length, 5);
  assert.ok(counts.every((k) => k === counts[0]), `tensor counts ${counts}`);
  assert.equal(tf.memory().numTensors, before);
});

test('undefined and out-of-range values are flagged in the written table, never clamped', async () => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const { writeMinibatchResults } = await import('../src/cka/minibatch/output.js');
  const { readSimilarity } = await import('../src/formats/similarity.js');
  const constant: ActivationSet = { name: 'k', n: N, dim: 3, data: new Float32Array(N * 3).fill(2) };
  const state = await minibatchStateOfSets([a, b, constant], CONFIG);
  // An out-of-range value, as float32 noise on a near-degenerate set could give: kept as it is.
  state.hsic[0 * 3 + 1] = state.hsic[1 * 3 + 0] = 1.5 * Math.sqrt(state.hsic[0] * state.hsic[4]);
  const dir = await mkdtemp(path.join(tmpdir(), 'robustsim-flag-'));
  try {
    const [written] = await writeMinibatchResults(dir, { state, context: { groups: [{ key: 'a', source: 'mem' }] }, info: {} }, {});
    assert.ok(Math.abs(written.similarity.cka[1] - 1.5) < 1e-12, 'not clamped');
    assert.ok(written.flagged.some((f) => f.row === 'a' && f.col === 'b'));
    assert.ok(written.flagged.some((f) => f.row === 'k' && Number.isNaN(f.cka)));
    const back = await readSimilarity(path.join(dir, 'similarity.arrow'));
    assert.match(String(back.metadata.warning), /outside/);
    assert.match(String(back.metadata.warning), /k have no positive self-HSIC/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('two worker threads (own wasm instances, batches split) give the state of one thread, statistics included', async () => {
  const { minibatchStateOfSetsInWorkers } = await import('../src/cka/minibatch/workers.js');
  const { initBackend } = await import('../src/backend/index.js');
  await initBackend('wasm');
  try {
    const config = { ...CONFIG, bootstrap: 20, permutations: 3 };
    for (const shard of [undefined, { index: 0, count: 2 }]) {
      const one = await minibatchStateOfSets(SETS, config, shard);
      const seen: number[] = [];
      const two = await minibatchStateOfSetsInWorkers(SETS, config, 2, { shard, onBatch: (id) => seen.push(id) });
      // Terms are added in the plan's batch order, as one thread does.
      assert.deepEqual(seen, one.batchIds);
      assert.deepEqual(two.batchIds, one.batchIds);
      assert.equal(two.samples, one.samples);
      for (const key of ['hsic', 'boot', 'nullHsic'] as const) {
        assert.ok(one[key].length > 0);
        assert.ok(maxAbsDiff(one[key], two[key]) <= 1e-9 * Math.max(...Array.from(one[key], Math.abs)), `${key}: ${maxAbsDiff(one[key], two[key])}`);
        // Same kernels on the same inputs, added in the same order: bit-for-bit.
        assert.deepEqual(two[key], one[key], key);
      }
      const r1 = minibatchMatrix(one, one.sets, one.sets);
      const r2 = minibatchMatrix(two, two.sets, two.sets);
      for (const key of ['cka', 'ciLow', 'ciHigh', 'nullMean', 'nullSd'] as const) assert.deepEqual(r2[key], r1[key], key);
    }
    await assert.rejects(minibatchStateOfSetsInWorkers(SETS, { ...CONFIG, batchSize: 3 }, 2), (e: unknown) => e instanceof InputError && /--batch-size/.test(e.message));
  } finally {
    await tf.setBackend('cpu');
  }
});
