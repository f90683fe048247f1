import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../src/errors.js';
import { makeRng } from '../src/util/rng.js';
import type { ActivationSet } from '../src/formats/activations.js';
import { computeSimilarity } from '../src/cka/similarity/shortcuts.js';
import { linearCkaBiased, linearCkaDebiased, matrixFromSet } from '../src/cka/measures/reference.js';
import { writeActivations } from '../src/formats/activations.js';
import { readSimilarity } from '../src/formats/similarity.js';
import { writeNpy } from '../src/formats/npy.js';

await tf.setBackend('cpu');
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'robustsim-cka-'));
test.after(() => fs.rm(tmp, { recursive: true, force: true }));

function randomSet(name: string, n: number, dim: number, seed: number): ActivationSet {
  const rng = makeRng(seed);
  return { name, n, dim, data: Float32Array.from({ length: n * dim }, () => rng() * 2 - 1) };
}

const n = 12;
const ids = Int32Array.from({ length: n }, (_, i) => 1000 + i);
const clean = randomSet('conv1@clean', n, 6, 1);
const adv: ActivationSet = { ...randomSet('conv1@adv', n, 6, 2), name: 'conv1@adv' };
for (let i = 0; i < adv.data.length; i++) adv.data[i] += clean.data[i];
const fc = randomSet('fc@clean', n, 3, 3);

async function actsFile(name: string, sets: ActivationSet[], sampleIds = ids, metadata: Record<string, unknown> = { model: name }): Promise<string> {
  const file = path.join(tmp, `${name}.arrow`);
  await writeActivations(file, { sampleIds, labels: new Int32Array(sampleIds.length), sets, metadata });
  return file;
}

/** Run, expect an InputError matching `pattern`, and check that `out` was not created. */
async function failsCleanly(opts: Parameters<typeof computeSimilarity>[0], pattern: RegExp): Promise<void> {
  await assert.rejects(computeSimilarity(opts), (err: unknown) => err instanceof InputError && pattern.test(err.message));
  await assert.rejects(fs.access(opts.out), 'no output directory or file');
}

test('one input: sets x sets matrix, reference values, metadata', async () => {
  const acts = await actsFile('model-a', [clean, adv, fc]);
  const out = path.join(tmp, 'out-one');
  const res = await computeSimilarity({ acts, estimator: 'biased', out, backend: 'cpu' });
  assert.equal(res.file, path.join(out, 'similarity.arrow'));
  const sim = await readSimilarity(res.file);
  assert.deepEqual(sim.rows, ['conv1@clean', 'conv1@adv', 'fc@clean']);
  assert.deepEqual(sim.cols, sim.rows);
  const sets = [clean, adv, fc];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
    assert.ok(Math.abs(sim.cka[i * 3 + j] - linearCkaBiased(matrixFromSet(sets[i]), matrixFromSet(sets[j]))) < 1e-4);
  }
  assert.ok(sim.extra?.hsic && sim.extra.hsic[0] > 0);
  const md = sim.metadata;
  assert.equal(md.estimator, 'biased');
  assert.equal(md.n, n);
  assert.deepEqual(md.inputs, [acts]);
  assert.equal(md.rows_from, acts);
  assert.equal(md.cols_from, acts);
  assert.deepEqual(md.sources, [{ model: 'model-a' }]);
  assert.deepEqual(md.flagged, []);
  assert.equal((md.provenance as { backend: string }).backend, 'cpu');
});

test('two inputs: rows from --acts, columns from --acts2, a chosen subset of sets', async () => {
  const a = await actsFile('two-a', [clean, fc]);
  const b = await actsFile('two-b', [adv, fc, clean].map((s, k) => ({ ...s, name: ['conv1@clean', 'fc@clean', 'extra@clean'][k] })));
  const out = path.join(tmp, 'out-two');
  const res = await computeSimilarity({ acts: a, acts2: b, estimator: 'debiased', out, sets: ['fc@clean', 'conv1@clean'] });
  const sim = await readSimilarity(res.file);
  assert.deepEqual(sim.rows, ['fc@clean', 'conv1@clean']);
  assert.deepEqual(sim.cols, ['fc@clean', 'conv1@clean']);
  // Column conv1@clean of input b holds `adv`'s data, row fc@clean of a holds fc's.
  const want = linearCkaDebiased(matrixFromSet(fc), matrixFromSet(adv));
  assert.ok(Math.abs(sim.cka[0 * 2 + 1] - want) < 1e-4);
  assert.deepEqual(sim.metadata.inputs, [a, b]);
  assert.equal(sim.metadata.rows_from, a);
  assert.equal(sim.metadata.cols_from, b);
  assert.deepEqual(sim.metadata.sources, [{ model: 'two-a' }, { model: 'two-b' }]);
});

