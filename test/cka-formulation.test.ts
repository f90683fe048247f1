import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Matrix } from 'ml-matrix';
import { InputError } from '../src/errors.js';
import { makeRng, permutation } from '../src/util/rng.js';
import type { ActivationSet } from '../src/formats/activations.js';
import { batchHsic, batchHsicPlanned, type BatchHsic } from '../src/cka/minibatch/hsic.js';
import { batchFlops, planFormulation } from '../src/cka/minibatch/hsic-plan.js';
import { minibatchStateOfSets } from '../src/cka/minibatch/batches.js';
import { minibatchMatrix } from '../src/cka/minibatch/result.js';
import { gram, hsicUnbiased, matrixFromSet, minibatchCka } from '../src/cka/measures/reference.js';

/** Random features with a shared low-rank part (CKA well inside (0, 1)) plus an offset. */
function makeSet(name: string, n: number, dim: number, seed: number, offset = 0): ActivationSet {
  const rng = makeRng(seed);
  const shared = makeRng(99);
  const latent = Array.from({ length: n * 3 }, () => shared() * 2 - 1);
  const data = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) data[i * dim + j] = offset + latent[i * 3 + (j % 3)] * (1 + (j % 5)) + 0.7 * (rng() * 2 - 1);
  return { name, n, dim, data };
}

const B = 16;
const N = 48;
// Widths below and above the batch size; one set at +500.
const SETS = [makeSet('w3', N, 3, 1), makeSet('w7', N, 7, 2, 500), makeSet('w12', N, 12, 3), makeSet('w24', N, 24, 4), makeSet('w40', N, 40, 5, 500)];
const M = SETS.length;

function batchTensors(start: number): tf.Tensor2D[] {
  return SETS.map((s) => tf.tensor2d(s.data.subarray(start * s.dim, (start + B) * s.dim), [B, s.dim]));
}

function rows(set: ActivationSet, start: number, size: number, perm?: Int32Array): Matrix {
  const m = matrixFromSet({ ...set, n: size, data: set.data.subarray(start * set.dim, (start + size) * set.dim) });
  return perm ? new Matrix(Array.from(perm, (p) => m.getRow(p))) : m;
}

/** |x - y| / sqrt(self_k self_l): differences on the scale of CKA. */
function maxNormalisedDiff(x: Float64Array, y: Float64Array, self: Float64Array): number {
  let worst = 0;
  for (let r = 0; r < x.length / (M * M); r++) {
    for (let k = 0; k < M; k++) {
      for (let l = 0; l < M; l++) {
        const i = r * M * M + k * M + l;
        worst = Math.max(worst, Math.abs(x[i] - y[i]) / Math.sqrt(self[k * M + k] * self[l * M + l]));
      }
    }
  }
  return worst;
}

test('setup: wasm backend', async () => {
  const { initBackend } = await import('../src/backend/index.js');
  await initBackend('wasm');
});

test('feature, Gram and mixed paths give the same HSIC terms within 1e-5, and match the float64 reference (permutations included)', async () => {
  const rng = makeRng(3);
  const perms = [permutation(B, rng), permutation(B, rng)];
  const plans: [string, boolean[]][] = [
    ['gram', new Array(M).fill(false)],
    ['feature', new Array(M).fill(true)],
    ['mixed', [true, false, true, false, true]],
    ['mixed2', [false, true, false, true, false]],
  ];
  for (const start of [0, 16, 32]) {
    const x = batchTensors(start);
    const results: [string, BatchHsic][] = [];
    try {
      for (const [name, plan] of plans) results.push([name, await batchHsicPlanned(x, perms, 'linear', plan)]);
    } finally {
      tf.dispose(x);
    }
    const [, gramTerms] = results[0];
    for (const [name, r] of results.slice(1)) {
      assert.ok(maxNormalisedDiff(r.hsic, gramTerms.hsic, gramTerms.hsic) < 1e-5, `${name} vs gram: ${maxNormalisedDiff(r.hsic, gramTerms.hsic, gramTerms.hsic)}`);
      assert.ok(maxNormalisedDiff(r.nullHsic, gramTerms.nullHsic, gramTerms.hsic) < 1e-5, `${name} null vs gram`);
    }
    // Float64 reference on the original (offset) features.
    const refHsic = new Float64Array(M * M);
    const refNull = new Float64Array(perms.length * M * M);
    for (let k = 0; k < M; k++) {
      const K = gram(rows(SETS[k], start, B));
      for (let l = 0; l < M; l++) {
        refHsic[k * M + l] = hsicUnbiased(K, gram(rows(SETS[l], start, B)));
        perms.forEach((p, q) => (refNull[q * M * M + k * M + l] = hsicUnbiased(K, gram(rows(SETS[l], start, B, p)))));
      }
    }
    for (const [name, r] of results) {
      assert.ok(maxNormalisedDiff(r.hsic, refHsic, refHsic) < 1e-4, `${name} vs reference: ${maxNormalisedDiff(r.hsic, refHsic, refHsic)}`);
      assert.ok(maxNormalisedDiff(r.nullHsic, refNull, refHsic) < 1e-4, `${name} null vs reference: ${maxNormalisedDiff(r.nullHsic, refNull, refHsic)}`);
    }
    // The permuted terms really differ from the unpermuted ones (the check above has teeth).
    assert.ok(Math.abs(refNull[1] - refHsic[1]) > 1e-3 * Math.sqrt(refHsic[0] * refHsic[M + 1]));
  }
});

