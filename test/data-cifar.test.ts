import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../src/errors.js';
import { CIFAR_LAYOUTS, decodeCifarRecords } from '../src/data/cifar.js';
import { loadDataset } from '../src/data/index.js';
import type { Dataset } from '../src/data/types.js';
import {
  CIFAR100_FIXTURE_LABELS,
  CIFAR10_FIXTURE_LABELS,
  writeCifarFixtures,
} from '../fixtures/make-cifar-fixture.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures');
const C10 = path.join(FIXTURES, 'cifar10');
const C100 = path.join(FIXTURES, 'cifar100');

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'robustsim-data-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function copyDir(from: string, to: string): Promise<void> {
  await fs.mkdir(to, { recursive: true });
  for (const f of await fs.readdir(from)) await fs.copyFile(path.join(from, f), path.join(to, f));
}

function labelCounts(ds: Dataset): Map<number, number> {
  const m = new Map<number, number>();
  for (const l of ds.labels) m.set(l, (m.get(l) ?? 0) + 1);
  return m;
}

/** Assert `fn` rejects with an InputError whose message matches every pattern. */
async function rejectsInput(fn: () => Promise<unknown>, ...patterns: Array<string | RegExp>): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(err instanceof InputError, `expected InputError, got ${String(err)}`);
    for (const p of patterns) {
      if (typeof p === 'string') assert.ok(err.message.includes(p), `message ${JSON.stringify(err.message)} lacks ${p}`);
      else assert.match(err.message, p);
    }
    return true;
  });
}

test('CIFAR-10 fixture loads: 200 train / 100 test, 32x32x3, balanced labels, names from batches.meta.txt', async () => {
  const train = await loadDataset({ name: 'cifar10', split: 'train', dataDir: C10 });
  const testSplit = await loadDataset({ name: 'cifar10', split: 'test', dataDir: C10 });
  assert.equal(train.n, 200);
  assert.equal(testSplit.n, 100);
  assert.deepEqual([train.height, train.width, train.channels, train.numClasses], [32, 32, 3, 10]);
  assert.equal(train.images.length, 200 * 3072);
  assert.equal(train.classNames.length, 10);
  assert.equal(train.classNames[0], 'airplane');
  assert.deepEqual([...labelCounts(train).keys()].sort((a, b) => a - b), CIFAR10_FIXTURE_LABELS);
  for (const count of labelCounts(train).values()) assert.equal(count, 20);
  for (const count of labelCounts(testSplit).values()) assert.equal(count, 10);
  assert.ok(train.images.every((v) => v >= 0 && v <= 1));
  assert.ok(train.source.includes('data_batch_1.bin'));
});

test('CIFAR-100 fixture loads with fine labels and 100 class names', async () => {
  const train = await loadDataset({ name: 'cifar100', split: 'train', dataDir: C100 });
  const testSplit = await loadDataset({ name: 'cifar100', split: 'test', dataDir: C100 });
  assert.equal(train.n, 200);
  assert.equal(testSplit.n, 100);
  assert.deepEqual([train.height, train.width, train.channels, train.numClasses], [32, 32, 3, 100]);
  assert.equal(train.classNames.length, 100);
  assert.equal(train.classNames[99], 'worm');
  assert.deepEqual([...labelCounts(train).keys()].sort((a, b) => a - b), CIFAR100_FIXTURE_LABELS);
  assert.deepEqual([...labelCounts(testSplit).values()], new Array(10).fill(10));
});

test('fixture generator is deterministic: regenerating gives the committed bytes', async (t) => {
  const dir = await tempDir(t);
  await writeCifarFixtures(dir);
  for (const rel of ['cifar10/data_batch_1.bin', 'cifar10/test_batch.bin', 'cifar100/train.bin', 'cifar100/test.bin']) {
    const fresh = await fs.readFile(path.join(dir, rel));
    const committed = await fs.readFile(path.join(FIXTURES, rel));
    assert.ok(fresh.equals(committed), `${rel} differs from a fresh generation`);
  }
});

