import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, readFile, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const CLI = path.resolve('dist/src/cli/main.js');
const FIXTURE = path.resolve('fixtures/cifar10');
let root: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const TINY = ['--dataset', 'cifar10', '--data-dir', FIXTURE, '--limit', '64', '--eval-limit', '16', '--arch', 'convnet', '--width', '4', '--batch-size', '16', '--eval-steps', '1', '--backend', 'wasm'];

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-cli-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('--help of the tool and of every command shows the defaults', () => {
  const top = run(['--help']);
  assert.equal(top.code, 0);
  for (const cmd of ['demo', 'train', 'layers', 'capture', 'cka', 'report']) assert.match(top.stdout, new RegExp(`robustsim ${cmd}`));
  for (const cmd of ['demo', 'train', 'capture', 'cka', 'report']) {
    const r = run([cmd, '--help']);
    assert.equal(r.code, 0, `${cmd} --help failed: ${r.stderr}`);
    assert.match(r.stdout, /\[default: /, `${cmd} --help shows no defaults`);
  }
});

test('a bad flag value gives one clear line and exit code 2', () => {
  const r = run(['train', '--out', path.join(root, 'bad'), ...TINY, '--epochs', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /robustsim: error: --epochs: expected an integer >= 1, got 0/);
  const missing = run(['train', '--out', path.join(root, 'bad2'), '--dataset', 'cifar10', '--data-dir', path.join(root, 'nowhere'), '--backend', 'wasm']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nowhere/);
});

test('a killed training run leaves its last checkpoint intact, and --resume finishes it', async () => {
  const out = path.join(root, 'killed');
  const args = [CLI, 'train', '--out', out, ...TINY, '--epochs', '3', '--save-every', '1'];
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  // Kill it as soon as the first step checkpoint is complete (meta.json exists).
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ok = await stat(path.join(out, 'meta.json')).then(() => true, () => false);
    if (ok || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const meta = JSON.parse(await readFile(path.join(out, 'meta.json'), 'utf8'));
  assert.equal(meta.progress.complete, false);
  const layers = run(['layers', out]);
  assert.equal(layers.code, 0);
  assert.deepEqual(layers.stdout.trim().split('\n'), ['conv1', 'conv2', 'conv3', 'pool', 'logits']);
  const resumed = run(['train', '--out', out, ...TINY, '--epochs', '3', '--save-every', '1', '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed at epoch/);
  const done = JSON.parse(await readFile(path.join(out, 'meta.json'), 'utf8'));
  assert.equal(done.progress.complete, true);
  assert.equal(done.progress.epochsDone, 3);
  // No temp directories left beside the checkpoint.
  const siblings = (await readdir(root)).filter((f) => f.startsWith('killed.'));
  assert.deepEqual(siblings.filter((f) => !f.startsWith('killed.tmp-')), []);
});

test('train -> capture -> cka -> report from the command line, and capture refuses an unknown layer', async () => {
  const ckpt = path.join(root, 'pipe');
  assert.equal(run(['train', '--out', ckpt, ...TINY, '--epochs', '1', '--regime', 'at', '--steps', '1']).code, 0);
  const acts = path.join(root, 'pipe-acts.arrow');
  const bad = run(['capture', ckpt, '--out', acts, '--data-dir', FIXTURE, '--n', '32', '--layers', 'conv1,nope', '--backend', 'wasm']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /nope/);
  await assert.rejects(stat(acts));
  const cap = run(['capture', ckpt, '--out', acts, '--data-dir', FIXTURE, '--n', '32', '--eps', '8/255', '--steps', '2', '--backend', 'wasm']);
  assert.equal(cap.code, 0, cap.stderr);
  const sim = path.join(root, 'pipe-sim');
  const cka = run(['cka', '--acts', acts, '--out', sim, '--backend', 'wasm']);
  assert.equal(cka.code, 0, cka.stderr);
  const html = path.join(root, 'pipe.html');
  const rep = run(['report', '--sim', sim, '--out', html]);
  assert.equal(rep.code, 0, rep.stderr);
  const page = await readFile(html, 'utf8');
  assert.ok((page.match(/<svg/g) ?? []).length >= 4);
});
