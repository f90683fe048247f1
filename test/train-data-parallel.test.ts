import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { tinyTrainRequest, checkpointWeights } from './train-fixture.js';
import { trainModel, type TrainRequest } from '../src/train/loop.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { loadDataset, gatherBatch } from '../src/data/index.js';
import { resolveTrainConfig, type TrainConfig } from '../src/train/options.js';
import { makeLearner, learnerVariables, learnerWeights, disposeLearner, type Learner } from '../src/train/learner.js';
import { aclAttack, augmentView, batchGradients, batchLoss, contrastiveAttack, contrastiveAttackLoss, embed, trainStep } from '../src/train/methods.js';
import { ascentStep, pgdStartPoint } from '../src/attacks/pgd.js';
import { subSeed } from '../src/util/rng.js';
import { contrastiveGroups } from '../src/train/contrastive.js';
import { startDataParallel } from '../src/train/data-parallel.js';
import { attackHasPartner, Replica, shardAttackOptions } from '../src/train/replica.js';
import { shardRanges, weightedSum } from '../src/parallel/weights.js';
import type { TrainCheckpointMeta as CheckpointMeta } from '../src/train/meta.js';
import { InputError } from '../src/errors.js';

const FIXTURE = path.resolve('fixtures/cifar10');
const PGD = { norm: 'linf' as const, eps: 0.03, stepSize: 0.015, steps: 2, randomStart: true, restarts: 1, seed: 0 };

const tiny = tinyTrainRequest;
const weightsOf = checkpointWeights;

function maxDiff(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    assert.equal(a[i].length, b[i].length);
    for (let j = 0; j < a[i].length; j++) m = Math.max(m, Math.abs(a[i][j] - b[i][j]));
  }
  return m;
}

/** A small model without BatchNorm (conv -> pool -> logits), so shards see exactly the batch's function. */
function noBatchNormModel(seed: number): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  const c = tf.layers.conv2d({ name: 'conv', filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed }) }).apply(input);
  const p = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(c);
  const out = tf.layers.dense({ name: 'logits', units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }).apply(p) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

function twinLearners(cfg: TrainConfig, projection?: { hidden: number; dim: number }): [Learner, Learner] {
  const a = makeLearner(noBatchNormModel(3), cfg, projection);
  const b = makeLearner(noBatchNormModel(3), cfg, projection);
  learnerWeights(b).forEach((w, i) => w.write(learnerWeights(a)[i].read()));
  return [a, b];
}

function syntheticBatch(n: number, seed: number): { x: Float32Array; y: Int32Array } {
  const x = tf.tidy(() => tf.randomUniform([n, 8, 8, 3], 0, 1, 'float32', seed).dataSync() as Float32Array);
  return { x, y: Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % 10) };
}

interface MatchOptions {
  /** Steps to take; step s trains on syntheticBatch(7, firstBatch + s) with seeds { attack: s, augment: s }. */
  steps: number;
  firstBatch: number;
  label?: string;
  /** Also compare the counts of correct predictions (the online probe's, for contrastive schemes). */
  correct?: boolean;
  /** Also require a stable main-thread tensor count from the second step on. */
  leaks?: boolean;
  /** Further checks on the two learners after the steps (start: the weights before them). */
  after?: (single: Learner, sharded: Learner, start: Float32Array[]) => void;
}

/**
 * Train twin learners (model without BatchNorm, lr 1 so a gradient error shows as the same weight error)
 * for a few steps, one in this thread on the whole batch of 7 and one over 2 threads (shards of 4 and 3):
 * losses and weights must agree within 1e-4, and the weights must have moved far more than that.
 */
async function assertShardedStepsMatch(cfg: TrainConfig, projection: { hidden: number; dim: number } | undefined, o: MatchOptions): Promise<void> {
  const tag = o.label ? `${o.label}: ` : '';
  const [single, sharded] = twinLearners(cfg, projection);
  const vars = learnerVariables(single);
  const decayed = vars.filter((v) => /kernel/.test(v.name));
  const optSingle = tf.train.sgd(1);
  const optSharded = tf.train.sgd(1);
  const dp = await startDataParallel(sharded, 2, [8, 8, 3], projection);
  const counts: number[] = [];
  try {
    const start = learnerWeights(single).map((w) => w.read().dataSync().slice() as Float32Array);
    for (let s = 0; s < o.steps; s++) {
      const { x, y } = syntheticBatch(7, o.firstBatch + s);
      const seeds = { attack: s, augment: s };
      const xs = tf.tensor4d(x, [7, 8, 8, 3]);
      const ys = tf.tensor1d(y, 'int32');
      const ref = trainStep(single, optSingle, vars, decayed, xs, ys, seeds);
      const got = await dp.step(x, y, seeds, optSharded);
      assert.ok(Math.abs(got.loss - ref.loss.dataSync()[0]) < 1e-4, `${tag}loss ${got.loss} vs ${ref.loss.dataSync()[0]}`);
      if (o.correct) assert.equal(got.correct, ref.correct.dataSync()[0]);
      tf.dispose([xs, ys, ref.loss, ref.correct]);
      counts.push(tf.memory().numTensors);
    }
    const a = learnerWeights(single).map((w) => w.read().dataSync());
    const b = learnerWeights(sharded).map((w) => w.read().dataSync());
    assert.ok(maxDiff(a, b) < 1e-4, `${tag}weights differ by ${maxDiff(a, b)}`);
    // The steps moved the weights far more than the tolerance (else the comparison means nothing).
    assert.ok(maxDiff(a, start) > 1e-2, `${tag}weights moved only ${maxDiff(a, start)}`);
    o.after?.(single, sharded, start);
    if (o.leaks) assert.deepEqual(counts.slice(1), new Array(counts.length - 1).fill(counts[1]), `${tag}tensor counts per step: ${counts.join(', ')}`);
  } finally {
    await dp.close();
    disposeLearner(single);
    disposeLearner(sharded);
    optSingle.dispose();
    optSharded.dispose();
  }
}