test('fixture is learnable: nearest class mean on train classifies most test images', async () => {
  for (const [name, dir] of [['cifar10', C10], ['cifar100', C100]] as const) {
    const train = await loadDataset({ name, split: 'train', dataDir: dir });
    const testSplit = await loadDataset({ name, split: 'test', dataDir: dir });
    const d = 3072;
    const means = new Map<number, Float64Array>();
    for (const [label, count] of labelCounts(train)) {
      const m = new Float64Array(d);
      for (let i = 0; i < train.n; i++) {
        if (train.labels[i] !== label) continue;
        for (let k = 0; k < d; k++) m[k] += train.images[i * d + k] / count;
      }
      means.set(label, m);
    }
    let correct = 0;
    for (let i = 0; i < testSplit.n; i++) {
      let best = -1;
      let bestDist = Infinity;
      for (const [label, m] of means) {
        let dist = 0;
        for (let k = 0; k < d; k++) dist += (testSplit.images[i * d + k] - m[k]) ** 2;
        if (dist < bestDist) [best, bestDist] = [label, dist];
      }
      if (best === testSplit.labels[i]) correct++;
    }
    assert.ok(correct / testSplit.n > 0.6, `${name}: nearest-mean accuracy ${correct / testSplit.n} (chance 0.1)`);
  }
});

test('CHW record bytes become NHWC floats / 255', () => {
  const layout = CIFAR_LAYOUTS.cifar10;
  const rec = new Uint8Array(2 * 3073);
  rec[0] = 3;
  rec[3073] = 7;
  // Pixel p of channel c in record r holds (r * 50 + c * 10 + p) % 256: distinct enough to catch swaps.
  for (let r = 0; r < 2; r++) {
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) rec[r * 3073 + 1 + c * 1024 + p] = (r * 50 + c * 10 + p) % 256;
  }
  const images = new Float32Array(2 * 3072);
  const labels = new Int32Array(2);
  assert.equal(decodeCifarRecords(rec, 'hand.bin', layout, images, labels, 0), 2);
  assert.deepEqual(Array.from(labels), [3, 7]);
  for (const [r, y, x] of [[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 31, 31], [1, 5, 17]]) {
    const p = y * 32 + x;
    for (let c = 0; c < 3; c++) {
      const expected = Math.fround(((r * 50 + c * 10 + p) % 256) / 255);
      assert.equal(images[r * 3072 + (y * 32 + x) * 3 + c], expected, `record ${r} (${y},${x}) channel ${c}`);
    }
  }

  const layout100 = CIFAR_LAYOUTS.cifar100;
  const rec100 = new Uint8Array(3074);
  rec100[0] = 19;
  rec100[1] = 42;
  rec100[2 + 1024 + 5] = 255; // green of pixel 5
  const img100 = new Float32Array(3072);
  const lab100 = new Int32Array(1);
  decodeCifarRecords(rec100, 'hand100.bin', layout100, img100, lab100, 0);
  assert.equal(lab100[0], 42, 'CIFAR-100 uses the fine (second) label byte');
  assert.equal(img100[5 * 3 + 1], 1);
  assert.equal(img100[5 * 3], 0);
});

test('archive subdirectories are accepted and train = contiguous data_batch_N', async (t) => {
  const dir = await tempDir(t);
  const sub = path.join(dir, 'cifar-10-batches-bin');
  await copyDir(C10, sub);
  await fs.copyFile(path.join(C10, 'data_batch_1.bin'), path.join(sub, 'data_batch_2.bin'));
  const train = await loadDataset({ name: 'cifar10', split: 'train', dataDir: dir });
  assert.equal(train.n, 400);
  assert.equal(train.ids[399], 399);
  assert.deepEqual(train.labels.subarray(200), train.labels.subarray(0, 200));

  await fs.copyFile(path.join(C10, 'data_batch_1.bin'), path.join(sub, 'data_batch_4.bin'));
  await rejectsInput(() => loadDataset({ name: 'cifar10', split: 'train', dataDir: dir }), 'data_batch_4.bin', 'data_batch_3.bin');

  const dir100 = await tempDir(t);
  await copyDir(C100, path.join(dir100, 'cifar-100-binary'));
  assert.equal((await loadDataset({ name: 'cifar100', split: 'test', dataDir: dir100 })).n, 100);
});

