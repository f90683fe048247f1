import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, registerWasmGradientKernels } from '../src/backend/index.js';
import { axisPhases } from '../src/backend/wasm-kernels.js';
import { tileInto } from '../src/backend/tile.js';
import { makeRng } from '../src/util/rng.js';

// Every kernel we register for wasm is checked against tfjs' pure-JS `cpu` backend on the same values.

const TOLERANCE = 1e-4;

before(async () => {
  await initBackend('wasm');
});

after(async () => {
  await tf.setBackend('wasm');
});

function randomArray(n: number, seed: number): Float32Array {
  const rng = makeRng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng() * 2 - 1;
  return a;
}

/** max |a - b| / max |b|: relative to the reference's scale, so tiny entries do not dominate. */
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

/** Run `fn` on a backend and read its outputs back as arrays. */
async function runOn(backend: 'wasm' | 'cpu', fn: () => tf.Tensor | tf.Tensor[]): Promise<{ values: ArrayLike<number>[]; shapes: number[][] }> {
  await tf.setBackend(backend);
  const out = tf.tidy(fn);
  const list = Array.isArray(out) ? out : [out];
  const values = await Promise.all(list.map((t) => t.data()));
  const shapes = list.map((t) => t.shape);
  tf.dispose(list);
  return { values, shapes };
}

async function assertSameOnWasmAndCpu(what: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<void> {
  const wasm = await runOn('wasm', fn);
  const cpu = await runOn('cpu', fn);
  assert.deepEqual(wasm.shapes, cpu.shapes, `${what}: shapes`);
  wasm.values.forEach((v, i) => {
    const err = relativeError(v, cpu.values[i]);
    assert.ok(err < TOLERANCE, `${what}: output ${i} relative error ${err}`);
  });
}

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

interface ConvCase {
  size: [number, number];
  kernel: [number, number];
  strides: [number, number];
  pad: Pad;
}

function convCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  for (const size of [[7, 7], [8, 8], [6, 9]] as [number, number][]) {
    for (const k of [1, 3, 5]) {
      for (const s of [1, 2]) {
        for (const pad of ['same', 'valid', 1] as Pad[]) {
          if (pad === 'valid' && k > Math.min(...size)) continue;
          cases.push({ size, kernel: [k, k], strides: [s, s], pad });
        }
      }
    }
  }
  // Explicit uneven padding, a non-square kernel, and padding >= kernel (the input kernel falls back).
  cases.push({ size: [8, 8], kernel: [3, 2], strides: [2, 2], pad: [[0, 0], [2, 1], [0, 2], [0, 0]] });
  cases.push({ size: [7, 7], kernel: [1, 1], strides: [2, 2], pad: 2 });
  return cases;
}

function describeCase(c: ConvCase): string {
  return `x ${c.size.join('x')}, kernel ${c.kernel.join('x')}, strides ${c.strides.join(',')}, pad ${JSON.stringify(c.pad)}`;
}

/** Inputs of one conv case: x [3,H,W,2], filter [KH,KW,2,4], and dy of the forward output's shape. */
function convTensors(c: ConvCase) {
  const xShape: [number, number, number, number] = [3, c.size[0], c.size[1], 2];
  const filterShape: [number, number, number, number] = [c.kernel[0], c.kernel[1], 2, 4];
  const outShape = tf.backend_util.computeConv2DInfo(xShape, filterShape, c.strides, 1, c.pad).outShape;
  return {
    xShape,
    filterShape,
    x: () => tf.tensor4d(randomArray(tf.util.sizeFromShape(xShape), 1), xShape),
    filter: () => tf.tensor4d(randomArray(tf.util.sizeFromShape(filterShape), 2), filterShape),
    dy: () => tf.tensor4d(randomArray(tf.util.sizeFromShape(outShape), 3), outShape),
  };
}

test('Conv2DBackpropFilter on wasm matches cpu (paddings, strides 1 and 2, kernels 1/3/5, odd and even sizes)', async () => {
  for (const c of convCases()) {
    const t = convTensors(c);
    await assertSameOnWasmAndCpu(`filter gradient, ${describeCase(c)}`, () =>
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: t.x(), dy: t.dy() }, {
        strides: c.strides, pad: c.pad, dataFormat: 'NHWC', filterShape: t.filterShape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    );
  }
});

test('Conv2DBackpropInput on wasm matches cpu (polyphase for stride 2, built-in fallback for padding >= kernel)', async () => {
  for (const c of convCases()) {
    const t = convTensors(c);
    await assertSameOnWasmAndCpu(`input gradient, ${describeCase(c)}`, () =>
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: t.dy(), filter: t.filter() }, {
        strides: c.strides, pad: c.pad, dataFormat: 'NHWC', inputShape: t.xShape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    );
  }
});

