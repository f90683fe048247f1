import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { trainModel } from '../src/train/loop.js';
import { loadDataset } from '../src/data/index.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import { evaluateAccuracy } from '../src/attacks/evaluate.js';
import { parseAttackSpec } from '../src/attacks/suite.js';
import { evaluateRobustness, type EvalRow } from '../src/probe/robust-eval.js';
import { runEvaluation } from '../src/probe/eval-run.js';
import { readEval } from '../src/formats/eval.js';
import { fineTune } from '../src/probe/finetune.js';
import { loadClassifier } from '../src/probe/classifier.js';
import { layerProbes } from '../src/probe/layer-probes.js';
import { InputError } from '../src/errors.js';

/**
 * One small standard-trained Fashion-MNIST model (1000 images, 3 epochs, ~70% clean accuracy)
 * shared by every test here: the checks of the issue need a model that has learned something.
 */
let root: string;
let st: string;

before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-probe-'));
  st = path.join(root, 'st');
  await trainModel({
    out: st,
    dataset: 'fashion-mnist',
    limit: 1000,
    evalLimit: 100,
    arch: 'convnet',
    width: 8,
    epochs: 3,
    batchSize: 32,
    lr: 0.01,
    seed: 1,
    evalAttack: { norm: 'linf', eps: 0.1, stepSize: 0.025, steps: 2, randomStart: true, restarts: 1, seed: 0 },
  });
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

const acc = (rows: EvalRow[], attack: string, eps: number) => rows.find((r) => r.attack === attack && r.eps === eps)!.accuracy;

test('standard-trained Fashion-MNIST: PGD and APGD break it, APGD-CE >= PGD, accuracy falls with eps, ~0 at huge eps', async () => {
  const { model } = await loadCheckpoint(st);
  const ds = await loadDataset({ name: 'fashion-mnist', split: 'test', seed: 3, limit: 64 });
  const eps = [0.03, 0.1, 1];
  const attacks = ['clean', 'pgd30', 'apgd-ce30', 'apgd-dlr30'].map(parseAttackSpec);
  const before = tf.memory().numTensors;
  const rows = await evaluateRobustness({ models: [{ name: 'st', model }], dataset: ds, attacks, eps, settings: { norm: 'linf', restarts: 1, seed: 0 }, batchSize: 64, worstCase: true });
  assert.equal(tf.memory().numTensors, before, 'evaluation leaked tensors');
  const clean = acc(rows, 'clean', 0);
  assert.ok(clean > 0.55, `clean accuracy ${clean}: the shared model did not train`);
  assert.ok(acc(rows, 'pgd30', 0.1) < clean / 3, `PGD at eps 0.1: ${acc(rows, 'pgd30', 0.1)} vs clean ${clean}`);
  for (const e of eps) {
    assert.ok(acc(rows, 'apgd-ce30', e) <= acc(rows, 'pgd30', e), `eps ${e}: APGD-CE ${acc(rows, 'apgd-ce30', e)} weaker than PGD ${acc(rows, 'pgd30', e)}`);
    const worst = acc(rows, 'worst-case', e);
    for (const a of ['pgd30', 'apgd-ce30', 'apgd-dlr30']) assert.ok(worst <= acc(rows, a, e));
  }
  for (const a of ['pgd30', 'apgd-ce30', 'apgd-dlr30']) {
    const curve = eps.map((e) => acc(rows, a, e));
    assert.ok(curve[0] <= clean);
    for (let i = 1; i < curve.length; i++) assert.ok(curve[i] <= curve[i - 1], `${a}: accuracy rises with eps: ${curve}`);
    assert.ok(curve[curve.length - 1] <= 0.02, `${a} at eps 1: ${curve[curve.length - 1]}`);
  }
  // Per-sample correctness agrees with the accuracy, and attacked samples were correct when clean.
  const cleanRow = rows.find((r) => r.attack === 'clean')!;
  for (const r of rows) {
    assert.equal(r.correct.length, ds.n);
    assert.ok(Math.abs(r.correct.reduce((s, v) => s + v, 0) / ds.n - r.accuracy) < 1e-12);
    r.correct.forEach((v, i) => assert.ok(v <= cleanRow.correct[i]));
  }
  model.dispose();
});

