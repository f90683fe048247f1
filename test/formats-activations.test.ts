import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as arrow from 'apache-arrow';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../src/errors.js';
import type { ActivationSet } from '../src/formats/activations.js';
import { readActivations, writeActivations } from '../src/formats/activations.js';
import { writeNpy } from '../src/formats/npy.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'robustsim-acts-'));
test.after(() => fs.rm(tmp, { recursive: true, force: true }));

const n = 7;
function set(name: string, dim: number, base: number): ActivationSet {
  return { name, n, dim, data: Float32Array.from({ length: n * dim }, (_, i) => base + i * 0.5) };
}
const SETS = [set('stem@clean', 3, 0), set('stage2.block1@clean', 5, 100), set('stem@adv', 1, -7)];
const ACTS = {
  sampleIds: Int32Array.from([10, 11, 12, 13, 14, 15, 16]),
  labels: Int32Array.from([0, 1, 2, 0, 1, 2, 9]),
  sets: SETS,
  metadata: { model: { arch: 'small-cnn', scheme: 'SL' }, attack: { eps: 8 / 255 }, dataset: 'fashion-mnist', note: 'x' },
};

async function rejectsInput(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof InputError && pattern.test(err.message));
}

test('Arrow round trip keeps ids, labels, sets in order, and JSON metadata; many record batches', async () => {
  for (const rowsPerBatch of [undefined, 2]) {
    const file = path.join(tmp, `acts-${rowsPerBatch}.arrow`);
    await writeActivations(file, ACTS, { rowsPerBatch });
    const back = await readActivations(file);
    assert.equal(back.source, file);
    assert.deepEqual(Array.from(back.sampleIds), Array.from(ACTS.sampleIds));
    assert.deepEqual(Array.from(back.labels!), Array.from(ACTS.labels));
    assert.deepEqual(back.sets.map((s) => s.name), SETS.map((s) => s.name));
    for (let k = 0; k < SETS.length; k++) {
      assert.equal(back.sets[k].dim, SETS[k].dim);
      assert.equal(back.sets[k].n, n);
      assert.deepEqual(Array.from(back.sets[k].data), Array.from(SETS[k].data));
    }
    assert.deepEqual(back.metadata, ACTS.metadata);
    const entries = await fs.readdir(tmp);
    assert.ok(!entries.some((e) => e.includes('.tmp-')), 'no temp file left behind');
  }
  // The file itself has the documented layout.
  const table = arrow.tableFromIPC(await fs.readFile(path.join(tmp, 'acts-2.arrow')));
  assert.equal(table.batches.length, 4);
  assert.deepEqual(table.schema.fields.map((f) => `${f.name}:${f.type}`), [
    'sample_id:Int32',
    'label:Int32',
    'stem@clean:FixedSizeList[3]<Float32>',
    'stage2.block1@clean:FixedSizeList[5]<Float32>',
    'stem@adv:FixedSizeList[1]<Float32>',
  ]);
  assert.equal(table.schema.metadata.get('dataset'), '"fashion-mnist"');
});

test('reading a subset of sets returns them in the requested order; unknown names list what exists', async () => {
  const file = path.join(tmp, 'acts-2.arrow');
  const back = await readActivations(file, { sets: ['stem@adv', 'stem@clean'] });
  assert.deepEqual(back.sets.map((s) => s.name), ['stem@adv', 'stem@clean']);
  assert.deepEqual(Array.from(back.sets[1].data), Array.from(SETS[0].data));
  await rejectsInput(readActivations(file, { sets: ['stem@clean', 'head@adv'] }), /unknown set 'head@adv'; available: stem@clean, stage2\.block1@clean, stem@adv/);
  await rejectsInput(readActivations(file, { sets: ['stem@adv', 'stem@adv'] }), /'stem@adv' requested twice/);
});

test('truncated or foreign files are InputErrors naming the file', async () => {
  const good = await fs.readFile(path.join(tmp, 'acts-2.arrow'));
  const truncated = path.join(tmp, 'truncated.arrow');
  await fs.writeFile(truncated, good.subarray(0, Math.floor(good.length * 0.6)));
  await rejectsInput(readActivations(truncated), /truncated\.arrow: /);
  const text = path.join(tmp, 'text.arrow');
  await fs.writeFile(text, 'sample_id,label\n1,2\n');
  await rejectsInput(readActivations(text), /text\.arrow: not a readable Arrow IPC file/);
  await rejectsInput(readActivations(path.join(tmp, 'nope.arrow')), /nope\.arrow: cannot read \(ENOENT\)/);
  // A valid Arrow file without the activation layout.
  const wrong = path.join(tmp, 'wrong.arrow');
  await fs.writeFile(wrong, arrow.tableToIPC(arrow.tableFromArrays({ sample_id: Int32Array.from([1]), name: ['x'] }), 'file'));
  await rejectsInput(readActivations(wrong), /wrong\.arrow: column 'name' has type .*Utf8.*, expected FixedSizeList<Float32>/);
});

