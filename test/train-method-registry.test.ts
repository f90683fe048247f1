import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { DEFAULT_TRAIN, RESUME_KEYS, resolveTrainConfig, workersUnsupported, type Method, type TrainConfig } from '../src/train/options.js';
import { METHODS, METHOD_NAMES, defaultMethod, methodsFor, type MethodSpec } from '../src/train/methods/index.js';
import { makeLearner, learnerVariables, learnerWeights, disposeLearner, type Learner } from '../src/train/learner.js';
import { batchGradients, trainStep } from '../src/train/methods.js';
import { Replica, attackHasPartner, shardAttackOptions } from '../src/train/replica.js';
import { shardRanges, weightedSum } from '../src/parallel/weights.js';
import { InputError } from '../src/errors.js';

const CLI = path.resolve('dist/src/cli/main.js');
const SCHEMES = ['sl', 'cl', 'scl'] as const;

before(async () => {
  await initBackend('wasm');
});

test('every method has a coherent spec: objectives for its schemes, parts and terms that exist, a pair attack exactly where adv1/adv2 are trained', () => {
  assert.deepEqual(METHOD_NAMES, ['none', 'pgd', 'trades', 'study-at', 'rocl', 'clae', 'acl', 'rcl-bound']);
  for (const name of METHOD_NAMES) {
    const spec = METHODS[name];
    assert.ok(spec.schemes.length > 0, name);
    if (spec.schemes.includes('sl')) assert.ok(spec.supervised, `${name}: trains sl but has no supervised objective`);
    const c = spec.contrastive;
    if (spec.schemes.some((s) => s !== 'sl')) assert.ok(c, `${name}: trains cl/scl but has no contrastive objective`);
    if (!c) continue;
    const images = c.parts.map((p) => p.image);
    for (const t of c.terms) for (const p of t.parts) assert.ok(p >= 0 && p < c.parts.length, `${name}: term part ${p}`);
    if (c.divergence) for (const p of [c.divergence.real, c.divergence.fake]) assert.ok(p < c.parts.length, `${name}: divergence part ${p}`);
    assert.equal(images.some((i) => i.startsWith('adv')), !!c.attack, `${name}: adversarial parts iff an attack`);
    assert.equal(images.includes('adv1') || images.includes('adv2'), c.attack?.attacked === 'pair', `${name}: adv1/adv2 iff a pair attack`);
    assert.equal(c.attack?.partner === null, c.attack?.attacked === 'pair', `${name}: no partner iff a pair attack`);
  }
  // One default per scheme and regime; every regime-at method is offered by --method for its schemes.
  for (const scheme of SCHEMES) {
    assert.equal(defaultMethod(scheme, 'st'), 'none');
    assert.ok(methodsFor(scheme, 'at').includes(defaultMethod(scheme, 'at')));
    for (const method of methodsFor(scheme, 'at')) {
      const cfg = resolveTrainConfig({ scheme, regime: 'at', method });
      assert.equal(cfg.method, method);
      assert.equal(cfg.name, `${scheme}-${METHODS[method].defaultFor.length ? 'at' : method}`);
    }
  }
  assert.equal(resolveTrainConfig({ scheme: 'cl', regime: 'at' }).method, 'study-at');
  assert.equal(resolveTrainConfig({ scheme: 'sl', regime: 'at' }).method, 'pgd');
});