test('conv2d gradients through tf.grad agree on wasm and cpu', async () => {
  const c = convCases()[0];
  const t = convTensors(c);
  await assertSameOnWasmAndCpu('tf.grads of sum(conv2d^2)', () => {
    const f = (x: tf.Tensor4D, w: tf.Tensor4D) => tf.sum(tf.square(tf.conv2d(x, w, 2, 'same')));
    return tf.grads(f as (...args: tf.Tensor[]) => tf.Tensor)([t.x(), t.filter()]);
  });
});

test('axisPhases: one phase for stride 1, taps split across phases for stride 2, undefined when padding >= kernel', () => {
  assert.deepEqual(axisPhases(7, 7, 3, 1, 1), [{ first: 0, taps: 3, before: 1, after: 1 }]);
  // 'same' on 8 with stride 2 and a 3x3 kernel: pad top 0, bottom 1; even rows use taps 0 and 2, odd rows tap 1.
  const phases = axisPhases(8, 4, 3, 2, 0)!;
  assert.deepEqual(phases.map((p) => [p.first, p.taps]), [[0, 2], [1, 1]]);
  assert.equal(axisPhases(7, 5, 1, 2, 2), undefined);
  // A 1x1 stride-2 kernel never touches odd rows.
  assert.equal(axisPhases(8, 4, 1, 2, 0)![1].taps, 0);
});

test('Tile on wasm matches cpu for float32, int32 and bool, including the BatchNorm-gradient shape', async () => {
  const cases: [number[], number[]][] = [
    [[1, 1, 1, 4], [3, 5, 6, 1]],
    [[2, 3], [2, 2]],
    [[3, 1, 2], [1, 4, 1]],
    [[5], [3]],
    [[2, 1, 3, 1], [1, 3, 1, 2]],
  ];
  for (const [shape, reps] of cases) {
    const size = tf.util.sizeFromShape(shape);
    const values = randomArray(size, 5);
    await assertSameOnWasmAndCpu(`tile float32 ${shape} x ${reps}`, () => tf.tile(tf.tensor(values, shape), reps));
    const ints = Int32Array.from(values, (v) => Math.round(v * 100));
    await assertSameOnWasmAndCpu(`tile int32 ${shape} x ${reps}`, () => tf.tile(tf.tensor(ints, shape, 'int32'), reps));
    await assertSameOnWasmAndCpu(`tile bool ${shape} x ${reps}`, () => tf.cast(tf.tile(tf.tensor(ints, shape, 'int32').greater(0), reps), 'int32'));
  }
});

test('Identity and same-dtype Cast on wasm share the buffer: same values, no copy, and disposal order does not matter', async () => {
  await tf.setBackend('wasm');
  const buffers = tf.engine().backend.numDataIds();
  const x = tf.tensor(randomArray(24, 7), [2, 3, 4]);
  const ints = tf.tensor([1, -2, 3], [3], 'int32');
  const copies = [tf.clone(x), tf.cast(x, 'float32'), tf.cast(ints, 'int32')];
  assert.equal(tf.engine().backend.numDataIds(), buffers + 2, 'no new buffers for clones and same-dtype casts');
  assert.deepEqual(await copies[0].data(), await x.data());
  assert.deepEqual(await copies[1].data(), await x.data());
  assert.deepEqual(await copies[2].data(), await ints.data());
  // A dtype-changing cast still converts.
  const converted = tf.cast(x, 'int32');
  assert.equal(converted.dtype, 'int32');
  assert.deepEqual(Array.from(await converted.data()), Array.from(await x.data()).map((v) => Math.trunc(v) + 0)); // + 0: -0 becomes 0
  x.dispose();
  ints.dispose();
  assert.deepEqual(await copies[1].data(), randomArray(24, 7), 'the shared buffer outlives the original tensor');
  tf.dispose([...copies, converted]);
  assert.equal(tf.engine().backend.numDataIds(), buffers, 'the shared buffer is freed with its last tensor');
});

test('tileInto matches a per-element reference', () => {
  const shape = [2, 3, 1];
  const reps = [2, 1, 3];
  const src = Float32Array.from({ length: 6 }, (_, i) => i + 1);
  const dst = new Float32Array(6 * 6);
  tileInto(src, dst, shape, reps);
  const out = [4, 3, 3];
  for (let i = 0; i < out[0]; i++) {
    for (let j = 0; j < out[1]; j++) {
      for (let k = 0; k < out[2]; k++) {
        const expected = src[((i % 2) * 3 + (j % 3)) * 1 + (k % 1)];
        assert.equal(dst[(i * 3 + j) * 3 + k], expected, `at ${i},${j},${k}`);
      }
    }
  }
  assert.throws(() => tileInto(src, new Float32Array(5), shape, reps), /output has 5 elements/);
});