let root: string;
before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-dp-'));
});

test('shards split a batch contiguously with sizes differing by at most one; weightedSum matches float64', () => {
  assert.deepEqual(shardRanges(7, 2), [{ start: 0, end: 4 }, { start: 4, end: 7 }]);
  assert.deepEqual(shardRanges(1, 2), [{ start: 0, end: 1 }, { start: 1, end: 1 }]);
  assert.deepEqual(shardRanges(9, 3).map((r) => r.end - r.start), [3, 3, 3]);
  const a = [1.5, -2, 1e-3];
  const b = [0.25, 4, 3];
  const got = weightedSum([Float32Array.from(a), Float32Array.from(b)], [4 / 7, 3 / 7]);
  a.forEach((v, i) => assert.ok(Math.abs(got[i] - ((4 / 7) * v + (3 / 7) * b[i])) < 1e-6));
});

test('sl PGD-AT over 2 threads: two steps give the single-thread weights (no BatchNorm, unequal shards, weight decay)', async () => {
  // randomStart false: the attack is deterministic per sample, so shards attack exactly as the whole batch.
  const cfg = resolveTrainConfig({ scheme: 'sl', regime: 'at', method: 'pgd', augment: 'none', attack: { ...PGD, randomStart: false }, weightDecay: 0.01, workers: 2 });
  await assertShardedStepsMatch(cfg, undefined, { steps: 2, firstBatch: 10, correct: true });
});

test('cl: the shards\' all-gathered contrastive gradients sum to the full-batch gradient (no BatchNorm, unequal shards)', () => {
  const cfg = resolveTrainConfig({ scheme: 'cl', regime: 'st', augment: 'supervised', weightDecay: 0.01, temperature: 0.5 });
  const projection = { hidden: 8, dim: 4 };
  const [single, sharded] = twinLearners(cfg, projection);
  const { x, y } = syntheticBatch(7, 3);
  const seeds = { attack: 1, augment: 2 };
  const xs = tf.tensor4d(x, [7, 8, 8, 3]);
  const ys = tf.tensor1d(y, 'int32');
  const vars = learnerVariables(single);
  const decayed = vars.filter((v) => /kernel/.test(v.name));
  const ref = batchGradients(single, vars, decayed, xs, ys, seeds);
  const refGrads = vars.map((v) => ref.grads[v.name].dataSync());
  // The same views as the full batch's (augmentView with the batch seed), cut into shards of 4 and 3.
  const [v1, v2] = [1, 2].map((view) => augmentView(xs, cfg, seeds.augment, view));
  const ranges = shardRanges(7, 2);
  const replicas = [new Replica(single), new Replica(sharded)];
  const gathered = ranges.map((r, k) =>
    replicas[k].embedShard(
      [v1.slice(r.start, r.end - r.start), v2.slice(r.start, r.end - r.start)],
      y.slice(r.start, r.end),
    ),
  );
  const results = ranges.map((r, k) => replicas[k].contrastShard(gathered, k, y, (r.end - r.start) / 7));
  const summed = weightedSum(results.map((r) => r.grads), [1, 1]);
  let offset = 0;
  const split = refGrads.map((g) => summed.subarray(offset, (offset += g.length)));
  assert.ok(maxDiff(split, refGrads) < 1e-4, `gradients differ by ${maxDiff(split, refGrads)}`);
  assert.ok(refGrads.some((g) => g.some((v) => Math.abs(v) > 1e-3)), 'the reference gradient is not trivially zero');
  // Shares of the loss sum to the batch loss; correct counts to the batch's.
  assert.ok(Math.abs(results[0].loss + results[1].loss - ref.value.dataSync()[0]) < 1e-4);
  assert.equal(results[0].correct + results[1].correct, ref.correct.dataSync()[0]);
  // One shard's gradient alone is not the batch's (the test would catch a missing all-gather or sum).
  assert.ok(maxDiff([results[0].grads], [summed]) > 1e-3);
  tf.dispose([xs, ys, v1, v2, ref.value, ref.correct, ...Object.values(ref.grads)]);
  disposeLearner(single);
  disposeLearner(sharded);
});

/** The sharded study-at / rocl / acl attack run in this thread by two replicas on shards of 4 and 3 (as the threads do). */
function shardedAttack(replicas: Replica[], x: Float32Array, y: Int32Array, seeds: { attack: number; augment: number }, steps: number): tf.Tensor4D {
  const size = 8 * 8 * 3;
  const ranges = shardRanges(y.length, 2);
  const first = ranges.map((r, k) => replicas[k].startAttack(x.slice(r.start * size, r.end * size), y.slice(r.start, r.end), [8, 8, 3], seeds));
  const partnered = attackHasPartner(replicas[0].learner.cfg.method);
  const partners = first.map((z) => (partnered ? z.slice(0, z.length / 2) : new Float32Array(0)));
  let advs: Float32Array[] = first.map((z) => (partnered ? z.slice(z.length / 2) : z));
  for (let s = 0; s < steps; s++) advs = ranges.map((_, k) => replicas[k].attackStep(partners, advs, k, y));
  return tf.concat(replicas.map((r) => r.adversarial!), 0) as tf.Tensor4D;
}