test("every spec's parameters are config defaults, resume keys and validated flags; every flag and method is in 'robustsim train --help'", () => {
  const r = spawnSync(process.execPath, [CLI, 'train', '--help'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  // yargs wraps long help texts; compare with white space folded.
  const help = r.stdout.replace(/\s+/g, ' ');
  for (const name of METHOD_NAMES) {
    const spec = METHODS[name];
    if (spec.regime === 'at') assert.ok(help.includes(`"${name}"`), `--method choice ${name}`);
    for (const p of spec.params) {
      assert.equal(DEFAULT_TRAIN[p.key], p.default, `${p.key} default`);
      assert.ok(RESUME_KEYS.includes(p.key), `${p.key} is a resume key`);
      assert.ok(help.includes(`--${p.flag} ${p.help}`), `--${p.flag} with its help`);
      const bad = p.range.integer ? p.range.min - 1 : p.range.strict ? p.range.min : p.range.min - 1;
      assert.throws(() => resolveTrainConfig({ [p.key]: bad }), (e: unknown) => e instanceof InputError && e.message.startsWith(`--${p.flag}: expected`), `--${p.flag} ${bad}`);
      assert.doesNotThrow(() => resolveTrainConfig({ [p.key]: p.default }));
    }
  }
});

/**
 * A method that exists only in this test, defined by its spec alone: attack view 1 against view 2 (two
 * PGD steps, no random start); train on the contrastive loss of (v2, v1) plus a quarter of (v2, adv), the
 * adversarial batch through the second BatchNorm stream, plus a discriminator between v1 and adv.
 */
const TOY: MethodSpec = {
  regime: 'at',
  schemes: ['cl', 'scl'],
  defaultFor: [],
  params: [],
  contrastive: {
    attack: { attacked: 'v1', partner: 'v2', stream: 'main', options: (attack, seed) => ({ ...attack, steps: 2, randomStart: false, seed }) },
    parts: [
      { image: 'v2', stream: 'main' },
      { image: 'v1', stream: 'main' },
      { image: 'adv', stream: 'adv' },
    ],
    terms: [
      { parts: [0, 1], weight: () => 1 },
      { parts: [0, 2], weight: () => 0.25 },
    ],
    divergence: { real: 1, fake: 2, weight: () => 0.05 },
  },
};

const ATTACK = { norm: 'linf' as const, eps: 0.03, stepSize: 0.015, steps: 5, randomStart: true, restarts: 1, seed: 0 };

/** A config whose method name is unknown to the registry: only the spec handed to makeLearner can drive it. */
function toyConfig(partial: Partial<TrainConfig>): TrainConfig {
  return { ...resolveTrainConfig({ scheme: 'cl', regime: 'at', method: 'study-at', attack: ATTACK, weightDecay: 0.01, temperature: 0.5, ...partial }), method: 'toy' as Method };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function flatGrads(learner: Learner, grads: tf.NamedTensorMap): Float32Array {
  const vars = learnerVariables(learner);
  const out = new Float32Array(vars.reduce((s, v) => s + v.size, 0));
  let offset = 0;
  for (const v of vars) {
    out.set(grads[v.name].dataSync() as Float32Array, offset);
    offset += v.size;
  }
  return out;
}

/** The sharded attack and training phases of replicas on contiguous shards, in this thread (as the workers run them). */
function shardedGradients(replicas: Replica[], x: Float32Array, y: Int32Array, shape: [number, number, number], seeds: { attack: number; augment: number }) {
  const size = shape[0] * shape[1] * shape[2];
  const ranges = shardRanges(y.length, replicas.length);
  const { learner } = replicas[0];
  const first = ranges.map((r, k) => replicas[k].startAttack(x.slice(r.start * size, r.end * size), y.slice(r.start, r.end), shape, seeds));
  const partnered = attackHasPartner(learner.spec);
  const partners = first.map((z) => (partnered ? z.slice(0, z.length / 2) : new Float32Array(0)));
  let advs = first.map((z) => (partnered ? z.slice(z.length / 2) : z));
  for (let s = 0; s < shardAttackOptions(learner.cfg, seeds.attack, learner.spec).steps; s++) advs = ranges.map((_, k) => replicas[k].attackStep(partners, advs, k, y));
  const gathered = replicas.map((r) => r.finishAttack());
  const results = ranges.map((r, k) => replicas[k].contrastShard(gathered, k, y, (r.end - r.start) / y.length));
  return { grads: weightedSum(results.map((r) => r.grads), results.map(() => 1)), loss: results.reduce((s, r) => s + r.loss, 0) };
}

test('a toy method defined only by its spec trains a step on one thread, and its sharded gradient is the single-thread one', () => {
  // One thread: a real BatchNorm model; the spec gives the learner its second BatchNorm stream and its discriminator.
  const cfg = toyConfig({ dataset: 'cifar10', arch: 'convnet', width: 4 });
  const build = () => makeLearner(buildModel({ arch: resolveArch('convnet', 4), inputShape: [32, 32, 3], numClasses: 10, seed: 1 }).model, cfg, { hidden: 8, dim: 4 }, {}, TOY);
  const learner = build();
  assert.ok(learner.advFeatures && learner.advBatchNorms.length > 0, 'the adv stream part gave the learner a second BatchNorm stream');
  assert.ok(learner.discriminator, 'the divergence gave the learner a discriminator');
  assert.equal(workersUnsupported(cfg, TOY), null);
  assert.match(workersUnsupported({ ...cfg, attack: { ...ATTACK, restarts: 2 } }, TOY) ?? '', /one restart/);
  const n = 6;
  const x = tf.tidy(() => tf.randomUniform([n, 32, 32, 3], 0, 1, 'float32', 8).dataSync() as Float32Array);
  const y = Int32Array.from([0, 3, 1, 3, 7, 0]);
  const xs = tf.tensor4d(x, [n, 32, 32, 3]);
  const ys = tf.tensor1d(y, 'int32');
  const seeds = { attack: 5, augment: 6 };
  const vars = learnerVariables(learner);
  const decayed = vars.filter((v) => /kernel/.test(v.name));

  // Sharded code path with one shard holding the whole batch (same views, attack and BatchNorm batches).
  const twin = build();
  learnerWeights(twin).forEach((w, i) => w.write(learnerWeights(learner)[i].read()));
  const ref = batchGradients(learner, vars, decayed, xs, ys, seeds);
  const refGrads = flatGrads(learner, ref.grads);
  const one = shardedGradients([new Replica(twin)], x, y, [32, 32, 3], seeds);
  assert.ok(maxDiff(one.grads, refGrads) < 1e-4, `one shard: gradients differ by ${maxDiff(one.grads, refGrads)}`);
  assert.ok(Math.abs(one.loss - ref.value.dataSync()[0]) < 1e-4, `one shard: loss ${one.loss} vs ${ref.value.dataSync()[0]}`);
  // The discriminator and the adversarial stream take part in the loss (their gradients are not zero).
  const gradOf = (vs: tf.LayerVariable[]) => vs.filter((w) => w.trainable).some((w) => tf.tidy(() => tf.max(tf.abs(ref.grads[(w.read() as tf.Variable).name])).dataSync()[0]) > 1e-6);
  assert.ok(gradOf(learner.discriminator!.weights), 'the discriminator gets a gradient');
  assert.ok(gradOf(learner.advBatchNorms.flatMap((b) => b.weights)), 'the adversarial BatchNorm stream gets a gradient');
  tf.dispose([ref.value, ref.correct, ...Object.values(ref.grads)]);

  // One optimizer step through trainStep: finite, moves the weights, leaks nothing beyond the optimizer's slots.
  const before = learnerWeights(learner).map((w) => w.read().dataSync().slice());
  const optimizer = tf.train.sgd(0.1);
  const step = trainStep(learner, optimizer, vars, decayed, xs, ys, seeds);
  assert.ok(Number.isFinite(step.loss.dataSync()[0]));
  const counted = tf.memory().numTensors;
  tf.dispose([step.loss, step.correct]);
  const again = trainStep(learner, optimizer, vars, decayed, xs, ys, seeds);
  tf.dispose([again.loss, again.correct]);
  assert.equal(tf.memory().numTensors, counted - 2, 'a second step leaks no tensors');
  const moved = learnerWeights(learner).some((w, i) => maxDiff(w.read().dataSync(), before[i]) > 1e-4);
  assert.ok(moved, 'the step moved the weights');
  optimizer.dispose();
  tf.dispose([xs, ys]);
  disposeLearner(learner);
  disposeLearner(twin);
});

test('a toy method over two shards (all-gathered attack and loss) gives the single-thread gradient (no BatchNorm, unequal shards)', () => {
  // No BatchNorm, no augmentation and no random start: the shards' views, attacks and forwards are the batch's.
  const cfg: TrainConfig = { ...toyConfig({ scheme: 'scl' }), augment: 'none' };
  const model = (seed: number) => {
    const input = tf.input({ shape: [8, 8, 3] });
    const c = tf.layers.conv2d({ name: 'conv', filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed }) }).apply(input);
    const p = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(c);
    const out = tf.layers.dense({ name: 'logits', units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }).apply(p) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: out });
  };
  const learners = [0, 1, 2].map(() => makeLearner(model(3), cfg, { hidden: 8, dim: 4 }, {}, TOY));
  learners.slice(1).forEach((l) => learnerWeights(l).forEach((w, i) => w.write(learnerWeights(learners[0])[i].read())));
  const n = 7;
  const x = tf.tidy(() => tf.randomUniform([n, 8, 8, 3], 0, 1, 'float32', 4).dataSync() as Float32Array);
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7 + 4) % 3);
  const xs = tf.tensor4d(x, [n, 8, 8, 3]);
  const ys = tf.tensor1d(y, 'int32');
  const seeds = { attack: 1, augment: 2 };
  const vars = learnerVariables(learners[0]);
  const ref = batchGradients(learners[0], vars, vars.filter((v) => /kernel/.test(v.name)), xs, ys, seeds);
  const refGrads = flatGrads(learners[0], ref.grads);
  const two = shardedGradients([new Replica(learners[1]), new Replica(learners[2])], x, y, [8, 8, 3], seeds);
  assert.ok(maxDiff(two.grads, refGrads) < 1e-4, `two shards: gradients differ by ${maxDiff(two.grads, refGrads)}`);
  assert.ok(Math.abs(two.loss - ref.value.dataSync()[0]) < 1e-4, `two shards: loss ${two.loss} vs ${ref.value.dataSync()[0]}`);
  assert.ok(refGrads.some((g) => Math.abs(g) > 1e-3), 'the reference gradient is not trivially zero');
  tf.dispose([xs, ys, ref.value, ref.correct, ...Object.values(ref.grads)]);
  learners.forEach(disposeLearner);
});
