import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { tinyEncoderRequest } from './train-fixture.js';
import { loadDataset, gatherBatch } from '../src/data/index.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { batchTensors } from '../src/models/inputs.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import { trainStep, batchLoss, contrastiveAttack, tradesAttack, aclAttack } from '../src/train/methods.js';
import { makeLearner, learnerVariables, disposeLearner, type Learner } from '../src/train/learner.js';
import { contrastiveGroups } from '../src/train/contrastive.js';
import { resolveTrainConfig, type TrainConfig } from '../src/train/options.js';
import { trainModel } from '../src/train/loop.js';
import { captureActivations } from '../src/cka/capture/capture.js';
import type { TrainCheckpointMeta as CheckpointMeta } from '../src/train/meta.js';
import { InputError } from '../src/errors.js';

const FIXTURE = path.resolve('fixtures/cifar10');
const ATTACK = { norm: 'linf' as const, eps: 0.03, stepSize: 0.01, steps: 2, randomStart: false, restarts: 1, seed: 0 };

let x: tf.Tensor4D;
let y: tf.Tensor1D;
let root: string;

before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-methods-'));
  const ds = await loadDataset({ name: 'cifar10', split: 'train', dataDir: FIXTURE, seed: 1, limit: 8 });
  const batch = gatherBatch(ds, Array.from({ length: 8 }, (_, i) => i));
  ({ x, y } = batchTensors(batch.x, batch.y, [32, 32, 3]));
});

after(async () => {
  tf.dispose([x, y]);
  await rm(root, { recursive: true, force: true });
});

function learnerFor(partial: Partial<TrainConfig>): Learner {
  const cfg = resolveTrainConfig({ arch: 'convnet', width: 4, attack: ATTACK, projDim: 16, weightDecay: 0, ...partial });
  const { model } = buildModel({ arch: resolveArch(cfg.arch, cfg.width), inputShape: [32, 32, 3], numClasses: 10, seed: 3 });
  const projection = cfg.scheme === 'sl' ? undefined : { hidden: 16, dim: cfg.projDim };
  return makeLearner(model, cfg, projection);
}

const COMBOS: Array<Partial<TrainConfig>> = [
  { scheme: 'sl', regime: 'st' },
  { scheme: 'sl', regime: 'st', augment: 'none' },
  { scheme: 'sl', regime: 'at', method: 'pgd' },
  { scheme: 'sl', regime: 'at', method: 'trades' },
  { scheme: 'cl', regime: 'st' },
  { scheme: 'scl', regime: 'st' },
  { scheme: 'cl', regime: 'at', method: 'study-at' },
  { scheme: 'scl', regime: 'at', method: 'study-at' },
  { scheme: 'cl', regime: 'at', method: 'rocl' },
  { scheme: 'cl', regime: 'at', method: 'clae' },
  { scheme: 'cl', regime: 'at', method: 'acl' },
  { scheme: 'scl', regime: 'at', method: 'rcl-bound' },
];

for (const combo of COMBOS) {
  const label = `${combo.scheme}/${combo.regime}${combo.method ? `/${combo.method}` : ''}${combo.augment ? ` (augment ${combo.augment})` : ''}`;
  test(`${label}: 20 steps on a fixed batch lower its loss, stay finite and leak no tensors`, () => {
    const learner = learnerFor(combo);
    const vars = learnerVariables(learner);
    const optimizer = tf.train.adam(3e-3);
    const seeds = { attack: 7, augment: 11 };
    const first = batchLoss(learner, x, y, seeds);
    const counts: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { loss, correct } = trainStep(learner, optimizer, vars, [], x, y, seeds);
      assert.ok(Number.isFinite(loss.dataSync()[0]), `step ${i}: loss ${loss.dataSync()[0]}`);
      tf.dispose([loss, correct]);
      counts.push(tf.memory().numTensors);
    }
    const last = batchLoss(learner, x, y, seeds);
    assert.ok(Number.isFinite(first) && last < first, `loss ${first} -> ${last}`);
    // Optimizer slots appear at the first update; from then on the count must not move.
    assert.deepEqual(counts.slice(1), new Array(19).fill(counts[1]), `tensor counts: ${counts.join(', ')}`);
    optimizer.dispose();
    disposeLearner(learner);
  });
}

function checkBall(adv: tf.Tensor4D, x0: tf.Tensor4D, eps: number): void {
  const [lo, hi, dist] = tf.tidy(() => [tf.min(adv), tf.max(adv), tf.max(tf.abs(tf.sub(adv, x0)))].map((t) => t.dataSync()[0]));
  assert.ok(lo >= 0 && hi <= 1, `outside [0, 1]: ${lo}..${hi}`);
  assert.ok(dist <= eps + 1e-6, `outside the eps ball: ${dist} > ${eps}`);
  assert.ok(dist > eps / 4, `the attack barely moved: ${dist}`);
}

