import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { InputError } from '../src/errors.js';
import { parseIdx, readIdxFile } from '../src/data/idx.js';
import { loadDataset } from '../src/data/index.js';

/** An unsigned-byte IDX file: zero, zero, 0x08, ndim, big-endian dims, data. */
function idx(dims: number[], data: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out[2] = 0x08;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'robustsim-idx-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test('parseIdx reads dims big-endian and the data after the header', () => {
  const bytes = idx([2, 2, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]);
  const a = parseIdx(bytes, 'x');
  assert.deepEqual(a.dims, [2, 2, 3]);
  assert.deepEqual(Array.from(a.data), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]);
  const big = idx([300], new Array(300).fill(1));
  assert.deepEqual(parseIdx(big, 'y').dims, [300], 'a dim above 255 needs the second byte');
});

test('parseIdx rejects bad magic, element type and size, naming the file', () => {
  const good = idx([1, 2, 2], [1, 2, 3, 4]);
  const badMagic = good.slice();
  badMagic[0] = 1;
  assert.throws(() => parseIdx(badMagic, 'm.idx'), (e: unknown) => e instanceof InputError && /m\.idx.*not an IDX/.test(e.message));
  const floatType = good.slice();
  floatType[2] = 0x0d;
  assert.throws(() => parseIdx(floatType, 'f.idx'), (e: unknown) => e instanceof InputError && /f\.idx.*0x0d/.test(e.message));
  assert.throws(() => parseIdx(good.subarray(0, good.length - 1), 't.idx'), (e: unknown) => e instanceof InputError && /t\.idx: size 19 bytes/.test(e.message));
  assert.throws(() => parseIdx(new Uint8Array(2), 's.idx'), InputError);
});

test('readIdxFile gunzips .gz files', async (t) => {
  const dir = await tempDir(t);
  const bytes = idx([3], [7, 8, 9]);
  await fs.writeFile(path.join(dir, 'a-idx1-ubyte.gz'), gzipSync(bytes));
  const a = await readIdxFile(path.join(dir, 'a-idx1-ubyte.gz'));
  assert.deepEqual(Array.from(a.data), [7, 8, 9]);
  await fs.writeFile(path.join(dir, 'broken.gz'), bytes);
  await assert.rejects(() => readIdxFile(path.join(dir, 'broken.gz')), (e: unknown) => e instanceof InputError && e.message.includes('broken.gz'));
});

test('mnist / fashion-mnist with dataDir use the official IDX split, plain or gzipped', async (t) => {
  const dir = await tempDir(t);
  // 3 train images 2x2, 2 test images (gzipped, dotted name as some unpackers write it).
  await fs.writeFile(path.join(dir, 'train-images-idx3-ubyte'), idx([3, 2, 2], [0, 255, 0, 0, 51, 0, 0, 0, 0, 0, 0, 102]));
  await fs.writeFile(path.join(dir, 'train-labels-idx1-ubyte'), idx([3], [4, 0, 9]));
  await fs.writeFile(path.join(dir, 't10k-images.idx3-ubyte.gz'), gzipSync(idx([2, 2, 2], [255, 255, 255, 255, 0, 0, 0, 0])));
  await fs.writeFile(path.join(dir, 't10k-labels.idx1-ubyte.gz'), gzipSync(idx([2], [1, 2])));

  const train = await loadDataset({ name: 'mnist', split: 'train', dataDir: dir });
  assert.deepEqual([train.n, train.height, train.width, train.channels], [3, 2, 2, 1]);
  assert.deepEqual(Array.from(train.labels), [4, 0, 9]);
  assert.deepEqual(Array.from(train.ids), [0, 1, 2]);
  assert.deepEqual(Array.from(train.images.subarray(0, 8)), [0, 1, 0, 0, 0.2, 0, 0, 0].map(Math.fround));

  const testSplit = await loadDataset({ name: 'fashion-mnist', split: 'test', dataDir: dir });
  assert.equal(testSplit.n, 2);
  assert.deepEqual(Array.from(testSplit.labels), [1, 2]);
  assert.equal(testSplit.classNames[1], 'Trouser');
  assert.ok(testSplit.source.includes('t10k-images.idx3-ubyte.gz'));
});

test('IDX dataset errors name the file: missing, count mismatch, bad label', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(
    () => loadDataset({ name: 'mnist', split: 'train', dataDir: dir }),
    (e: unknown) => e instanceof InputError && e.message.includes('train-images-idx3-ubyte') && e.message.includes('t10k-labels-idx1-ubyte'),
  );
  await fs.writeFile(path.join(dir, 'train-images-idx3-ubyte'), idx([2, 1, 1], [0, 0]));
  await fs.writeFile(path.join(dir, 'train-labels-idx1-ubyte'), idx([3], [0, 1, 2]));
  await assert.rejects(
    () => loadDataset({ name: 'mnist', split: 'train', dataDir: dir }),
    (e: unknown) => e instanceof InputError && /train-labels-idx1-ubyte: holds 3 labels but .* holds 2 images/.test(e.message),
  );
  await fs.writeFile(path.join(dir, 'train-labels-idx1-ubyte'), idx([2], [0, 10]));
  await assert.rejects(
    () => loadDataset({ name: 'mnist', split: 'train', dataDir: dir }),
    (e: unknown) => e instanceof InputError && /train-labels-idx1-ubyte: record 1 has label 10/.test(e.message),
  );
});
