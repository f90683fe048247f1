import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readSimilarity } from '../src/formats/similarity.js';

const CLI = path.resolve('dist/src/cli/main.js');
const FIXTURE = path.resolve('fixtures/cifar10');
let root: string;
let ckpt: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-cli-cka-'));
  ckpt = path.join(root, 'ckpt');
  const r = run(['train', '--out', ckpt, '--dataset', 'cifar10', '--data-dir', FIXTURE, '--limit', '32', '--eval-limit', '8', '--arch', 'convnet', '--width', '4', '--batch-size', '16', '--eval-steps', '1', '--epochs', '1', '--backend', 'wasm']);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const STREAM = () => ['cka', '--model', ckpt, '--data-dir', FIXTURE, '--n', '48', '--batch-size', '16', '--steps', '1', '--layers', 'conv2,pool', '--backend', 'wasm'];

test('cka --model --shard i/k, then cka-merge, from the command line', async () => {
  const shards = [0, 1].map((i) => path.join(root, `s${i}`));
  for (const [i, dir] of shards.entries()) {
    const r = run([...STREAM(), '--shard', `${i}/2`, '--stats', '--bootstrap', '20', '--permutations', '2', '--out', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /estimator minibatch/);
  }
  const merged = path.join(root, 'merged');
  const m = run(['cka-merge', ...shards, '--out', merged]);
  assert.equal(m.code, 0, m.stderr);
  const sim = await readSimilarity(path.join(merged, 'similarity.arrow'));
  assert.equal(sim.metadata.n, 48);
  assert.equal(sim.metadata.batches, 3);
  assert.deepEqual(sim.rows, ['conv2@clean', 'pool@clean', 'conv2@adv', 'pool@adv']);
  assert.ok(sim.extra?.ci_low && sim.extra?.null_mean);
  const rep = run(['report', '--sim', merged, '--out', path.join(root, 'r.html')]);
  assert.equal(rep.code, 0, rep.stderr);
});

test('cka refuses contradictory or impossible requests with exit 2 and the flag named', async () => {
  const both = run(['cka', '--acts', 'x.arrow', '--model', ckpt, '--out', path.join(root, 'no')]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /--acts\/--model/);
  const biased = run([...STREAM(), '--estimator', 'biased', '--out', path.join(root, 'no')]);
  assert.equal(biased.code, 2);
  assert.match(biased.stderr, /--estimator/);
  const tiny = run([...STREAM(), '--batch-size', '3', '--out', path.join(root, 'no')]);
  assert.equal(tiny.code, 2);
  assert.match(tiny.stderr, /--batch-size/);
  await assert.rejects(stat(path.join(root, 'no')));
});

test('cka --acts --estimator minibatch works on captured activations', async () => {
  const acts = path.join(root, 'acts.arrow');
  const cap = run(['capture', ckpt, '--out', acts, '--data-dir', FIXTURE, '--n', '32', '--steps', '1', '--layers', 'conv2,pool', '--backend', 'wasm']);
  assert.equal(cap.code, 0, cap.stderr);
  const out = path.join(root, 'from-acts');
  const r = run(['cka', '--acts', acts, '--estimator', 'minibatch', '--batch-size', '16', '--out', out, '--backend', 'wasm']);
  assert.equal(r.code, 0, r.stderr);
  const sim = await readSimilarity(path.join(out, 'similarity.arrow'));
  assert.equal(sim.metadata.estimator, 'minibatch');
  assert.equal(sim.metadata.batches, 2);
  assert.ok(Math.abs(sim.cka[0] - 1) < 1e-4);
  // --workers 2 splits the batches over two wasm instances: the same table, statistics included.
  const stats = ['--stats', '--bootstrap', '10', '--permutations', '2'];
  const one = path.join(root, 'acts-w1');
  const two = path.join(root, 'acts-w2');
  for (const [dir, w] of [[one, '1'], [two, '2']]) {
    const rw = run(['cka', '--acts', acts, '--estimator', 'minibatch', '--batch-size', '8', ...stats, '--workers', w, '--out', dir, '--backend', 'wasm']);
    assert.equal(rw.code, 0, rw.stderr);
  }
  const s1 = await readSimilarity(path.join(one, 'similarity.arrow'));
  const s2 = await readSimilarity(path.join(two, 'similarity.arrow'));
  assert.equal(s2.metadata.batches, 4);
  for (const [x, y] of [[s1.cka, s2.cka], ...['ci_low', 'ci_high', 'null_mean', 'null_sd'].map((k) => [s1.extra![k], s2.extra![k]])]) {
    assert.equal(x.length, y.length);
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= 1e-9, `${x[i]} vs ${y[i]}`);
  }
  // --formulation feature (no b x b Grams) gives the Gram path's values within float32 rounding.
  const feat = path.join(root, 'acts-feature');
  const rf = run(['cka', '--acts', acts, '--estimator', 'minibatch', '--batch-size', '8', '--formulation', 'feature', '--out', feat, '--backend', 'wasm']);
  assert.equal(rf.code, 0, rf.stderr);
  const sf = await readSimilarity(path.join(feat, 'similarity.arrow'));
  for (let i = 0; i < s1.cka.length; i++) assert.ok(Math.abs(sf.cka[i] - s1.cka[i]) < 1e-5, `${sf.cka[i]} vs ${s1.cka[i]}`);
  const pro = run(['cka', '--acts', acts, '--measure', 'procrustes', '--out', path.join(root, 'pro'), '--backend', 'wasm']);
  assert.equal(pro.code, 0, pro.stderr);
  const p = await readSimilarity(path.join(root, 'pro', 'similarity.arrow'));
  assert.equal(p.metadata.measure, 'procrustes');
  assert.ok(p.extra?.distance && Math.abs(p.cka[0] - 1) < 1e-6);
  const rbf = run(['cka', '--acts', acts, '--measure', 'rbf-cka', '--estimator', 'biased', '--out', path.join(root, 'rbf'), '--backend', 'wasm']);
  assert.equal(rbf.code, 2);
  assert.match(rbf.stderr, /--estimator/);
});
