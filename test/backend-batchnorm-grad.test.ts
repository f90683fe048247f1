import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { batchNormTraining, batchNormTrainingGradient } from '../src/backend/batchnorm-grad.js';
import { makeRng } from '../src/util/rng.js';

// initBackend installs the BatchNorm gradients (src/backend/batchnorm-grad.ts). References are built
// from elementary ops (sub, mul, rsqrt, mean), whose gradients tfjs derives independently.

const TOLERANCE = 1e-5;
const EPS = 1e-3;

before(async () => {
  await initBackend('cpu');
});

function randomTensor(shape: number[], seed: number, offset = 0): tf.Tensor {
  const rng = makeRng(seed);
  return tf.tensor(Float32Array.from({ length: tf.util.sizeFromShape(shape) }, () => rng() * 2 - 1 + offset), shape);
}

async function assertClose(actual: tf.Tensor, expected: tf.Tensor, what: string): Promise<void> {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = await actual.data();
  const b = await expected.data();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  assert.ok(scale > 0, `${what}: reference is not all zeros`);
  assert.ok(diff / scale < TOLERANCE, `${what}: relative error ${diff / scale}`);
}

/** Training-mode batch norm from elementary ops: batch statistics over all axes but the last. */
function referenceTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const mean = tf.mean(x, axes);
  const variance = tf.mean(tf.square(tf.sub(x, mean)), axes);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, EPS))), gamma), beta);
}

const SHAPES = [[3, 5, 4, 6], [2, 3, 3, 5], [7, 5]];

test('training-mode batch norm: output and closed-form gradients match the elementary-op reference', async () => {
  for (const shape of SHAPES) {
    const c = shape[shape.length - 1];
    const x = randomTensor(shape, 1, 0.7);
    const gamma = randomTensor([c], 2, 1.5);
    const beta = randomTensor([c], 3);
    const dy = randomTensor(shape, 4);
    const loss = (y: tf.Tensor) => tf.sum(tf.mul(y, dy));
    const { y, mean, variance } = batchNormTraining(x, gamma, beta, EPS);
    await assertClose(y, referenceTraining(x, gamma, beta), `${shape} output`);
    const axes = Array.from({ length: shape.length - 1 }, (_, i) => i);
    await assertClose(mean, tf.mean(x, axes), `${shape} mean`);
    const ours = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => loss(batchNormTraining(a, g, b, EPS).y))([x, gamma, beta]);
    const ref = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => loss(referenceTraining(a, g, b)))([x, gamma, beta]);
    for (const [i, name] of ['dx', 'dgamma', 'dbeta'].entries()) await assertClose(ours[i], ref[i], `${shape} ${name}`);
    const direct = batchNormTrainingGradient(dy, x, mean, variance, gamma, EPS);
    await assertClose(direct.dx, ref[0], `${shape} dx (direct)`);
    tf.dispose([x, gamma, beta, dy, y, mean, variance, ...ours, ...ref, direct.dx, direct.dgamma, direct.dbeta]);
  }
});

test('a BatchNormalization layer in training mode: same output, moving statistics and weight gradients as the reference', async () => {
  const shape = [4, 3, 3, 5];
  const layer = tf.layers.batchNormalization({ momentum: 0.9, epsilon: EPS, gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 1 }), betaInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: 2 }) });
  const x = randomTensor(shape, 5, 0.3);
  tf.dispose(layer.apply(x, { training: false }) as tf.Tensor); // builds the weights
  const [gamma, beta] = [layer.getWeights()[0].clone(), layer.getWeights()[1].clone()];
  const [mean0, var0] = [layer.getWeights()[2].clone(), layer.getWeights()[3].clone()];
  const dy = randomTensor(shape, 6);
  const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, dy)) as tf.Scalar, vars);
  const [refGamma, refBeta] = tf.grads((g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(referenceTraining(x, g, b), dy)))([gamma, beta]);
  await assertClose(value, tf.sum(tf.mul(referenceTraining(x, gamma, beta), dy)), 'loss');
  await assertClose(grads[vars[0].name], refGamma, 'gamma gradient');
  await assertClose(grads[vars[1].name], refBeta, 'beta gradient');
  // Moving averages: v <- 0.9 v + 0.1 batch statistic (biased variance, as tfjs-layers).
  const axes = [0, 1, 2];
  const batchMean = tf.mean(x, axes);
  const batchVar = tf.mean(tf.square(tf.sub(x, batchMean)), axes);
  await assertClose(layer.getWeights()[2], tf.add(tf.mul(mean0, 0.9), tf.mul(batchMean, 0.1)), 'moving mean');
  await assertClose(layer.getWeights()[3], tf.add(tf.mul(var0, 0.9), tf.mul(batchVar, 0.1)), 'moving variance');
  layer.dispose();
});

test('inference-mode batch norm: gradients for x, mean, variance, scale and offset match the reference', async () => {
  for (const shape of SHAPES) {
    const c = shape[shape.length - 1];
    const x = randomTensor(shape, 7);
    const mean = randomTensor([c], 8);
    const variance = tf.abs(randomTensor([c], 9, 1.2));
    const scale = randomTensor([c], 10, 1);
    const offset = randomTensor([c], 11);
    const dy = randomTensor(shape, 12);
    const ours = tf.grads((a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
      tf.sum(tf.mul(tf.batchNorm(a, m as tf.Tensor1D, v as tf.Tensor1D, o as tf.Tensor1D, s as tf.Tensor1D, EPS), dy)))([x, mean, variance, scale, offset]);
    const ref = tf.grads((a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
      tf.sum(tf.mul(tf.add(tf.mul(tf.mul(tf.sub(a, m), tf.rsqrt(tf.add(v, EPS))), s), o), dy)))([x, mean, variance, scale, offset]);
    for (const [i, name] of ['x', 'mean', 'variance', 'scale', 'offset'].entries()) await assertClose(ours[i], ref[i], `${shape} d${name}`);
    tf.dispose([x, mean, variance, scale, offset, dy, ...ours, ...ref]);
  }
});

test('no leaks: repeated training-mode and inference-mode gradient steps through a BatchNormalization layer', async () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    await initBackend(backend);
    const layer = tf.layers.batchNormalization({});
    const x = randomTensor([2, 3, 3, 4], 13);
    tf.dispose(layer.apply(x) as tf.Tensor); // builds the weights
    const step = () =>
      tf.tidy(() => {
        const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(layer.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar, vars);
        const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.square(layer.apply(a, { training: false }) as tf.Tensor)))(x);
        return tf.addN([value, tf.sum(dx), ...Object.values(grads).map((g) => tf.sum(g))]).dataSync()[0];
      });
    step();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) assert.ok(Number.isFinite(step()));
    assert.equal(tf.memory().numTensors, tensors, `${backend}: engine tensors`);
    x.dispose();
    layer.dispose();
  }
  await initBackend('cpu');
});
