import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { trainModel } from '../src/train/loop.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import { gatherBatch, loadDataset, type Dataset } from '../src/data/index.js';
import { batchTensors } from '../src/models/inputs.js';
import { parseAttackSpec, runAttack, type AttackSettings } from '../src/attacks/suite.js';
import { apgdAttack, classifierObjective } from '../src/attacks/apgd.js';
import { apgdTargeted } from '../src/attacks/apgd-targeted.js';
import { fabTargeted, fabTargetedMinNorm } from '../src/attacks/fab.js';
import { projectOntoHyperplaneInBox, vectorNorm } from '../src/attacks/fab-projections.js';
import { squareAttackRun } from '../src/attacks/square.js';
import { squareP, squarePattern, squareSide } from '../src/attacks/square-schedule.js';
import { presetSpec } from '../src/attacks/autoattack.js';
import { attackConsistency, modelChecks, presetSquareCheck } from '../src/attacks/checks.js';
import { marginPerSample, targetedDlrPerSample } from '../src/attacks/losses.js';
import { pgdAttack } from '../src/attacks/pgd.js';
import { crossEntropyPerSample } from '../src/attacks/losses.js';
import { logitsOf, type LogitsFn } from '../src/attacks/rows.js';
import { evaluateRobustness } from '../src/probe/robust-eval.js';
import { makeRng } from '../src/util/rng.js';
import { InputError } from '../src/errors.js';
import { CIFAR_FIXTURE } from './train-fixture.js';

const EPS = 8 / 255;
let root: string;
let st: tf.LayersModel;
let at: tf.LayersModel;
let data: Dataset;
let x: tf.Tensor4D;
let y: tf.Tensor1D;

/** A convnet (width 8) trained on the 200 CIFAR fixture images; AT: PGD-3 at 8/255. */
async function trainTiny(regime: 'st' | 'at', epochs: number): Promise<tf.LayersModel> {
  const out = path.join(root, regime);
  await trainModel({
    out, dataset: 'cifar10', dataDir: CIFAR_FIXTURE, limit: 200, evalLimit: 8, arch: 'convnet', width: 8, epochs, batchSize: 32,
    optimizer: 'adam', lr: 0.005, augment: 'none', regime, seed: 3,
    attack: { norm: 'linf', eps: EPS, stepSize: 3 / 255, steps: 3, randomStart: true, restarts: 1, seed: 0 },
    evalAttack: { norm: 'linf', eps: 0.03, stepSize: 0.03, steps: 1, randomStart: false, restarts: 1, seed: 0 },
  });
  return (await loadCheckpoint(out)).model;
}

before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-autoattack-'));
  st = await trainTiny('st', 2);
  at = await trainTiny('at', 4);
  data = await loadDataset({ name: 'cifar10', split: 'train', dataDir: CIFAR_FIXTURE, seed: 0, limit: 24 });
  const b = gatherBatch(data, Array.from({ length: 24 }, (_, i) => i));
  ({ x, y } = batchTensors(b.x, b.y, [32, 32, 3]));
});
after(async () => {
  tf.dispose([x, y]);
  st.dispose();
  at.dispose();
  await rm(root, { recursive: true, force: true });
});

function correctCount(logits: LogitsFn, a: tf.Tensor4D, labels = y): number {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits(a), 1), tf.cast(labels, 'int32')), 'int32')).dataSync()[0]);
}

function radii(adv: tf.Tensor4D, x0: tf.Tensor4D, norm: 'linf' | 'l2'): Float32Array {
  return tf.tidy(() => {
    const d = tf.sub(adv, x0);
    return (norm === 'linf' ? tf.max(tf.abs(d), [1, 2, 3]) : tf.sqrt(tf.sum(tf.square(d), [1, 2, 3]))).dataSync() as Float32Array;
  });
}

const quick: AttackSettings = { norm: 'linf', restarts: 1, seed: 0, targets: 3 };

