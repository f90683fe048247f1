import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../src/errors.js';
import { buildReport } from '../src/report/build.js';
import { renderSvg } from '../src/report/render.js';
import { diagonalSpec, heatmapSpec } from '../src/report/specs.js';
import type { SubMatrix } from '../src/report/matrices.js';
import { crossSimilarity, selfSimilarity, writeSimilarityDir } from './report-synthetic.js';

const HOSTILE = '<script>alert(1)</script>';

async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'robustsim-report-'));
}

/** Screen position of the axis label with exactly this text (first match). */
function labelPosition(svg: string, text: string): { x: number; y: number } {
  const re = /<text\b[^>]*transform="translate\(([-\d.e]+),([-\d.e]+)\)[^"]*"[^>]*>([^<]*)<\/text>/g;
  for (const m of svg.matchAll(re)) if (m[3] === text) return { x: Number(m[1]), y: Number(m[2]) };
  throw new Error(`label ${text} not found`);
}

/** Every src=/href= value and every url(...) in the document that would fetch something. */
function externalReferences(html: string): string[] {
  const attrs = [...html.matchAll(/\s(?:src|href|xlink:href|action|poster|data)\s*=\s*["']?([^"'\s>]+)/gi)].map((m) => m[1]).filter((v) => !v.startsWith('#'));
  const urls = [...html.matchAll(/url\(\s*["']?([^"')]+)/gi)].map((m) => m[1]).filter((v) => !v.startsWith('#'));
  const imports = [...html.matchAll(/@import/gi)].map(() => '@import');
  return [...attrs, ...urls, ...imports];
}

test('renderSvg draws a heatmap with the first layers at the bottom-left, without warnings', async () => {
  const m: SubMatrix = {
    key: 'A x B',
    rowAxis: 'A',
    colAxis: 'B',
    rowLayers: ['r-first', 'r-mid', 'r-last'],
    colLayers: ['c-first', 'c-mid', 'c-last'],
    values: Float64Array.from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
  };
  const warnings: string[] = [];
  const svg = await renderSvg(heatmapSpec(m), { onWarning: (w) => warnings.push(w) });
  assert.deepEqual(warnings, []);
  assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const first = labelPosition(svg, 'r-first');
  const last = labelPosition(svg, 'r-last');
  assert.ok(first.y > last.y, `first row label lower on screen (y ${first.y}) than the last (y ${last.y})`);
  const c0 = labelPosition(svg, 'c-first');
  const c2 = labelPosition(svg, 'c-last');
  assert.ok(c0.x < c2.x, `first column label left (x ${c0.x}) of the last (x ${c2.x})`);
  assert.ok(svg.includes('<title>r-first × c-first: 0.100</title>'), 'hover title on the cell');
  assert.ok(svg.includes('>0.90</text>'), 'cell text printed for a small matrix');
});

test('renderSvg draws the diagonal chart without warnings', async () => {
  const warnings: string[] = [];
  const points = [{ layer: 'stem', cka: 0.9 }, { layer: 'pool', cka: 0.4 }, { layer: 'logits', cka: 0.2 }];
  const svg = await renderSvg(diagonalSpec([{ model: 'a', points }, { model: 'b', points: points.map((p) => ({ ...p, cka: 1 - p.cka })) }]), { onWarning: (w) => warnings.push(w) });
  assert.deepEqual(warnings, []);
  assert.match(svg, /role-mark/);
  assert.ok(svg.includes('>stem</text>') && svg.includes('>logits</text>'));
});

test('buildReport writes one self-contained page with a chart per sub-matrix and diagonal', async () => {
  const dir = await tempDir();
  try {
    const layers = ['stem', HOSTILE, 'stage1.block1', 'pool', 'logits'];
    const st = await writeSimilarityDir(dir, 'sl-st', selfSimilarity({ name: 'sl-st', end: 0.05, layers }));
    const at = await writeSimilarityDir(dir, 'sl-at', selfSimilarity({ name: 'sl-at', end: 0.9, layers, interleaved: true }));
    const cross = await writeSimilarityDir(dir, 'st-vs-at', crossSimilarity('sl-st', 'sl-at', ['adv'], layers));
    // A bare .arrow file path works too.
    const out = path.join(dir, 'out', 'report.html');
    const res = await buildReport({ sims: [st, path.join(at, 'similarity.arrow'), cross], out, title: 'T', notes: `careful: ${HOSTILE}` });
    // sl-st: 3 heatmaps + diagonal; sl-at: same; cross: 1 heatmap (adv only); summary: all-model diagonal.
    assert.equal(res.charts, 4 + 4 + 1 + 1);
    assert.equal(res.out, path.resolve(out));
    const html = await fs.readFile(out, 'utf8');
    assert.equal((html.match(/<svg\b/g) ?? []).length, res.charts, 'one inline svg per chart');
    assert.deepEqual(externalReferences(html), []);
    assert.ok(!/<script/i.test(html), 'the hostile layer name never becomes markup');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, ids.length, 'ids are unique across the inline svgs');
    assert.ok(html.includes('sl-st vs sl-at'), 'cross input labelled from the sources');
    assert.deepEqual(res.summary.map((r) => r.label), ['sl-st', 'sl-at', 'sl-st vs sl-at']);
    assert.ok(Math.abs(res.summary[1].logitsCka! - 0.9) < 1e-12);
    assert.ok(res.summary[0].pooledCka! < res.summary[1].pooledCka!);
    assert.deepEqual(await fs.readdir(path.dirname(out)), ['report.html'], 'no temp file left behind');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('buildReport numbers repeated model names so inputs stay distinguishable', async () => {
  const dir = await tempDir();
  try {
    const a = await writeSimilarityDir(dir, 'a', selfSimilarity({ name: 'same' }));
    const b = await writeSimilarityDir(dir, 'b', selfSimilarity({ name: 'same' }));
    const res = await buildReport({ sims: [a, b], out: path.join(dir, 'r.html') });
    assert.deepEqual(res.summary.map((r) => r.label), ['same', 'same (2)']);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('buildReport names the path of a missing, empty or unreadable input', async () => {
  const dir = await tempDir();
  try {
    const out = path.join(dir, 'r.html');
    const missing = path.join(dir, 'nope');
    await assert.rejects(buildReport({ sims: [missing], out }), (e: Error) => e instanceof InputError && e.message.includes(missing));
    const emptyDir = path.join(dir, 'empty');
    await fs.mkdir(emptyDir);
    await assert.rejects(buildReport({ sims: [emptyDir], out }), (e: Error) => e instanceof InputError && e.message.includes(emptyDir) && e.message.includes('similarity.arrow'));
    const garbage = path.join(dir, 'garbage.arrow');
    await fs.writeFile(garbage, 'not arrow at all');
    await assert.rejects(buildReport({ sims: [garbage], out }), (e: Error) => e instanceof InputError && e.message.includes(garbage));
    await assert.rejects(buildReport({ sims: [], out }), (e: Error) => e instanceof InputError && e.message.includes('--sim'));
    const good = await writeSimilarityDir(dir, 'good', selfSimilarity({ name: 'g' }));
    await assert.rejects(buildReport({ sims: [good], out: dir }), (e: Error) => e instanceof InputError && e.message.includes(dir));
    await assert.rejects(fs.access(out), 'nothing written on failure');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