test('eval writes eval.arrow (per-sample correctness) and eval.json for an eps sweep', async () => {
  const out = path.join(root, 'eval');
  const res = await runEvaluation({
    models: [st],
    attacks: ['clean', 'fgsm', 'pgd5'],
    eps: [2 / 255, 0.1],
    settings: { norm: 'linf', restarts: 1, seed: 0 },
    n: 40,
    batchSize: 32,
    worstCase: true,
    outDir: out,
  });
  assert.equal(res.rows.length, 1 + 2 * 2 + 2); // clean, 2 attacks x 2 eps, a worst-case row per eps
  const back = await readEval(res.arrowFile);
  assert.equal(back.rows.length, res.rows.length);
  assert.equal(back.sampleIds.length, 40);
  back.rows.forEach((r, i) => {
    assert.equal(r.attack, res.rows[i].attack);
    assert.equal(r.eps, res.rows[i].eps);
    assert.deepEqual(Array.from(r.correct), Array.from(res.rows[i].correct));
  });
  const json = JSON.parse(await readFile(res.jsonFile, 'utf8'));
  assert.equal(json.rows.length, res.rows.length);
  assert.equal(json.dataset, 'fashion-mnist');
  assert.ok(json.provenance.tool === 'robustsim');
  await assert.rejects(
    runEvaluation({ models: [st], attacks: ['pgd5'], eps: [0.1], settings: { norm: 'linf', restarts: 1, seed: 0 }, n: 8, batchSize: 8, outDir: out, dataset: 'cifar10', dataDir: path.resolve('fixtures/cifar10') }),
    (e: unknown) => e instanceof InputError && /28x28x1/.test(e.message),
  );
});

test('linear and robust linear probes save a head beside the encoder that reloads with the same accuracy', async () => {
  const common = { checkpoint: st, limit: 512, evalLimit: 64, epochs: 3, batchSize: 64, lr: 0.03, seed: 2 };
  const lin = await fineTune({ ...common, mode: 'linear' });
  assert.equal(lin.out, `${st}-linear`);
  assert.equal(lin.kind, 'probe');
  assert.ok(lin.metrics!.cleanAccuracy > 0.5, `linear probe clean accuracy ${lin.metrics!.cleanAccuracy}`);
  const meta = JSON.parse(await readFile(path.join(lin.out, 'meta.json'), 'utf8'));
  assert.equal(meta.format, 'robustsim-probe/1');
  assert.equal(meta.encoder, '../st');
  const probe = await loadClassifier(lin.out);
  const test64 = await loadDataset({ name: 'fashion-mnist', split: 'test', seed: 2, limit: 64 });
  const again = await evaluateAccuracy(probe.model, test64);
  assert.equal(again.accuracy, lin.metrics!.cleanAccuracy);
  probe.model.dispose();
  // The frozen encoder really stayed frozen.
  const { model: enc } = await loadCheckpoint(st);
  const { model: enc2 } = await loadCheckpoint(st);
  assert.deepEqual(enc.getWeights()[0].dataSync(), enc2.getWeights()[0].dataSync());
  tf.dispose([enc, enc2].flatMap((m) => m.getWeights()));
  const rob = await fineTune({ ...common, mode: 'robust-linear', attack: { eps: 0.1, stepSize: 0.05, steps: 2 } });
  assert.equal(rob.config.attack.eps, 0.1);
  await assert.rejects(fineTune({ ...common, mode: 'linear' }), (e: unknown) => e instanceof InputError && /--overwrite/.test(e.message));
});

test('adversarial full fine-tuning writes a checkpoint that eval accepts; transfer needs matching shapes', async () => {
  const ft = await fineTune({ checkpoint: st, mode: 'full-adv', limit: 128, evalLimit: 32, epochs: 1, batchSize: 64, lr: 1e-3, attack: { eps: 0.1, stepSize: 0.05, steps: 1 } });
  assert.equal(ft.kind, 'checkpoint');
  const { meta } = await loadCheckpoint<{ format: string; taps: string[] }>(ft.out);
  assert.equal(meta.format, 'robustsim-checkpoint/1');
  assert.ok(meta.taps.includes('logits'));
  const res = await runEvaluation({ models: [st, ft.out], attacks: ['clean'], eps: [], settings: { norm: 'linf', restarts: 1, seed: 0 }, n: 16, batchSize: 16, outDir: path.join(root, 'eval2') });
  assert.equal(res.rows.length, 2);
  // Transfer: Fashion-MNIST encoder probed on MNIST (same 28x28x1 images).
  const tr = await fineTune({ checkpoint: st, mode: 'linear', dataset: 'mnist', limit: 128, evalLimit: 32, epochs: 1, batchSize: 64, lr: 0.01 });
  assert.equal(tr.out, `${st}-linear-mnist`);
  assert.equal(tr.config.dataset, 'mnist');
  await assert.rejects(
    fineTune({ checkpoint: st, mode: 'linear', dataset: 'cifar10', dataDir: path.resolve('fixtures/cifar10'), epochs: 1 }),
    (e: unknown) => e instanceof InputError && /image shapes|32x32x3/.test(e.message),
  );
});