test('study-at: the sharded attack (all-gather per PGD step) gives the single-thread attack\'s adversarial images (no BatchNorm, unequal shards)', () => {
  for (const scheme of ['cl', 'scl'] as const) {
    const cfg = resolveTrainConfig({ scheme, regime: 'at', method: 'study-at', augment: 'supervised', attack: { ...PGD, steps: 3, randomStart: false }, temperature: 0.5 });
    const [single, sharded] = twinLearners(cfg, { hidden: 8, dim: 4 });
    const { x, y } = syntheticBatch(7, 4);
    const seeds = { attack: 1, augment: 2 };
    const xs = tf.tensor4d(x, [7, 8, 8, 3]);
    const ys = tf.tensor1d(y, 'int32');
    const groups = contrastiveGroups(scheme, ys);
    const ref = contrastiveAttack(single, 'study-at', xs, xs, groups, seeds.attack);
    const replicas = [new Replica(single), new Replica(sharded)];
    const got = shardedAttack(replicas, x, y, seeds, 3);
    const [a, b] = [ref.adv.dataSync(), got.dataSync()];
    assert.ok(maxDiff([a], [b]) < 1e-4, `${scheme}: adversarial images differ by ${maxDiff([a], [b])}`);
    // The attack moved the images by more than the tolerance (3 steps of 0.015, within eps 0.03).
    assert.ok(maxDiff([a], [x]) > 0.02, `${scheme}: the attack moved the images by only ${maxDiff([a], [x])}`);
    // Without the all-gather (each shard attacked against its own shard's negatives) the images differ:
    // the comparison above would catch a broken gather.
    const alone = shardRanges(7, 2).map((r) => {
      const xk = xs.slice(r.start, r.end - r.start);
      const gk = contrastiveGroups(scheme, ys.slice(r.start, r.end - r.start));
      const att = contrastiveAttack(single, 'study-at', xk, xk, gk, seeds.attack);
      tf.dispose([xk, gk, ...att.owned]);
      return att.adv;
    });
    const aloneAll = tf.concat(alone, 0);
    assert.ok(maxDiff([aloneAll.dataSync()], [a]) > 1e-3, `${scheme}: the per-shard attack without a gather matched the batch's`);
    replicas.forEach((r) => r.dropViews());
    tf.dispose([xs, ys, groups, ref.adv, ...ref.owned, got, aloneAll, ...alone]);
    disposeLearner(single);
    disposeLearner(sharded);
  }
});

test('study-at over 2 threads: two steps give the single-thread weights (cl and scl; no BatchNorm, unequal shards, weight decay)', async () => {
  for (const scheme of ['cl', 'scl'] as const) {
    // No random start and no augmentation: the shards' attacks and views are the whole batch's, so the steps must
    // agree. (The CLI refuses augment 'none' for contrastive schemes; the learners take it, and v1 = v2 = x here.
    // The gradient with augmented views is checked in this thread by the test after this one.)
    const cfg: TrainConfig = {
      ...resolveTrainConfig({ scheme, regime: 'at', method: 'study-at', attack: { ...PGD, steps: 2, randomStart: false }, weightDecay: 0.01, temperature: 0.5, workers: 2 }),
      augment: 'none',
    };
    await assertShardedStepsMatch(cfg, { hidden: 8, dim: 4 }, { steps: 2, firstBatch: 20, label: scheme, correct: true });
  }
});

test('study-at: the shards\' gradients with augmented views sum to the full-batch gradient (no BatchNorm, unequal shards)', () => {
  const cfg = resolveTrainConfig({ scheme: 'cl', regime: 'at', method: 'study-at', augment: 'supervised', attack: { ...PGD, steps: 2, randomStart: false }, weightDecay: 0.01, temperature: 0.5 });
  const [single, sharded] = twinLearners(cfg, { hidden: 8, dim: 4 });
  const { x, y } = syntheticBatch(7, 5);
  const seeds = { attack: 1, augment: 2 };
  const xs = tf.tensor4d(x, [7, 8, 8, 3]);
  const ys = tf.tensor1d(y, 'int32');
  const vars = learnerVariables(single);
  const decayed = vars.filter((v) => /kernel/.test(v.name));
  const ref = batchGradients(single, vars, decayed, xs, ys, seeds);
  const refGrads = vars.map((v) => ref.grads[v.name].dataSync());
  // The whole batch's views and adversarial images (attack checked above), cut into the shards' training parts.
  const [v1, v2] = [1, 2].map((view) => augmentView(xs, cfg, seeds.augment, view));
  const groups = contrastiveGroups('cl', ys);
  const attack = contrastiveAttack(single, 'study-at', xs, xs, groups, seeds.attack);
  const ranges = shardRanges(7, 2);
  const replicas = [new Replica(single), new Replica(sharded)];
  const cut = (t: tf.Tensor4D, r: { start: number; end: number }) => t.slice(r.start, r.end - r.start);
  const gathered = ranges.map((r, k) => replicas[k].embedShard([cut(xs, r), cut(attack.adv, r), cut(v1, r), cut(v2, r)], y.slice(r.start, r.end)));
  const results = ranges.map((r, k) => replicas[k].contrastShard(gathered, k, y, (r.end - r.start) / 7));
  const summed = weightedSum(results.map((r) => r.grads), [1, 1]);
  let offset = 0;
  const split = refGrads.map((g) => summed.subarray(offset, (offset += g.length)));
  assert.ok(maxDiff(split, refGrads) < 1e-4, `gradients differ by ${maxDiff(split, refGrads)}`);
  assert.ok(refGrads.some((g) => g.some((v) => Math.abs(v) > 1e-3)), 'the reference gradient is not trivially zero');
  assert.ok(Math.abs(results[0].loss + results[1].loss - ref.value.dataSync()[0]) < 1e-4);
  assert.equal(results[0].correct + results[1].correct, ref.correct.dataSync()[0]);
  assert.ok(maxDiff([results[0].grads], [summed]) > 1e-3);
  tf.dispose([xs, ys, v1, v2, groups, attack.adv, ...attack.owned, ref.value, ref.correct, ...Object.values(ref.grads)]);
  disposeLearner(single);
  disposeLearner(sharded);
});