test('registerWasmGradientKernels is idempotent', () => {
  const first = registerWasmGradientKernels();
  const second = registerWasmGradientKernels();
  assert.deepEqual(second, first);
  assert.ok(first.includes(tf.Conv2DBackpropFilter));
  assert.ok(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm'));
});

/**
 * A small residual net covering the training path: conv2d with and without bias, strides 1 and 2,
 * 'same' padding on an even size, batchNormalization, relu activation layers, add, maxPooling2d,
 * globalAveragePooling2d, flatten, dense. Seeded initialisers make it identical on every backend.
 */
function residualNet(): tf.LayersModel {
  let seed = 11;
  const init = () => tf.initializers.glorotNormal({ seed: seed++ });
  const input = tf.input({ shape: [8, 8, 2] });
  let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init() }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization().apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  let y = tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  y = tf.layers.batchNormalization().apply(y) as tf.SymbolicTensor;
  y = tf.layers.reLU().apply(y) as tf.SymbolicTensor;
  // With a bias: a bias followed by BatchNorm would have a zero gradient, so it sits on the BN-free conv.
  y = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: true, kernelInitializer: init(), biasInitializer: 'ones' }).apply(y) as tf.SymbolicTensor;
  const shortcut = tf.layers.conv2d({ filters: 6, kernelSize: 1, strides: 2, padding: 'same', useBias: false, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor;
  const sum = tf.layers.reLU().apply(tf.layers.add().apply([y, shortcut]) as tf.SymbolicTensor) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({}).apply(sum) as tf.SymbolicTensor;
  const maxed = tf.layers.flatten().apply(tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }).apply(sum) as tf.SymbolicTensor) as tf.SymbolicTensor;
  const features = tf.layers.concatenate().apply([pooled, maxed]) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: 3, kernelInitializer: init() }).apply(features) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits });
}

const NET_INPUT_SHAPE = [4, 8, 8, 2];
const netInput = randomArray(tf.util.sizeFromShape(NET_INPUT_SHAPE), 9);
const netLabels = [0, 2, 1, 2];

function netLoss(model: tf.LayersModel, x: tf.Tensor): tf.Scalar {
  const labels = tf.oneHot(tf.tensor1d(netLabels, 'int32'), 3);
  return tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
}

test('residual net: loss, weight gradients and input gradient on wasm match cpu', async () => {
  const results = [];
  for (const backend of ['wasm', 'cpu'] as const) {
    await tf.setBackend(backend);
    const model = residualNet();
    const x = tf.tensor(netInput, NET_INPUT_SHAPE);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(() => netLoss(model, x), vars);
    const inputGrad = tf.grad((input: tf.Tensor) => netLoss(model, input))(x);
    results.push({
      loss: await value.data(),
      grads: await Promise.all(vars.map((v) => grads[v.name].data())),
      inputGrad: await inputGrad.data(),
    });
    tf.dispose([value, inputGrad, x, ...Object.values(grads)]);
    model.dispose();
  }
  const [wasm, cpu] = results;
  assert.ok(relativeError(wasm.loss, cpu.loss) < TOLERANCE, 'loss');
  assert.equal(wasm.grads.length, 11, 'one gradient per trainable weight');
  wasm.grads.forEach((g, i) => {
    const err = relativeError(g, cpu.grads[i]);
    assert.ok(err < TOLERANCE, `weight gradient ${i}: relative error ${err}`);
  });
  assert.ok(relativeError(wasm.inputGrad, cpu.inputGrad) < TOLERANCE, 'input gradient');
  assert.ok(wasm.inputGrad.some((v) => v !== 0), 'input gradient is not all zeros');
});

test('residual net: an optimizer step (weights and BatchNorm statistics) on wasm matches cpu', async () => {
  const results = [];
  for (const backend of ['wasm', 'cpu'] as const) {
    await tf.setBackend(backend);
    const model = residualNet();
    const x = tf.tensor(netInput, NET_INPUT_SHAPE);
    const optimizer = tf.train.momentum(0.1, 0.9);
    for (let step = 0; step < 2; step++) tf.dispose(optimizer.minimize(() => netLoss(model, x), true) ?? []);
    results.push(await Promise.all(model.getWeights().map((w) => w.data())));
    optimizer.dispose();
    x.dispose();
    model.dispose();
  }
  const [wasm, cpu] = results;
  wasm.forEach((w, i) => {
    const err = relativeError(w, cpu[i]);
    assert.ok(err < TOLERANCE, `weight ${i} after 2 steps: relative error ${err}`);
  });
});

test('no leaks on wasm: engine tensors and wasm buffers stay constant over repeated gradient steps', async () => {
  await tf.setBackend('wasm');
  const model = residualNet();
  const x = tf.tensor(netInput, NET_INPUT_SHAPE);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => netLoss(model, x), vars);
      const inputGrad = tf.grad((input: tf.Tensor) => netLoss(model, input))(x);
      return tf.addN([value, ...Object.values(grads).map((g) => tf.sum(g)), tf.sum(inputGrad)]).dataSync()[0];
    });
  step();
  const tensors = tf.memory().numTensors;
  const buffers = tf.engine().backend.numDataIds();
  for (let i = 0; i < 3; i++) assert.ok(Number.isFinite(step()));
  assert.equal(tf.memory().numTensors, tensors, 'engine tensors');
  assert.equal(tf.engine().backend.numDataIds(), buffers, 'wasm buffers (our kernels free their intermediates)');
  x.dispose();
  model.dispose();
});