for (const method of ['study-at', 'rocl', 'clae', 'rcl-bound'] as const) {
  test(`${method} attack raises the contrastive loss it attacks, inside the eps ball and the [0, 1] box`, () => {
    const learner = learnerFor({ scheme: 'cl', regime: 'at', method });
    const groups = contrastiveGroups('cl', y);
    // A second, shifted view as partner for rocl/clae; study-at attacks x against x.
    const other = tf.tidy(() => tf.clipByValue(tf.reverse(x, 2), 0, 1) as tf.Tensor4D);
    const partner = method === 'study-at' ? x : other;
    const before = tf.memory().numTensors;
    const a = contrastiveAttack(learner, method, x, partner, groups, 5);
    const [l0, l1] = [x, a.adv].map((input) => tf.tidy(() => tf.sum(a.objective(input)).dataSync()[0]));
    assert.ok(l1 > l0, `loss ${l0} -> ${l1}`);
    checkBall(a.adv, x, ATTACK.eps);
    tf.dispose([a.adv, ...a.owned]);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([groups, other]);
    disposeLearner(learner);
  });
}

test('acl attack perturbs both views jointly, raising the adversarial-stream NT-Xent, inside the ball and the box', () => {
  const learner = learnerFor({ scheme: 'cl', regime: 'at', method: 'acl' });
  const groups = contrastiveGroups('cl', y);
  const v2 = tf.tidy(() => tf.reverse(x, 2) as tf.Tensor4D);
  const pair = tf.concat([x, v2], 0);
  const before = tf.memory().numTensors;
  const a = aclAttack(learner, x, v2, groups, 5);
  const [l0, l1] = [pair, a.adv].map((input) => tf.tidy(() => tf.sum(a.objective(input)).dataSync()[0]));
  assert.ok(l1 > l0, `loss ${l0} -> ${l1}`);
  assert.deepEqual(a.adv.shape, [16, 32, 32, 3]);
  checkBall(a.adv, pair, ATTACK.eps);
  tf.dispose([a.adv, ...a.owned]);
  assert.equal(tf.memory().numTensors, before);
  // The adversarial stream has its own BatchNorm parameters, separate from the saved model's.
  assert.equal(learner.advBatchNorms.length, learner.model.layers.filter((l) => l.getClassName() === 'BatchNormalization').length);
  tf.dispose([groups, v2, pair]);
  disposeLearner(learner);
});

test('trades attack raises KL(f(x) || f(x_adv)) from zero, inside the eps ball and the [0, 1] box', () => {
  const learner = learnerFor({ scheme: 'sl', regime: 'at', method: 'trades' });
  const a = tradesAttack(learner.model, x, learner.cfg.attack, 5);
  const [l0, l1] = [x, a.adv].map((input) => tf.tidy(() => tf.sum(a.objective(input)).dataSync()[0]));
  assert.ok(Math.abs(l0) < 1e-5 && l1 > 1e-6, `KL ${l0} -> ${l1}`);
  checkBall(a.adv, x, ATTACK.eps);
  tf.dispose([a.adv, ...a.owned]);
  disposeLearner(learner);
});

test('cl training writes a checkpoint like sl (same taps, projection head, resumable) that capture reads unchanged', async () => {
  const base = {
    ...tinyEncoderRequest(''),
    scheme: 'cl' as const,
    regime: 'at' as const,
    projDim: 8,
    attack: ATTACK,
    evalAttack: { ...ATTACK, steps: 1 },
  };
  const dir = path.join(root, 'cl');
  await trainModel({ ...base, out: dir, maxSteps: 1 });
  const meta = await trainModel({ ...base, out: dir, resume: true });
  assert.equal(meta.progress.complete, true);
  assert.equal(meta.config.method, 'study-at');
  assert.deepEqual(meta.taps, ['conv1', 'conv2', 'conv3', 'pool', 'logits']);
  assert.deepEqual(meta.projection, { hidden: 16, dim: 8 });
  await access(path.join(dir, 'projection.weights.bin'));
  const onDisk = JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as CheckpointMeta;
  assert.equal(onDisk.config.scheme, 'cl');
  const { extraWeights, model } = await loadCheckpoint<CheckpointMeta>(dir, { extraWeights: ['projection'] });
  assert.deepEqual(
    extraWeights!.projection.map((w) => w.tensor.shape),
    [[16, 16], [16], [16, 8], [8]],
  );
  tf.dispose(extraWeights!.projection.map((w) => w.tensor));
  model.dispose();
  const acts = await captureActivations({ checkpoint: dir, out: path.join(root, 'cl.arrow'), n: 4, seed: 0, batchSize: 4, inputs: ['clean', 'adv'] });
  assert.equal(acts.sets.length, 10);
});