test('hyperplane-in-box projection: on the hyperplane, in the box, and no feasible point is closer', () => {
  const rng = makeRng(11);
  for (const norm of ['linf', 'l2'] as const) {
    for (let trial = 0; trial < 200; trial++) {
      const n = 2 + Math.floor(rng() * 6);
      const t = Array.from({ length: n }, () => rng());
      const w = Array.from({ length: n }, () => (rng() < 0.15 ? 0 : rng() * 2 - 1));
      const b = w.reduce((s, wi, i) => s + wi * t[i], 0) + (rng() * 2 - 1) * 0.8;
      const d = projectOntoHyperplaneInBox(t, w, b, norm);
      d.forEach((di, i) => {
        assert.ok(t[i] + di >= -1e-12 && t[i] + di <= 1 + 1e-12, 'left the box');
        if (w[i] === 0) assert.equal(di, 0);
      });
      const reach = w.reduce((s, wi, i) => s + wi * (t[i] + d[i]), 0);
      // Feasible points on the segment from t to a random box corner-ish point: none is closer.
      let feasible = false;
      for (let k = 0; k < 200; k++) {
        const p = Array.from({ length: n }, () => rng());
        const wt = w.reduce((s, wi, i) => s + wi * t[i], 0);
        const wp = w.reduce((s, wi, i) => s + wi * p[i], 0);
        if (wp === wt) continue;
        const s = (b - wt) / (wp - wt);
        if (s < 0 || s > 1) continue;
        feasible = true;
        const other = p.map((pi, i) => s * (pi - t[i]));
        assert.ok(vectorNorm(other, norm) >= vectorNorm(d, norm) - 1e-9, `${norm}: a feasible point is closer`);
      }
      if (feasible) assert.ok(Math.abs(reach - b) < 1e-9, `${norm}: w.(t+d) = ${reach}, expected ${b}`);
    }
  }
  // Out of reach: every coordinate moves as far as it can towards the hyperplane.
  assert.deepEqual(Array.from(projectOntoHyperplaneInBox([0.5, 0.5], [1, -1], 10, 'linf')), [0.5, -0.5]);
});

test('Square schedule and pattern follow the paper', () => {
  assert.equal(squareP(0, 5000, 0.8, false), 0.8);
  assert.equal(squareP(10, 5000, 0.8, false), 0.8);
  assert.equal(squareP(11, 5000, 0.8, false), 0.4);
  assert.equal(squareP(51, 5000, 0.8, false), 0.2);
  assert.equal(squareP(4999, 5000, 0.8, false), 0.8 / 128);
  assert.equal(squareP(2500, 5000, 0.8, true), 0.8 / 128); // rescaled: 2500 of 5000 is 5000 of 10000
  assert.equal(squareSide(0.8, 32, 32, 'linf'), 29);
  assert.equal(squareSide(0.001, 32, 32, 'linf'), 1);
  assert.equal(squareSide(0.001, 32, 32, 'l2'), 3);
  assert.equal(squareSide(0.05, 32, 32, 'l2') % 2, 1);
  for (const s of [3, 5, 8]) {
    const p = squarePattern(s, false);
    assert.ok(Math.abs(Math.sqrt(p.reduce((a, v) => a + v * v, 0)) - 1) < 1e-12);
    assert.ok(p[Math.floor(s / 4) * s + Math.floor(s / 2)] > 0 && p[(s - 1) * s + Math.floor(s / 2)] < 0, 'top positive, bottom negative');
    const q = squarePattern(s, true);
    assert.equal(q[Math.floor(s / 2) * s + Math.floor(s / 4)], p[Math.floor(s / 4) * s + Math.floor(s / 2)]);
  }
});

test('targeted DLR and margin match their formulas', () => {
  const z = tf.tensor2d([[4, 1, 0, -1, 2], [0, 3, 1, 2, -2]]);
  const labels = tf.tensor1d([0, 1], 'int32');
  const targets = tf.tensor1d([4, 3], 'int32');
  const got = targetedDlrPerSample(z, labels, targets).arraySync();
  // sorted: [4, 2, 1, 0, -1] and [3, 2, 1, 0, -2]
  assert.ok(Math.abs(got[0] - -(4 - 2) / (4 - 0.5 * (1 + 0))) < 1e-5);
  assert.ok(Math.abs(got[1] - -(3 - 2) / (3 - 0.5 * (1 + 0))) < 1e-5);
  assert.deepEqual(marginPerSample(z, labels).arraySync(), [2, 1]);
  assert.throws(() => targetedDlrPerSample(tf.zeros([1, 3]), tf.tensor1d([0], 'int32'), tf.tensor1d([1], 'int32')), InputError);
  tf.dispose([z, labels, targets]);
});

test('on a standard-trained model the gradient components drive accuracy to near 0 at 8/255 and Square lowers it', () => {
  const logits = logitsOf(st);
  const clean = correctCount(logits, x);
  assert.ok(clean >= 18, `clean ${clean}/24`);
  for (const name of ['apgd-ce20', 'apgd-t10', 'fab-t10']) {
    const adv = runAttack(parseAttackSpec(name), st, x, y, EPS, quick);
    const left = correctCount(logits, adv);
    assert.ok(left <= 1, `${name}: ${left}/${clean} still correct`);
    adv.dispose();
  }
  // On this synthetic fixture (stripe textures with random brightness) the model ignores the
  // window-wise colour shifts Square tries; with 300 queries it breaks part of the samples.
  const sq = runAttack(parseAttackSpec('square300'), st, x, y, EPS, quick);
  const left = correctCount(logits, sq);
  assert.ok(left < clean - 2, `square: ${left}/${clean}`);
  sq.dispose();
  const aa = runAttack(presetSpec('autoattack', { iterations: 10, queries: 100, targets: 3 }), st, x, y, EPS, quick);
  assert.ok(correctCount(logits, aa) <= 1);
  aa.dispose();
});

