import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadStudy, prepareStudyDir } from '../src/pipeline/study/index.js';
import { InputError } from '../src/errors.js';
import { runCli, tinyStudy, writeConfig } from './study-fixture.js';

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'robustsim-study-config-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

type Edit = (c: any) => void;
const BAD: Array<[string, Edit, RegExp]> = [
  ['unknown key', (c) => (c.grid.shemes = ['sl']), /grid\.shemes: unknown key/],
  ['wrong type', (c) => (c.cka.n = '64'), /cka\.n: expected number, received string/],
  ['unknown scheme', (c) => (c.grid.schemes = ['sl', 'xl']), /grid\.schemes\[1\]: expected one of "sl"\|"cl"\|"scl"/],
  ['unknown method', (c) => (c.grid.methods = { sl: ['fancy'] }), /grid\.methods\.sl\[0\]: expected one of/],
  ['empty grid', (c) => (c.grid.regimes = []), /grid\.regimes: Too small: expected array to have >=1 items/],
  ['method of another scheme', (c) => (c.grid.methods = { sl: ['rocl'] }), /grid\.methods\.sl\[0\]: 'rocl' is not a method of scheme sl/],
  ['eps not a number', (c) => (c.grid.trainEps = ['eight']), /grid\.trainEps\[0\]: /],
  ['missing data dir for CIFAR', (c) => delete c.dataset.dataDir, /dataset\.dataDir: missing: cifar10 needs the official binary files/],
  ['duplicate cell', (c) => (c.cells = [{ scheme: 'sl', regime: 'at' }]), /cells\[0\]: duplicate cell sl-at/],
  ['comparison naming a missing cell', (c) => (c.comparisons = { pairs: [{ a: 'sl-at', b: 'scl-at' }] }), /comparisons\.pairs\[0\]\.b: no cell named 'scl-at'/],
  ['method where the encoder is standard-trained', (c) => (c.cells = [{ scheme: 'cl', regime: 'st-fat', method: 'rocl' }]), /cells\[0\]\.method: 'rocl' has no effect in regime st-fat/],
  ['missing required key', (c) => delete c.cka, /cka: missing \(expected object\)/],
  ['unknown tap set', (c) => (c.taps = 'every'), /taps: expected one of "blocks"\|"all"/],
  ['negative adversarial probe samples', (c) => (c.probes.adversarialN = -1), /probes\.adversarialN: Too small/],
  ['augment none for a contrastive scheme', (c) => (c.training.all.augment = 'none'), /training\.all\.augment: 'none' for scheme cl/],
];

for (const [name, edit, expected] of BAD) {
  test(`bad config (${name}): one error naming the key path, nothing written`, async () => {
    const c = tinyStudy();
    edit(c);
    const file = await writeConfig(path.join(root, name.replace(/\W+/g, '-')), c);
    const out = path.join(root, `out-${name.replace(/\W+/g, '-')}`);
    await assert.rejects(loadStudy({ config: file, out }), (err: Error) => {
      assert.ok(err instanceof InputError, String(err));
      assert.ok(err.message.startsWith(`${file}: `), err.message);
      assert.match(err.message, expected);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    assert.equal(await fs.stat(out).then(() => true, () => false), false);
  });
}

test('the CLI prints a bad config as one line and exits 2, leaving no study directory', async () => {
  const c = tinyStudy();
  (c as any).grid.schemes = ['sl', 'sl'];
  const file = await writeConfig(path.join(root, 'cli'), c);
  const out = path.join(root, 'cli-out');
  const r = runCli(['study', '--config', file, '--out', out], 60_000);
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('backend:'));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /grid\.schemes\[1\]: 'sl' listed twice/);
  assert.equal(await fs.stat(out).then(() => true, () => false), false);
});

test('an unwritable --out is refused in one line, and nothing is left behind', async () => {
  const file = await writeConfig(path.join(root, 'unwritable'), tinyStudy());
  const blocker = path.join(root, 'a-file');
  await fs.writeFile(blocker, 'x');
  const ctx = await loadStudy({ config: file, out: path.join(blocker, 'study') });
  await assert.rejects(prepareStudyDir(ctx), /--out .*a-file\/study: cannot write there \(ENOTDIR\)/);
  assert.equal((await fs.readFile(blocker, 'utf8')), 'x');
});

test('cell names follow <scheme>-<regime>[-<method>][-eps<N>][-s<seed>]', async () => {
  const c = tinyStudy() as any;
  c.grid.methods = { cl: ['study-at', 'rocl'] };
  c.grid.seeds = [0, 1];
  c.cells = [{ scheme: 'cl', regime: 'at', method: 'rocl', trainEps: '8/255', seed: 0 }];
  const file = await writeConfig(path.join(root, 'names'), c);
  const ctx = await loadStudy({ config: file, out: path.join(root, 'names-out') });
  const names = ctx.plan.cells.map((x) => x.name);
  for (const n of ['sl-st', 'sl-st-s1', 'sl-at', 'cl-at', 'cl-at-rocl', 'cl-at-rocl-s1', 'cl-at-rocl-eps8']) assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
});

test('presets validate, and the CIFAR ones ask for their data directory', async () => {
  for (const p of ['fmnist-quick']) {
    const ctx = await loadStudy({ preset: p });
    assert.ok(ctx.plan.cells.length >= 11);
    assert.ok(ctx.plan.cells.some((c) => c.name === 'sl-at-eps12.75') && ctx.plan.cells.some((c) => c.name === 'sl-at-eps51'));
  }
  for (const p of ['cifar10-resnet18', 'cifar100-resnet50']) {
    await assert.rejects(loadStudy({ preset: p }), /dataset\.dataDir: 'data\/cifar.*' is not a directory/);
    const ctx = await loadStudy({ preset: p, dataDir: path.resolve('fixtures/cifar10') });
    assert.ok(ctx.plan.stages.length > 40);
  }
});
