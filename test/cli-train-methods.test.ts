import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const CLI = path.resolve('dist/src/cli/main.js');
const FIXTURE = path.resolve('fixtures/cifar10');
const TINY = ['--dataset', 'cifar10', '--data-dir', FIXTURE, '--limit', '32', '--eval-limit', '8', '--arch', 'convnet', '--width', '4', '--batch-size', '16', '--epochs', '1', '--steps', '1', '--eval-steps', '1', '--proj-dim', '8', '--backend', 'wasm'];
let root: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-cli-methods-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('train --scheme scl --regime at --method rocl writes a checkpoint whose meta.json records the method and its parameters', async () => {
  const out = path.join(root, 'scl-rocl');
  const r = run(['train', '--out', out, ...TINY, '--scheme', 'scl', '--regime', 'at', '--method', 'rocl', '--temperature', '0.2', '--rocl-lambda', '128']);
  assert.equal(r.code, 0, r.stderr);
  const meta = JSON.parse(await readFile(path.join(out, 'meta.json'), 'utf8'));
  assert.equal(meta.name, 'scl-rocl');
  assert.equal(meta.config.scheme, 'scl');
  assert.equal(meta.config.method, 'rocl');
  assert.equal(meta.config.temperature, 0.2);
  assert.equal(meta.config.roclLambda, 128);
  assert.equal(meta.config.augment, 'contrastive');
  assert.deepEqual(meta.projection, { hidden: 16, dim: 8 });
});

test('train --scheme cl --regime fat pre-trains an encoder then fine-tunes it adversarially', () => {
  const fat = run(['train', '--out', path.join(root, 'fat'), ...TINY, '--scheme', 'cl', '--regime', 'fat', '--finetune-epochs', '1']);
  assert.equal(fat.code, 0, fat.stderr);
  assert.match(fat.stdout, /encoder: .*fat-encoder/);
  assert.match(fat.stdout, /checkpoint: .*fat \(clean accuracy/);
});

test('train --scheme cl --method acl --regime fat fine-tunes with TRADES (beta 6) and records it; --finetune-objective overrides', async () => {
  const out = path.join(root, 'acl-fat');
  const r = run(['train', '--out', out, ...TINY, '--scheme', 'cl', '--method', 'acl', '--regime', 'fat', '--finetune-epochs', '1']);
  assert.equal(r.code, 0, r.stderr);
  const meta = JSON.parse(await readFile(path.join(out, 'meta.json'), 'utf8'));
  assert.equal(meta.config.method, 'acl');
  assert.equal(meta.finetune.config.mode, 'full-adv');
  assert.equal(meta.finetune.config.objective, 'trades');
  assert.equal(meta.finetune.config.tradesBeta, 6);
  const pgd = path.join(root, 'acl-fat-ce');
  const r2 = run(['train', '--out', pgd, ...TINY, '--scheme', 'cl', '--method', 'acl', '--regime', 'fat', '--finetune-epochs', '1', '--finetune-objective', 'ce-ce']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(JSON.parse(await readFile(path.join(pgd, 'meta.json'), 'utf8')).finetune.config.objective, 'ce-ce');
});

test('train --regime st-fat refuses a method that would change nothing', () => {
  const r = run(['train', '--out', path.join(root, 'st-rocl'), ...TINY, '--scheme', 'cl', '--method', 'rocl', '--regime', 'st-fat']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--method: 'rocl' has no effect in --regime st-fat/);
});

test('train refuses a method of another scheme with one line and exit code 2', () => {
  const wrong = run(['train', '--out', path.join(root, 'wrong'), ...TINY, '--scheme', 'sl', '--regime', 'at', '--method', 'acl']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /robustsim: error: --method: expected one of pgd, trades for --scheme sl --regime at, got 'acl'/);
});

test('train --workers 2 pre-trains pat encoders data-parallel (sl; cl with study-at; meta records it) and trains cl clae and scl rcl-bound', async () => {
  const out = path.join(root, 'pat-w2');
  const pat = run(['train', '--out', out, ...TINY, '--scheme', 'sl', '--regime', 'pat', '--finetune-epochs', '1', '--workers', '2']);
  assert.equal(pat.code, 0, pat.stderr);
  const meta = JSON.parse(await readFile(path.join(`${out}-encoder`, 'meta.json'), 'utf8'));
  assert.equal(meta.config.workers, 2);
  const clOut = path.join(root, 'cl-pat-w2');
  const clPat = run(['train', '--out', clOut, ...TINY, '--scheme', 'cl', '--regime', 'pat', '--finetune-epochs', '1', '--workers', '2']);
  assert.equal(clPat.code, 0, clPat.stderr);
  const clMeta = JSON.parse(await readFile(path.join(`${clOut}-encoder`, 'meta.json'), 'utf8'));
  assert.equal(clMeta.config.method, 'study-at');
  assert.equal(clMeta.config.workers, 2);
  for (const [scheme, method] of [['cl', 'clae'], ['scl', 'rcl-bound']]) {
    const methodOut = path.join(root, `${scheme}-${method}-w2`);
    const r = run(['train', '--out', methodOut, ...TINY, '--scheme', scheme, '--regime', 'at', '--method', method, '--workers', '2']);
    assert.equal(r.code, 0, r.stderr);
    const methodMeta = JSON.parse(await readFile(path.join(methodOut, 'meta.json'), 'utf8'));
    assert.equal(methodMeta.config.method, method);
    assert.equal(methodMeta.config.workers, 2);
    assert.ok(methodMeta.history.every((h: { loss: number }) => Number.isFinite(h.loss)), `${method}: ${JSON.stringify(methodMeta.history)}`);
  }
  const zero = run(['train', '--out', path.join(root, 'w0'), ...TINY, '--workers', '0']);
  assert.equal(zero.code, 2);
  assert.match(zero.stderr, /--workers: expected an integer >= 1, got 0/);
});