test('rocl: the sharded attack from the shards\' own random starts equals full-batch PGD from those starts (no BatchNorm, unequal shards)', () => {
  const cfg = resolveTrainConfig({ scheme: 'cl', regime: 'at', method: 'rocl', augment: 'supervised', attack: { ...PGD, steps: 3 }, temperature: 0.5 });
  const [single, sharded] = twinLearners(cfg, { hidden: 8, dim: 4 });
  const { x, y } = syntheticBatch(7, 6);
  const seeds = { attack: 3, augment: 4 };
  const replicas = [new Replica(single), new Replica(sharded)];
  const got = shardedAttack(replicas, x, y, seeds, 3);
  // Reference: each shard's views and random start (as the replicas draw them), then PGD on the whole batch's objective.
  const opts = { ...cfg.attack, randomStart: true, seed: seeds.attack };
  const xs = tf.tensor4d(x, [7, 8, 8, 3]);
  const ys = tf.tensor1d(y, 'int32');
  const pieces = shardRanges(7, 2).map((r) => {
    const xk = xs.slice(r.start, r.end - r.start);
    const v1 = augmentView(xk, cfg, seeds.augment, 1);
    const v2 = augmentView(xk, cfg, seeds.augment, 2);
    const start = pgdStartPoint(v1, opts, subSeed(opts.seed, 'restart', 0));
    xk.dispose();
    return [v1, v2, start];
  });
  const [v1, v2, start] = [0, 1, 2].map((i) => tf.concat(pieces.map((p) => p[i]), 0) as tf.Tensor4D);
  const groups = contrastiveGroups('cl', ys);
  const partner = embed(single, v2, false);
  const objective = contrastiveAttackLoss(single, partner, groups);
  let adv = start.clone();
  for (let s = 0; s < 3; s++) {
    const next = ascentStep(objective, adv, v1, opts);
    adv.dispose();
    adv = next;
  }
  const [a, b] = [adv.dataSync(), got.dataSync()];
  assert.ok(maxDiff([a], [b]) < 1e-4, `adversarial images differ by ${maxDiff([a], [b])}`);
  assert.ok(maxDiff([a], [start.dataSync()]) > 0.01, 'the steps moved the images');
  replicas.forEach((r) => r.dropViews());
  tf.dispose([xs, ys, v1, v2, start, groups, partner, adv, got, ...pieces.flat()]);
  disposeLearner(single);
  disposeLearner(sharded);
});

test('rocl over 2 threads: a step gives the single-thread weights when the attack is the identity (eps 0; checks the loss terms)', async () => {
  const cfg: TrainConfig = {
    ...resolveTrainConfig({ scheme: 'cl', regime: 'at', method: 'rocl', attack: { ...PGD, eps: 0, steps: 1 }, roclLambda: 0.5, weightDecay: 0.01, temperature: 0.5, workers: 2 }),
    augment: 'none',
  };
  await assertShardedStepsMatch(cfg, { hidden: 8, dim: 4 }, { steps: 1, firstBatch: 30 });
});

test('acl: the sharded joint attack on both views equals the single-thread attack (no random start, no BatchNorm, unequal shards)', () => {
  const cfg = resolveTrainConfig({ scheme: 'cl', regime: 'at', method: 'acl', augment: 'supervised', attack: { ...PGD, steps: 3, randomStart: false }, temperature: 0.5 });
  const [single, sharded] = twinLearners(cfg, { hidden: 8, dim: 4 });
  const { x, y } = syntheticBatch(7, 7);
  const seeds = { attack: 3, augment: 4 };
  const replicas = [new Replica(single), new Replica(sharded)];
  const got = shardedAttack(replicas, x, y, seeds, 3);
  const xs = tf.tensor4d(x, [7, 8, 8, 3]);
  const ys = tf.tensor1d(y, 'int32');
  const ranges = shardRanges(7, 2);
  // The shards' views (as the replicas draw them), and each shard's adversarial [a1_k; a2_k] regrouped as [a1; a2].
  const pieces = ranges.map((r) => {
    const xk = xs.slice(r.start, r.end - r.start);
    const v = [augmentView(xk, cfg, seeds.augment, 1), augmentView(xk, cfg, seeds.augment, 2)];
    xk.dispose();
    return v;
  });
  const [v1, v2] = [0, 1].map((i) => tf.concat(pieces.map((p) => p[i]), 0) as tf.Tensor4D);
  const groups = contrastiveGroups('cl', ys);
  const ref = aclAttack(single, v1, v2, groups, seeds.attack);
  let offset = 0;
  const halves = ranges.map((r) => {
    const n = r.end - r.start;
    const part = got.slice(offset, 2 * n);
    offset += 2 * n;
    const h = tf.split(part, 2, 0);
    part.dispose();
    return h;
  });
  const regrouped = tf.concat([...halves.map((h) => h[0]), ...halves.map((h) => h[1])], 0);
  const [a, b] = [ref.adv.dataSync(), regrouped.dataSync()];
  assert.ok(maxDiff([a], [b]) < 1e-4, `adversarial images differ by ${maxDiff([a], [b])}`);
  const pair = tf.concat([v1, v2], 0);
  assert.ok(maxDiff([a], [pair.dataSync()]) > 0.02, 'the attack moved the images');
  replicas.forEach((r) => r.dropViews());
  tf.dispose([xs, ys, v1, v2, pair, groups, ref.adv, ...ref.owned, got, regrouped, ...halves.flat(), ...pieces.flat()]);
  disposeLearner(single);
  disposeLearner(sharded);
});

