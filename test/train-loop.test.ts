import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { tinyTrainRequest, checkpointWeights } from './train-fixture.js';
import { trainModel, type TrainRequest } from '../src/train/loop.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import type { TrainCheckpointMeta as CheckpointMeta } from '../src/train/meta.js';
import { InputError } from '../src/errors.js';

const FIXTURE = path.resolve('fixtures/cifar10');

const tiny = tinyTrainRequest;
const weightsOf = checkpointWeights;

let root: string;
before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-train-'));
});

test('an interrupted run resumed from its checkpoint ends with the same weights as an uninterrupted one', async () => {
  const straight = path.join(root, 'straight');
  const interrupted = path.join(root, 'interrupted');
  await trainModel(tiny(straight, { regime: 'at', attack: { norm: 'linf', eps: 0.03, stepSize: 0.015, steps: 2, randomStart: true, restarts: 1, seed: 0 } }));
  // Stop mid-way through the first epoch (3 batches each of 16 images), then continue.
  const partial = await trainModel(tiny(interrupted, { maxSteps: 2, regime: 'at', attack: { norm: 'linf', eps: 0.03, stepSize: 0.015, steps: 2, randomStart: true, restarts: 1, seed: 0 } }));
  assert.equal(partial.progress.complete, false);
  assert.equal(partial.progress.globalStep, 2);
  const resumed = await trainModel(tiny(interrupted, { resume: true, regime: 'at', attack: { norm: 'linf', eps: 0.03, stepSize: 0.015, steps: 2, randomStart: true, restarts: 1, seed: 0 } }));
  assert.equal(resumed.progress.complete, true);
  assert.equal(resumed.progress.globalStep, 6);
  const a = await weightsOf(straight);
  const b = await weightsOf(interrupted);
  assert.equal(a.length, b.length);
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) for (let j = 0; j < a[i].length; j++) maxDiff = Math.max(maxDiff, Math.abs(a[i][j] - b[i][j]));
  assert.ok(maxDiff < 1e-5, `weights differ by ${maxDiff}`);
  // Sanity: training changed the weights at all (so the comparison above means something).
  const fresh = await trainModel(tiny(path.join(root, 'zero'), { maxSteps: 0 }));
  assert.equal(fresh.progress.globalStep, 0);
  const c = await weightsOf(path.join(root, 'zero'));
  assert.ok(a.some((w, i) => w.some((v, j) => Math.abs(v - c[i][j]) > 1e-4)));
});

test('resuming with different options is refused, naming the option', async () => {
  const dir = path.join(root, 'mismatch');
  await trainModel(tiny(dir, { epochs: 1 }));
  await assert.rejects(trainModel(tiny(dir, { resume: true, lr: 0.1 })), (e: unknown) => e instanceof InputError && /'lr'/.test(e.message));
  await assert.rejects(trainModel(tiny(dir)), (e: unknown) => e instanceof InputError && /--resume/.test(e.message));
});

test('no tensor leaks across training iterations', async () => {
  const counts: number[] = [];
  await trainModel(
    tiny(path.join(root, 'leak'), {
      limit: 96,
      epochs: 1,
      regime: 'at',
      attack: { norm: 'linf', eps: 0.03, stepSize: 0.015, steps: 1, randomStart: true, restarts: 1, seed: 0 },
      onEvent: (e) => {
        if (e.type === 'step') counts.push(tf.memory().numTensors);
      },
    }),
  );
  assert.equal(counts.length, 6);
  // Optimizer slots are created at the first update; from then on the count must not move.
  assert.deepEqual(counts.slice(1), new Array(counts.length - 1).fill(counts[1]), `tensor counts per step: ${counts.join(', ')}`);
});

test('a whole training call (epochs, evaluations, checkpoints) leaves no tensor behind, with SGD+momentum and with Adam', async () => {
  for (const optimizer of ['sgd', 'adam'] as const) {
    const before = tf.memory().numTensors;
    await trainModel(tiny(path.join(root, `leak-call-${optimizer}`), { limit: 32, epochs: 2, optimizer, augment: 'none' }));
    assert.equal(tf.memory().numTensors, before, `${optimizer}: tensors left after trainModel`);
  }
});

test('the checkpoint is a TensorFlow.js LayersModel with meta.json', async () => {
  const dir = path.join(root, 'format');
  const meta = await trainModel(tiny(dir, { epochs: 1 }));
  const modelJson = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
  assert.equal(modelJson.format, 'layers-model');
  assert.deepEqual(modelJson.weightsManifest[0].paths, ['weights.bin']);
  const onDisk = JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as CheckpointMeta;
  assert.equal(onDisk.backend, 'wasm');
  assert.deepEqual(onDisk.taps, ['conv1', 'conv2', 'conv3', 'pool', 'logits']);
  assert.ok(onDisk.metrics && onDisk.metrics.cleanAccuracy >= 0 && onDisk.metrics.cleanAccuracy <= 1);
  assert.equal(meta.history.length, 1);
  const { model } = await loadCheckpoint<CheckpointMeta>(dir);
  const y = tf.tidy(() => model.predict(tf.zeros([2, 32, 32, 3])) as tf.Tensor);
  assert.deepEqual(y.shape, [2, 10]);
  y.dispose();
  model.dispose();
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});