test('bad CIFAR input gives an InputError naming the file', async (t) => {
  const dir = await tempDir(t);
  await copyDir(C10, dir);
  await fs.rm(path.join(dir, 'test_batch.bin'));
  await rejectsInput(() => loadDataset({ name: 'cifar10', split: 'test', dataDir: dir }), 'test_batch.bin', 'data_batch_1.bin');
  await fs.rm(path.join(dir, 'data_batch_1.bin'));
  await rejectsInput(() => loadDataset({ name: 'cifar10', split: 'train', dataDir: dir }), 'data_batch_1.bin');

  const truncated = await tempDir(t);
  await copyDir(C10, truncated);
  const file = path.join(truncated, 'data_batch_1.bin');
  const bytes = await fs.readFile(file);
  await fs.writeFile(file, bytes.subarray(0, bytes.length - 100));
  await rejectsInput(() => loadDataset({ name: 'cifar10', split: 'train', dataDir: truncated }), file, String(bytes.length - 100), '3073');

  const badLabel = await tempDir(t);
  await copyDir(C10, badLabel);
  const testFile = path.join(badLabel, 'test_batch.bin');
  const testBytes = await fs.readFile(testFile);
  testBytes[3 * 3073] = 10;
  await fs.writeFile(testFile, testBytes);
  await rejectsInput(() => loadDataset({ name: 'cifar10', split: 'test', dataDir: badLabel }), testFile, 'record 3', 'label 10');

  const badFine = await tempDir(t);
  await copyDir(C100, badFine);
  const trainFile = path.join(badFine, 'train.bin');
  const trainBytes = await fs.readFile(trainFile);
  trainBytes[5 * 3074 + 1] = 100;
  await fs.writeFile(trainFile, trainBytes);
  await rejectsInput(() => loadDataset({ name: 'cifar100', split: 'train', dataDir: badFine }), trainFile, 'record 5', 'label 100');

  const badNames = await tempDir(t);
  await copyDir(C10, badNames);
  await fs.writeFile(path.join(badNames, 'batches.meta.txt'), 'cat\ndog\n');
  await rejectsInput(() => loadDataset({ name: 'cifar10', split: 'test', dataDir: badNames }), 'batches.meta.txt', 'expected 10');

  await fs.rm(path.join(badNames, 'batches.meta.txt'));
  const defaultNames = await loadDataset({ name: 'cifar10', split: 'test', dataDir: badNames });
  assert.equal(defaultNames.classNames[9], 'truck', 'official names when the names file is absent');
});

test('cifar without --data-dir and unknown names are InputErrors that say what is expected', async () => {
  await rejectsInput(() => loadDataset({ name: 'cifar10', split: 'train' }), '--data-dir', 'data_batch_1.bin', 'test_batch.bin');
  await rejectsInput(() => loadDataset({ name: 'cifar100', split: 'train' }), '--data-dir', 'train.bin', 'test.bin');
  await rejectsInput(() => loadDataset({ name: 'imagenet' as never, split: 'train' }), 'imagenet', 'fashion-mnist, mnist, cifar10, cifar100');
  await rejectsInput(() => loadDataset({ name: 'cifar10', split: 'val' as never, dataDir: C10 }), 'val');
  await rejectsInput(() => loadDataset({ name: 'cifar10', split: 'test', dataDir: path.join(C10, 'nope') }), 'nope', 'not a directory');
  await rejectsInput(() => loadDataset({ name: 'cifar10', split: 'test', dataDir: C10, limit: 0 }), '--limit');
});
