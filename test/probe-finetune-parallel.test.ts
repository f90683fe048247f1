import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { tinyEncoderRequest } from './train-fixture.js';
import { trainModel } from '../src/train/loop.js';
import { fineTune, type FineTuneOptions } from '../src/probe/finetune.js';
import { fineTuneVariables, startFineTuneParallel, type FineTuneShardSettings } from '../src/probe/finetune-parallel.js';
import { fineTuneAttack, fineTuneLoss } from '../src/probe/objective.js';
import { shardRanges } from '../src/parallel/weights.js';
import { subSeed } from '../src/util/rng.js';
import { readMeta, loadCheckpoint } from '../src/models/checkpoint.js';
import { InputError } from '../src/errors.js';
import { trainScenario } from '../src/pipeline/scenario.js';

let root: string;
let encoder: string;

before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-ft-parallel-'));
  encoder = path.join(root, 'enc');
  await trainModel(tinyEncoderRequest(encoder));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const SHAPE: [number, number, number] = [6, 6, 3];

/** A small encoder + head without BatchNorm (so shards and the whole batch agree exactly in training mode). */
function plainModel(): tf.LayersModel {
  const input = tf.input({ shape: SHAPE });
  let y = tf.layers.conv2d({ name: 'c1', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  y = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(y) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ name: 'logits', units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(y) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits });
}

function batch(step: number, n: number): { x: Float32Array; y: Int32Array } {
  const x = tf.tidy(() => tf.randomUniform([n, ...SHAPE], 0, 1, 'float32', 100 + step).dataSync() as Float32Array);
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7 + step) % 3);
  return { x: Float32Array.from(x), y };
}

/**
 * The single-thread reference of a data-parallel step: each shard's adversarial images made with its
 * shard seed (as the workers do), then the fine-tuning loss of the whole batch and one Adam step.
 */
