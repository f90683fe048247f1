import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { MEASURES, MEASURE_NAMES } from '../src/cka/measures/index.js';
import type { Measure, SimilarityRequest } from '../src/cka/similarity/request.js';
import { runSimilarity } from '../src/cka/similarity/run.js';
import { InputError } from '../src/errors.js';

const CLI = path.resolve('dist/src/cli/main.js');
const root = await mkdtemp(path.join(tmpdir(), 'robustsim-similarity-'));
test.after(() => rm(root, { recursive: true, force: true }));

test('every Measure has a spec, and `cka --help` offers exactly those measures', () => {
  // A Record over Measure: adding a name to the type without a spec (or the reverse) fails to compile or here.
  const every: Record<Measure, true> = { cka: true, 'rbf-cka': true, procrustes: true };
  assert.deepEqual([...MEASURE_NAMES].sort(), Object.keys(every).sort());
  for (const name of MEASURE_NAMES) {
    const spec = MEASURES[name];
    assert.equal(typeof spec.fromActivations, 'function', name);
    assert.ok(spec.fromModels || spec.modelsRefusal, `${name}: streams, or says why not`);
  }
  const help = spawnSync(process.execPath, [CLI, 'cka', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0, help.stderr);
  const choices = /--measure[\s\S]*?\[choices: ([^\]]*)\]/.exec(help.stdout);
  assert.ok(choices, help.stdout);
  assert.deepEqual(choices[1].split(',').map((c) => c.trim().replace(/"/g, '')).sort(), [...MEASURE_NAMES].sort());
});

/** Each case: the CLI flags and the library request for the same impossible combination. */
const out = () => path.join(root, 'never');
const CASES: Array<{ why: string; flags: string[]; request: SimilarityRequest }> = [
  { why: 'both sources', flags: ['--acts', 'a.arrow', '--model', 'ckpt'], request: { acts: 'a.arrow', models: ['ckpt'], out: out() } },
  { why: 'procrustes streamed', flags: ['--model', 'ckpt', '--measure', 'procrustes'], request: { models: ['ckpt'], measure: 'procrustes', out: out() } },
  { why: 'procrustes with an estimator', flags: ['--acts', 'a.arrow', '--measure', 'procrustes', '--estimator', 'biased'], request: { acts: 'a.arrow', measure: 'procrustes', estimator: 'biased', out: out() } },
  { why: 'rbf full data', flags: ['--acts', 'a.arrow', '--measure', 'rbf-cka', '--estimator', 'debiased'], request: { acts: 'a.arrow', measure: 'rbf-cka', estimator: 'debiased', out: out() } },
  { why: 'full data streamed', flags: ['--model', 'ckpt', '--estimator', 'biased'], request: { models: ['ckpt'], estimator: 'biased', out: out() } },
  { why: 'feature formulation for rbf', flags: ['--acts', 'a.arrow', '--measure', 'rbf-cka', '--formulation', 'feature'], request: { acts: 'a.arrow', measure: 'rbf-cka', formulation: 'feature', out: out() } },
  { why: 'sharded full data', flags: ['--acts', 'a.arrow', '--shard', '0/2'], request: { acts: 'a.arrow', shard: { index: 0, count: 2 }, out: out() } },
  { why: '--sets with models', flags: ['--model', 'ckpt', '--sets', 'x'], request: { models: ['ckpt'], sets: ['x'], out: out() } },
  { why: '--attack-loss with stored activations', flags: ['--acts', 'a.arrow', '--attack-loss', 'contrastive'], request: { acts: 'a.arrow', attackLoss: 'contrastive', out: out() } },
  { why: 'bootstrap over one batch', flags: ['--model', 'ckpt', '--n', '256', '--batch-size', '256', '--stats'], request: { models: ['ckpt'], n: 256, batchSize: 256, bootstrap: 200, permutations: 20, out: out() } },
];

test('a library caller gets the refusals of the CLI, word for word, before anything is read or written', async () => {
  for (const c of CASES) {
    const cli = spawnSync(process.execPath, [CLI, 'cka', ...c.flags, '--out', out()], { encoding: 'utf8' });
    assert.equal(cli.status, 2, `${c.why}: ${cli.stderr}`);
    let message = '';
    await assert.rejects(runSimilarity(c.request), (e: unknown) => e instanceof InputError && ((message = e.message), true), c.why);
    assert.ok(cli.stderr.includes(message), `${c.why}: CLI said ${cli.stderr.trim()}; library said ${message}`);
  }
  await assert.rejects(stat(out()));
});

test('one minibatch with --stats is refused and says why', async () => {
  await assert.rejects(runSimilarity(CASES.at(-1)!.request), (e: unknown) => e instanceof InputError && /zero width/.test(e.message));
});