for (const [norm, eps] of [['linf', EPS], ['l2', 0.5]] as const) {
  test(`every component stays in the ${norm} eps-ball and the [0, 1] box; FAB-T's minimum norms are what it reports`, () => {
    const s: AttackSettings = { ...quick, norm };
    const xb = x.slice([0, 0, 0, 0], [10, -1, -1, -1]) as tf.Tensor4D;
    const yb = y.slice([0], [10]) as tf.Tensor1D;
    for (const name of ['apgd-t5', 'fab-t5', 'square50']) {
      const adv = runAttack(parseAttackSpec(name), at, xb, yb, eps, s);
      for (const r of radii(adv, xb, norm)) assert.ok(r <= eps + 1e-5, `${name}: radius ${r} > ${eps}`);
      assert.ok(tf.min(adv).dataSync()[0] >= 0 && tf.max(adv).dataSync()[0] <= 1, `${name} left the box`);
      adv.dispose();
    }
    const logits = logitsOf(at);
    const mn = fabTargetedMinNorm(logits, xb, yb, { norm, eps, steps: 6, targets: 3 });
    const r = radii(mn.x, xb, norm);
    const wrong = tf.tidy(() => tf.notEqual(tf.argMax(logits(mn.x), 1), tf.cast(yb, 'int32')).dataSync());
    mn.norms.forEach((reported, i) => {
      if (Number.isFinite(reported)) {
        assert.ok(r[i] <= reported + 1e-5, `sample ${i}: ${r[i]} > reported ${reported}`);
        assert.equal(wrong[i], 1, `sample ${i}: reported adversarial but classified correctly`);
      } else assert.equal(r[i], 0);
    });
    mn.x.dispose();
    // Within eps: exactly the minimum-norm points of norm <= eps are kept.
    const bounded = fabTargeted(logits, xb, yb, { norm, eps, steps: 6, targets: 3 });
    radii(bounded, xb, norm).forEach((v, i) => assert.ok(mn.norms[i] <= eps ? Math.abs(v - r[i]) < 1e-6 : v === 0));
    tf.dispose([bounded, xb, yb]);
  });
}

test('Square, given only logits, breaks a model whose gradients are masked (input rounding) where PGD fails', () => {
  // A rounding layer in front: the gradient is exactly 0, the function is (almost) the same model.
  const masked: LogitsFn = (a) => tf.tidy(() => st.apply(tf.div(tf.round(tf.mul(a, 255)), 255), { training: false }) as tf.Tensor2D);
  const clean = correctCount(masked, x);
  const gradient = tf.tidy(() => tf.abs(tf.grad((a: tf.Tensor) => tf.sum(crossEntropyPerSample(masked(a as tf.Tensor4D), y)))(x)).max().dataSync()[0]);
  assert.equal(gradient, 0);
  const pgd = pgdAttack((a) => crossEntropyPerSample(masked(a), y), x, { eps: EPS, stepSize: EPS / 8, steps: 20, randomStart: true, seed: 1 });
  const pgdLeft = correctCount(masked, pgd);
  const sq = squareAttackRun(masked, x, y, { eps: EPS, queries: 300, seed: 1 });
  const sqLeft = correctCount(masked, sq.x);
  assert.ok(pgdLeft >= clean - 2, `PGD should fail on masked gradients: ${pgdLeft}/${clean}`);
  assert.ok(sqLeft <= pgdLeft - 4, `Square ${sqLeft} vs PGD ${pgdLeft} (of ${clean})`);
  // The unmasked model falls to APGD: the robustness above was an artefact of the gradients.
  const apgd = apgdAttack(classifierObjective(st, y, 'ce'), x, { eps: EPS, steps: 20 });
  assert.ok(correctCount(logitsOf(st), apgd) <= 1);
  tf.dispose([pgd, sq.x, apgd]);
});

