import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { encoderDirFor, trainScenario } from '../src/pipeline/scenario.js';
import { trainModel } from '../src/train/loop.js';
import { InputError } from '../src/errors.js';
import { captureActivations } from '../src/cka/capture/capture.js';
import { readActivations } from '../src/formats/activations.js';

let root: string;
before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-scenario-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const base = {
  dataset: 'cifar10' as const,
  dataDir: path.resolve('fixtures/cifar10'),
  limit: 32,
  evalLimit: 16,
  arch: 'convnet',
  width: 4,
  epochs: 1,
  batchSize: 16,
  attack: { norm: 'linf' as const, eps: 0.03, stepSize: 0.015, steps: 1, randomStart: true, restarts: 1, seed: 0 },
  evalAttack: { norm: 'linf' as const, eps: 0.03, stepSize: 0.015, steps: 1, randomStart: false, restarts: 1, seed: 0 },
  fineTuneEpochs: 1,
};

test('pat pre-trains an adversarial encoder and trains a robust linear head on it; st-fat fine-tunes a standard encoder', async () => {
  const pat = await trainScenario({ ...base, out: path.join(root, 'pat'), regime: 'pat' });
  assert.equal(pat.encoder.config.regime, 'at');
  assert.equal(pat.encoderDir, encoderDirFor(path.join(root, 'pat')));
  assert.equal(pat.fineTuned.kind, 'probe');
  assert.equal(pat.fineTuned.config.mode, 'robust-linear');
  // A PAT model is its frozen encoder with the robust head: capture attacks through that head.
  const acts = await captureActivations({ checkpoint: path.join(root, 'pat'), out: path.join(root, 'pat.arrow'), n: 8, seed: 0, batchSize: 8, inputs: ['clean', 'adv'], layers: ['pool', 'logits'] });
  assert.deepEqual(acts.sets, ['pool@clean', 'logits@clean', 'pool@adv', 'logits@adv']);
  const md = (await readActivations(path.join(root, 'pat.arrow'))).metadata as { model: { probe: { featureLayer: string } | null } };
  assert.equal(md.model.probe?.featureLayer, 'pool');
  const stFat = await trainScenario({ ...base, out: path.join(root, 'st-fat'), regime: 'st-fat' });
  assert.equal(stFat.encoder.config.regime, 'st');
  assert.equal(stFat.fineTuned.kind, 'checkpoint');
  const meta = JSON.parse(await readFile(path.join(root, 'st-fat', 'meta.json'), 'utf8'));
  assert.equal(meta.format, 'robustsim-checkpoint/1');
  // Re-running with --resume reuses the finished encoder and the finished fine-tuning.
  const again = await trainScenario({ ...base, out: path.join(root, 'st-fat'), regime: 'st-fat', resume: true });
  assert.equal(again.encoder.progress.globalStep, stFat.encoder.progress.globalStep);
  assert.equal(again.fineTuned.progress.globalStep, stFat.fineTuned.progress.globalStep);
  assert.deepEqual(again.fineTuned.metrics, stFat.fineTuned.metrics);
  // More fine-tuning epochs on --resume continue the fine-tuning from where it ended.
  const longer = await trainScenario({ ...base, out: path.join(root, 'st-fat'), regime: 'st-fat', resume: true, fineTuneEpochs: 2 });
  assert.equal(longer.fineTuned.progress.globalStep, 2 * stFat.fineTuned.progress.globalStep);
  assert.equal(longer.fineTuned.metrics?.trainLoss.length, 2);
});

test('trainModel itself refuses scenario regimes, pointing at trainScenario', async () => {
  await assert.rejects(
    trainModel({ ...base, out: path.join(root, 'x'), regime: 'fat' as never }),
    (e: unknown) => e instanceof InputError && /trainScenario/.test(e.message),
  );
});