test('values outside [0, 1] beyond rounding are flagged and kept, not clamped', async () => {
  // Independent sets on few samples: the debiased estimator dips below zero.
  const sets = [0, 1, 2, 3, 4, 5].map((k) => randomSet(`r${k}`, 8, 2, 50 + k));
  const acts = await actsFile('independent', sets, Int32Array.from({ length: 8 }, (_, i) => i));
  const res = await computeSimilarity({ acts, estimator: 'debiased', out: path.join(tmp, 'out-flag') });
  const negative = Array.from(res.similarity.cka).filter((v) => v < -1e-3);
  assert.ok(negative.length > 0, 'test data should produce negative debiased CKA');
  assert.equal(res.flagged.length, negative.length);
  const sim = await readSimilarity(res.file);
  assert.ok(Math.min(...sim.cka) < -1e-3, 'stored unclamped');
  assert.equal((sim.metadata.flagged as unknown[]).length, negative.length);
  assert.match(String(sim.metadata.warning), /outside/);
});

test('failures are InputErrors and leave no output', async () => {
  const a = await actsFile('f-a', [clean, fc]);
  const shuffled = Int32Array.from(ids);
  [shuffled[4], shuffled[5]] = [shuffled[5], shuffled[4]];
  const b = await actsFile('f-b', [clean, fc], shuffled);
  const out = path.join(tmp, 'never');
  await failsCleanly({ acts: a, acts2: b, estimator: 'biased', out }, /f-a\.arrow and .*f-b\.arrow hold different samples: at position 4 sample_id 1004 vs 1005/);
  const short = await actsFile('f-short', [{ ...clean, n: n - 1, data: clean.data.subarray(0, (n - 1) * 6) }], ids.subarray(0, n - 1));
  await failsCleanly({ acts: a, acts2: short, estimator: 'biased', out }, /f-a\.arrow has 12 samples but .*f-short\.arrow has 11/);
  await failsCleanly({ acts: a, estimator: 'biased', out, sets: ['fc@clean', 'nope@adv'] }, /unknown set 'nope@adv'; available: conv1@clean, fc@clean/);

  const nan = { ...fc, name: 'nan@adv', data: Float32Array.from(fc.data) };
  nan.data[4] = NaN;
  await failsCleanly({ acts: await actsFile('f-nan', [clean, nan]), estimator: 'biased', out }, /f-nan\.arrow: set 'nan@adv': non-finite value NaN at sample 1, feature 1/);
  const flat = { name: 'dead@clean', n, dim: 2, data: new Float32Array(n * 2).fill(3) };
  await failsCleanly({ acts: await actsFile('f-flat', [clean, flat]), estimator: 'debiased', out }, /f-flat\.arrow: set 'dead@clean': .*zero variance/);
  const three = [randomSet('t@clean', 3, 2, 9)];
  await failsCleanly({ acts: await actsFile('f-three', three, Int32Array.from([1, 2, 3])), estimator: 'biased', out }, /f-three\.arrow: 3 samples; linear CKA needs at least 4/);

  const truncated = path.join(tmp, 'f-trunc.arrow');
  const bytes = await fs.readFile(a);
  await fs.writeFile(truncated, bytes.subarray(0, bytes.length - 100));
  await failsCleanly({ acts: truncated, estimator: 'biased', out }, /f-trunc\.arrow: not a readable Arrow IPC file/);
  await failsCleanly({ acts: a, estimator: 'unbiased' as 'biased', out }, /--estimator: 'unbiased'/);
});

test('a directory of .npy files works as input', async () => {
  const dir = path.join(tmp, 'npy-in');
  await writeNpy(path.join(dir, 'b.npy'), adv.data, [n, 6]);
  await writeNpy(path.join(dir, 'a.npy'), clean.data, [n, 2, 3]);
  const res = await computeSimilarity({ acts: dir, estimator: 'biased', out: path.join(tmp, 'out-npy') });
  assert.deepEqual(res.similarity.rows, ['a', 'b']);
  assert.ok(Math.abs(res.similarity.cka[1] - linearCkaBiased(matrixFromSet(clean), matrixFromSet(adv))) < 1e-4);
});