test('on an adversarially trained model AutoAttack is no weaker than any component alone, nor than PGD-20', async () => {
  const budget = { iterations: 20, queries: 200, targets: 3 };
  const aa = presetSpec('autoattack', budget);
  const singles = ['pgd20', 'apgd-ce20', 'apgd-t20', 'fab-t20', 'square200'].map(parseAttackSpec);
  const warnings: string[] = [];
  const rows = await evaluateRobustness({
    models: [{ name: 'at', model: at }],
    dataset: data,
    attacks: [parseAttackSpec('clean'), ...singles, aa],
    eps: [EPS],
    settings: quick,
    batchSize: 12,
    worstCase: true,
    onWarning: (w) => warnings.push(w.check),
  });
  const acc = (name: string) => rows.find((r) => r.attack === name)!.accuracy;
  const final = acc('autoattack');
  assert.ok(acc('clean') > final, 'the AT model has some robustness to lose');
  // PGD-20 must not beat it; APGD-CE (its first component: the same run, same name and seeds) cannot. The other
  // components, run alone, attack all clean-correct samples in other batches from other random
  // starts, so a sample may fall to one of them alone and survive the ensemble: allow one sample.
  const oneSample = 1 / data.n;
  for (const s of singles) {
    const slack = s.kind === 'apgd-ce' || s.kind === 'pgd' ? 0 : oneSample;
    assert.ok(final <= acc(s.name) + slack + 1e-12, `autoattack ${final} > ${s.name} ${acc(s.name)}`);
  }
  const components = aa.components!.map((c) => c.name);
  assert.deepEqual(components, ['apgd-ce20', 'apgd-t20', 'fab-t20', 'square200']);
  const steps = components.map((c) => acc(`autoattack/${c}`));
  steps.forEach((v, i) => assert.ok(i === 0 || v <= steps[i - 1], 'each component only removes samples'));
  assert.equal(steps[3], final);
  assert.ok(acc('worst-case') <= final);
  // Per-sample: robust after AutoAttack implies robust after each of its components.
  const perSample = rows.find((r) => r.attack === 'autoattack')!.correct;
  for (const c of components) {
    rows.find((r) => r.attack === `autoattack/${c}`)!.correct.forEach((v, i) => assert.ok(v >= perSample[i]));
  }
  assert.ok(!warnings.includes('randomised') && !warnings.includes('probabilities'), warnings.join(', '));
});

test("AutoAttack's checks: a weaker attack beating a stronger one, Square beating the gradients, randomised and softmax models", () => {
  const fig = (name: string, kind: string, steps: number, tier: number, accuracy: number, gradientFree = false) => ({ name, kind, steps, tier, gradientFree, accuracy });
  const w = attackConsistency('m', EPS, [fig('fgsm', 'fgsm', 1, 1, 0.3), fig('pgd20', 'pgd', 20, 2, 0.4), fig('pgd5', 'pgd', 5, 2, 0.35), fig('square', 'square', 5000, 3, 0.1, true)]);
  // fgsm < pgd5, fgsm < pgd20, pgd5 < pgd20 are all the wrong way round; Square beats every gradient attack.
  assert.deepEqual(w.map((v) => v.check).sort(), ['square-beats-gradient', 'weaker-beats-stronger', 'weaker-beats-stronger', 'weaker-beats-stronger']);
  assert.match(w.find((v) => v.check === 'square-beats-gradient')!.message, /gradient masking/);
  assert.deepEqual(attackConsistency('m', EPS, [fig('fgsm', 'fgsm', 1, 1, 0.5), fig('pgd20', 'pgd', 20, 2, 0.4), fig('square', 'square', 5000, 3, 0.45, true)]), []);
  // A larger budget of a lower tier may win: PGD-50 below APGD-CE-10 is no warning.
  assert.deepEqual(attackConsistency('m', EPS, [fig('pgd50', 'pgd', 50, 2, 0.3), fig('apgd-ce10', 'apgd-ce', 10, 3, 0.4)]), []);
  assert.deepEqual(attackConsistency('m', EPS, [fig('pgd10', 'pgd', 10, 2, 0.3), fig('apgd-ce10', 'apgd-ce', 10, 3, 0.4)]), []);
  assert.equal(attackConsistency('m', EPS, [fig('pgd20', 'pgd', 20, 2, 0.3), fig('apgd-ce', 'apgd-ce', 100, 3, 0.4)]).length, 1);
  const cum = [{ name: 'apgd-ce', gradientFree: false, accuracy: 0.5 }, { name: 'apgd-t', gradientFree: false, accuracy: 0.45 }, { name: 'square', gradientFree: true, accuracy: 0.4 }];
  assert.equal(presetSquareCheck('m', EPS, 'autoattack', cum).length, 1);
  assert.equal(presetSquareCheck('m', EPS, 'autoattack', cum.map((c) => ({ ...c, accuracy: 0.45 }))).length, 0);
  const base = logitsOf(st);
  let calls = 0;
  const noisy: LogitsFn = (a) => tf.tidy(() => tf.add(base(a), tf.randomNormal([a.shape[0], 10], 0, 1, 'float32', ++calls)) as tf.Tensor2D);
  const softmax: LogitsFn = (a) => tf.tidy(() => tf.softmax(base(a)) as tf.Tensor2D);
  const checks = (f: LogitsFn) => modelChecks('m', f, x, 9, true, true).map((v) => v.check);
  assert.deepEqual(checks(base), []);
  assert.deepEqual(checks(noisy), ['randomised']);
  assert.deepEqual(checks(softmax), ['probabilities']);
  assert.deepEqual(modelChecks('m', base, x, 12, true, true).map((v) => v.check), ['few-classes']);
  const rounded: LogitsFn = (a) => tf.tidy(() => base(tf.div(tf.round(tf.mul(a, 255)), 255) as tf.Tensor4D));
  assert.deepEqual(modelChecks('m', base, x, 9, true, true, y).map((v) => v.check), []);
  assert.deepEqual(modelChecks('m', rounded, x, 9, true, true, y).map((v) => v.check), ['zero-gradients']);
});

