import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import seedrandom from 'seedrandom';
import { InputError } from '../src/errors.js';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { convertOnnx, importOnnx } from '../src/pipeline/import-onnx.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import { tapModel } from '../src/models/architectures.js';
import { readNpyFloat32, readNpyInt32 } from '../src/formats/npy.js';
import type { CheckpointMeta } from '../src/models/checkpoint-meta.js';

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

const { onnx } = onnxProto;

async function mutated(name: string, edit: (m: onnxProto.onnx.ModelProto) => void): Promise<string> {
  const m = onnx.ModelProto.decode(await readFile(path.join(ref, 'small_cnn.onnx')));
  edit(m);
  const file = path.join(ref, `${name}.onnx`);
  await writeFile(file, onnx.ModelProto.encode(m).finish());
  return file;
}

async function refused(file: string, re: RegExp, opts = {}): Promise<void> {
  const out = path.join(ref, `out-${path.basename(file)}`);
  await assert.rejects(importOnnx(file, out, opts), (e: unknown) => e instanceof InputError && re.test(e.message) && !e.message.includes('\n'));
  assert.ok(!existsSync(out), 'nothing written');
}

test('bad ONNX files: one-line errors naming the node or file, nothing written', async () => {
  const bytes = await readFile(path.join(ref, 'small_cnn.onnx'));
  const truncated = path.join(ref, 'truncated.onnx');
  await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await refused(truncated, /truncated\.onnx: (not a valid ONNX model|tensor)/);
  await refused(await mutated('unknown-op', (m) => (m.graph!.node![4].opType = 'Softplus')), /node '\/Relu' uses op 'Softplus'/);
  await refused(
    await mutated('escape', (m) => {
      const t = m.graph!.initializer!.find((i) => i.name === 'stem.weight')!;
      t.rawData = new Uint8Array(0);
      t.dataLocation = 1;
      t.externalData = [onnx.StringStringEntryProto.create({ key: 'location', value: '../weights.bin' })];
    }),
    /tensor 'stem.weight': external data location: '\.\.\/weights\.bin' leaves the model directory/,
  );
  await refused(await mutated('bad-shape', (m) => (m.graph!.initializer!.find((i) => i.name === 'stem.weight')!.dims = [8, 3, 3, 4])), /stem\.weight.*mismatched initializer shape/);
  const dynamic = await mutated('dynamic', (m) => (m.graph!.input![0].type!.tensorType!.shape!.dim![2] = onnx.TensorShapeProto.Dimension.create({ dimParam: 'height' })));
  await refused(dynamic, /input 'input' has dynamic dimension\(s\) height; pass --input-shape/);
  const meta = await importOnnx(dynamic, path.join(ref, 'dynamic-ok'), { inputShape: [3, 32, 32] });
  assert.deepEqual(meta.inputShape, [32, 32, 3]);
});

test('fuzz: truncated, byte-flipped and huge-shaped ONNX files give InputError, no hang, bounded memory', async () => {
  const rng = seedrandom('fuzz-onnx');
  const bytes = await readFile(path.join(ref, 'small_cnn.onnx'));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 30; i++) {
    const kind = i % 3;
    let file: string;
    if (kind === 2) {
      file = await mutated(`fuzz-${i}`, (m) => {
        const init = m.graph!.initializer![Math.floor(rng() * m.graph!.initializer!.length)];
        init.dims = [2 ** 20, 2 ** 20, Math.floor(rng() * 1000) + 1];
      });
    } else {
      const b = Buffer.from(bytes);
      file = path.join(ref, `fuzz-${i}.onnx`);
      if (kind === 0) await writeFile(file, b.subarray(0, Math.floor(rng() * b.length)));
      else {
        for (let k = 0; k < 3; k++) b[Math.floor(rng() * 64)] = Math.floor(rng() * 256);
        await writeFile(file, b);
      }
    }
    try {
      const { model } = await convertOnnx(file);
      model.dispose();
    } catch (e) {
      assert.ok(e instanceof InputError, `case ${i} (kind ${kind}): ${(e as Error).stack}`);
    }
  }
  assert.equal(tf.memory().numTensors, before);
  assert.ok(process.memoryUsage().rss < 2 * 1024 ** 3, 'bounded memory');
});

test('CLI: import -> layers -> capture (clean and adversarial) -> cka -> report on the imported ResNet-18', async () => {
  const CLI = path.resolve('dist/src/cli/main.js');
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  const ckpt = path.join(ref, 'cli-resnet');
  const bad = run(['import', path.join(ref, 'resnet18.onnx'), '--out', ckpt, '--mean', '0.5,0.5', '--backend', 'wasm']);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--mean\/--std: expected 3 values/);
  assert.ok(!existsSync(ckpt));
  const imp = run(['import', path.join(ref, 'resnet18.onnx'), '--out', ckpt, '--taps', 'conv1,layer*', '--mean', '0.4914,0.4822,0.4465', '--std', '0.247,0.2435,0.2616', '--backend', 'wasm']);
  assert.equal(imp.status, 0, imp.stderr);
  const meta = JSON.parse(await readFile(path.join(ckpt, 'meta.json'), 'utf8'));
  assert.deepEqual(meta.imported.mean, [0.4914, 0.4822, 0.4465]);
  assert.ok(meta.taps.includes('layer1') && meta.taps.includes('layer4.1.conv2') && !meta.taps.includes('fc'));
  const layers = run(['layers', ckpt]);
  assert.equal(layers.stdout.trim().split('\n')[0], 'conv1');
  const acts = path.join(ref, 'acts.arrow');
  const cap = run(['capture', ckpt, '--out', acts, '--data-dir', path.resolve('fixtures/cifar10'), '-n', '8', '--batch-size', '8', '--layers', 'conv1,layer2,layer4', '--eps', '8/255', '--steps', '1', '--backend', 'wasm']);
  assert.equal(cap.status, 0, cap.stderr);
  const sim = path.join(ref, 'sim.json');
  const cka = run(['cka', '--acts', acts, '--out', sim, '--backend', 'wasm']);
  assert.equal(cka.status, 0, cka.stderr);
  const html = path.join(ref, 'report.html');
  const rep = run(['report', '--sim', sim, '--out', html]);
  assert.equal(rep.status, 0, rep.stderr);
  assert.match(await readFile(html, 'utf8'), /layer4/);
});
