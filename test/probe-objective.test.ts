import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { loadDataset, gatherBatch } from '../src/data/index.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { batchTensors } from '../src/models/inputs.js';
import { klPerSample } from '../src/attacks/trades.js';
import { fineTuneAttack, fineTuneLoss, type ObjectiveSettings } from '../src/probe/objective.js';

const FIXTURE = path.resolve('fixtures/cifar10');
const ATTACK = { norm: 'linf' as const, eps: 0.03, stepSize: 0.01, steps: 3, randomStart: false, restarts: 1, seed: 0 };

let x: tf.Tensor4D;
let y: tf.Tensor1D;

before(async () => {
  await initBackend('wasm');
  const ds = await loadDataset({ name: 'cifar10', split: 'train', dataDir: FIXTURE, seed: 1, limit: 8 });
  const batch = gatherBatch(ds, Array.from({ length: 8 }, (_, i) => i));
  ({ x, y } = batchTensors(batch.x, batch.y, [32, 32, 3]));
});
after(() => tf.dispose([x, y]));

function tinyModel(): tf.LayersModel {
  return buildModel({ arch: resolveArch('convnet', 4), inputShape: [32, 32, 3], numClasses: 10, seed: 3 }).model;
}

function settings(objective: ObjectiveSettings['objective']): ObjectiveSettings {
  return { objective, attack: ATTACK, advWeight: 1, tradesBeta: 6 };
}

test('klPerSample matches a float64 reference and is zero for equal logits', () => {
  const p = [
    [1.5, -0.25, 0.5],
    [0, 2, -3],
  ];
  const q = [
    [0.25, 1, -1],
    [0, 2, -3],
  ];
  const softmax = (r: number[]) => {
    const m = Math.max(...r);
    const e = r.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  const expected = p.map((row, i) => {
    const pp = softmax(row);
    const qq = softmax(q[i]);
    return pp.reduce((sum, v, j) => sum + v * Math.log(v / qq[j]), 0);
  });
  const got = tf.tidy(() => Array.from(klPerSample(tf.tensor2d(p), tf.tensor2d(q)).dataSync()));
  got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-5, `row ${i}: ${v} vs ${expected[i]}`));
  assert.ok(Math.abs(got[1]) < 1e-6);
  assert.ok(got[0] > 0.1);
});

test('the trades fine-tuning attack raises KL(p(x) || p(x_adv)), stays in the eps ball and [0, 1], leaks nothing', () => {
  const model = tinyModel();
  const s = settings('trades');
  const before = tf.memory().numTensors;
  const { adv, owned } = fineTuneAttack(model, x, y, s, 7);
  const [k0, k1] = [x, adv].map((input) =>
    tf.tidy(() => tf.sum(klPerSample(model.apply(x, { training: false }) as tf.Tensor2D, model.apply(input, { training: false }) as tf.Tensor2D)).dataSync()[0]),
  );
  assert.ok(Math.abs(k0) < 1e-5 && k1 > 1e-6, `KL ${k0} -> ${k1}`);
  // A random start alone raises the KL too: the PGD steps must raise it further than the start did.
  const start = tf.tidy(() => tf.clipByValue(tf.add(x, tf.randomUniform(x.shape, -ATTACK.eps, ATTACK.eps, 'float32', 11)), 0, 1) as tf.Tensor4D);
  const kStart = tf.tidy(() => tf.sum(klPerSample(model.apply(x, { training: false }) as tf.Tensor2D, model.apply(start, { training: false }) as tf.Tensor2D)).dataSync()[0]);
  assert.ok(k1 > kStart, `PGD ${k1} vs random point ${kStart}`);
  const delta = tf.tidy(() => tf.max(tf.abs(tf.sub(adv, x))).dataSync()[0]);
  assert.ok(delta <= ATTACK.eps + 1e-6 && delta > 0, `|delta|_inf ${delta}`);
  const [lo, hi] = tf.tidy(() => [tf.min(adv).dataSync()[0], tf.max(adv).dataSync()[0]]);
  assert.ok(lo >= 0 && hi <= 1, `range [${lo}, ${hi}]`);
  tf.dispose([adv, ...owned, start]);
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

for (const objective of ['trades', 'ce-ce'] as const) {
  test(`the ${objective} fine-tuning objective decreases on a fixed batch without leaking tensors`, () => {
    const model = tinyModel();
    const s = settings(objective);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const optimizer = tf.train.adam(3e-3);
    /** The objective at a fixed attack seed, in training mode (batch statistics), as the step sees it. */
    const measure = () => {
      const { adv, owned } = fineTuneAttack(model, x, y, s, 7);
      const v = tf.tidy(() => fineTuneLoss(model, x, y, adv, s, true).dataSync()[0]);
      tf.dispose([adv, ...owned]);
      return v;
    };
    const first = measure();
    const counts: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { adv, owned } = fineTuneAttack(model, x, y, s, 7);
      const { value, grads } = tf.variableGrads(() => fineTuneLoss(model, x, y, adv, s, true), vars);
      optimizer.applyGradients(vars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
      tf.dispose([value, adv, ...owned, ...Object.values(grads)]);
      counts.push(tf.memory().numTensors);
    }
    const last = measure();
    assert.ok(Number.isFinite(last) && last < first, `${objective} loss ${first} -> ${last}`);
    // Optimizer slots appear on the first step; after that the count stays flat.
    assert.ok(counts.slice(1).every((c) => c === counts[1]), `tensor counts ${counts.join(',')}`);
    optimizer.dispose();
    model.dispose();
  });
}
