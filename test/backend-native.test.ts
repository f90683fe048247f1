import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { batchNormTraining } from '../src/backend/batchnorm-grad.js';
import { batchNormPrimitiveStats, inferenceBatchNormStats, reluPrimitiveStats, convPrimitiveStats, cudaCandidates, gramOf, loadedCublas, nativeSummary, parseCublasMode, productOf, setNativeEnabled, parseNativeMode, threadsPerWorker, nativeThreads } from '../src/backend/native/index.js';
import { geometryOf } from '../src/backend/native/conv-kernels.js';
import { fromEnv, openblasCandidates } from '../src/backend/native/library-paths.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { makeRng } from '../src/util/rng.js';

// Every native kernel (OpenBLAS, oneDNN on the wasm heap) against tfjs' pure-JS cpu backend, values and
// gradients; then a whole training step native vs wasm. Skipped, with the reason, where the Debian
// packages are not installed (CI installs them: .ci/run).

const TOLERANCE = 1e-4;
// Started before the tests are declared: whether each test is skipped depends on what loaded.
await initBackend('wasm');
const available = { blas: Boolean(nativeSummary()?.openblas), dnnl: Boolean(nativeSummary()?.onednn) };

after(async () => {
  setNativeEnabled(true);
  await tf.setBackend('wasm');
});

const needs = (lib: 'blas' | 'dnnl') => () => (available[lib] ? false : `${lib === 'blas' ? 'OpenBLAS (libopenblas0-pthread)' : 'oneDNN (libdnnl2)'} not loaded (not installed, koffi missing, or ROBUSTSIM_NATIVE=off)`);

function randomArray(n: number, seed: number): Float32Array {
  const rng = makeRng(seed);
  return Float32Array.from({ length: n }, () => rng() * 2 - 1);
}

function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'result sizes differ');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

async function runOn(backend: 'wasm' | 'cpu', fn: () => tf.Tensor | tf.Tensor[]): Promise<{ values: Float32Array[]; shapes: number[][] }> {
  await tf.setBackend(backend);
  const out = tf.tidy(fn);
  const list = Array.isArray(out) ? out : [out];
  const values = (await Promise.all(list.map((t) => t.data()))) as Float32Array[];
  const shapes = list.map((t) => t.shape);
  tf.dispose(list);
  return { values, shapes };
}

/** Native wasm vs cpu; also asserts that the native kernels ran (oneDNN primitives were built or reused). */
async function assertNativeMatchesCpu(what: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<void> {
  const wasm = await runOn('wasm', fn);
  const cpu = await runOn('cpu', fn);
  assert.deepEqual(wasm.shapes, cpu.shapes, `${what}: shapes`);
  wasm.values.forEach((v, i) => {
    const err = relativeError(v, cpu.values[i]);
    assert.ok(err < TOLERANCE, `${what}: output ${i} relative error ${err}`);
  });
}

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;
const PADS: Pad[] = ['same', 'valid', [[0, 0], [1, 2], [0, 1], [0, 0]]];

test('Conv2D forward: strides, SAME/VALID/explicit padding, dilation, batch 1, 1x1 stride 2', { skip: needs('dnnl')() }, async () => {
  const before = convPrimitiveStats().cached;
  let seed = 1;
  for (const [batch, h, w] of [[1, 7, 7], [3, 8, 6]]) {
    for (const k of [1, 3]) {
      for (const s of [1, 2]) {
        for (const pad of PADS) {
          for (const d of s === 1 ? [1, 2] : [1]) {
            const x = randomArray(batch * h * w * 3, seed++);
            const f = randomArray(k * k * 3 * 4, seed++);
            await assertNativeMatchesCpu(`conv2d b${batch} ${h}x${w} k${k} s${s} d${d} pad ${JSON.stringify(pad)}`, () =>
              tf.conv2d(tf.tensor4d(x, [batch, h, w, 3]), tf.tensor4d(f, [k, k, 3, 4]), s, pad, 'NHWC', d),
            );
          }
        }
      }
    }
  }
  assert.ok(convPrimitiveStats().cached > before, 'oneDNN primitives were built for the forward convolutions');
  assert.equal(convPrimitiveStats().declined, 0, 'oneDNN took every geometry (none left to the wasm kernel)');
});

test('Conv2DBackpropInput and Conv2DBackpropFilter: the gradients of conv2d match the cpu backend', { skip: needs('dnnl')() }, async () => {
  let seed = 100;
  const kinds = new Set<string>();
  for (const [batch, h, w] of [[1, 6, 6], [2, 7, 9]]) {
    for (const k of [1, 3]) {
      for (const s of [1, 2]) {
        for (const pad of PADS) {
          const x = randomArray(batch * h * w * 3, seed++);
          const f = randomArray(k * k * 3 * 5, seed++);
          const r = seed++;
          await assertNativeMatchesCpu(`conv2d grads b${batch} ${h}x${w} k${k} s${s} pad ${JSON.stringify(pad)}`, () => {
            const loss = (a: tf.Tensor, b: tf.Tensor) => {
              const y = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad);
              return tf.sum(tf.mul(y, tf.tensor(randomArray(y.size, r), y.shape)));
            };
            return tf.grads(loss)([tf.tensor4d(x, [batch, h, w, 3]), tf.tensor4d(f, [k, k, 3, 5])]);
          });
        }
      }
    }
  }
  for (const p of convPrimitiveStats().impls) kinds.add(p);
  assert.equal(convPrimitiveStats().declined, 0, 'oneDNN took every gradient geometry');
  assert.ok(kinds.size > 0, 'oneDNN reported its implementations');
});

