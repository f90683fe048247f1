import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile, cp, symlink, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { initBackend } from '../src/backend/index.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { loadCheckpoint, saveCheckpoint } from '../src/models/checkpoint.js';
import { importOnnx } from '../src/pipeline/import-onnx.js';
import { InputError } from '../src/errors.js';

/** Model files are untrusted input: loaders stay inside the model's directory and fail cleanly. */
let root: string;
let ckpt: string;
before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-untrusted-'));
  ckpt = path.join(root, 'ckpt');
  const { model } = buildModel({ arch: resolveArch('convnet', 4), inputShape: [8, 8, 1], numClasses: 3, seed: 0 });
  await saveCheckpoint(ckpt, { model, meta: { format: 'robustsim-checkpoint/1', name: 't' } });
  model.dispose();
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function withManifestPath(name: string, p: string): Promise<string> {
  const dir = path.join(root, name);
  await cp(ckpt, dir, { recursive: true });
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
  json.weightsManifest[0].paths = [p];
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  return dir;
}

const refusedNaming = (re: RegExp) => (e: unknown) => e instanceof InputError && re.test(e.message) && !e.message.includes('\n');

test('a manifest naming ../outside.bin is refused, naming the entry, even when the file fits', async () => {
  const dir = await withManifestPath('escape', '../outside.bin');
  await cp(path.join(ckpt, 'weights.bin'), path.join(root, 'outside.bin'));
  await assert.rejects(loadCheckpoint(dir), refusedNaming(/weightsManifest\[0\]\.paths\[0\].*'\.\.\/outside\.bin' leaves the model directory/));
});

test('absolute paths and deep .. are refused, not blamed on weights.bin', async () => {
  await assert.rejects(loadCheckpoint(await withManifestPath('passwd', '../../../../etc/passwd')), refusedNaming(/paths\[0\].*etc\/passwd' leaves/));
  await assert.rejects(loadCheckpoint(await withManifestPath('absolute', '/etc/passwd')), refusedNaming(/paths\[0\].*'\/etc\/passwd' leaves/));
});

test('a symlink inside the directory that points outside it is refused', async () => {
  const dir = await withManifestPath('link', 'linked.bin');
  await cp(path.join(ckpt, 'weights.bin'), path.join(root, 'target.bin'));
  await symlink(path.join(root, 'target.bin'), path.join(dir, 'linked.bin'));
  await assert.rejects(loadCheckpoint(dir), refusedNaming(/linked\.bin' is a link that leaves/));
});

test('huge declared shapes are refused before anything is read or allocated', async () => {
  const dir = path.join(root, 'huge');
  await cp(ckpt, dir, { recursive: true });
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
  json.weightsManifest[0].weights[0].shape = [1e6, 1e6, 1e6];
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  await assert.rejects(loadCheckpoint(dir), refusedNaming(/declared shapes need more than/));
});

/** Seeded mutations of a checkpoint: truncation, flipped bytes in model.json, huge shapes. */
test('fuzz: mutated checkpoints give an InputError or load, never hang or crash', async () => {
  const rng = seedrandom('fuzz-ckpt');
  const modelJson = await readFile(path.join(ckpt, 'model.json'));
  const weights = await readFile(path.join(ckpt, 'weights.bin'));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 40; i++) {
    const dir = path.join(root, `fuzz-${i}`);
    await cp(ckpt, dir, { recursive: true });
    const kind = i % 3;
    if (kind === 0) await writeFile(path.join(dir, 'weights.bin'), weights.subarray(0, Math.floor(rng() * weights.length)));
    else if (kind === 1) {
      const m = Buffer.from(modelJson);
      for (let k = 0; k < 4; k++) m[Math.floor(rng() * Math.min(m.length, 400))] = Math.floor(rng() * 256);
      await writeFile(path.join(dir, 'model.json'), m);
    } else {
      const json = JSON.parse(modelJson.toString('utf8'));
      const w = json.weightsManifest[0].weights;
      w[Math.floor(rng() * w.length)].shape = [Math.floor(rng() * 2 ** 31), Math.floor(rng() * 2 ** 31)];
      await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
    }
    try {
      const { model } = await loadCheckpoint(dir);
      model.dispose();
    } catch (e) {
      assert.ok(e instanceof InputError, `case ${i} (kind ${kind}): ${(e as Error).stack}`);
    }
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal(tf.memory().numTensors, before);
  assert.ok(process.memoryUsage().rss < 2 * 1024 ** 3, 'bounded memory');
});