function referenceStep(model: tf.LayersModel, s: FineTuneShardSettings, x: Float32Array, y: Int32Array, seed: number, workers: number, optimizer: tf.Optimizer): void {
  const n = y.length;
  const xs = tf.tensor4d(x, [n, ...SHAPE]);
  const ys = tf.tensor1d(y, 'int32');
  const advs = shardRanges(n, workers).map((r, k) => {
    const xk = xs.slice(r.start, r.end - r.start);
    const yk = ys.slice(r.start, r.end - r.start);
    const a = fineTuneAttack(model, xk, yk, s, subSeed(seed, 'shard', k));
    tf.dispose([xk, yk, ...a.owned]);
    return a.adv;
  });
  const adv = tf.concat(advs, 0);
  const vars = fineTuneVariables(model, s.mode);
  const { value, grads } = tf.variableGrads(() => fineTuneLoss(model, xs, ys, adv, s, s.mode === 'full-adv'), vars);
  optimizer.applyGradients(vars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
  tf.dispose([xs, ys, adv, ...advs, value, ...Object.values(grads)]);
}

function maxDiff(a: tf.Tensor[], b: tf.Tensor[]): number {
  let d = 0;
  a.forEach((t, i) => {
    const u = t.dataSync();
    const v = b[i].dataSync();
    for (let j = 0; j < u.length; j++) d = Math.max(d, Math.abs(u[j] - v[j]));
  });
  return d;
}

const ATTACK = { norm: 'linf' as const, eps: 0.05, stepSize: 0.02, steps: 2, randomStart: true, restarts: 1, seed: 0 };

for (const [mode, objective] of [
  ['full-adv', 'ce-ce'],
  ['full-adv', 'trades'],
  ['robust-linear', 'trades'],
] as const) {
  test(`${mode} ${objective}: 2 worker threads take the steps of the whole batch (no BatchNorm), leak-free`, async () => {
    const s: FineTuneShardSettings = { mode, objective, attack: ATTACK, advWeight: 0.7, tradesBeta: 3 };
    const parallelModel = plainModel();
    const referenceModel = plainModel();
    assert.equal(maxDiff(parallelModel.getWeights(), referenceModel.getWeights()), 0);
    const optA = tf.train.adam(0.01);
    const optB = tf.train.adam(0.01);
    const parallel = await startFineTuneParallel(parallelModel, s, 2, SHAPE);
    const counts: number[] = [];
    try {
      for (let step = 0; step < 4; step++) {
        // 9 samples: unequal shards (5 and 4), so the share weighting matters.
        const { x, y } = batch(step, 9);
        const loss = await parallel.step(x, y, 40 + step, optA);
        assert.ok(Number.isFinite(loss) && loss > 0);
        referenceStep(referenceModel, s, x, y, 40 + step, 2, optB);
        counts.push(tf.memory().numTensors);
      }
    } finally {
      await parallel.close();
    }
    const initial = plainModel();
    const moved = maxDiff(parallelModel.getWeights(), initial.getWeights());
    initial.dispose();
    assert.ok(moved > 1e-3, `the steps moved the weights (${moved})`);
    const d = maxDiff(parallelModel.getWeights(), referenceModel.getWeights());
    assert.ok(d < 1e-4, `2 threads vs the whole batch: max weight difference ${d}`);
    assert.equal(counts[3], counts[1], `main-thread tensors stable across steps: ${counts.join(', ')}`);
    parallelModel.dispose();
    referenceModel.dispose();
    optA.dispose();
    optB.dispose();
  });
}

function tiny(out: string, extra: Partial<FineTuneOptions> = {}): FineTuneOptions {
  return {
    checkpoint: encoder,
    mode: 'robust-linear',
    out,
    limit: 40,
    evalLimit: 8,
    epochs: 2,
    batchSize: 16,
    lr: 3e-3,
    // No random start: the ce-ce attack is then the same whichever seed a shard gets.
    attack: { eps: 0.03, stepSize: 0.015, steps: 2, randomStart: false },
    evalAttack: { steps: 1 },
    seed: 4,
    ...extra,
  };
}

test('robust-linear on the fixture encoder (BatchNorm frozen): --workers 2 ends where --workers 1 does, records its workers, finite metrics', async () => {
  const one = await fineTune(tiny(path.join(root, 'one')));
  const two = await fineTune(tiny(path.join(root, 'two'), { workers: 2 }));
  assert.ok(two.metrics && Number.isFinite(two.metrics.cleanAccuracy) && Number.isFinite(two.metrics.robustAccuracy));
  assert.ok(two.metrics.trainLoss.every(Number.isFinite));
  const meta = await readMeta<{ config: { workers?: number } }>(path.join(root, 'two'));
  assert.equal(meta.config.workers, 2);
  one.metrics!.trainLoss.forEach((l, i) => assert.ok(Math.abs(l - two.metrics!.trainLoss[i]) < 1e-4, `epoch ${i + 1} loss ${l} vs ${two.metrics!.trainLoss[i]}`));
  const a = await loadCheckpoint(path.join(root, 'one'));
  const b = await loadCheckpoint(path.join(root, 'two'));
  const d = maxDiff(a.model.getWeights(), b.model.getWeights());
  a.model.dispose();
  b.model.dispose();
  assert.ok(d < 1e-4, `head weights differ by ${d}`);
});

test('full-adv trades with --workers 2 on the fixture: finite metrics; interrupted and resumed ends as the straight run', async () => {
  const opts = (out: string, extra: Partial<FineTuneOptions> = {}) => tiny(out, { mode: 'full-adv', objective: 'trades', workers: 2, ...extra });
  const straight = await fineTune(opts(path.join(root, 'fa-straight')));
  assert.ok(straight.metrics && Number.isFinite(straight.metrics.cleanAccuracy) && Number.isFinite(straight.metrics.robustAccuracy));
  const cut = path.join(root, 'fa-cut');
  const first = await fineTune(opts(cut, { maxSteps: 3 }));
  assert.equal(first.metrics, undefined);
  const resumed = await fineTune(opts(cut, { resume: true }));
  assert.deepEqual(resumed.metrics!.trainLoss.map((l) => l.toFixed(5)), straight.metrics.trainLoss.map((l) => l.toFixed(5)));
  const meta = await readMeta<{ finetune: { config: { workers?: number } } }>(cut);
  assert.equal(meta.finetune.config.workers, 2);
});

test('--workers must be an integer >= 1 (InputError)', async () => {
  for (const workers of [0, 1.5, -2]) {
    await assert.rejects(fineTune(tiny(path.join(root, `bad-${workers}`), { workers })), (err: unknown) => err instanceof InputError && /--workers: expected an integer >= 1/.test(err.message));
  }
});

test('a fat scenario passes train --workers to its fine-tuning stage', async () => {
  const { out: _out, ...base } = tinyEncoderRequest(path.join(root, 'unused'));
  const res = await trainScenario({ ...base, out: path.join(root, 'fat'), regime: 'fat', workers: 2, attack: { ...ATTACK, steps: 1 }, fineTuneEpochs: 1 });
  assert.equal(res.fineTuned.config.workers, 2);
  assert.ok(res.fineTuned.metrics && Number.isFinite(res.fineTuned.metrics.robustAccuracy));
  const meta = await readMeta<{ finetune: { config: { workers?: number } } }>(path.join(root, 'fat'));
  assert.equal(meta.finetune.config.workers, 2);
});
