import { startWebgpu } from './webgpu-helper.js';
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { activeBackend, describeBackend, initBackend, parseWebgpuOptions, WEBGPU_OPTIONS_ENV, type BackendChoice } from '../src/backend/index.js';
import { importOptional } from '../src/backend/optional-import.js';
import { InputError } from '../src/errors.js';
import { makeRng } from '../src/util/rng.js';

const require = createRequire(import.meta.url);

function installed(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

const tfjsNodeInstalled = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

after(async () => {
  await initBackend('wasm');
});

test("initBackend('wasm') starts wasm, is idempotent, and switches back after another backend was set", async () => {
  assert.equal(await initBackend('wasm'), 'wasm');
  assert.equal(activeBackend(), 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(await initBackend('wasm'), 'wasm');
  await tf.setBackend('cpu');
  assert.equal(await initBackend('wasm'), 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  // Concurrent calls are serialised and agree.
  const names = await Promise.all([initBackend('cpu'), initBackend('wasm'), initBackend('wasm')]);
  assert.deepEqual(names, ['cpu', 'wasm', 'wasm']);
  assert.match(describeBackend(), /^wasm \((native |no native kernels|native off)/, 'the wasm line names what the native provider found');
});

test("initBackend('cpu') selects the reference backend", async () => {
  assert.equal(await initBackend('cpu'), 'cpu');
  assert.equal(activeBackend(), 'cpu');
  await initBackend('wasm');
});

test("initBackend('tensorflow') without tfjs-node says what to install", { skip: tfjsNodeInstalled && 'tfjs-node is installed here' }, async () => {
  await assert.rejects(initBackend('tensorflow'), (err: unknown) => {
    assert.ok(err instanceof InputError, 'an InputError');
    assert.match(err.message, /npm i @tensorflow\/tfjs-node-gpu/);
    assert.match(err.message, /npm i @tensorflow\/tfjs-node'/);
    return true;
  });
  // The failed attempt leaves the previous backend in place.
  assert.equal(activeBackend(), 'wasm');
});

test("initBackend('auto') falls back to wasm without tfjs-node", { skip: tfjsNodeInstalled && 'tfjs-node is installed here' }, async () => {
  assert.equal(await initBackend('auto'), 'wasm');
});

test('an unknown backend name is an InputError naming --backend', async () => {
  await assert.rejects(initBackend('gpu' as BackendChoice), (err: unknown) => err instanceof InputError && /--backend/.test(err.message));
});

test('importOptional: undefined for a missing package, the module when present, rethrows when a package fails to load', async () => {
  assert.equal(await importOptional('robustsim-no-such-package'), undefined);
  const fs = await importOptional<{ readFileSync: unknown }>('node:fs');
  assert.equal(typeof fs?.readFileSync, 'function');
  await assert.rejects(importOptional('data:text/javascript,throw new Error("native binding failed")'), /native binding failed/);
});

test('parseWebgpuOptions splits Dawn options from ours and rejects bad values', () => {
  assert.deepEqual(parseWebgpuOptions(undefined), { dawnOptions: [] });
  assert.deepEqual(parseWebgpuOptions(' backend=opengles , featureLevel=compatibility,adapter=llvmpipe'), {
    dawnOptions: ['backend=opengles', 'adapter=llvmpipe'],
    featureLevel: 'compatibility',
  });
  assert.equal(parseWebgpuOptions('powerPreference=low-power').powerPreference, 'low-power');
  assert.throws(() => parseWebgpuOptions('featureLevel=max'), (e: unknown) => e instanceof InputError && e.message.includes(WEBGPU_OPTIONS_ENV));
  assert.throws(() => parseWebgpuOptions('opengles'), InputError);
});

function randomArray(n: number, seed: number): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n }, () => rng() * 2 - 1);
}

function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}


test('webgpu through Dawn: matMul and conv2d gradients match cpu', async (t) => {
  const unavailable = await startWebgpu();
  if (unavailable) {
    t.skip(`no WebGPU adapter: ${unavailable}`);
    await initBackend('wasm');
    return;
  }
  assert.equal(activeBackend(), 'webgpu');
  assert.match(describeBackend(), /^webgpu \(/);

  const a = randomArray(33 * 17, 1);
  const b = randomArray(17 * 9, 2);
  const x = randomArray(2 * 8 * 8 * 3, 3);
  const w = randomArray(3 * 3 * 3 * 5, 4);
  // Tensors are made per backend from plain arrays: webgpu data cannot be read synchronously in Node.
  const compute = async () => {
    const out = tf.tidy(() => {
      const xt = tf.tensor4d(x, [2, 8, 8, 3]);
      const wt = tf.tensor4d(w, [3, 3, 3, 5]);
      const loss = (xi: tf.Tensor4D, wi: tf.Tensor4D) => tf.sum(tf.square(tf.conv2d(xi, wi, 2, 'same')));
      const [dx, dw] = tf.grads(loss as (...args: tf.Tensor[]) => tf.Tensor)([xt, wt]);
      return [tf.matMul(tf.tensor2d(a, [33, 17]), tf.tensor2d(b, [17, 9])), dx, dw];
    });
    const values = await Promise.all(out.map((o) => o.data()));
    tf.dispose(out);
    return values;
  };
  const onGpu = await compute();
  await initBackend('cpu');
  const onCpu = await compute();
  await initBackend('wasm');
  ['matMul', 'conv2d input gradient', 'conv2d filter gradient'].forEach((what, i) => {
    const err = relativeError(onGpu[i], onCpu[i]);
    assert.ok(err < 1e-4, `${what}: relative error ${err}`);
  });
});