test('acl over 2 threads: two steps give the single-thread weights (both BatchNorm streams; no random start, unequal shards)', async () => {
  const cfg: TrainConfig = {
    ...resolveTrainConfig({ scheme: 'cl', regime: 'at', method: 'acl', attack: { ...PGD, steps: 2, randomStart: false }, weightDecay: 0.01, temperature: 0.5, workers: 2 }),
    augment: 'none',
  };
  await assertShardedStepsMatch(cfg, { hidden: 8, dim: 4 }, { steps: 2, firstBatch: 40 });
});

test('clae, rcl-bound: the sharded attack (all-gather of the adversarial embeddings) equals the single-thread attack (no BatchNorm, unequal shards)', () => {
  // clae: --steps 3 and a random start in the run's options, which its FGSM ignores (one step of size eps from v1);
  // rcl-bound: PGD with the run's options (no random start, so the shards start where the whole batch does).
  const cases = [
    ['cl', 'clae', true],
    ['scl', 'clae', true],
    ['cl', 'rcl-bound', false],
    ['scl', 'rcl-bound', false],
  ] as const;
  for (const [scheme, method, randomStart] of cases) {
    const cfg = resolveTrainConfig({ scheme, regime: 'at', method, augment: 'supervised', attack: { ...PGD, steps: 3, randomStart }, temperature: 0.5 });
    const [single, sharded] = twinLearners(cfg, { hidden: 8, dim: 4 });
    const { x, y } = syntheticBatch(7, 8);
    const seeds = { attack: 3, augment: 4 };
    const replicas = [new Replica(single), new Replica(sharded)];
    assert.equal(shardAttackOptions(cfg, seeds.attack).steps, method === 'clae' ? 1 : 3);
    const got = shardedAttack(replicas, x, y, seeds, shardAttackOptions(cfg, seeds.attack).steps);
    const xs = tf.tensor4d(x, [7, 8, 8, 3]);
    const ys = tf.tensor1d(y, 'int32');
    const ranges = shardRanges(7, 2);
    // The shards' views, as the replicas draw them; reference: contrastiveAttack on the whole batch of those views.
    const pieces = ranges.map((r) => {
      const xk = xs.slice(r.start, r.end - r.start);
      const v = [augmentView(xk, cfg, seeds.augment, 1), augmentView(xk, cfg, seeds.augment, 2)];
      xk.dispose();
      return v;
    });
    const [v1, v2] = [0, 1].map((i) => tf.concat(pieces.map((p) => p[i]), 0) as tf.Tensor4D);
    const groups = contrastiveGroups(scheme, ys);
    const ref = contrastiveAttack(single, method, v1, v2, groups, seeds.attack);
    const [a, b] = [ref.adv.dataSync(), got.dataSync()];
    assert.ok(maxDiff([a], [b]) < 1e-4, `${scheme} ${method}: adversarial images differ by ${maxDiff([a], [b])}`);
    assert.ok(maxDiff([a], [v1.dataSync()]) > 0.02, `${scheme} ${method}: the attack moved the images by only ${maxDiff([a], [v1.dataSync()])}`);
    // Each shard attacked against its own shard's negatives only gives other images: the comparison catches a broken gather.
    const alone = ranges.map((r) => {
      const cut = (t: tf.Tensor4D) => t.slice(r.start, r.end - r.start);
      const [a1, a2] = [cut(v1), cut(v2)];
      const gk = contrastiveGroups(scheme, ys.slice(r.start, r.end - r.start));
      const att = contrastiveAttack(single, method, a1, a2, gk, seeds.attack);
      tf.dispose([a1, a2, gk, ...att.owned]);
      return att.adv;
    });
    const aloneAll = tf.concat(alone, 0);
    assert.ok(maxDiff([aloneAll.dataSync()], [a]) > 1e-3, `${scheme} ${method}: the per-shard attack without a gather matched the batch's`);
    replicas.forEach((r) => r.dropViews());
    tf.dispose([xs, ys, v1, v2, groups, ref.adv, ...ref.owned, got, aloneAll, ...alone, ...pieces.flat()]);
    disposeLearner(single);
    disposeLearner(sharded);
  }
});