test('FusedConv2D with bias and relu, and linear, matches the cpu backend', { skip: needs('dnnl')() }, async () => {
  for (const activation of ['relu', 'linear'] as const) {
    const x = randomArray(2 * 8 * 8 * 4, 7);
    const f = randomArray(3 * 3 * 4 * 6, 8);
    const b = randomArray(6, 9);
    await assertNativeMatchesCpu(`fused conv2d ${activation}`, () =>
      tf.fused.conv2d({ x: tf.tensor4d(x, [2, 8, 8, 4]), filter: tf.tensor4d(f, [3, 3, 4, 6]), strides: 2, pad: 'same', bias: tf.tensor1d(b), activation }),
    );
  }
});

test('MatMul, BatchMatMul (transposes, batch broadcasting) and _FusedMatMul (bias, relu): values and gradients', { skip: needs('blas')() }, async () => {
  let seed = 300;
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
    const a = randomArray(5 * 7, seed++);
    const b = randomArray(7 * 3, seed++);
    await assertNativeMatchesCpu(`matMul ta=${ta} tb=${tb}`, () => {
      const A = tf.tensor2d(a, ta ? [7, 5] : [5, 7]);
      const B = tf.tensor2d(b, tb ? [3, 7] : [7, 3]);
      const g = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.square(tf.matMul(p as tf.Tensor2D, q as tf.Tensor2D, ta, tb))))([A, B]);
      return [tf.matMul(A, B, ta, tb), ...g];
    });
  }
  const a3 = randomArray(4 * 3 * 6, seed++);
  const b3 = randomArray(4 * 6 * 2, seed++);
  const b1 = randomArray(6 * 2, seed++);
  await assertNativeMatchesCpu('batched and broadcast matMul', () => [
    tf.matMul(tf.tensor3d(a3, [4, 3, 6]), tf.tensor3d(b3, [4, 6, 2])),
    tf.matMul(tf.tensor3d(a3, [4, 3, 6]), tf.tensor3d(b1, [1, 6, 2])),
    tf.matMul(tf.tensor4d(a3, [2, 2, 3, 6]), tf.tensor4d(b3, [2, 2, 6, 2])),
  ]);
  const bias = randomArray(2, seed++);
  await assertNativeMatchesCpu('fused matMul', () => [
    tf.fused.matMul({ a: tf.tensor2d(a3.subarray(0, 18), [3, 6]), b: tf.tensor2d(b1, [6, 2]), bias: tf.tensor1d(bias), activation: 'relu' }),
    tf.fused.matMul({ a: tf.tensor2d(a3.subarray(0, 18), [3, 6]), b: tf.tensor2d(b1, [2, 6]), transposeB: true, bias: tf.tensor1d(bias), activation: 'linear' }),
  ]);
});

