import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { crossEntropyLoss, dlrPerSample } from '../src/attacks/losses.js';
import { apgdAttack, classifierObjective, lossObjective } from '../src/attacks/apgd.js';
import { apgdCheckpoints, tooFewIncreases } from '../src/attacks/apgd-schedule.js';
import { parseAttackSpec } from '../src/attacks/suite.js';
import { InputError } from '../src/errors.js';

let model: tf.LayersModel;
let x: tf.Tensor4D;
let y: tf.Tensor1D;

before(async () => {
  await initBackend('wasm');
  model = buildModel({ arch: resolveArch('convnet', 4), inputShape: [12, 12, 1], numClasses: 4, seed: 1 }).model;
  x = tf.randomUniform([8, 12, 12, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
  y = tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32');
});

test('APGD checkpoints follow p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)', () => {
  // p = 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (next 1.05 > 1).
  assert.deepEqual(apgdCheckpoints(100), [22, 41, 57, 70, 80, 87, 93, 99]);
  for (const n of [1, 5, 10, 20, 37]) {
    const w = apgdCheckpoints(n);
    assert.ok(w.length >= 1 && w.every((v, i) => v >= 1 && v <= n && (i === 0 || v > w[i - 1])), `n=${n}: ${w}`);
  }
  assert.equal(tooFewIncreases(16, 22), true); // 16 < 0.75 * 22 = 16.5
  assert.equal(tooFewIncreases(17, 22), false);
});

test('DLR loss matches its formula and ignores logit shift and scale', () => {
  const logits = tf.tensor2d([[3, 1, 0, -1], [3, 1, 0, -1], [0.5, 2, -1, 1]]);
  const labels = tf.tensor1d([0, 1, 3], 'int32');
  const got = dlrPerSample(logits, labels).arraySync();
  const expected = [-(3 - 1) / (3 - 0), -(1 - 3) / (3 - 0), -(1 - 2) / (2 - 0.5)];
  got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-5, `sample ${i}: ${v} vs ${expected[i]}`));
  const scaled = dlrPerSample(tf.add(tf.mul(logits, 7), 3) as tf.Tensor2D, labels).arraySync();
  scaled.forEach((v, i) => assert.ok(Math.abs(v - got[i]) < 1e-5));
  assert.throws(() => dlrPerSample(tf.zeros([2, 2]), tf.tensor1d([0, 1], 'int32')), InputError);
});

for (const norm of ['linf', 'l2'] as const) {
  test(`APGD (${norm}) raises the loss and never leaves the eps-ball or the [0, 1] box`, () => {
    const eps = norm === 'linf' ? 0.05 : 0.5;
    for (const loss of ['ce', 'dlr'] as const) {
      const adv = apgdAttack(classifierObjective(model, y, loss), x, { norm, eps, steps: 12, restarts: 2, seed: 4 });
      const d = tf.tidy(() => tf.sub(adv, x));
      const radius = tf.tidy(() => (norm === 'linf' ? tf.max(tf.abs(d), [1, 2, 3]) : tf.sqrt(tf.sum(tf.square(d), [1, 2, 3]))).dataSync());
      for (const r of radius) assert.ok(r <= eps + 1e-5, `${loss}: radius ${r} > ${eps}`);
      assert.ok(tf.min(adv).dataSync()[0] >= 0 && tf.max(adv).dataSync()[0] <= 1);
      const ce = crossEntropyLoss(model, y);
      const gain = tf.tidy(() => tf.mean(tf.sub(ce(adv), ce(x))).dataSync()[0]);
      if (loss === 'ce') assert.ok(gain > 0, `mean CE gain ${gain}`);
      tf.dispose([adv, d]);
    }
  });
}

test('APGD on a generic loss (no success test) returns the highest-loss point, above the start', () => {
  const ce = crossEntropyLoss(model, y);
  const adv = apgdAttack(lossObjective(ce), x, { eps: 0.05, steps: 10, randomStart: false });
  const before = ce(x).dataSync();
  const after = ce(adv).dataSync();
  for (let i = 0; i < before.length; i++) assert.ok(after[i] >= before[i] - 1e-6, `sample ${i}: ${after[i]} < ${before[i]}`);
  adv.dispose();
});

test('APGD leaks no tensors and is deterministic for a seed', () => {
  const run = () => apgdAttack(classifierObjective(model, y, 'dlr'), x, { eps: 0.05, steps: 6, restarts: 2, seed: 9 });
  const a = run();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) run().dispose();
  assert.equal(tf.memory().numTensors, before);
  const b = run();
  assert.equal(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]), 0);
  tf.dispose([a, b]);
});

test('attack names parse with their default budgets and bad names are refused', () => {
  assert.deepEqual(parseAttackSpec('pgd20'), { name: 'pgd20', kind: 'pgd', steps: 20 });
  assert.deepEqual(parseAttackSpec('APGD-CE'), { name: 'apgd-ce', kind: 'apgd-ce', steps: 100 });
  assert.deepEqual(parseAttackSpec('apgd-dlr50'), { name: 'apgd-dlr50', kind: 'apgd-dlr', steps: 50 });
  assert.equal(parseAttackSpec('pgd').steps, 20);
  assert.throws(() => parseAttackSpec('cw'), (e: unknown) => e instanceof InputError && /--attacks/.test(e.message));
  assert.throws(() => parseAttackSpec('pgd0'), InputError);
});
