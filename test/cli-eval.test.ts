import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const CLI = path.resolve('dist/src/cli/main.js');
const FIXTURE = path.resolve('fixtures/cifar10');
let root: string;
let ckpt: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args, '--backend', 'wasm'], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-cli-eval-'));
  ckpt = path.join(root, 'enc');
  const r = run(['train', '--out', ckpt, '--dataset', 'cifar10', '--data-dir', FIXTURE, '--limit', '48', '--eval-limit', '8', '--arch', 'convnet', '--width', '4', '--batch-size', '16', '--epochs', '1', '--eval-steps', '1']);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('eval on the CIFAR fixture: eps sweep with fractions, table on stdout, eval.arrow and eval.json written', async () => {
  const out = path.join(root, 'eval');
  const r = run(['eval', '--model', ckpt, '--attacks', 'clean,fgsm,pgd2,apgd-ce3,apgd-dlr3', '--eps', '2/255,8/255', '--n', '12', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^model\s+attack\s+eps/m);
  assert.match(r.stdout, /apgd-dlr3\s+0\.0314 \(8\/255\)/);
  assert.match(r.stdout, /worst-case/);
  const json = JSON.parse(await readFile(path.join(out, 'eval.json'), 'utf8'));
  assert.equal(json.rows.length, 1 + 4 * 2 + 2);
  assert.ok((await stat(path.join(out, 'eval.arrow'))).size > 0);
});

test('finetune (robust-linear) and layer-probes run from the command line; eval accepts the probe', () => {
  const ft = run(['finetune', ckpt, '--mode', 'robust-linear', '--limit', '32', '--eval-limit', '8', '--epochs', '1', '--batch-size', '16', '--eps', '4/255', '--steps', '1', '--eval-steps', '1']);
  assert.equal(ft.code, 0, ft.stderr);
  assert.match(ft.stdout, /enc-robust-linear \(probe, robust-linear on cifar10\)/);
  const ev = run(['eval', '--model', `${ckpt}-robust-linear`, '--attacks', 'clean,pgd1', '--eps', '4/255', '--n', '8', '--out', path.join(root, 'eval2')]);
  assert.equal(ev.code, 0, ev.stderr);
  const lp = run(['layer-probes', ckpt, '--limit', '32', '--eval-limit', '8', '--epochs', '1']);
  assert.equal(lp.code, 0, lp.stderr);
  assert.match(lp.stdout, /^pool\s+16/m);
});

test('--help of eval, finetune and layer-probes shows the defaults', () => {
  for (const cmd of ['eval', 'finetune', 'layer-probes']) {
    const r = run([cmd, '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\[default: /);
  }
  assert.match(run(['eval', '--help']).stdout, /default: "clean,pgd20,apgd-ce,apgd-dlr"/);
});

test('bad attack names and bad eps give one clear line and exit code 2', () => {
  const bad = run(['eval', '--model', ckpt, '--attacks', 'cw', '--out', path.join(root, 'x')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /robustsim: error: --attacks: unknown attack 'cw'/);
  const eps = run(['eval', '--model', ckpt, '--eps', '8/x', '--out', path.join(root, 'x')]);
  assert.equal(eps.code, 2);
  assert.match(eps.stderr, /--eps: expected a number or a fraction/);
});