test('gramOf (ssyrk, upper triangle mirrored) equals x x^T on the cpu backend, 2-D and batched', { skip: needs('blas')() }, async () => {
  const x = randomArray(3 * 5 * 9, 11);
  await assertNativeMatchesCpu('gram', () => [gramOf(tf.tensor2d(x.subarray(0, 45), [5, 9])), gramOf(tf.tensor3d(x, [3, 5, 9]))]);
});

test('training-mode BatchNorm (oneDNN): y, batch mean and variance, dx, dgamma, dbeta match the cpu backend; 2-D, 3-D, 4-D, batch 1', { skip: needs('dnnl')() }, async () => {
  const before = batchNormPrimitiveStats().cached;
  let seed = 40;
  for (const shape of [[1, 3, 3, 5], [1, 4, 4, 16], [2, 5, 3, 3], [3, 2, 2, 64], [1, 6, 1, 1], [7, 5], [4, 6, 8]]) {
    const c = shape[shape.length - 1];
    const [x, g, b, dy] = [randomArray(tf.util.sizeFromShape(shape), seed++), randomArray(c, seed++), randomArray(c, seed++), randomArray(tf.util.sizeFromShape(shape), seed++)];
    const eps = 1e-3;
    await assertNativeMatchesCpu(`batch norm ${shape}`, () => {
      const [xt, gt, bt, dyt] = [tf.tensor(x, shape).add(0.5), tf.tensor1d(g).add(1), tf.tensor1d(b), tf.tensor(dy, shape)];
      const { y, mean, variance } = batchNormTraining(xt, gt, bt, eps);
      const grads = tf.grads((a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(batchNormTraining(a, gg, bb, eps).y, dyt)))([xt, gt, bt]);
      return [y, mean, variance, ...grads];
    });
  }
  assert.ok(batchNormPrimitiveStats().cached > before, 'oneDNN batch-normalization primitives were built');
  assert.equal(batchNormPrimitiveStats().declined, 0, 'oneDNN accepted every shape');
});

test('inference-mode BatchNorm (FusedBatchNorm, oneDNN with the given statistics) and its input gradient match the cpu backend; 2-D, 4-D, batch 1; no leaks', { skip: needs('dnnl')() }, async () => {
  const before = inferenceBatchNormStats().cached;
  let seed = 80;
  for (const shape of [[1, 3, 3, 5], [2, 4, 4, 16], [3, 2, 2, 64], [7, 5]]) {
    const c = shape[shape.length - 1];
    const [x, m, v, g, b, dy] = [randomArray(tf.util.sizeFromShape(shape), seed++), randomArray(c, seed++), randomArray(c, seed++), randomArray(c, seed++), randomArray(c, seed++), randomArray(tf.util.sizeFromShape(shape), seed++)];
    await assertNativeMatchesCpu(`inference batch norm ${shape}`, () => {
      const [mt, vt, gt, bt, dyt] = [tf.tensor1d(m), tf.tensor1d(v).abs().add(0.1), tf.tensor1d(g).add(1), tf.tensor1d(b), tf.tensor(dy, shape)];
      const f = (a: tf.Tensor) => tf.batchNorm(a, mt, vt, bt, gt, 1e-3);
      return [f(tf.tensor(x, shape)), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), dyt)))(tf.tensor(x, shape))];
    });
  }
  assert.ok(inferenceBatchNormStats().cached >= before + 4, 'oneDNN built an inference primitive per shape');
  assert.equal(inferenceBatchNormStats().declined, 0, 'oneDNN accepted every shape');
  await tf.setBackend('wasm');
  // Without scale and offset the wasm kernel runs: same values as cpu.
  await assertNativeMatchesCpu('inference batch norm without scale/offset', () => tf.batchNorm(tf.tensor2d(randomArray(12, 90), [3, 4]), tf.tensor1d([0, 0.1, 0.2, 0.3]), tf.tensor1d([1, 2, 3, 4])));
  await tf.setBackend('wasm');
  const x = tf.tensor4d(randomArray(2 * 3 * 3 * 4, 91), [2, 3, 3, 4]);
  const stats = [tf.zeros([4]), tf.ones([4]), tf.zeros([4]), tf.ones([4])] as const;
  const run = () => tf.tidy(() => tf.batchNorm(x, stats[0], stats[1], stats[2], stats[3]).dataSync()[0]);
  run();
  const tensors = tf.memory().numTensors;
  run();
  assert.equal(tf.memory().numTensors, tensors, 'no tensors leak');
  tf.dispose([x, ...stats]);
});