test('regimes that need fine-tuning and methods of another scheme are refused with the flag named', () => {
  assert.throws(() => resolveTrainConfig({ scheme: 'cl', regime: 'fat' as never }), (e: unknown) => e instanceof InputError && /--regime/.test(e.message));
  assert.throws(() => resolveTrainConfig({ scheme: 'sl', regime: 'at', method: 'rocl' }), (e: unknown) => e instanceof InputError && /--method/.test(e.message));
  assert.throws(() => resolveTrainConfig({ scheme: 'cl', regime: 'st', method: 'clae' }), (e: unknown) => e instanceof InputError && /--method/.test(e.message));
  assert.equal(resolveTrainConfig({ scheme: 'scl', regime: 'at' }).method, 'study-at');
  assert.equal(resolveTrainConfig({ scheme: 'sl', regime: 'at' }).method, 'pgd');
  assert.equal(resolveTrainConfig({ scheme: 'cl' }).augment, 'contrastive');
  // SPEC: SL trains with pad + random crop and flip unless told otherwise.
  assert.equal(resolveTrainConfig({ scheme: 'sl' }).augment, 'supervised');
  assert.equal(resolveTrainConfig({ scheme: 'sl', regime: 'at' }).augment, 'supervised');
  assert.equal(resolveTrainConfig({ scheme: 'sl', augment: 'none' }).augment, 'none');
});

test('resnet50 builds with bottleneck blocks and the usual tap names (build only)', () => {
  const before = tf.memory().numTensors;
  const { model, taps } = buildModel({ arch: resolveArch('resnet50'), inputShape: [32, 32, 3], numClasses: 10, seed: 0 });
  assert.equal(taps.length, 1 + 16 + 2);
  assert.deepEqual(taps.slice(0, 3), ['stem', 'stage1.block1', 'stage1.block2']);
  assert.deepEqual(taps.slice(-3), ['stage4.block3', 'pool', 'logits']);
  assert.deepEqual(model.getLayer('pool').outputShape, [null, 2048]);
  // ~23.5M parameters like torchvision's ResNet-50 body (CIFAR stem: one 3x3 conv) with a 10-way head.
  const params = model.countParams();
  assert.ok(params > 23.4e6 && params < 23.6e6, `${params} parameters`);
  model.dispose();
  assert.equal(tf.memory().numTensors, before);
});

for (const method of ['acl', 'clae', 'rcl-bound'] as const) {
  test(`${method}: an interrupted run resumed from its checkpoint (with its extra weight groups) matches an uninterrupted one`, async () => {
    const base = {
      ...tinyEncoderRequest(''),
      scheme: 'cl' as const,
      regime: 'at' as const,
      method,
      projDim: 8,
      discHidden: 8,
      attack: { ...ATTACK, steps: 1 },
      evalAttack: { ...ATTACK, steps: 1 },
    };
    const straight = path.join(root, `${method}-straight`);
    const interrupted = path.join(root, `${method}-interrupted`);
    await trainModel({ ...base, out: straight });
    await trainModel({ ...base, out: interrupted, maxSteps: 1 });
    await trainModel({ ...base, out: interrupted, resume: true });
    const group = method === 'rcl-bound' ? 'discriminator' : 'adv-bn';
    const load = async (dir: string) => {
      const ck = await loadCheckpoint<CheckpointMeta>(dir, { extraWeights: ['projection', group] });
      const values = [
        ...ck.model.getWeights().map((w) => w.dataSync()),
        ...[...ck.extraWeights!.projection, ...ck.extraWeights![group]].map((w) => w.tensor.dataSync()),
      ];
      ck.model.dispose();
      tf.dispose(Object.values(ck.extraWeights!).flatMap((g) => g.map((w) => w.tensor)));
      return values;
    };
    const a = await load(straight);
    const b = await load(interrupted);
    assert.equal(a.length, b.length);
    let maxDiff = 0;
    a.forEach((w, i) => w.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - b[i][j])))));
    assert.ok(maxDiff < 1e-5, `weights differ by ${maxDiff}`);
  });
}

test('threat model I: the contrastive-loss attack of a cl checkpoint raises its loss in the ball; an sl checkpoint is refused', async () => {
  const { loadContrastiveThreatModel } = await import('../src/train/threat-models.js');
  const { pgdAttack } = await import('../src/attacks/pgd.js');
  const base = { dataset: 'cifar10' as const, dataDir: FIXTURE, limit: 16, evalLimit: 8, arch: 'convnet', width: 4, epochs: 1, batchSize: 16, projDim: 8, evalAttack: { ...ATTACK, steps: 1 } };
  const clDir = path.join(root, 'tm1-cl');
  await trainModel({ ...base, out: clDir, scheme: 'cl', regime: 'st' });
  const tm = await loadContrastiveThreatModel(clDir);
  const { loss, dispose } = tm.lossFor(x);
  const adv = pgdAttack(loss, x, ATTACK);
  const [l0, l1] = [x, adv].map((input) => tf.tidy(() => tf.sum(loss(input)).dataSync()[0]));
  assert.ok(l1 > l0, `loss ${l0} -> ${l1}`);
  checkBall(adv, x, ATTACK.eps);
  tf.dispose(adv);
  dispose();
  tm.dispose();
  const slDir = path.join(root, 'tm1-sl');
  await trainModel({ ...base, out: slDir });
  await assert.rejects(loadContrastiveThreatModel(slDir), (e: unknown) => e instanceof InputError && /projection head/.test(e.message));
});
