import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { makeRng } from '../src/util/rng.js';
import { contrastivePerImage, groupContrastivePerAnchor } from '../src/train/contrastive.js';
import { l2Normalize } from '../src/models/projection.js';

before(async () => {
  await initBackend('wasm');
});

/** Float64 loop over the definition: l_i = -1/|P(i)| sum_p log(exp(s_ip/t) / sum_{a!=i} exp(s_ia/t)). */
function referencePerAnchor(z: number[][], groups: number[], t: number): number[] {
  const dot = (a: number[], b: number[]) => a.reduce((s, v, k) => s + v * b[k], 0);
  return z.map((zi, i) => {
    let denom = 0;
    z.forEach((za, a) => {
      if (a !== i) denom += Math.exp(dot(zi, za) / t);
    });
    let sum = 0;
    let count = 0;
    z.forEach((zp, p) => {
      if (p !== i && groups[p] === groups[i]) {
        sum += Math.log(Math.exp(dot(zi, zp) / t) / denom);
        count++;
      }
    });
    return -sum / Math.max(count, 1);
  });
}

function unit(rows: number[][]): number[][] {
  return rows.map((r) => {
    const n = Math.hypot(...r);
    return r.map((v) => v / n);
  });
}

test('NT-Xent of two orthogonal images with identical views equals log(1 + 2/e) at tau = 1 (by hand)', () => {
  // Views a = b = [(1,0), (0,1)]: each anchor has similarity 1 to its positive, 0 to both negatives.
  const a = tf.tensor2d([[1, 0], [0, 1]]);
  const b = tf.tensor2d([[1, 0], [0, 1]]);
  const loss = contrastivePerImage([a, b], tf.tensor1d([0, 1], 'int32'), 1);
  const want = Math.log(1 + 2 / Math.E);
  for (const v of loss.dataSync()) assert.ok(Math.abs(v - want) < 1e-6, `${v} vs ${want}`);
  // tau = 0.5 doubles the logits: log(1 + 2 e^-2).
  const half = contrastivePerImage([a, b], tf.tensor1d([0, 1], 'int32'), 0.5);
  for (const v of half.dataSync()) assert.ok(Math.abs(v - Math.log(1 + 2 * Math.exp(-2))) < 1e-6);
  tf.dispose([a, b, loss, half]);
});

test('NT-Xent and SupCon per-anchor losses match the float64 definition on random embeddings', () => {
  const rng = makeRng(4);
  const n = 5;
  const d = 3;
  const z = unit(Array.from({ length: 2 * n }, () => Array.from({ length: d }, () => rng() - 0.5)));
  for (const [label, groups, t] of [
    ['NT-Xent', [0, 1, 2, 3, 4, 0, 1, 2, 3, 4], 0.5],
    ['SupCon', [0, 0, 1, 2, 1, 0, 0, 1, 2, 1], 0.07],
    ['three positives', [0, 0, 0, 1, 1, 1, 2, 2, 2, 3], 0.2],
  ] as const) {
    const zt = tf.tensor2d(z);
    const gt = tf.tensor1d([...groups], 'int32');
    const got = groupContrastivePerAnchor(zt, gt, t).dataSync();
    const want = referencePerAnchor(z, [...groups], t);
    want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) < 1e-4 * Math.max(1, Math.abs(w)), `${label} anchor ${i}: ${got[i]} vs ${w}`));
    tf.dispose([zt, gt]);
  }
});

test('contrastivePerImage averages the views of each image; l2Normalize gives unit rows', () => {
  const rng = makeRng(8);
  const raw = Array.from({ length: 6 }, () => [rng() - 0.5, rng() - 0.5, rng() - 0.5, rng() - 0.5]);
  const zt = l2Normalize(tf.tensor2d(raw));
  const norms = tf.norm(zt, 2, 1).dataSync();
  for (const v of norms) assert.ok(Math.abs(v - 1) < 1e-5);
  const z = zt.arraySync();
  const [v1, v2] = [tf.tensor2d(z.slice(0, 3)), tf.tensor2d(z.slice(3))];
  const perImage = contrastivePerImage([v1, v2], tf.tensor1d([0, 1, 2], 'int32'), 0.3).dataSync();
  const anchors = referencePerAnchor(z, [0, 1, 2, 0, 1, 2], 0.3);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(perImage[i] - (anchors[i] + anchors[i + 3]) / 2) < 1e-4);
  tf.dispose([zt, v1, v2]);
});

test('stopGradient passes values and blocks gradients; reverseGradient negates them', async () => {
  const { stopGradient, reverseGradient } = await import('../src/train/gradients.js');
  const x = tf.tensor1d([1, -2, 3]);
  const w = tf.tensor1d([0.5, 2, -1]);
  const value = stopGradient(x);
  assert.deepEqual(Array.from(value.dataSync()), [1, -2, 3]);
  const gStop = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(stopGradient(t), w)))(x);
  const gRev = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(reverseGradient(t), w)))(x);
  assert.deepEqual(Array.from(gStop.dataSync()), [0, 0, 0]);
  assert.deepEqual(Array.from(gRev.dataSync()), [-0.5, -2, 1]);
  tf.dispose([x, w, value, gStop, gRev]);
});
