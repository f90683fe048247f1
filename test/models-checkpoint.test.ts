import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate, stat, unlink, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { tinyEncoderRequest } from './train-fixture.js';
import { buildModel, resolveArch, tapModel } from '../src/models/architectures.js';
import { loadCheckpoint, saveCheckpoint } from '../src/models/checkpoint.js';
import { captureActivations } from '../src/cka/capture/capture.js';
import { trainModel } from '../src/train/loop.js';
import { InputError } from '../src/errors.js';

let root: string;
let trained: string;
before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-ckpt-'));
  trained = path.join(root, 'trained');
  await trainModel(tinyEncoderRequest(trained));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const isInputError = (pattern: RegExp) => (e: unknown) => e instanceof InputError && pattern.test(e.message);

test('ResNet tap points are in network order and exist as layers', () => {
  const { model, taps } = buildModel({ arch: resolveArch('resnet18'), inputShape: [32, 32, 3], numClasses: 10, seed: 0 });
  assert.deepEqual(taps, [
    'stem',
    'stage1.block1', 'stage1.block2', 'stage2.block1', 'stage2.block2',
    'stage3.block1', 'stage3.block2', 'stage4.block1', 'stage4.block2',
    'pool', 'logits',
  ]);
  // ResNet-18 (CIFAR variant) has about 11.2M parameters.
  assert.ok(Math.abs(model.countParams() - 11.17e6) < 0.05e6, `params ${model.countParams()}`);
  const hooked = tapModel(model, ['stage2.block1', 'pool']);
  assert.deepEqual(hooked.outputs.map((o) => o.shape), [[null, 16, 16, 128], [null, 512]]);
  assert.throws(() => tapModel(model, ['stage9.block1']), isInputError(/stage9\.block1/));
  model.dispose();
});

test('depth and width are configurable; bad values are refused', () => {
  const { model, taps } = buildModel({ arch: resolveArch('resnet-small', 8, [2, 1]), inputShape: [16, 16, 3], numClasses: 4, seed: 0 });
  assert.deepEqual(taps, ['stem', 'stage1.block1', 'stage1.block2', 'stage2.block1', 'pool', 'logits']);
  assert.deepEqual(model.getLayer('stage2.block1').outputShape, [null, 8, 8, 16]);
  model.dispose();
  assert.throws(() => resolveArch('resnet-small', 0), isInputError(/--width/));
  assert.throws(() => resolveArch('resnet-small', 8, [2, 0]), isInputError(/--blocks/));
  assert.throws(() => resolveArch('vgg'), isInputError(/--arch: unknown architecture 'vgg'/));
});

test('a saved checkpoint loads back with identical predictions', async () => {
  const { model } = buildModel({ arch: resolveArch('resnet-small', 4), inputShape: [8, 8, 1], numClasses: 3, seed: 4 });
  const dir = path.join(root, 'roundtrip');
  await saveCheckpoint(dir, { model, meta: { hello: 'world' } });
  const back = await loadCheckpoint<{ hello: string }>(dir);
  assert.equal(back.meta.hello, 'world');
  const x = tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 1);
  const a = (model.predict(x) as tf.Tensor).dataSync();
  const b = (back.model.predict(x) as tf.Tensor).dataSync();
  assert.deepEqual(Array.from(b), Array.from(a));
  tf.dispose([x]);
  model.dispose();
  back.model.dispose();
});

test('a truncated weights file is refused, naming the file', async () => {
  const dir = path.join(root, 'truncated');
  await cp(trained, dir, { recursive: true });
  const weights = path.join(dir, 'weights.bin');
  await truncate(weights, (await stat(weights)).size - 8);
  await assert.rejects(loadCheckpoint(dir), isInputError(/weights\.bin.*expected/));
});

test('a missing model.json or meta.json is refused, naming the file', async () => {
  const noModel = path.join(root, 'no-model');
  await cp(trained, noModel, { recursive: true });
  await unlink(path.join(noModel, 'model.json'));
  await assert.rejects(loadCheckpoint(noModel), isInputError(/model\.json/));
  const noMeta = path.join(root, 'no-meta');
  await cp(trained, noMeta, { recursive: true });
  await unlink(path.join(noMeta, 'meta.json'));
  await assert.rejects(loadCheckpoint(noMeta), isInputError(/meta\.json: not found/));
  const badMeta = path.join(root, 'bad-meta');
  await cp(trained, badMeta, { recursive: true });
  await writeFile(path.join(badMeta, 'meta.json'), '{"oops":');
  await assert.rejects(loadCheckpoint(badMeta), isInputError(/meta\.json: not valid JSON/));
});

test('capture refuses wrong image shapes, too few samples and unknown layers, leaving no file', async () => {
  const out = path.join(root, 'acts.arrow');
  const base = { checkpoint: trained, out, n: 16, seed: 0, batchSize: 8, inputs: ['clean', 'adv'] as Array<'clean' | 'adv'> };
  await assert.rejects(captureActivations({ ...base, dataset: 'fashion-mnist' }), isInputError(/28x28x1.*expects 32x32x3/));
  await assert.rejects(captureActivations({ ...base, n: 3 }), isInputError(/--n: .*at least 4/));
  await assert.rejects(captureActivations({ ...base, layers: ['conv1', 'conv9'] }), isInputError(/conv9/));
  await assert.rejects(stat(out));
});

test('capture writes clean and adversarial sets that differ, without leaking tensors', async () => {
  const out = path.join(root, 'ok.arrow');
  const before = tf.memory().numTensors;
  const res = await captureActivations({
    checkpoint: trained,
    out,
    n: 16,
    seed: 0,
    batchSize: 8,
    inputs: ['clean', 'adv'],
    layers: ['pool', 'conv1'],
    attack: { eps: 0.1, stepSize: 0.05, steps: 2 },
  });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(res.sets, ['conv1@clean', 'pool@clean', 'conv1@adv', 'pool@adv']);
  const { readActivations } = await import('../src/formats/activations.js');
  const acts = await readActivations(out);
  const clean = acts.sets.find((s) => s.name === 'pool@clean')!;
  const adv = acts.sets.find((s) => s.name === 'pool@adv')!;
  assert.equal(clean.n, 16);
  assert.equal(clean.dim, 16);
  assert.ok(clean.data.some((v, i) => Math.abs(v - adv.data[i]) > 1e-6));
  assert.equal((acts.metadata as { attack: { eps: number } }).attack.eps, 0.1);
});
