import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { isPlainConv2D } from '../src/backend/conv-lazy-grad.js';
import { makeRng } from '../src/util/rng.js';

// initBackend installs the lazy conv gradients (src/backend/conv-lazy-grad.ts) on every backend.

before(async () => {
  await initBackend('cpu');
});

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const rng = makeRng(seed);
  return tf.tensor(Float32Array.from({ length: tf.util.sizeFromShape(shape) }, () => rng() * 2 - 1), shape);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** The kernels that one call of f runs, one entry per call (tf.profile records every kernel the engine dispatches). */
async function kernelsOf(f: () => tf.TensorContainer): Promise<string[]> {
  const info = await tf.profile(f);
  return info.kernels.map((k) => k.name);
}

const CASES = [
  { strides: 1, padding: 'same' as const, size: 7, kernelSize: 3 },
  { strides: 2, padding: 'same' as const, size: 8, kernelSize: 3 },
  { strides: 2, padding: 'valid' as const, size: 9, kernelSize: 3 },
  { strides: 2, padding: 'same' as const, size: 7, kernelSize: 1 },
];

test('a bias-free linear Conv2D layer computes the same values and gradients as tf.fused.conv2d', async () => {
  for (const c of CASES) {
    const layer = tf.layers.conv2d({ filters: 4, kernelSize: c.kernelSize, strides: c.strides, padding: c.padding, useBias: false, kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) });
    const x = randomTensor([2, c.size, c.size, 3], 1) as tf.Tensor4D;
    const y = layer.apply(x) as tf.Tensor;
    assert.ok(isPlainConv2D(layer as unknown as Parameters<typeof isPlainConv2D>[0]), 'the layer takes the plain tf.conv2d path');
    const w = layer.getWeights()[0] as tf.Tensor4D;
    const reference = (input: tf.Tensor4D, filter: tf.Tensor4D) => tf.fused.conv2d({ x: input, filter, strides: c.strides, pad: c.padding });
    const what = `strides ${c.strides}, ${c.padding}, ${c.size}x${c.size}, kernel ${c.kernelSize}`;
    assert.ok(maxAbsDiff(await y.data(), await reference(x, w).data()) < 1e-6, `forward, ${what}`);

    const loss = (out: tf.Tensor) => tf.sum(tf.square(out));
    const [gx, gw] = tf.grads((input: tf.Tensor, filter: tf.Tensor) => loss(tf.conv2d(input as tf.Tensor4D, filter as tf.Tensor4D, c.strides, c.padding)))([x, w]);
    const [rx, rw] = tf.grads((input: tf.Tensor, filter: tf.Tensor) => loss(reference(input as tf.Tensor4D, filter as tf.Tensor4D)))([x, w]);
    assert.ok(maxAbsDiff(await gx.data(), await rx.data()) < 1e-5, `input gradient, ${what}`);
    assert.ok(maxAbsDiff(await gw.data(), await rw.data()) < 1e-5, `filter gradient, ${what}`);
    const layerGx = tf.grad((input: tf.Tensor) => loss(layer.apply(input) as tf.Tensor))(x);
    assert.ok(maxAbsDiff(await layerGx.data(), await rx.data()) < 1e-5, `input gradient through the layer, ${what}`);
    tf.dispose([x, y, gx, gw, rx, rw, layerGx]);
    layer.dispose();
  }
});

test('an input gradient through Conv2D layers no longer computes the filter gradient; a weight gradient still does', async () => {
  const input = tf.input({ shape: [6, 6, 2] });
  let h = tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', useBias: false }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: 'same', useBias: false }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: h });
  const x = randomTensor([2, 6, 6, 2], 4);
  const loss = (t: tf.Tensor) => tf.sum(model.apply(t, { training: false }) as tf.Tensor);

  const inputOnly = await kernelsOf(() => tf.grad(loss)(x));
  assert.ok(inputOnly.includes(tf.Conv2DBackpropInput), 'the input gradient is computed');
  assert.ok(!inputOnly.includes(tf.Conv2DBackpropFilter), `no filter gradient for an input gradient (kernels: ${inputOnly.join(', ')})`);

  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const weights = await kernelsOf(() => {
    const { value, grads } = tf.variableGrads(() => loss(x) as tf.Scalar, vars);
    return [value, ...Object.values(grads)];
  });
  assert.equal(weights.filter((k) => k === tf.Conv2DBackpropFilter).length, 2, 'one filter gradient per conv for weight gradients');
  x.dispose();
  model.dispose();
});

test('a Conv2D layer with a bias or an activation keeps tfjs-layers own call', () => {
  const biased = tf.layers.conv2d({ filters: 2, kernelSize: 3, useBias: true });
  const activated = tf.layers.conv2d({ filters: 2, kernelSize: 3, useBias: false, activation: 'relu' });
  const x = randomTensor([1, 5, 5, 2], 6);
  tf.dispose([biased.apply(x) as tf.Tensor, activated.apply(x) as tf.Tensor]);
  assert.equal(isPlainConv2D(biased as unknown as Parameters<typeof isPlainConv2D>[0]), false);
  assert.equal(isPlainConv2D(activated as unknown as Parameters<typeof isPlainConv2D>[0]), false);
  x.dispose();
  biased.dispose();
  activated.dispose();
});
