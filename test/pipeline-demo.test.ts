import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { DEMO_DEFAULTS, runDemo, type DemoSettings } from '../src/pipeline/demo.js';

// Bit-for-bit equality between worker threads and one thread holds at equal native thread counts
// (oneDNN's filter-gradient reduction order depends on its thread count; docs/native.md): the demo's
// workers get 1 native thread each, so the sequential run on the main thread gets 1 too.
process.env.ROBUSTSIM_NATIVE_THREADS ??= '1';

let root: string;
before(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(tmpdir(), 'robustsim-demo-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const tiny = (out: string, parallel: boolean): DemoSettings => ({
  ...DEMO_DEFAULTS,
  out,
  arch: 'convnet',
  epochs: 1,
  trainLimit: 64,
  batchSize: 32,
  n: 24,
  trainSteps: 1,
  captureSteps: 2,
  backend: 'wasm',
  parallel,
});

test('the demo writes checkpoints, similarity files and a report; worker threads give the same numbers as one thread', async () => {
  const stages: string[] = [];
  const par = await runDemo({ ...tiny(path.join(root, 'par'), true), onStage: (s, d) => stages.push(`${s} ${d ?? ''}`.trim()) });
  const seq = await runDemo(tiny(path.join(root, 'seq'), false));
  for (const r of [par, seq]) {
    for (const m of r.models) {
      await stat(path.join(m.checkpoint, 'model.json'));
      // The demo keeps unaugmented training on purpose (src/pipeline/demo.ts), while sl's default augments.
      assert.equal(JSON.parse(await readFile(path.join(m.checkpoint, 'meta.json'), 'utf8')).config.augment, 'none');
      await stat(m.similarity);
      assert.ok(m.pooledCleanVsAdv > -0.01 && m.pooledCleanVsAdv < 1.01, `${m.label}: ${m.pooledCleanVsAdv}`);
    }
    await stat(path.join(r.crossModel, 'similarity.arrow'));
    const html = await readFile(r.report, 'utf8');
    assert.match(html, /clean-vs-adversarial/i);
  }
  assert.deepEqual(par.models.map((m) => m.label), ['sl-st', 'sl-at']);
  for (let i = 0; i < 2; i++) {
    assert.equal(par.models[i].pooledCleanVsAdv, seq.models[i].pooledCleanVsAdv);
    assert.equal(par.models[i].cleanAccuracy, seq.models[i].cleanAccuracy);
  }
  assert.ok(stages.includes('train sl-st') && stages.includes('train sl-at') && stages.includes('report'), stages.join(' | '));
  // A second run finds every output and skips the work.
  const again: string[] = [];
  await runDemo({ ...tiny(path.join(root, 'seq'), false), onStage: (s, d) => again.push(`${s} ${d ?? ''}`) });
  assert.ok(again.some((s) => /skipping training/.test(s)));
  assert.ok(!again.some((s) => s.startsWith('capture')));
});
