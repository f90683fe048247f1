import { startWebgpu } from './webgpu-helper.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { activeBackend, initBackend } from '../src/backend/index.js';
import { makeRng } from '../src/util/rng.js';
import type { ActivationSet } from '../src/formats/activations.js';
import { minibatchStateOfSets } from '../src/cka/minibatch/batches.js';
import { minibatchMatrix } from '../src/cka/minibatch/result.js';
import { linearCkaMatrix } from '../src/cka/engine/engine.js';
import type { Kernel } from '../src/cka/minibatch/hsic.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { trainModel } from '../src/train/loop.js';
import { streamMinibatchCka } from '../src/cka/similarity/shortcuts.js';

/**
 * The webgpu code path (Dawn) gives the same CKA values as wasm. Without a GPU this runs on Mesa's
 * llvmpipe (ROBUSTSIM_WEBGPU_OPTIONS=backend=opengles), which is how CI proves the path; on webgpu
 * every download is an awaited data(), never dataSync/arraySync.
 */

function randomSet(name: string, dim: number, seed: number, n: number, offset = 0): ActivationSet {
  const rng = makeRng(seed);
  return { name, n, dim, data: Float32Array.from({ length: n * dim }, () => rng() * 2 - 1 + offset) };
}

const N = 96;
const a = randomSet('a', 5, 1, N);
const b: ActivationSet = { ...randomSet('b', 40, 2, N, 500), name: 'b' };
for (let i = 0; i < N; i++) for (let j = 0; j < 5; j++) b.data[i * 40 + j] += 3 * a.data[i * 5 + j];
const c = randomSet('c', 130, 3, N);
const SETS = [a, b, c];

async function everything(): Promise<Float64Array[]> {
  const out: Float64Array[] = [];
  for (const kernel of ['linear', 'rbf'] as Kernel[]) {
    const state = await minibatchStateOfSets(SETS, { batchSize: 32, seed: 1, bootstrap: 10, permutations: 2, kernel });
    const res = minibatchMatrix(state, state.sets, state.sets);
    out.push(res.cka, res.nullMean!, res.ciLow!);
  }
  for (const estimator of ['biased', 'debiased'] as const) out.push((await linearCkaMatrix(SETS, null, { estimator, chunkCols: 32 })).cka);
  return out;
}

test('webgpu (Dawn; llvmpipe without a GPU): minibatch, RBF and tiled CKA equal wasm within 1e-4', async (t) => {
  const unavailable = await startWebgpu();
  if (unavailable) {
    t.skip(`no WebGPU adapter: ${unavailable}`);
    return;
  }
  assert.equal(activeBackend(), 'webgpu');
  const before = tf.memory().numTensors;
  const onGpu = await everything();
  assert.equal(tf.memory().numTensors, before, 'tensors leaked on webgpu');
  await initBackend('wasm');
  const onWasm = await everything();
  const names = ['linear cka', 'linear null', 'linear ci_low', 'rbf cka', 'rbf null', 'rbf ci_low', 'tiled biased', 'tiled debiased'];
  onGpu.forEach((g, k) => {
    const diff = Math.max(...Array.from(g, (v, i) => Math.abs(v - onWasm[k][i])));
    assert.ok(diff < 1e-4, `${names[k]}: max |webgpu - wasm| = ${diff}`);
  });
  assert.ok(onWasm[0][1] > 0.3, 'a and b are related, so the comparison is not of zeros');
});

test('webgpu: the fused stream (model forward, PGD, per-batch HSIC) equals wasm (clean within 1e-4)', async (t) => {
  const unavailable = await startWebgpu();
  if (unavailable) {
    t.skip(`no WebGPU adapter: ${unavailable}`);
    return;
  }
  const root = await mkdtemp(path.join(tmpdir(), 'robustsim-webgpu-stream-'));
  try {
    await initBackend('wasm');
    const ckpt = path.join(root, 'model');
    await trainModel({
      out: ckpt, dataset: 'cifar10', dataDir: path.resolve('fixtures/cifar10'), limit: 16, evalLimit: 8, arch: 'convnet', width: 4, epochs: 1, batchSize: 16,
      optimizer: 'sgd', lr: 0.05, evalAttack: { norm: 'linf', eps: 0.03, stepSize: 0.01, steps: 1, randomStart: true, restarts: 1, seed: 0 }, seed: 5,
    });
    const run = async (backend: 'webgpu' | 'wasm') => {
      await initBackend(backend);
      const res = await streamMinibatchCka({ models: [ckpt], out: path.join(root, backend), dataDir: path.resolve('fixtures/cifar10'), n: 32, seed: 1, batchSize: 16, inputs: ['clean', 'adv'] });
      return res.written[0].similarity;
    };
    const gpu = await run('webgpu');
    const cpu = await run('wasm');
    const m = gpu.rows.length;
    let clean = 0;
    let all = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        const d = Math.abs(gpu.cka[i * m + j] - cpu.cka[i * m + j]);
        all = Math.max(all, d);
        if (gpu.rows[i].endsWith('@clean') && gpu.rows[j].endsWith('@clean')) clean = Math.max(clean, d);
      }
    }
    assert.ok(clean < 1e-4, `clean x clean: max |webgpu - wasm| = ${clean}`);
    // PGD steps take the sign of the gradient: a tie broken differently would move one pixel by eps,
    // so adversarial entries get a looser bound (measured on llvmpipe: 7e-7).
    assert.ok(all < 1e-3, `with adversarial inputs: max |webgpu - wasm| = ${all}`);
  } finally {
    await initBackend('wasm');
    await rm(root, { recursive: true, force: true });
  }
});
