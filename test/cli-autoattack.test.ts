import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readEval } from '../src/formats/eval.js';

const CLI = path.resolve('dist/src/cli/main.js');
const FIXTURE = path.resolve('fixtures/cifar10');
let root: string;
let ckpt: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args, '--backend', 'wasm'], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-cli-aa-'));
  ckpt = path.join(root, 'st');
  const r = run(['train', '--out', ckpt, '--dataset', 'cifar10', '--data-dir', FIXTURE, '--limit', '200', '--eval-limit', '8', '--arch', 'convnet', '--width', '8',
    '--batch-size', '32', '--epochs', '2', '--optimizer', 'adam', '--lr', '0.005', '--augment', 'none', '--seed', '3', '--eval-steps', '1']);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('eval --attacks autoattack (the paper\'s budgets): one row per component, the AutoAttack figure, presets and warnings in eval.json', async () => {
  const out = path.join(root, 'eval');
  const r = run(['eval', '--model', ckpt, '--attacks', 'clean,autoattack', '--eps', '8/255', '--n', '8', '--split', 'train', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  for (const c of ['apgd-ce', 'apgd-t', 'fab-t', 'square']) assert.match(r.stdout, new RegExp(`autoattack/${c}\\s`));
  assert.match(r.stdout, /^\S+\s+autoattack\s+0\.0314 \(8\/255\)/m);
  const json = JSON.parse(await readFile(path.join(out, 'eval.json'), 'utf8'));
  assert.deepEqual(json.rows.map((x: { attack: string }) => x.attack), ['clean', 'autoattack/apgd-ce', 'autoattack/apgd-t', 'autoattack/fab-t', 'autoattack/square', 'autoattack']);
  assert.deepEqual(json.presets.autoattack.map((c: { attack: string; steps: number }) => [c.attack, c.steps]), [['apgd-ce', 100], ['apgd-t', 100], ['fab-t', 100], ['square', 5000]]);
  assert.ok(Array.isArray(json.warnings));
  const acc = json.rows.map((x: { accuracy: number }) => x.accuracy);
  for (let i = 2; i < acc.length - 1; i++) assert.ok(acc[i] <= acc[i - 1]);
  assert.equal(acc[acc.length - 1], acc[acc.length - 2]);
  assert.ok(acc[acc.length - 1] <= 0.125, `standard-trained model at 8/255: ${acc[acc.length - 1]}`);
  const arrow = await readEval(path.join(out, 'eval.arrow'));
  assert.equal(arrow.rows.length, 6);
  assert.ok(Array.isArray(arrow.metadata.warnings));
});

test('eval refuses unknown attacks with the list of names, and preset names with a number', () => {
  for (const bad of ['autoattack5', 'fab']) {
    const r = run(['eval', '--model', ckpt, '--attacks', bad, '--n', '4']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--attacks: unknown attack .*apgd-t\[<N>\].*autoattack-rand/);
  }
});