test('names: components take budgets, presets do not; autoattack-rand is APGD-CE + APGD-DLR with EoT 20', () => {
  assert.deepEqual(parseAttackSpec('square'), { name: 'square', kind: 'square', steps: 5000 });
  assert.deepEqual(parseAttackSpec('apgd-t'), { name: 'apgd-t', kind: 'apgd-t', steps: 100 });
  assert.deepEqual(parseAttackSpec('fab-t50'), { name: 'fab-t50', kind: 'fab-t', steps: 50 });
  const aa = parseAttackSpec('AutoAttack');
  assert.deepEqual(aa.components!.map((c) => [c.kind, c.steps]), [['apgd-ce', 100], ['apgd-t', 100], ['fab-t', 100], ['square', 5000]]);
  assert.deepEqual(aa.components![1].overrides, { restarts: 1, eotIter: 1, targets: 9 });
  const rand = parseAttackSpec('autoattack-rand');
  assert.deepEqual(rand.components!.map((c) => c.kind), ['apgd-ce', 'apgd-dlr']);
  assert.equal(rand.components![0].overrides!.eotIter, 20);
  for (const bad of ['autoattack5', 'clean3', 'fab', 'square0']) assert.throws(() => parseAttackSpec(bad), InputError, bad);
});

test('EoT on a deterministic model gives the same attack as one draw; APGD-T refuses fewer than 4 classes', () => {
  const small = x.slice([0, 0, 0, 0], [4, -1, -1, -1]) as tf.Tensor4D;
  const ys = y.slice([0], [4]) as tf.Tensor1D;
  const one = apgdAttack(classifierObjective(st, ys, 'dlr'), small, { eps: EPS, steps: 5, seed: 2 });
  const three = apgdAttack(classifierObjective(st, ys, 'dlr'), small, { eps: EPS, steps: 5, seed: 2, eotIter: 3 });
  assert.ok(tf.max(tf.abs(tf.sub(one, three))).dataSync()[0] < 1e-5);
  const threeClasses: LogitsFn = (a) => tf.tidy(() => tf.slice(logitsOf(st)(a), [0, 0], [-1, 3]) as tf.Tensor2D);
  assert.throws(() => apgdTargeted(threeClasses, small, tf.zeros([4], 'int32') as tf.Tensor1D, { steps: 2 }), InputError);
  tf.dispose([small, ys, one, three]);
});

test('no attack leaks tensors', () => {
  const small = x.slice([0, 0, 0, 0], [6, -1, -1, -1]) as tf.Tensor4D;
  const ys = y.slice([0], [6]) as tf.Tensor1D;
  for (const norm of ['linf', 'l2'] as const) {
    for (const spec of [parseAttackSpec('apgd-t3'), parseAttackSpec('fab-t3'), parseAttackSpec('square30'), presetSpec('autoattack', { iterations: 3, queries: 20, targets: 2 }), presetSpec('autoattack-rand', { iterations: 3, eotIter: 2 })]) {
      const s = { ...quick, norm };
      const eps = norm === 'linf' ? EPS : 0.5;
      runAttack(spec, at, small, ys, eps, s).dispose();
      const before = tf.memory().numTensors;
      runAttack(spec, at, small, ys, eps, s).dispose();
      assert.equal(tf.memory().numTensors, before, `${spec.name} (${norm}) leaks`);
    }
  }
  tf.dispose([small, ys]);
});