test('clae, rcl-bound over 2 threads: three steps give the single-thread weights (clae: auxiliary BatchNorm stream; rcl-bound: discriminator), no main-thread leak', async () => {
  for (const method of ['clae', 'rcl-bound'] as const) {
    // Non-default loss weights, so a weight left out of a term shows. rcl-bound: no random start (the shards' PGD
    // then starts where the whole batch's does); unequal shards check the divergence's per-shard share.
    const cfg: TrainConfig = {
      ...resolveTrainConfig({
        scheme: 'cl', regime: 'at', method, attack: { ...PGD, eps: 0.05, randomStart: method === 'clae' }, claeAlpha: 0.7, rclBenignWeight: 0.6, rclDivergenceWeight: 0.8,
        weightDecay: 0.01, temperature: 0.5, workers: 2,
      }),
      augment: 'none',
    };
    await assertShardedStepsMatch(cfg, { hidden: 8, dim: 4 }, {
      steps: 3,
      firstBatch: 50,
      label: method,
      correct: true,
      leaks: true,
      after: (single, sharded, start) => {
        if (method !== 'rcl-bound') return;
        // The discriminator's own parameters trained too (their gradient is the shards' sum like the rest).
        const disc = (l: Learner) => l.discriminator!.weights.map((w) => w.read().dataSync());
        const discStart = start.slice(start.length - disc(single).length);
        assert.ok(maxDiff(disc(single), discStart) > 1e-3, `the discriminator moved only ${maxDiff(disc(single), discStart)}`);
        assert.ok(maxDiff(disc(single), disc(sharded)) < 1e-4);
      },
    });
  }
});

test('one shard holding the whole batch reproduces batchGradients for study-at, rocl, clae, acl and rcl-bound on a BatchNorm model (acl, clae: adversarial stream perturbed)', () => {
  // One shard = the whole batch: the same views, attack start and BatchNorm batches as one thread, so the sharded
  // code path (startAttack, attackStep, finishAttack, contrastShard) must give the single-thread gradient. With
  // BatchNorm and ACL's adversarial stream made to differ from the main one, this catches a part sent through
  // the wrong stream or the wrong BatchNorm batch.
  const ds = {
    x: tf.tidy(() => tf.randomUniform([6, 32, 32, 3], 0, 1, 'float32', 8).dataSync() as Float32Array),
    y: Int32Array.from([0, 3, 1, 3, 7, 0]),
  };
  for (const method of ['study-at', 'rocl', 'clae', 'acl', 'rcl-bound'] as const) {
    const cfg = resolveTrainConfig({ dataset: 'cifar10', arch: 'convnet', width: 4, scheme: 'cl', regime: 'at', method, attack: { ...PGD, steps: 2, randomStart: false }, weightDecay: 0.01 });
    const build = () => makeLearner(buildModel({ arch: resolveArch('convnet', 4), inputShape: [32, 32, 3], numClasses: 10, seed: 1 }).model, cfg, { hidden: 8, dim: 4 });
    const single = build();
    const sharded = build();
    const perturb = (l: Learner) =>
      l.advBatchNorms.flatMap((b) => b.weights).forEach((w, i) => w.write(tf.tidy(() => tf.add(w.read(), tf.randomUniform(w.shape as number[], 0.1, 0.3, 'float32', i)))));
    perturb(single);
    perturb(sharded);
    learnerWeights(sharded).forEach((w, i) => w.write(learnerWeights(single)[i].read()));
    const seeds = { attack: 5, augment: 6 };
    const xs = tf.tensor4d(ds.x, [6, 32, 32, 3]);
    const ys = tf.tensor1d(ds.y, 'int32');
    const vars = learnerVariables(single);
    const decayed = vars.filter((v) => /kernel/.test(v.name));
    const ref = batchGradients(single, vars, decayed, xs, ys, seeds);
    const refGrads = vars.map((v) => ref.grads[v.name].dataSync());
    const replica = new Replica(sharded);
    const first = replica.startAttack(ds.x, ds.y, [32, 32, 3], seeds);
    const partnered = attackHasPartner(method);
    const partners = [partnered ? first.slice(0, first.length / 2) : new Float32Array(0)];
    let advs: Float32Array[] = [partnered ? first.slice(first.length / 2) : first];
    for (let s = 0; s < shardAttackOptions(cfg, seeds.attack).steps; s++) advs = [replica.attackStep(partners, advs, 0, ds.y)];
    const result = replica.contrastShard([replica.finishAttack()], 0, ds.y, 1);
    let offset = 0;
    const split = refGrads.map((g) => result.grads.subarray(offset, (offset += g.length)));
    assert.ok(maxDiff(split, refGrads) < 1e-4, `${method}: gradients differ by ${maxDiff(split, refGrads)}`);
    assert.ok(Math.abs(result.loss - ref.value.dataSync()[0]) < 1e-4, `${method}: loss ${result.loss} vs ${ref.value.dataSync()[0]}`);
    tf.dispose([xs, ys, ref.value, ref.correct, ...Object.values(ref.grads)]);
    disposeLearner(single);
    disposeLearner(sharded);
  }
});