test('the writer refuses inconsistent input and leaves no file', async () => {
  const file = path.join(tmp, 'bad-write.arrow');
  await rejectsInput(writeActivations(file, { ...ACTS, sets: [SETS[0], SETS[0]] }), /'stem@clean' is used twice/);
  await rejectsInput(writeActivations(file, { ...ACTS, sets: [{ ...SETS[0], n: 6 }] }), /has 6 samples, expected 7/);
  await rejectsInput(writeActivations(file, { ...ACTS, labels: Int32Array.from([1]) }), /1 labels for 7 sample ids/);
  await assert.rejects(fs.access(file));
});

test('a directory of .npy files: natural order, order.txt, sample ids, labels, metadata.json', async () => {
  const dir = path.join(tmp, 'npy');
  await fs.mkdir(dir);
  // layer10 is 4-d per sample (flattened), layer2 is 1-d per sample; float64 and int are converted.
  await writeNpy(path.join(dir, 'layer10.npy'), Float32Array.from({ length: n * 2 * 2 }, (_, i) => i), [n, 2, 2]);
  await writeNpy(path.join(dir, 'layer2.npy'), Float64Array.from({ length: n }, (_, i) => i / 4), [n]);
  await writeNpy(path.join(dir, 'layer1.npy'), Int32Array.from({ length: n * 3 }, (_, i) => -i), [n, 3]);
  await writeNpy(path.join(dir, 'sample_ids.npy'), BigInt64Array.from({ length: n }, (_, i) => BigInt(100 + i)), [n]);
  await writeNpy(path.join(dir, 'labels.npy'), Uint8Array.from({ length: n }, (_, i) => i % 3), [n]);
  let acts = await readActivations(dir);
  assert.equal(acts.source, dir);
  assert.deepEqual(acts.sets.map((s) => [s.name, s.dim]), [['layer1', 3], ['layer2', 1], ['layer10', 4]]);
  assert.deepEqual(Array.from(acts.sets[1].data), Array.from({ length: n }, (_, i) => i / 4));
  assert.deepEqual(Array.from(acts.sets[2].data.subarray(4, 8)), [4, 5, 6, 7]);
  assert.deepEqual(Array.from(acts.sampleIds), [100, 101, 102, 103, 104, 105, 106]);
  assert.deepEqual(Array.from(acts.labels!), [0, 1, 2, 0, 1, 2, 0]);
  assert.deepEqual(acts.metadata, {});

  await fs.writeFile(path.join(dir, 'order.txt'), '# network order\nlayer10\n\nlayer1\nlayer2\n');
  await fs.writeFile(path.join(dir, 'metadata.json'), JSON.stringify({ model: 'torch-resnet' }));
  acts = await readActivations(dir, { sets: undefined });
  assert.deepEqual(acts.sets.map((s) => s.name), ['layer10', 'layer1', 'layer2']);
  assert.deepEqual(acts.metadata, { model: 'torch-resnet' });
  acts = await readActivations(dir, { sets: ['layer2'] });
  assert.deepEqual(acts.sets.map((s) => s.name), ['layer2']);
  await rejectsInput(readActivations(dir, { sets: ['layer3'] }), /unknown set 'layer3'; available: layer10, layer1, layer2/);

  await fs.writeFile(path.join(dir, 'order.txt'), 'layer10\nlayer2\n');
  await rejectsInput(readActivations(dir), /order\.txt: does not list 'layer1\.npy'/);
  await fs.writeFile(path.join(dir, 'order.txt'), 'layer10\nlayer1\nlayer2\nlayer3\n');
  await rejectsInput(readActivations(dir), /order\.txt: lists 'layer3' but there is no such \.npy file/);
  await fs.rm(path.join(dir, 'order.txt'));

  await writeNpy(path.join(dir, 'layer3.npy'), Float32Array.from({ length: (n - 1) * 2 }), [n - 1, 2]);
  await rejectsInput(readActivations(dir), /layer3\.npy: 6 samples, but layer1\.npy has 7/);
  await fs.rm(path.join(dir, 'layer3.npy'));
  await writeNpy(path.join(dir, 'sample_ids.npy'), Int32Array.from([1, 2]), [2]);
  await rejectsInput(readActivations(dir), /sample_ids\.npy: shape \(2\), expected \(7,\)/);

  const empty = path.join(tmp, 'empty-dir');
  await fs.mkdir(empty);
  await rejectsInput(readActivations(empty), /empty-dir: no activation \.npy files/);
});
