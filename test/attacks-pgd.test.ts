import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { crossEntropyLoss } from '../src/attacks/losses.js';
import { fgsmAttack, pgdAttack } from '../src/attacks/pgd.js';
import { InputError } from '../src/errors.js';

let model: tf.LayersModel;
let x: tf.Tensor4D;
let y: tf.Tensor1D;

before(async () => {
  await initBackend('wasm');
  model = buildModel({ arch: resolveArch('convnet', 4), inputShape: [12, 12, 1], numClasses: 3, seed: 1 }).model;
  x = tf.randomUniform([8, 12, 12, 1], 0, 1, 'float32', 7) as tf.Tensor4D;
  y = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32');
});

function meanLoss(input: tf.Tensor4D): number {
  return tf.tidy(() => tf.mean(crossEntropyLoss(model, y)(input)).dataSync()[0]);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

test('PGD l_inf raises the loss and stays in the eps-ball and the [0,1] box', () => {
  const eps = 0.05;
  const adv = pgdAttack(crossEntropyLoss(model, y), x, { norm: 'linf', eps, stepSize: 0.02, steps: 5, randomStart: true, restarts: 1, seed: 3 });
  assert.ok(meanLoss(adv) > meanLoss(x) + 1e-4, `loss ${meanLoss(adv)} should exceed clean ${meanLoss(x)}`);
  assert.ok(maxAbsDiff(adv, x) <= eps + 1e-6);
  assert.ok(tf.min(adv).dataSync()[0] >= 0 && tf.max(adv).dataSync()[0] <= 1);
  adv.dispose();
});

test('PGD l_2 stays in the l_2 ball per sample', () => {
  const eps = 0.5;
  const adv = pgdAttack(crossEntropyLoss(model, y), x, { norm: 'l2', eps, stepSize: 0.2, steps: 5, randomStart: true, restarts: 1, seed: 3 });
  const norms = tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.sub(adv, x)), [1, 2, 3])).arraySync() as number[]);
  for (const n of norms) assert.ok(n <= eps + 1e-4, `l2 norm ${n} > eps`);
  assert.ok(meanLoss(adv) > meanLoss(x));
  adv.dispose();
});

test('restarts never do worse than the first run, per sample', () => {
  const opts = { norm: 'linf' as const, eps: 0.05, stepSize: 0.02, steps: 2, randomStart: true, seed: 11 };
  const one = pgdAttack(crossEntropyLoss(model, y), x, { ...opts, restarts: 1 });
  const three = pgdAttack(crossEntropyLoss(model, y), x, { ...opts, restarts: 3 });
  const l1 = crossEntropyLoss(model, y)(one).dataSync();
  const l3 = crossEntropyLoss(model, y)(three).dataSync();
  for (let i = 0; i < l1.length; i++) assert.ok(l3[i] >= l1[i] - 1e-5, `sample ${i}: ${l3[i]} < ${l1[i]}`);
  tf.dispose([one, three]);
});

test('FGSM moves every pixel by eps or hits the box', () => {
  const eps = 0.03;
  const adv = fgsmAttack(crossEntropyLoss(model, y), x, { eps });
  const d = tf.tidy(() => tf.abs(tf.sub(adv, x)).dataSync());
  const xs = x.dataSync();
  const a = adv.dataSync();
  for (let i = 0; i < d.length; i++) {
    const atBox = a[i] === 0 || a[i] === 1;
    assert.ok(Math.abs(d[i] - eps) < 1e-5 || atBox || d[i] === 0, `pixel ${i}: moved ${d[i]} from ${xs[i]}`);
  }
  adv.dispose();
});

test('attacks leak no tensors', () => {
  const loss = crossEntropyLoss(model, y);
  const run = () => pgdAttack(loss, x, { norm: 'linf', eps: 0.05, stepSize: 0.02, steps: 2, randomStart: true, restarts: 2, seed: 1 }).dispose();
  run();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) run();
  assert.equal(tf.memory().numTensors, before);
});

test('invalid attack options are refused with the flag named', () => {
  assert.throws(() => pgdAttack(crossEntropyLoss(model, y), x, { eps: -1 }), (e: unknown) => e instanceof InputError && /--eps/.test(e.message));
  assert.throws(() => pgdAttack(crossEntropyLoss(model, y), x, { restarts: 0 }), (e: unknown) => e instanceof InputError && /--restarts/.test(e.message));
});