test('BatchNorm moving statistics after a 2-thread step are the sample-weighted mean of the replicas\' (first layer: the batch\'s)', async () => {
  // Standard training: the first BatchNorm layer sees conv(x), linear in x, so the sample-weighted mean of the
  // shards' batch means is the whole batch's mean and its moving mean must match the single-thread step's.
  const cfg = resolveTrainConfig({ dataset: 'cifar10', arch: 'convnet', width: 4, scheme: 'sl', regime: 'st', augment: 'none', workers: 2 });
  const ds = await loadDataset({ name: 'cifar10', split: 'train', dataDir: FIXTURE, seed: 0, limit: 15 });
  const build = () => makeLearner(buildModel({ arch: resolveArch('convnet', 4), inputShape: [32, 32, 3], numClasses: 10, seed: 1 }).model, cfg, undefined);
  const single = build();
  const sharded = build();
  const batch = gatherBatch(ds, Array.from({ length: 15 }, (_, i) => i));
  const xs = tf.tensor4d(batch.x, [15, 32, 32, 3]);
  const ys = tf.tensor1d(batch.y, 'int32');
  const vars = learnerVariables(single);
  const optSingle = tf.train.sgd(0.1);
  const optSharded = tf.train.sgd(0.1);
  const r = trainStep(single, optSingle, vars, [], xs, ys, { attack: 0, augment: 0 });
  const dp = await startDataParallel(sharded, 2, [32, 32, 3], undefined);
  try {
    await dp.step(batch.x, batch.y, { attack: 0, augment: 0 }, optSharded);
  } finally {
    await dp.close();
  }
  const mean = (l: Learner) => l.model.getLayer('conv1.bn').getWeights()[2].dataSync();
  const initial = build();
  assert.ok(maxDiff([mean(single)], [mean(initial)]) > 1e-3, 'the step moved the moving mean');
  assert.ok(maxDiff([mean(single)], [mean(sharded)]) < 1e-5, `moving means differ by ${maxDiff([mean(single)], [mean(sharded)])}`);
  tf.dispose([xs, ys, r.loss, r.correct]);
  [single, sharded, initial].forEach(disposeLearner);
  optSingle.dispose();
  optSharded.dispose();
});

/** Train `steps` data-parallel steps on a fixed fixture batch; its loss must fall, stay finite, and the main thread must not leak. */
async function fixtureBatchDescends(cfg: TrainConfig, projection: { hidden: number; dim: number } | undefined, steps: number): Promise<void> {
  const ds = await loadDataset({ name: 'cifar10', split: 'train', dataDir: FIXTURE, seed: 0, limit: 32 });
  const { model } = buildModel({ arch: resolveArch('convnet', 4), inputShape: [32, 32, 3], numClasses: 10, seed: 1 });
  const learner = makeLearner(model, cfg, projection);
  const batch = gatherBatch(ds, Array.from({ length: 32 }, (_, i) => i));
  const xs = tf.tensor4d(batch.x, [32, 32, 32, 3]);
  const ys = tf.tensor1d(batch.y, 'int32');
  const fixedSeeds = { attack: 99, augment: 99 };
  const before = batchLoss(learner, xs, ys, fixedSeeds);
  const opt = tf.train.adam(0.01);
  const dp = await startDataParallel(learner, 2, [32, 32, 3], projection);
  const counts: number[] = [];
  try {
    for (let s = 0; s < steps; s++) {
      const r = await dp.step(batch.x, batch.y, { attack: s, augment: s }, opt);
      assert.ok(Number.isFinite(r.loss), `loss ${r.loss} at step ${s}`);
      counts.push(tf.memory().numTensors);
    }
  } finally {
    await dp.close();
  }
  const afterLoss = batchLoss(learner, xs, ys, fixedSeeds);
  assert.ok(Number.isFinite(afterLoss) && afterLoss < before, `loss on the fixed batch went from ${before} to ${afterLoss}`);
  // Optimizer slots appear at the first update; from then on the count must not move.
  assert.deepEqual(counts.slice(1), new Array(counts.length - 1).fill(counts[1]), `tensor counts per step: ${counts.join(', ')}`);
  tf.dispose([xs, ys]);
  opt.dispose();
  disposeLearner(learner);
}

test('sl PGD-AT with 2 workers lowers the loss of a fixed fixture batch, finite, and the main thread leaks no tensors', async () => {
  const cfg = resolveTrainConfig({ dataset: 'cifar10', arch: 'convnet', width: 4, scheme: 'sl', regime: 'at', method: 'pgd', attack: PGD, workers: 2 });
  await fixtureBatchDescends(cfg, undefined, 12);
});

test('cl study-at with 2 workers lowers the loss of a fixed fixture batch, finite, and the main thread leaks no tensors', async () => {
  const cfg = resolveTrainConfig({ dataset: 'cifar10', arch: 'convnet', width: 4, scheme: 'cl', regime: 'at', method: 'study-at', attack: PGD, workers: 2 });
  await fixtureBatchDescends(cfg, { hidden: 16, dim: 8 }, 8);
});