test('ReLU gradient (oneDNN eltwise backward) matches the cpu backend, zeros included; no leaks', { skip: needs('dnnl')() }, async () => {
  const before = reluPrimitiveStats().runs;
  let seed = 60;
  for (const shape of [[1, 3, 3, 5], [2, 4, 4, 16], [7], [3, 9]]) {
    const n = tf.util.sizeFromShape(shape);
    // Every third entry exactly 0: tfjs' step(0) is 0, oneDNN's relu backward passes nothing at 0 either.
    const x = randomArray(n, seed++).map((v, i) => (i % 3 === 0 ? 0 : v));
    const dy = randomArray(n, seed++);
    await assertNativeMatchesCpu(`relu ${shape}`, () => {
      const dyt = tf.tensor(dy, shape);
      return [tf.relu(tf.tensor(x, shape)), tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.relu(a), dyt)))(tf.tensor(x, shape))];
    });
  }
  assert.ok(reluPrimitiveStats().runs >= before + 4, 'oneDNN relu backward ran for every shape');
  await tf.setBackend('wasm');
  const x = tf.tensor2d(randomArray(64, 70), [8, 8]);
  const step = () => tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.relu(a))))(x).dataSync()[0]);
  step();
  const tensors = tf.memory().numTensors;
  step();
  assert.equal(tf.memory().numTensors, tensors, 'no tensors leak');
  x.dispose();
});

test('a BatchNormalization layer in training mode (oneDNN): output, moving statistics and weight gradients equal the wasm ops; no leaks', { skip: needs('dnnl')() }, async () => {
  await tf.setBackend('wasm');
  const shape = [4, 3, 3, 8];
  const x = tf.tidy(() => tf.tensor(randomArray(tf.util.sizeFromShape(shape), 50), shape).mul(2).add(0.3));
  const dy = tf.tensor(randomArray(tf.util.sizeFromShape(shape), 51), shape);
  const run = async (native: boolean) => {
    setNativeEnabled(native);
    const layer = tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5, gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 1 }), betaInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: 2 }) });
    tf.dispose(layer.apply(x, { training: false }) as tf.Tensor); // builds the weights
    const vars = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const step = () => tf.tidy(() => tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, dy)) as tf.Scalar, vars));
    const tensors = tf.memory().numTensors;
    const { value, grads } = step();
    const out = [value, ...vars.map((v) => grads[v.name]), ...layer.getWeights().slice(2)];
    const values = (await Promise.all(out.map((t) => t.data()))) as Float32Array[];
    tf.dispose([value, ...Object.values(grads)]);
    assert.equal(tf.memory().numTensors, tensors, `native ${native}: no tensors leak across a training-mode step`);
    layer.dispose();
    setNativeEnabled(true);
    return values;
  };
  const built = batchNormPrimitiveStats().cached;
  const native = await run(true);
  assert.ok(batchNormPrimitiveStats().cached > built, 'the layer ran oneDNN batch normalisation');
  const wasm = await run(false);
  ['loss', 'dgamma', 'dbeta', 'moving mean', 'moving variance'].forEach((what, i) => assert.ok(relativeError(native[i], wasm[i]) < TOLERANCE, `${what}: ${relativeError(native[i], wasm[i])}`));
  tf.dispose([x, dy]);
});

