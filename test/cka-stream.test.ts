import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Matrix } from 'ml-matrix';
import { initBackend } from '../src/backend/index.js';
import { trainModel } from '../src/train/loop.js';
import { captureActivations } from '../src/cka/capture/capture.js';
import { streamMinibatchCka } from '../src/cka/similarity/shortcuts.js';
import type { StreamCkaOptions } from '../src/cka/stream/stream.js';
import { mergeMinibatchRuns } from '../src/cka/minibatch/files.js';
import { readActivations } from '../src/formats/activations.js';
import { readSimilarity } from '../src/formats/similarity.js';
import { readAccumulators } from '../src/formats/accumulators.js';
import { matrixFromSet, minibatchCka } from '../src/cka/measures/reference.js';
import type { ActivationSet } from '../src/formats/activations.js';
import { InputError } from '../src/errors.js';

const FIXTURE = path.resolve('fixtures/cifar10');
let root: string;
let ckpt: string;

before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-stream-'));
  ckpt = path.join(root, 'model');
  await trainModel({
    out: ckpt, dataset: 'cifar10', dataDir: FIXTURE, limit: 32, evalLimit: 8, arch: 'convnet', width: 4, epochs: 1, batchSize: 16,
    optimizer: 'sgd', lr: 0.05, evalAttack: { norm: 'linf', eps: 0.03, stepSize: 0.01, steps: 1, randomStart: true, restarts: 1, seed: 0 }, seed: 5,
  });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const N = 40;
const BATCH = 16;
const base = (out: string): StreamCkaOptions => ({
  models: [ckpt], out, dataDir: FIXTURE, n: N, seed: 3, batchSize: BATCH, inputs: ['clean', 'adv'], layers: ['conv1', 'conv3', 'pool', 'logits'],
});

function batchesOf(set: ActivationSet): Matrix[] {
  const out: Matrix[] = [];
  for (let s = 0; s < set.n; s += BATCH) {
    const size = Math.min(BATCH, set.n - s);
    out.push(matrixFromSet({ ...set, n: size, data: set.data.subarray(s * set.dim, (s + size) * set.dim) }));
  }
  return out;
}

test('fused capture + minibatch CKA equals capture followed by the float64 reference (clean and PGD inputs), without leaking tensors', async () => {
  const out = path.join(root, 'stream');
  const before = tf.memory().numTensors;
  const res = await streamMinibatchCka(base(out));
  assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  assert.equal(res.batches, 3);
  assert.equal(res.samples, N);
  const sim = await readSimilarity(path.join(out, 'similarity.arrow'));
  assert.equal(sim.metadata.estimator, 'minibatch');
  assert.equal(sim.metadata.n, N);
  assert.deepEqual(sim.rows, ['conv1@clean', 'conv3@clean', 'pool@clean', 'logits@clean', 'conv1@adv', 'conv3@adv', 'pool@adv', 'logits@adv']);

  const acts = path.join(root, 'acts.arrow');
  await captureActivations({ checkpoint: ckpt, out: acts, dataDir: FIXTURE, n: N, seed: 3, batchSize: BATCH, inputs: ['clean', 'adv'], layers: ['conv1', 'conv3', 'pool', 'logits'] });
  const captured = await readActivations(acts);
  assert.deepEqual(captured.sets.map((s) => s.name), sim.rows);
  const batches = captured.sets.map(batchesOf);
  const m = sim.rows.length;
  let worst = 0;
  for (let i = 0; i < m; i++) {
    for (let j = i; j < m; j++) {
      const ref = minibatchCka(batches[i], batches[j]);
      worst = Math.max(worst, Math.abs(sim.cka[i * m + j] - ref));
    }
  }
  assert.ok(worst < 1e-4, `max |stream - reference| = ${worst}`);
  // Clean and adversarial conv1 differ (the attack did something), so the comparison covers both inputs.
  assert.ok(sim.cka[0 * m + 4] < 0.9999, `CKA(conv1@clean, conv1@adv) = ${sim.cka[0 * m + 4]}`);
});

test('two shards merged with cka-merge equal one run, statistics columns included', async () => {
  const stats = { bootstrap: 30, permutations: 2 };
  const whole = path.join(root, 'whole');
  await streamMinibatchCka({ ...base(whole), ...stats });
  const shards = [0, 1].map((i) => path.join(root, `shard${i}`));
  for (const [i, dir] of shards.entries()) await streamMinibatchCka({ ...base(dir), ...stats, shard: { index: i, count: 2 } });
  const merged = path.join(root, 'merged');
  await mergeMinibatchRuns(shards, merged);
  const a = await readSimilarity(path.join(whole, 'similarity.arrow'));
  const b = await readSimilarity(path.join(merged, 'similarity.arrow'));
  assert.deepEqual(b.rows, a.rows);
  assert.equal(b.metadata.n, N);
  for (const col of ['ci_low', 'ci_high', 'null_mean', 'null_sd', 'hsic']) assert.ok(a.extra?.[col] && b.extra?.[col], `column ${col}`);
  const diff = (x: Float64Array, y: Float64Array) => Math.max(...Array.from(x, (v, k) => Math.abs(v - y[k])));
  assert.ok(diff(a.cka, b.cka) < 1e-12);
  for (const col of ['ci_low', 'ci_high', 'null_mean']) assert.ok(diff(a.extra![col], b.extra![col]) < 1e-12, col);
  const acc = await readAccumulators(merged);
  assert.deepEqual(acc.state.batchIds, [0, 1, 2]);
  // A shard merged with itself, or with a run of other options, is refused.
  await assert.rejects(mergeMinibatchRuns([shards[0], shards[0]], path.join(root, 'bad')), (e: unknown) => e instanceof InputError && /both hold batch/.test(e.message));
  await assert.rejects(mergeMinibatchRuns([shards[0], whole.replace('whole', 'stream')], path.join(root, 'bad')), InputError);
});