test('per-layer linear probes: one head per tap point, deeper features decode the labels better than the stem', async () => {
  const before = tf.memory().numTensors;
  const { out, results } = await layerProbes({ checkpoint: st, limit: 512, evalLimit: 128, epochs: 8, lr: 0.02 });
  assert.equal(tf.memory().numTensors, before, 'layer probes leaked tensors');
  assert.deepEqual(results.map((r) => r.layer), ['conv1', 'conv2', 'conv3', 'pool', 'logits']);
  assert.equal(results[0].dim, 8);
  const byLayer = Object.fromEntries(results.map((r) => [r.layer, r.testAccuracy]));
  assert.ok(byLayer.pool > byLayer.conv1 + 0.2, `pool ${byLayer.pool} vs conv1 ${byLayer.conv1}`);
  const meta = JSON.parse(await readFile(path.join(out, 'meta.json'), 'utf8'));
  assert.equal(meta.results.length, 5);
  const { model } = await loadCheckpoint(path.join(out, 'heads', 'pool'));
  assert.deepEqual(model.inputs[0].shape, [null, results[3].dim]);
  model.dispose();
});

test('per-layer probes under attack: eps 0 leaves every accuracy as it was; a real attack lowers it at every layer', async () => {
  const common = { checkpoint: st, limit: 256, evalLimit: 64, epochs: 4, lr: 0.02, overwrite: true };
  const before = tf.memory().numTensors;
  const none = await layerProbes({ ...common, out: path.join(root, 'probes-eps0'), adversarial: { n: 64, attack: { eps: 0, stepSize: 0, steps: 2 } } });
  for (const r of none.results) assert.equal(r.adversarialAccuracy, r.testAccuracy, `${r.layer}: an eps-0 attack changed the accuracy`);
  const hit = await layerProbes({ ...common, out: path.join(root, 'probes-adv'), adversarial: { n: 64, attack: { eps: 0.2, stepSize: 0.05, steps: 8 } } });
  assert.equal(tf.memory().numTensors, before, 'adversarial layer probes leaked tensors');
  for (const r of hit.results) {
    assert.ok(r.adversarialAccuracy! <= r.testAccuracy, `${r.layer}: adversarial ${r.adversarialAccuracy} above clean ${r.testAccuracy}`);
  }
  const pool = hit.results.find((r) => r.layer === 'pool')!;
  assert.ok(pool.adversarialAccuracy! < pool.testAccuracy - 0.2, `pool: white-box PGD at eps 0.2 should break a standard model's probe (clean ${pool.testAccuracy}, adv ${pool.adversarialAccuracy})`);
  const meta = JSON.parse(await readFile(path.join(hit.out, 'meta.json'), 'utf8'));
  assert.equal(meta.adversarial.samples, 64);
  assert.equal(meta.adversarial.attack.eps, 0.2);
});

test('--taps all probes every layer after the input, in network order, the block taps among them', async () => {
  const { results } = await layerProbes({ checkpoint: st, limit: 128, evalLimit: 32, epochs: 1, tapSet: 'all', out: path.join(root, 'probes-all'), overwrite: true });
  const layers = results.map((r) => r.layer);
  const stage = (k: number) => [`conv${k}.conv`, `conv${k}.bn`, `conv${k}.relu`, `conv${k}`];
  assert.deepEqual(layers, [...stage(1), ...stage(2), ...stage(3), 'pool', 'logits']);
  const blocks = ['conv1', 'conv2', 'conv3', 'pool', 'logits'];
  assert.deepEqual(layers.filter((l) => blocks.includes(l)), blocks, 'block taps keep their order inside the full list');
  await assert.rejects(layerProbes({ checkpoint: st, layers: ['nope'], tapSet: 'all', out: path.join(root, 'probes-bad') }), /unknown layer name\(s\) nope .*with --taps all/);
});

test('restarts only re-attack survivors: more restarts never raise robust accuracy', async () => {
  const { model } = await loadCheckpoint(st);
  const ds = await loadDataset({ name: 'fashion-mnist', split: 'test', seed: 4, limit: 48 });
  const attacks = ['pgd3', 'apgd-ce4'].map(parseAttackSpec);
  const run = (restarts: number) => evaluateRobustness({ models: [{ name: 'st', model }], dataset: ds, attacks, eps: [0.03], settings: { norm: 'linf', restarts, seed: 0 }, batchSize: 16 });
  const one = await run(1);
  const three = await run(3);
  for (const a of ['pgd3', 'apgd-ce4']) {
    const r1 = one.find((r) => r.attack === a)!;
    const r3 = three.find((r) => r.attack === a)!;
    assert.equal(r3.restarts, 3);
    r3.correct.forEach((v, i) => assert.ok(v <= r1.correct[i], `${a} sample ${i} robust with 3 restarts but not with 1`));
    assert.ok(r3.accuracy <= r1.accuracy);
  }
  model.dispose();
});
