import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { ntXentPerSample } from '../src/attacks/contrastive.js';
import { parseAttackSpec, runAttack } from '../src/attacks/suite.js';

before(async () => {
  await initBackend('wasm');
});

/** The formula in float64, written out loop by loop. */
function ntXentReference(z: number[][], p: number[][], tau: number): number[] {
  const unit = (v: number[]) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const zs = z.map(unit);
  const ps = p.map(unit);
  const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
  return zs.map((zi, i) => {
    let denom = 0;
    ps.forEach((pj) => (denom += Math.exp(dot(zi, pj) / tau)));
    zs.forEach((zj, j) => {
      if (j !== i) denom += Math.exp(dot(zi, zj) / tau);
    });
    return -Math.log(Math.exp(dot(zi, ps[i]) / tau) / denom);
  });
}

test('NT-Xent per sample matches the float64 formula', () => {
  const z = [[1, 0, 2], [0.5, -1, 0], [-1, 1, 1], [0, 0.2, -1]];
  const p = [[1, 0.1, 1.8], [0.4, -1, 0.3], [0, 1, 1], [1, 0, 0]];
  const got = ntXentPerSample(tf.tensor2d(z), tf.tensor2d(p), 0.5).arraySync();
  const want = ntXentReference(z, p, 0.5);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-4, `sample ${i}: ${v} vs ${want[i]}`));
});

test('the contrastive attack (label-free, through the pooled features) moves embeddings away and stays in the ball and box', () => {
  const model = buildModel({ arch: resolveArch('convnet', 4), inputShape: [12, 12, 1], numClasses: 3, seed: 2 }).model;
  const x = tf.randomUniform([8, 12, 12, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
  const y = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32');
  const eps = 0.05;
  const spec = parseAttackSpec('contrastive5');
  const settings = { norm: 'linf' as const, restarts: 1, seed: 1 };
  runAttack(spec, model, x, y, eps, settings).dispose();
  const before = tf.memory().numTensors;
  const adv = runAttack(spec, model, x, y, eps, settings);
  assert.equal(tf.memory().numTensors, before + 1, 'the attack leaked tensors');
  const pool = tf.model({ inputs: model.inputs, outputs: model.getLayer('pool').output as tf.SymbolicTensor });
  const [clean, attacked] = tf.tidy(() => {
    const positives = pool.predict(x) as tf.Tensor2D;
    return [x, adv].map((input) => tf.mean(ntXentPerSample(pool.predict(input) as tf.Tensor2D, positives, 0.5)).dataSync()[0]);
  });
  assert.ok(attacked > clean + 1e-3, `contrastive loss ${attacked} not above clean ${clean}`);
  assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(adv, x))).dataSync()[0]) <= eps + 1e-6);
  assert.ok(tf.min(adv).dataSync()[0] >= 0 && tf.max(adv).dataSync()[0] <= 1);
  tf.dispose([x, y, adv]);
});