test('trainModel --workers 2: an interrupted sl PGD-AT run resumed with 2 workers matches an uninterrupted one, and records the count', async () => {
  const straight = path.join(root, 'straight');
  const interrupted = path.join(root, 'interrupted');
  const counts: number[] = [];
  const full = await trainModel(
    tiny(straight, { regime: 'at', attack: PGD, workers: 2, onEvent: (e) => e.type === 'step' && counts.push(tf.memory().numTensors) }),
  );
  assert.equal(full.progress.complete, true);
  assert.equal(full.config.workers, 2);
  assert.ok(full.history.every((h) => Number.isFinite(h.loss)));
  // Within each epoch (3 steps) the count must not move; slots appear at the first update. (The epoch-end
  // evaluation keeps one tensor more with one thread too, so epochs are compared separately.)
  assert.equal(counts.length, 6);
  assert.deepEqual([counts[2], counts[4], counts[5]], [counts[1], counts[3], counts[3]], `tensor counts per step: ${counts.join(', ')}`);
  const partial = await trainModel(tiny(interrupted, { maxSteps: 2, regime: 'at', attack: PGD, workers: 2 }));
  assert.equal(partial.progress.globalStep, 2);
  const resumed = await trainModel(tiny(interrupted, { resume: true, regime: 'at', attack: PGD, workers: 2 }));
  assert.equal(resumed.progress.complete, true);
  assert.equal(resumed.progress.globalStep, 6);
  const a = await weightsOf(straight);
  const b = await weightsOf(interrupted);
  assert.ok(maxDiff(a, b) < 1e-5, `weights differ by ${maxDiff(a, b)}`);
  // The data-parallel run is not the single-thread run (per-shard seeds and BatchNorm statistics).
  const one = path.join(root, 'one');
  await trainModel(tiny(one, { regime: 'at', attack: PGD }));
  assert.ok(maxDiff(a, await weightsOf(one)) > 1e-5);
});

test('a run may resume with another worker count; meta records the latest', async () => {
  const dir = path.join(root, 'switch');
  await trainModel(tiny(dir, { maxSteps: 2, workers: 2 }));
  const resumed = await trainModel(tiny(dir, { resume: true, workers: 1 }));
  assert.equal(resumed.progress.complete, true);
  assert.equal(resumed.config.workers, 1);
});

test('cl (SimCLR, regime st) trains with 2 workers: finite losses, complete checkpoint, no tensor leak on the main thread', async () => {
  const dir = path.join(root, 'cl');
  const counts: number[] = [];
  const meta = await trainModel(tiny(dir, { scheme: 'cl', epochs: 1, limit: 64, workers: 2, projDim: 8, onEvent: (e) => e.type === 'step' && counts.push(tf.memory().numTensors) }));
  assert.equal(meta.progress.complete, true);
  assert.ok(Number.isFinite(meta.history[0].loss));
  assert.equal(counts.length, 4);
  assert.deepEqual(counts.slice(1), new Array(3).fill(counts[1]), `tensor counts per step: ${counts.join(', ')}`);
});

test('scl study-at (regime at) trains with 2 workers through trainModel: finite losses, complete checkpoint, no tensor leak on the main thread', async () => {
  const dir = path.join(root, 'scl-at');
  const counts: number[] = [];
  const meta = await trainModel(
    tiny(dir, { scheme: 'scl', regime: 'at', attack: PGD, epochs: 1, limit: 48, workers: 2, projDim: 8, onEvent: (e) => e.type === 'step' && counts.push(tf.memory().numTensors) }),
  );
  assert.equal(meta.progress.complete, true);
  assert.equal(meta.config.method, 'study-at');
  assert.equal(meta.config.workers, 2);
  assert.ok(Number.isFinite(meta.history[0].loss));
  assert.equal(counts.length, 3);
  assert.deepEqual(counts.slice(1), [counts[1], counts[1]], `tensor counts per step: ${counts.join(', ')}`);
});

test('killing the workers mid-step settles the step, and a step after that rejects instead of hanging', async () => {
  const cfg = resolveTrainConfig({ scheme: 'sl', regime: 'at', method: 'pgd', attack: PGD, workers: 2 });
  const [learner, other] = twinLearners(cfg);
  disposeLearner(other);
  const dp = await startDataParallel(learner, 2, [8, 8, 3], undefined);
  const { x, y } = syntheticBatch(64, 1);
  const opt = tf.train.sgd(0.1);
  // The main thread's shard runs synchronously inside step(); the worker's may or may not have answered yet.
  const step = dp.step(x, y, { attack: 0, augment: 0 }, opt);
  await dp.terminate();
  await Promise.allSettled([step]);
  await assert.rejects(dp.step(x, y, { attack: 1, augment: 1 }, opt), /training worker 1 exited/);
  opt.dispose();
  disposeLearner(learner);
});

test('--workers is validated; every contrastive method trains with workers (one restart; clae: any --restarts)', () => {
  for (const workers of [0, 1.5, -1]) {
    assert.throws(() => resolveTrainConfig({ workers }), (e: unknown) => e instanceof InputError && /--workers: expected an integer >= 1/.test(e.message));
  }
  for (const scheme of ['cl', 'scl'] as const) {
    // clae's FGSM step has no restarts: --restarts does not matter to it.
    assert.doesNotThrow(() => resolveTrainConfig({ scheme, regime: 'at', method: 'clae', workers: 2, attack: { ...PGD, restarts: 2 } }));
    for (const method of ['study-at', 'rocl', 'acl', 'rcl-bound'] as const) {
      assert.doesNotThrow(() => resolveTrainConfig({ scheme, regime: 'at', method, workers: 2 }));
      assert.doesNotThrow(() => resolveTrainConfig({ scheme, regime: 'at', method, workers: 1, attack: { ...PGD, restarts: 2 } }));
      assert.throws(
        () => resolveTrainConfig({ scheme, regime: 'at', method, workers: 2, attack: { ...PGD, restarts: 2 } }),
        (e: unknown) => e instanceof InputError && /--workers/.test(e.message) && /2 attack restarts/.test(e.message),
      );
    }
  }
  assert.doesNotThrow(() => resolveTrainConfig({ scheme: 'sl', regime: 'at', method: 'trades', workers: 2 }));
  assert.doesNotThrow(() => resolveTrainConfig({ scheme: 'scl', regime: 'st', workers: 2 }));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});