test('two worker threads (each with its own wasm instance) give the same matrix as one thread', async () => {
  const one = path.join(root, 'one-thread');
  const two = path.join(root, 'two-threads');
  await streamMinibatchCka({ ...base(one), bootstrap: 10, permutations: 1 });
  let last = 0;
  const res = await streamMinibatchCka({ ...base(two), bootstrap: 10, permutations: 1, workers: 2, onProgress: (done, total) => (last = done / total) });
  assert.equal(last, 1, 'progress reaches the total');
  assert.equal(res.samples, N);
  const a = await readSimilarity(path.join(one, 'similarity.arrow'));
  const b = await readSimilarity(path.join(two, 'similarity.arrow'));
  const diff = (x: Float64Array, y: Float64Array) => Math.max(...Array.from(x, (v, k) => Math.abs(v - y[k])));
  assert.ok(diff(a.cka, b.cka) < 1e-12, `${diff(a.cka, b.cka)}`);
  assert.ok(diff(a.extra!.ci_low, b.extra!.ci_low) < 1e-12);
  await assert.rejects(streamMinibatchCka({ ...base(path.join(root, 'x')), layers: ['nope'], workers: 2 }), (e: unknown) => e instanceof InputError && /--layers/.test(e.message));
});

test('--taps all streams every layer; the block taps\' entries equal the blocks run, on one thread and on two workers', async () => {
  const blocks = path.join(root, 'taps-blocks');
  const all = path.join(root, 'taps-all');
  const allWorkers = path.join(root, 'taps-all-workers');
  const { layers: _l, ...noLayers } = base(blocks);
  await streamMinibatchCka({ ...noLayers, out: blocks, inputs: ['clean'] });
  await streamMinibatchCka({ ...noLayers, out: all, inputs: ['clean'], tapSet: 'all' });
  await streamMinibatchCka({ ...noLayers, out: allWorkers, inputs: ['clean'], tapSet: 'all', workers: 2 });
  const b = await readSimilarity(path.join(blocks, 'similarity.arrow'));
  const a = await readSimilarity(path.join(all, 'similarity.arrow'));
  const w = await readSimilarity(path.join(allWorkers, 'similarity.arrow'));
  const stage = (k: number) => [`conv${k}.conv`, `conv${k}.bn`, `conv${k}.relu`, `conv${k}`];
  assert.deepEqual(a.rows, [...stage(1), ...stage(2), ...stage(3), 'pool', 'logits'].map((l) => `${l}@clean`));
  assert.deepEqual(w.rows, a.rows);
  assert.ok(Math.max(...Array.from(a.cka, (v, k) => Math.abs(v - w.cka[k]))) < 1e-12, 'workers change the --taps all matrix');
  for (const [i, r] of b.rows.entries()) {
    for (const [j, c] of b.cols.entries()) {
      const v = a.cka[a.rows.indexOf(r) * a.cols.length + a.cols.indexOf(c)];
      assert.ok(Math.abs(v - b.cka[i * b.cols.length + j]) < 1e-5, `${r} x ${c}: ${v} (all) vs ${b.cka[i * b.cols.length + j]} (blocks)`);
    }
  }
});

test('two models: A x B of a model with its copy is 1 on the diagonal, and within-model tables are written', async () => {
  const copy = path.join(root, 'copy');
  await cp(ckpt, copy, { recursive: true });
  const out = path.join(root, 'two');
  const res = await streamMinibatchCka({ ...base(out), models: [ckpt, copy], inputs: ['adv'] });
  assert.deepEqual(res.written.map((w) => path.relative(out, w.file)), ['similarity.arrow', path.join('a', 'similarity.arrow'), path.join('b', 'similarity.arrow')]);
  const ab = await readSimilarity(path.join(out, 'similarity.arrow'));
  assert.deepEqual(ab.rows, ['conv1@adv', 'conv3@adv', 'pool@adv', 'logits@adv']);
  assert.deepEqual(ab.metadata.inputs, [ckpt, copy]);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(ab.cka[i * 4 + i] - 1) < 1e-4, `${ab.rows[i]}: ${ab.cka[i * 4 + i]}`);
  const within = await readSimilarity(path.join(out, 'a', 'similarity.arrow'));
  assert.ok(Math.abs(within.cka[1] - ab.cka[1]) < 1e-4);
});

test('bad requests fail with the flag named', async () => {
  await assert.rejects(streamMinibatchCka({ ...base(path.join(root, 'x')), batchSize: 3 }), (e: unknown) => e instanceof InputError && /--batch-size/.test(e.message));
  await assert.rejects(streamMinibatchCka({ ...base(path.join(root, 'x')), n: 34 }), (e: unknown) => e instanceof InputError && /last batch of 2/.test(e.message));
  await assert.rejects(streamMinibatchCka({ ...base(path.join(root, 'x')), layers: ['nope'] }), (e: unknown) => e instanceof InputError && /--layers/.test(e.message));
});
