import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { tinyEncoderRequest } from './train-fixture.js';
import { trainModel } from '../src/train/loop.js';
import { fineTune, type FineTuneOptions } from '../src/probe/finetune.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import { InputError } from '../src/errors.js';

let root: string;
let encoder: string;

before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-ft-resume-'));
  encoder = path.join(root, 'enc');
  await trainModel(tinyEncoderRequest(encoder));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function tiny(out: string, extra: Partial<FineTuneOptions> = {}): FineTuneOptions {
  return {
    checkpoint: encoder,
    mode: 'full-adv',
    out,
    limit: 48,
    evalLimit: 8,
    epochs: 2,
    batchSize: 16,
    lr: 3e-3,
    objective: 'trades',
    attack: { eps: 0.03, stepSize: 0.015, steps: 2 },
    evalAttack: { steps: 1 },
    seed: 4,
    ...extra,
  };
}

async function weightsOf(dir: string): Promise<Float32Array[]> {
  const { model } = await loadCheckpoint(dir);
  const values = model.getWeights().map((w) => w.dataSync() as Float32Array);
  model.dispose();
  return values;
}

function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) for (let j = 0; j < a[i].length; j++) d = Math.max(d, Math.abs(a[i][j] - b[i][j]));
  return d;
}

for (const mode of ['full-adv', 'robust-linear'] as const) {
  test(`${mode}: a fine-tune interrupted mid-epoch and resumed ends with the same weights and losses as an uninterrupted one`, async () => {
    const straight = await fineTune(tiny(path.join(root, `${mode}-straight`), { mode }));
    const out = path.join(root, `${mode}-interrupted`);
    // 3 batches of 16 per epoch: stop after 2 steps (mid-epoch 1), then after 2 more (mid-epoch 2), then finish.
    const first = await fineTune(tiny(out, { mode, maxSteps: 2 }));
    assert.equal(first.metrics, undefined);
    assert.deepEqual([first.progress.epochsDone, first.progress.stepInEpoch, first.progress.globalStep], [0, 2, 2]);
    const onDisk = JSON.parse(await readFile(path.join(out, 'meta.json'), 'utf8'));
    if (mode === 'full-adv') {
      // An unfinished fine-tune is not a finished checkpoint for the other tools.
      assert.equal(onDisk.progress.complete, false);
      assert.equal(onDisk.metrics, undefined);
      assert.equal(onDisk.finetune.progress.globalStep, 2);
    } else {
      assert.equal(onDisk.progress.globalStep, 2);
    }
    const second = await fineTune(tiny(out, { mode, maxSteps: 2, resume: true }));
    assert.deepEqual([second.progress.epochsDone, second.progress.stepInEpoch, second.progress.globalStep], [1, 1, 4]);
    const done = await fineTune(tiny(out, { mode, resume: true }));
    assert.equal(done.progress.globalStep, 6);
    assert.ok(done.metrics && straight.metrics);
    const d = maxDiff(await weightsOf(straight.out), await weightsOf(out));
    // Bit-exact: Adam's beta^t is restored as the steps built it (restoreOptimizer), so nothing drifts.
    assert.equal(d, 0, `weights differ by ${d}`);
    assert.deepEqual(done.metrics.trainLoss, straight.metrics.trainLoss);
    assert.equal(done.metrics.cleanAccuracy, straight.metrics.cleanAccuracy);
    // Sanity: fine-tuning moved the weights (so the comparison above means something).
    const zero = await fineTune(tiny(path.join(root, `${mode}-zero`), { mode, maxSteps: 0 }));
    assert.equal(zero.progress.globalStep, 0);
    assert.ok(maxDiff(await weightsOf(straight.out), await weightsOf(zero.out)) > 1e-4);
    // Resuming a finished run does nothing and reports its figures.
    const again = await fineTune(tiny(out, { mode, resume: true }));
    assert.equal(again.progress.globalStep, 6);
    assert.deepEqual(again.metrics, done.metrics);
  });
}

test('resuming a fine-tune with different options is refused, naming meta.json and the option', async () => {
  const out = path.join(root, 'mismatch');
  await fineTune(tiny(out, { maxSteps: 1 }));
  await assert.rejects(fineTune(tiny(out, { resume: true, lr: 1e-2 })), (e: unknown) => e instanceof InputError && /meta\.json.*'lr'/.test(e.message));
  await assert.rejects(fineTune(tiny(out, { resume: true, objective: 'ce-ce' })), (e: unknown) => e instanceof InputError && /meta\.json.*'objective'/.test(e.message));
  await assert.rejects(fineTune(tiny(out, { resume: true, mode: 'full' as const, objective: 'ce-ce' })), (e: unknown) => e instanceof InputError && /'mode'/.test(e.message));
  await assert.rejects(fineTune(tiny(out)), (e: unknown) => e instanceof InputError && /--resume/.test(e.message) && /--overwrite/.test(e.message));
  await assert.rejects(fineTune(tiny(out, { resume: true, overwrite: true })), (e: unknown) => e instanceof InputError && /exclude/.test(e.message));
  // A trained (not fine-tuned) checkpoint has no run to resume.
  await assert.rejects(fineTune(tiny(encoder, { resume: true })), (e: unknown) => e instanceof InputError && /not a fine-tuning output/.test(e.message));
});