test('a whole training step (resnet, BatchNorm, strided shortcut) gives the same loss and gradients native and wasm; no leaks', { skip: needs('dnnl')() || needs('blas')() }, async () => {
  await tf.setBackend('wasm');
  const { model } = buildModel({ arch: resolveArch('resnet-small', 4), inputShape: [8, 8, 3], numClasses: 3, seed: 3 });
  const x = tf.tensor4d(randomArray(4 * 8 * 8 * 3, 21), [4, 8, 8, 3]);
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar);
      return [value, ...Object.keys(grads).sort().map((k) => grads[k])];
    });
  const read = async (ts: tf.Tensor[]) => {
    const v = (await Promise.all(ts.map((t) => t.data()))) as Float32Array[];
    tf.dispose(ts);
    return v;
  };
  const built = convPrimitiveStats().cached;
  const builtBn = batchNormPrimitiveStats().cached;
  const reluRuns = reluPrimitiveStats().runs;
  await read(step()); // warm-up: builds the primitives
  const tensors = tf.memory().numTensors;
  const native = await read(step());
  assert.equal(tf.memory().numTensors, tensors, 'no tensors leak across a native training step');
  assert.ok(convPrimitiveStats().cached > built, 'the step ran oneDNN convolutions');
  assert.ok(batchNormPrimitiveStats().cached > builtBn, 'the step ran oneDNN batch normalisation');
  assert.ok(reluPrimitiveStats().runs > reluRuns, 'the step ran oneDNN relu gradients');
  setNativeEnabled(false);
  const wasm = await read(step());
  setNativeEnabled(true);
  native.forEach((v, i) => assert.ok(relativeError(v, wasm[i]) < 1e-3, `output ${i} (${i === 0 ? 'loss' : 'gradient'}) differs: ${relativeError(v, wasm[i])}`));
  tf.dispose([x, y]);
  model.dispose();
});

test('geometryOf: oneDNN right padding reproduces tfjs output sizes, 1x1 stride 2 included', () => {
  const info = tf.backend_util.computeConv2DInfo([1, 8, 8, 2], [1, 1, 2, 2], 2, 1, 'same', undefined, false, 'channelsLast');
  assert.deepEqual(geometryOf(info), { strides: [2, 2], dilates: [0, 0], padL: [0, 0], padR: [0, 0] });
  const same3 = tf.backend_util.computeConv2DInfo([1, 8, 8, 2], [3, 3, 2, 2], 2, 1, 'same', undefined, false, 'channelsLast');
  assert.deepEqual(geometryOf(same3)?.padL, [0, 0]);
  assert.deepEqual(geometryOf(same3)?.padR, [1, 1]);
});

test('modes, threads and library paths parse and refuse bad values', () => {
  assert.equal(parseNativeMode(undefined), 'auto');
  assert.equal(parseNativeMode('require'), 'require');
  assert.throws(() => parseNativeMode('on', '--native'), /--native: expected one of auto, off, require, got 'on'/);
  assert.equal(threadsPerWorker(2, 2), 1);
  assert.equal(threadsPerWorker(1, 8), 8);
  assert.equal(threadsPerWorker(3, 8), 2);
  assert.equal(nativeThreads({ ROBUSTSIM_NATIVE_THREADS: '3' }), 3);
  assert.equal(nativeThreads({}, false), 1);
  assert.throws(() => nativeThreads({ ROBUSTSIM_NATIVE_THREADS: '0' }), /ROBUSTSIM_NATIVE_THREADS: expected a positive integer/);
  assert.deepEqual(fromEnv(' /a/lib.so : b.so '), ['/a/lib.so', 'b.so']);
  assert.deepEqual(openblasCandidates({ ROBUSTSIM_OPENBLAS: '/x/libopenblas.so.0' }), ['/x/libopenblas.so.0']);
  assert.equal(openblasCandidates({})[0], 'libopenblas.so.0');
});

