import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../src/errors.js';
import { batchIndices, datasetNames, gatherBatch, subset } from '../src/data/index.js';
import { parseByteRows, scanByteRows } from '../src/data/json-rows.js';
import type { Dataset } from '../src/data/types.js';
import { makeRng } from '../src/util/rng.js';

/** n 1x2x1 images whose pixels are (i, i + 0.5) / 100, label i % 3, id 100 + i. */
function tiny(n: number): Dataset {
  const images = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    images[2 * i] = i / 100;
    images[2 * i + 1] = (i + 0.5) / 100;
  }
  return {
    name: 'tiny', split: 'train', n, height: 1, width: 2, channels: 1, numClasses: 3,
    classNames: ['a', 'b', 'c'], images,
    labels: Int32Array.from({ length: n }, (_, i) => i % 3),
    ids: Int32Array.from({ length: n }, (_, i) => 100 + i),
    source: 'test',
  };
}

test('datasetNames lists the four datasets', () => {
  assert.deepEqual([...datasetNames], ['fashion-mnist', 'mnist', 'cifar10', 'cifar100']);
});

test('batchIndices covers every index once, keeps the last partial batch, shuffles with an rng', () => {
  const plain = batchIndices(10, 4);
  assert.deepEqual(plain.map((b) => Array.from(b)), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  const a = batchIndices(10, 4, makeRng(3));
  const b = batchIndices(10, 4, makeRng(3));
  const c = batchIndices(10, 4, makeRng(4));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.deepEqual(a.map((x) => x.length), [4, 4, 2]);
  assert.deepEqual(a.flatMap((x) => Array.from(x)).sort((p, q) => p - q), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.notDeepEqual(a.flatMap((x) => Array.from(x)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(batchIndices(0, 4), []);
  assert.throws(() => batchIndices(10, 0), InputError);
});

test('gatherBatch and subset copy pixels, labels and source ids in the given order', () => {
  const ds = tiny(6);
  const batch = gatherBatch(ds, [4, 1]);
  assert.deepEqual(Array.from(batch.x), [0.04, 0.045, 0.01, 0.015].map(Math.fround));
  assert.deepEqual(Array.from(batch.y), [1, 1]);
  assert.deepEqual(Array.from(batch.ids), [104, 101]);
  assert.throws(() => gatherBatch(ds, [6]), RangeError);

  const sub = subset(ds, Int32Array.from([5, 0, 2]));
  assert.equal(sub.n, 3);
  assert.deepEqual(Array.from(sub.ids), [105, 100, 102]);
  assert.deepEqual(Array.from(sub.labels), [2, 0, 2]);
  assert.equal(sub.images[2], Math.fround(0));
  sub.images[0] = 9;
  assert.notEqual(ds.images[10], 9, 'subset owns its pixels');
  assert.equal(sub.name, 'tiny');
});

test('byte-row scanner agrees with JSON.parse, skips nothing silently, and refuses other shapes', () => {
  const collect = (fn: (sink: (row: Uint8Array, count: number) => void) => unknown) => {
    const rows: Array<number[] | number> = [];
    const ok = fn((row, count) => rows.push(count === 3 ? Array.from(row.subarray(0, 3)) : count));
    return { ok, rows };
  };
  const text = ' {"data" : [ [1,2,255] , [], [0, 7 ,9],[1,2,3,4] ] } \n';
  const fast = collect((s) => scanByteRows(Buffer.from(text), 3, s));
  const slow = collect((s) => parseByteRows(text, 3, s));
  assert.equal(fast.ok, true);
  assert.equal(slow.ok, undefined);
  assert.deepEqual(fast.rows, [[1, 2, 255], 0, [0, 7, 9], 4]);
  assert.deepEqual(slow.rows, fast.rows);

  for (const bad of ['{"data":[[1.5]]}', '{"data":[[256]]}', '{"data":[[-1]]}', '{"other":[[1]]}', '{"data":[[1]]}x', '{"data":[[1]', '{"data":[[1,]]}']) {
    assert.equal(scanByteRows(Buffer.from(bad), 3, () => {}), false, bad);
  }
  assert.match(parseByteRows('{"data":[[1.5]]}', 3, () => {}) ?? '', /data\[0\]\[0\] = 1.5/);
  assert.match(parseByteRows('{"data":[[1]', 3, () => {}) ?? '', /not valid JSON/);
});
