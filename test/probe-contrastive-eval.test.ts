import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { tinyEncoderRequest } from './train-fixture.js';
import { trainModel } from '../src/train/loop.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import { loadProjectionEmbedder } from '../src/models/projection.js';
import { runEvaluation } from '../src/probe/eval-run.js';
import { DEFAULT_ATTACK_SETTINGS } from '../src/attacks/suite.js';

let root: string;
const common = tinyEncoderRequest('');

before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-tm1-'));
  await trainModel({ ...common, out: path.join(root, 'cl'), scheme: 'cl', regime: 'st', projDim: 8 });
  await trainModel({ ...common, out: path.join(root, 'sl'), scheme: 'sl', regime: 'st' });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('a contrastive checkpoint yields its projection head as a unit-norm embedder; a supervised one none', async () => {
  const { model } = await loadCheckpoint(path.join(root, 'cl'));
  const embedder = await loadProjectionEmbedder(path.join(root, 'cl'), model);
  assert.ok(embedder);
  const z = embedder.embed(tf.randomUniform([3, 32, 32, 3], 0, 1, 'float32', 2) as tf.Tensor4D);
  assert.deepEqual(z.shape, [3, 8]);
  const norms = tf.tidy(() => tf.sqrt(tf.sum(tf.square(z), 1)).arraySync() as number[]);
  for (const n of norms) assert.ok(Math.abs(n - 1) < 1e-4);
  z.dispose();
  embedder.dispose();
  model.dispose();
  const sl = await loadCheckpoint(path.join(root, 'sl'));
  assert.equal(await loadProjectionEmbedder(path.join(root, 'sl'), sl.model), undefined);
  sl.model.dispose();
});

test('eval runs the contrastive attack through the projection head ("threat model I") without leaking', async () => {
  const before = tf.memory().numTensors;
  const res = await runEvaluation({
    models: [path.join(root, 'cl')],
    attacks: ['clean', 'contrastive3'],
    eps: [0.1],
    settings: { ...DEFAULT_ATTACK_SETTINGS },
    n: 16,
    batchSize: 16,
    outDir: path.join(root, 'eval'),
  });
  assert.equal(tf.memory().numTensors, before);
  const clean = res.rows.find((r) => r.attack === 'clean')!;
  const adv = res.rows.find((r) => r.attack.startsWith('contrastive'))!;
  assert.ok(adv.accuracy <= clean.accuracy);
});

test('capture can attack through the projection head; a supervised model is refused', async () => {
  const { captureActivations } = await import('../src/cka/capture/capture.js');
  const { readActivations } = await import('../src/formats/activations.js');
  const { InputError } = await import('../src/errors.js');
  const out = path.join(root, 'tm1.arrow');
  const base = { n: 16, seed: 0, batchSize: 8, inputs: ['clean', 'adv'] as Array<'clean' | 'adv'>, layers: ['pool'], attack: { eps: 0.1, stepSize: 0.05, steps: 2 } };
  const before = tf.memory().numTensors;
  await captureActivations({ ...base, checkpoint: path.join(root, 'cl'), out, attackLoss: 'contrastive' });
  assert.equal(tf.memory().numTensors, before);
  const acts = await readActivations(out);
  assert.equal((acts.metadata as { attack: { loss: string } }).attack.loss, 'contrastive');
  const clean = acts.sets.find((s) => s.name === 'pool@clean')!;
  const adv = acts.sets.find((s) => s.name === 'pool@adv')!;
  assert.ok(clean.data.some((v, i) => Math.abs(v - adv.data[i]) > 1e-6));
  await assert.rejects(
    captureActivations({ ...base, checkpoint: path.join(root, 'sl'), out: path.join(root, 'no.arrow'), attackLoss: 'contrastive' }),
    (e: unknown) => e instanceof InputError && /projection head/.test(e.message),
  );
});

test('cka --model streams the same contrastive attack as capture (--attack-loss contrastive in both)', async () => {
  const { captureActivations } = await import('../src/cka/capture/capture.js');
  const { runSimilarity } = await import('../src/cka/similarity/run.js');
  const { readSimilarity } = await import('../src/formats/similarity.js');
  const { InputError } = await import('../src/errors.js');
  const { spawnSync } = await import('node:child_process');
  const base = { n: 16, seed: 0, batchSize: 8, inputs: ['clean', 'adv'] as Array<'clean' | 'adv'>, layers: ['pool'], attack: { eps: 0.1, stepSize: 0.05, steps: 2 } };
  const acts = path.join(root, 'tm1-cka.arrow');
  await captureActivations({ ...base, checkpoint: path.join(root, 'cl'), out: acts, attackLoss: 'contrastive' });
  const fromActs = await runSimilarity({ acts, estimator: 'minibatch', batchSize: 8, out: path.join(root, 'tm1-acts') });
  const before = tf.memory().numTensors;
  const streamed = await runSimilarity({ ...base, models: [path.join(root, 'cl')], attackLoss: 'contrastive', out: path.join(root, 'tm1-stream') });
  assert.equal(tf.memory().numTensors, before);
  const a = fromActs.written[0].similarity;
  const b = streamed.written[0].similarity;
  assert.deepEqual(b.rows, a.rows);
  // Same adversarial inputs (same seeds, batches and objective): the same CKA within float32 rounding.
  for (let k = 0; k < a.cka.length; k++) assert.ok(Math.abs(a.cka[k] - b.cka[k]) < 1e-4, `${a.cka[k]} vs ${b.cka[k]}`);
  const attack = (b.metadata.context as { attack: Record<string, { loss: string }> }).attack;
  assert.equal(attack.a.loss, 'contrastive');
  // The cross-entropy attack gives other adversarial activations.
  const ce = await runSimilarity({ ...base, models: [path.join(root, 'cl')], out: path.join(root, 'tm1-ce') });
  assert.ok(ce.written[0].similarity.cka.some((v, k) => Math.abs(v - b.cka[k]) > 1e-6));
  await assert.rejects(
    runSimilarity({ ...base, models: [path.join(root, 'sl')], attackLoss: 'contrastive', out: path.join(root, 'no') }),
    (e: unknown) => e instanceof InputError && /projection head/.test(e.message),
  );
  // The flag, from the command line.
  const cli = path.resolve('dist/src/cli/main.js');
  const r = spawnSync(process.execPath, [cli, 'cka', '--model', path.join(root, 'cl'), '--attack-loss', 'contrastive', '--n', '16', '--batch-size', '8', '--layers', 'pool', '--eps', '0.1', '--step-size', '0.05', '--steps', '2', '--out', path.join(root, 'tm1-cli'), '--backend', 'wasm'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fromCli = await readSimilarity(path.join(root, 'tm1-cli', 'similarity.arrow'));
  for (let k = 0; k < b.cka.length; k++) assert.ok(Math.abs(fromCli.cka[k] - b.cka[k]) < 1e-4);
});

test('full fine-tuning keeps the projection head, so the fine-tuned model still has threat model I', async () => {
  const { fineTune } = await import('../src/probe/finetune.js');
  const res = await fineTune({ checkpoint: path.join(root, 'cl'), mode: 'full-adv', out: path.join(root, 'cl-fat'), epochs: 1, limit: 16, evalLimit: 8, batchSize: 16 });
  assert.equal(res.kind, 'checkpoint');
  const { model } = await loadCheckpoint(path.join(root, 'cl-fat'));
  const embedder = await loadProjectionEmbedder(path.join(root, 'cl-fat'), model);
  assert.ok(embedder, 'fine-tuned checkpoint lost its projection head');
  embedder.dispose();
  model.dispose();
});
