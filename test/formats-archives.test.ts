import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readActivations } from '../src/formats/activations.js';
import { InputError } from '../src/errors.js';

/** `cka --acts` inputs saved by PyTorch/NumPy users: .npz (numpy itself writes them) and .safetensors. */
let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'robustsim-archives-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const rejectsInput = (p: Promise<unknown>, re: RegExp) => assert.rejects(p, (e: unknown) => e instanceof InputError && re.test(e.message));

function safetensors(tensors: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...Object.values(tensors).map((t) => Buffer.from(t.bytes))]);
}

const f32 = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);

test('.npz from numpy.savez_compressed: sets in natural order, labels, sample ids, flattened features', async () => {
  const file = path.join(tmp, 'acts.npz');
  execFileSync(process.env.ROBUSTSIM_PYTHON ?? '/usr/bin/python3', ['-c', `
import numpy as np, sys
n = 6
np.savez_compressed(sys.argv[1], layer10=np.arange(n * 4, dtype=np.float32).reshape(n, 2, 2), layer2=np.linspace(0, 1, n), sample_ids=np.arange(100, 100 + n, dtype=np.int64), labels=np.arange(n) % 3)
`, file]);
  const acts = await readActivations(file);
  assert.deepEqual(acts.sets.map((s) => [s.name, s.n, s.dim]), [['layer2', 6, 1], ['layer10', 6, 4]]);
  assert.deepEqual(Array.from(acts.sampleIds), [100, 101, 102, 103, 104, 105]);
  assert.deepEqual(Array.from(acts.labels!), [0, 1, 2, 0, 1, 2]);
  assert.equal(acts.sets[1].data[7], 7);
  const sel = await readActivations(file, { sets: ['layer10'] });
  assert.deepEqual(sel.sets.map((s) => s.name), ['layer10']);
  await writeFile(path.join(tmp, 'trunc.npz'), (await readFile(file)).subarray(0, 100));
  await rejectsInput(readActivations(path.join(tmp, 'trunc.npz')), /trunc\.npz: not a valid \.npz/);
});

test('.safetensors: one set per tensor, names as set names, shapes/dtypes/n checked', async () => {
  const file = path.join(tmp, 'acts.safetensors');
  await writeFile(file, safetensors({ 'layer1.0': { dtype: 'F32', shape: [4, 3], bytes: f32(Array.from({ length: 12 }, (_, i) => i)) }, fc: { dtype: 'F32', shape: [4, 2], bytes: f32([1, 2, 3, 4, 5, 6, 7, 8]) } }, { model: 'resnet18' }));
  const acts = await readActivations(file);
  assert.deepEqual(acts.sets.map((s) => [s.name, s.n, s.dim]), [['fc', 4, 2], ['layer1.0', 4, 3]]);
  assert.equal(acts.metadata.model, 'resnet18');
  const bad = path.join(tmp, 'bad.safetensors');
  await writeFile(bad, safetensors({ a: { dtype: 'F32', shape: [4, 3], bytes: f32([1, 2, 3]) } }));
  await rejectsInput(readActivations(bad), /tensor 'a': shape \[4, 3\] of F32 needs 48 bytes/);
  await writeFile(bad, safetensors({ a: { dtype: 'F32', shape: [4, 1], bytes: f32([1, 2, 3, 4]) }, b: { dtype: 'F32', shape: [3, 1], bytes: f32([1, 2, 3]) } }));
  await rejectsInput(readActivations(bad), /'b': 3 samples, but 'a' has 4/);
  await writeFile(bad, safetensors({ a: { dtype: 'C64', shape: [1], bytes: new Uint8Array(8) } }));
  await rejectsInput(readActivations(bad), /dtype 'C64' not supported/);
  await writeFile(bad, Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), Buffer.from('{}')]));
  await rejectsInput(readActivations(bad), /header declares \d+ bytes/);
});

test('cka --acts reads a .safetensors file; NaN is refused as for .npy', async () => {
  const n = 8;
  const rnd = (k: number) => Array.from({ length: n * k }, (_, i) => Math.sin(i * 1.7 + k));
  const file = path.join(tmp, 'cli.safetensors');
  await writeFile(file, safetensors({ a: { dtype: 'F32', shape: [n, 3], bytes: f32(rnd(3)) }, b: { dtype: 'F32', shape: [n, 5], bytes: f32(rnd(5)) } }));
  const CLI = path.resolve('dist/src/cli/main.js');
  const out = path.join(tmp, 'sim.json');
  const ok = spawnSync(process.execPath, [CLI, 'cka', '--acts', file, '--out', out, '--backend', 'wasm'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const nanFile = path.join(tmp, 'nan.safetensors');
  const vals = rnd(3);
  vals[4] = NaN;
  await writeFile(nanFile, safetensors({ a: { dtype: 'F32', shape: [n, 3], bytes: f32(vals) }, b: { dtype: 'F32', shape: [n, 5], bytes: f32(rnd(5)) } }));
  const bad = spawnSync(process.execPath, [CLI, 'cka', '--acts', nanFile, '--out', path.join(tmp, 'nan.json'), '--backend', 'wasm'], { encoding: 'utf8' });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /non-finite/);
});