test('minibatch CKA with the feature path forced, the Gram path forced and auto all equal the float64 reference', async () => {
  const refs = SETS.map((x) =>
    SETS.map((y) => {
      const xs = [0, 16, 32].map((s) => rows(x, s, B));
      const ys = [0, 16, 32].map((s) => rows(y, s, B));
      return minibatchCka(xs, ys);
    }),
  );
  const config = { batchSize: B, seed: 1, bootstrap: 5, permutations: 2 };
  const byPath: Record<string, Float64Array> = {};
  for (const formulation of ['gram', 'feature', 'auto'] as const) {
    const state = await minibatchStateOfSets(SETS, config, undefined, { formulation });
    const res = minibatchMatrix(state, state.sets, state.sets);
    byPath[formulation] = res.cka;
    for (let k = 0; k < M; k++) for (let l = 0; l < M; l++) assert.ok(Math.abs(res.cka[k * M + l] - refs[k][l]) < 1e-4, `${formulation} ${k},${l}: ${res.cka[k * M + l]} vs ${refs[k][l]}`);
    assert.ok(res.cka[1] > 0.2 && res.cka[1] < 0.99, `informative values: ${res.cka[1]}`);
  }
  for (let i = 0; i < M * M; i++) assert.ok(Math.abs(byPath.gram[i] - byPath.feature[i]) < 1e-5, `gram vs feature at ${i}`);
});

test('no tensors leak across batches on the feature and mixed paths', async () => {
  const perms = [permutation(B, makeRng(1))];
  for (const plan of [new Array(M).fill(true), [true, true, false, false, true]]) {
    const counts: number[] = [];
    for (let t = 0; t < 3; t++) {
      const x = batchTensors(16 * t);
      await batchHsicPlanned(x, perms, 'linear', plan);
      tf.dispose(x);
      counts.push(tf.memory().numTensors);
    }
    assert.ok(counts.every((c) => c === counts[0]), `tensor counts ${counts}`);
  }
});

test('the flop model: narrow sets in a big batch go to feature space, wide ones keep their Gram; either path can be forced', () => {
  // 36 pooled-feature-like sets of width 8 in a batch of 1024: D = 288 < b.
  assert.deepEqual(planFormulation(1024, new Array(36).fill(8), 0), new Array(36).fill(true));
  // ResNet-like widths in a batch of 256: the Gram path for all.
  const resnet = [65536, 65536, 32768, 16384, 8192, 512, 10];
  assert.deepEqual(planFormulation(256, resnet, 0), new Array(7).fill(false));
  // A few narrow sets beside wide ones: the feature path cannot spare the wide sets' Grams, and
  // every narrow set pairs with them (mixed pairs in feature space cost b d D_wide), so all Gram.
  assert.deepEqual(planFormulation(256, [4096, 4096, 10, 10], 4), [false, false, false, false]);
  // Many tiny sets beside one set a little wider than the batch: the tiny ones go to feature space.
  const mixed = planFormulation(512, [600, ...new Array(30).fill(2)], 0);
  assert.equal(mixed[0], false);
  assert.ok(mixed.slice(1).every(Boolean), `plan ${mixed}`);
  assert.ok(batchFlops(512, [600, ...new Array(30).fill(2)], mixed, 0) < batchFlops(512, [600, ...new Array(30).fill(2)], new Array(31).fill(false), 0));
  assert.deepEqual(planFormulation(8, [1000, 1000], 0, 'feature'), [true, true]);
  assert.deepEqual(planFormulation(1024, [2, 2], 0, 'gram'), [false, false]);
  assert.throws(() => planFormulation(8, [2], 0, 'nope' as 'auto'), InputError);
});

test('the RBF kernel refuses a forced feature path', async () => {
  const x = batchTensors(0);
  try {
    await assert.rejects(batchHsic(x, [], 'rbf', 'feature'), (e: unknown) => e instanceof InputError && /--formulation/.test(e.message));
  } finally {
    tf.dispose(x);
  }
});