/** Start the wasm backend in a fresh process with `env`; returns its exit status and output. */
function startBackend(env: Record<string, string>): { status: number | null; out: string } {
  const script = "import('./dist/src/backend/index.js').then(async (b) => { await b.initBackend('wasm'); console.log(b.describeBackend()); }).catch((e) => { console.error(e.name + ': ' + e.message); process.exit(2); })";
  const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('--native require fails clearly when a library is missing; auto falls back with a hint; off loads nothing', () => {
  const req = startBackend({ ROBUSTSIM_NATIVE: 'require', ROBUSTSIM_DNNL: '/nonexistent/libdnnl.so.2' });
  assert.equal(req.status, 2, req.out);
  assert.match(req.out, /InputError: --native require: .*oneDNN \(ROBUSTSIM_DNNL\).*Install: apt-get install libopenblas0-pthread libdnnl2/);
  const auto = startBackend({ ROBUSTSIM_NATIVE: 'auto', ROBUSTSIM_DNNL: '/nonexistent/libdnnl.so.2', ROBUSTSIM_OPENBLAS: '/nonexistent/libopenblas.so.0' });
  assert.equal(auto.status, 0, auto.out);
  assert.match(auto.out, /^wasm \(no native kernels; missing: .*OpenBLAS.*oneDNN.*hint: apt-get install libopenblas0-pthread libdnnl2/m);
  const off = startBackend({ ROBUSTSIM_NATIVE: 'off' });
  assert.equal(off.status, 0, off.out);
  assert.match(off.out, /^wasm \(native off\)/m);
});

test('cuBLAS libraries are looked for in the env override, CUDA toolkits and a PyTorch install\'s pip wheels', () => {
  const venv = fs.mkdtempSync(path.join(os.tmpdir(), 'robustsim-venv-'));
  try {
    const lib = path.join(venv, 'lib/python3.11/site-packages/nvidia/cublas/lib');
    fs.mkdirSync(lib, { recursive: true });
    fs.writeFileSync(path.join(lib, 'libcublas.so.12'), '');
    const found = cudaCandidates('cublas', { VIRTUAL_ENV: venv });
    assert.ok(found.includes(path.join(lib, 'libcublas.so.12')), `the venv's nvidia/cublas/lib is searched: ${found.join(', ')}`);
    assert.ok(found.indexOf(path.join(lib, 'libcublas.so.12')) < found.indexOf('libcublas.so.12'), 'found files come before bare sonames');
    assert.deepEqual(cudaCandidates('cudart', { ROBUSTSIM_CUDART_LIB: '/opt/x/libcudart.so.12' }), ['/opt/x/libcudart.so.12']);
  } finally {
    fs.rmSync(venv, { recursive: true, force: true });
  }
  assert.equal(parseCublasMode(undefined), 'auto');
  assert.throws(() => parseCublasMode('yes'), /ROBUSTSIM_CUBLAS: expected one of auto, off, require, got 'yes'/);
});

test('ROBUSTSIM_CUBLAS=require refuses clearly where cuBLAS cannot run; auto carries on without it', { skip: loadedCublas() ? 'an NVIDIA GPU is present: the refusal cannot be provoked' : false }, () => {
  const req = startBackend({ ROBUSTSIM_CUBLAS: 'require' });
  assert.equal(req.status, 2, req.out);
  assert.match(req.out, /InputError: ROBUSTSIM_CUBLAS=require: cuBLAS cannot be used: (no NVIDIA GPU|libcudart not found|libcublas not found).*ROBUSTSIM_CUBLAS_LIB/);
  const auto = startBackend({ ROBUSTSIM_CUBLAS: 'auto' });
  assert.equal(auto.status, 0, auto.out);
  assert.doesNotMatch(auto.out, /cuBLAS/);
});

test('cuBLAS Grams and products equal the cpu backend\'s', { skip: loadedCublas() ? false : 'no NVIDIA GPU' }, async () => {
  const x = randomArray(6 * 33, 41);
  const y = randomArray(33 * 4, 42);
  await tf.setBackend('wasm');
  const gram = gramOf(tf.tensor2d(x, [6, 33]));
  const prod = productOf(tf.tensor2d(x, [6, 33]), tf.tensor2d(y, [33, 4]));
  const [g, p] = [await gram.data(), await prod.data()];
  tf.dispose([gram, prod]);
  const cpu = await runOn('cpu', () => [tf.matMul(tf.tensor2d(x, [6, 33]), tf.tensor2d(x, [6, 33]), false, true), tf.matMul(tf.tensor2d(x, [6, 33]), tf.tensor2d(y, [33, 4]))]);
  assert.ok(relativeError(g, cpu.values[0]) < TOLERANCE);
  assert.ok(relativeError(p, cpu.values[1]) < TOLERANCE);
});
