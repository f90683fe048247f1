import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { convertOnnx, importOnnx } from '../src/import/onnx/import.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import { tapModel } from '../src/models/architectures.js';
import { readNpyFloat32, readNpyInt32 } from '../src/formats/npy.js';
import type { CheckpointMeta } from '../src/train/meta.js';

/**
 * The importer against PyTorch itself: test/pytorch/export_reference.py exports a torchvision
 * ResNet-18 and a CNN with grouped/dilated/depthwise convs, GELU, in-graph normalisation, and
 * records PyTorch's logits, module outputs and input gradient of the cross-entropy.
 */
const PYTHON = process.env.ROBUSTSIM_PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.resolve('test/pytorch/export_reference.py');
let ref: string;
before(async () => {
  await initBackend('wasm');
  ref = await mkdtemp(path.join(tmpdir(), 'robustsim-onnx-'));
  execFileSync(PYTHON, [SCRIPT, ref], { stdio: ['ignore', 'ignore', 'pipe'] });
});
after(async () => {
  await rm(ref, { recursive: true, force: true });
});

/** max |a - b| / max |b|: relative to the tensor's scale, so near-zero entries don't dominate. */
function maxRelError(actual: Float32Array | Int32Array | Uint8Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

const toNhwc = (x: { shape: number[]; data: Float32Array }) => tf.tidy(() => tf.transpose(tf.tensor(x.data, x.shape), [0, 2, 3, 1]));

for (const [name, taps] of [
  ['resnet18', ['conv1', 'maxpool', 'layer1', 'layer2.0', 'layer3', 'layer4', 'avgpool']],
  ['small_cnn', ['stem', 'bn', 'grouped', 'depthwise', 'pool', 'head.1']],
] as const) {
  test(`${name}: logits, ${taps.length} module outputs and the input gradient match PyTorch`, async () => {
    const dir = path.join(ref, `${name}-ckpt`);
    const meta = await importOnnx(path.join(ref, `${name}.onnx`), dir);
    for (const t of taps) assert.ok(meta.taps.includes(t), `tap '${t}' missing from ${meta.taps.join(', ')}`);
    assert.deepEqual(meta.inputShape, [32, 32, 3]);
    const before = tf.memory().numTensors;
    const { model } = await loadCheckpoint<CheckpointMeta>(dir);
    const input = await readNpyFloat32(path.join(ref, `${name}.input.npy`));
    const labels = await readNpyInt32(path.join(ref, `${name}.labels.npy`));
    const x = toNhwc(input);
    const tapNet = tapModel(model, [...taps]);
    const outs = tapNet.predict(x) as tf.Tensor[];
    for (const [i, t] of taps.entries()) {
      const expected = await readNpyFloat32(path.join(ref, `${name}.act.${t}.npy`));
      // PyTorch's NCHW activations compared in the imported model's NHWC layout.
      const exp = expected.shape.length === 4 ? toNhwc(expected) : tf.tensor(expected.data, expected.shape);
      const err = maxRelError(outs[i].dataSync() as Float32Array, exp.dataSync() as Float32Array);
      exp.dispose();
      assert.ok(err < 1e-4, `${name} ${t}: max relative error ${err}`);
    }
    const logits = model.predict(x) as tf.Tensor;
    const expLogits = await readNpyFloat32(path.join(ref, `${name}.logits.npy`));
    const logitErr = maxRelError(logits.dataSync() as Float32Array, expLogits.data);
    assert.ok(logitErr < 1e-4, `${name} logits: max relative error ${logitErr}`);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels.data, 'int32'), logits.shape[1] as number));
    const grad = tf.grad((xi: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, model.apply(xi) as tf.Tensor, undefined, undefined, tf.Reduction.SUM))(x);
    const expGrad = toNhwc(await readNpyFloat32(path.join(ref, `${name}.grad.npy`)));
    const gradErr = maxRelError(grad.dataSync() as Float32Array, expGrad.dataSync() as Float32Array);
    assert.ok(gradErr < 1e-3, `${name} input gradient: max relative error ${gradErr}`);
    tf.dispose([x, ...outs, logits, y, grad, expGrad]);
    model.dispose();
    assert.equal(tf.memory().numTensors, before, 'import/load/compare leaks no tensors');
  });
}

test('convertOnnx leaves no tensors behind and writes nothing', async () => {
  const before = tf.memory().numTensors;
  const { model } = await convertOnnx(path.join(ref, 'small_cnn.onnx'));
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.ok(!existsSync(path.join(ref, 'small_cnn')));
});
