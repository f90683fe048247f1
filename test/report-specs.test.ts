import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SimilarityTable } from '../src/formats/similarity.js';
import { cleanAdvDiagonal, isSelfSimilarity, mergeLayerOrder, parseSetName, pooledLayer, splitMatrices } from '../src/report/matrices.js';
import { cellSize, diagonalSpec, heatmapSpec, xLabelAngle } from '../src/report/specs.js';
import { escapeHtml, reportHtml, scopeSvgIds, type ReportSection } from '../src/report/html.js';
import { flattenMetadata, formatValue, metadataTables } from '../src/report/metadata.js';
import { formatSummaryLine, labelSimilarity, nameFromPath, reportSummary, uniqueLabels } from '../src/report/summary.js';
import { crossSimilarity, RESNET_LAYERS, selfSimilarity } from './report-synthetic.js';

// Specs are plain objects; these accessors keep the tests readable without fighting the union types.
type Json = any;
const spec = (s: unknown): Json => s as Json;

const HOSTILE = '<script>alert(1)</script>';

/** CKA of two named sets, read straight from the table. */
function at(sim: SimilarityTable, row: string, col: string): number {
  return sim.cka[sim.rows.indexOf(row) * sim.cols.length + sim.cols.indexOf(col)];
}

test('parseSetName splits at the last @ and leaves bare names alone', () => {
  assert.deepEqual(parseSetName('stage1.block1@adv'), { layer: 'stage1.block1', input: 'adv' });
  assert.deepEqual(parseSetName('pool@clean'), { layer: 'pool', input: 'clean' });
  assert.deepEqual(parseSetName('conv3'), { layer: 'conv3', input: '' });
  assert.deepEqual(parseSetName('odd@name@clean'), { layer: 'odd@name', input: 'clean' });
});

for (const interleaved of [false, true]) {
  test(`self-similarity splits into clean x clean, adv x adv, clean x adv (${interleaved ? 'interleaved' : 'blocked'} sets)`, () => {
    const sim = selfSimilarity({ name: 'm', end: 0.3, interleaved });
    assert.ok(isSelfSimilarity(sim));
    const ms = splitMatrices(sim);
    assert.deepEqual(ms.map((m) => m.key), ['clean x clean', 'adv x adv', 'clean x adv']);
    for (const m of ms) {
      assert.deepEqual(m.rowLayers, RESNET_LAYERS, `${m.key} rows in network order`);
      assert.deepEqual(m.colLayers, RESNET_LAYERS, `${m.key} cols in network order`);
    }
    const cross = ms[2];
    assert.equal(cross.rowAxis, 'clean');
    assert.equal(cross.colAxis, 'adv');
    const n = RESNET_LAYERS.length;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        assert.equal(cross.values[i * n + j], at(sim, `${RESNET_LAYERS[i]}@clean`, `${RESNET_LAYERS[j]}@adv`));
        assert.equal(ms[1].values[i * n + j], at(sim, `${RESNET_LAYERS[i]}@adv`, `${RESNET_LAYERS[j]}@adv`));
      }
    }
  });
}

test('clean x adv keeps clean on the rows even when adv sets come first', () => {
  const base = selfSimilarity({ name: 'm', end: 0.3 });
  const order = [...base.rows.keys()].sort((a, b) => (base.rows[a].endsWith('@adv') ? 0 : 1) - (base.rows[b].endsWith('@adv') ? 0 : 1));
  const names = order.map((k) => base.rows[k]);
  const n = names.length;
  const cka = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) cka[i * n + j] = base.cka[order[i] * n + order[j]];
  const sim: SimilarityTable = { ...base, rows: names, cols: names.slice(), cka };
  const ms = splitMatrices(sim);
  assert.deepEqual(ms.map((m) => m.key), ['clean x clean', 'adv x adv', 'clean x adv']);
  assert.equal(ms[2].values[1], at(sim, 'stem@clean', 'stage1.block1@adv'));
});

test('bare layer names give one matrix over everything', () => {
  const names = ['conv1', 'conv2', 'fc'];
  const sim: SimilarityTable = { rows: names, cols: names, cka: Float64Array.from([1, 0.5, 0.2, 0.5, 1, 0.4, 0.2, 0.4, 1]), metadata: { estimator: 'biased', n: 10, inputs: ['x.npy'] } };
  const ms = splitMatrices(sim);
  assert.equal(ms.length, 1);
  assert.deepEqual(ms[0].rowLayers, names);
  assert.deepEqual([...ms[0].values], [...sim.cka]);
  assert.deepEqual(cleanAdvDiagonal(sim), []);
});

test('a two-model table with identical set names is not mistaken for a self-similarity', () => {
  const sim = crossSimilarity('sl-st', 'sl-at');
  assert.deepEqual(sim.rows, sim.cols, 'precondition: same names on both sides');
  assert.equal(isSelfSimilarity(sim), false);
  assert.deepEqual(cleanAdvDiagonal(sim), []);
  const ms = splitMatrices(sim, { rows: 'sl-st', cols: 'sl-at' });
  assert.deepEqual(ms.map((m) => m.key), ['sl-st x sl-at (clean)', 'sl-st x sl-at (adv)']);
  assert.equal(ms[1].rowAxis, 'sl-st (adv)');
  assert.equal(ms[1].colAxis, 'sl-at (adv)');
  const n = RESNET_LAYERS.length;
  assert.equal(ms[1].values[2 * n + 3], at(sim, 'stage1.block2@adv', 'stage2.block1@adv'));
});

test('a two-model table without a shared input kind gives one matrix per pair of kinds', () => {
  const layers = ['a', 'b'];
  const sim: SimilarityTable = {
    rows: layers.map((l) => `${l}@clean`),
    cols: layers.map((l) => `${l}@adv`),
    cka: Float64Array.from([0.9, 0.1, 0.2, 0.8]),
    metadata: { estimator: 'biased', n: 4, inputs: ['A', 'B'], rows_from: 'A', cols_from: 'B' },
  };
  const ms = splitMatrices(sim);
  assert.deepEqual(ms.map((m) => m.key), ['A (clean) x B (adv)']);
  assert.deepEqual([...ms[0].values], [0.9, 0.1, 0.2, 0.8]);
});

test('the clean-vs-adversarial diagonal is CKA(layer@clean, layer@adv) in network order', () => {
  const sim = selfSimilarity({ name: 'm', end: 0.2, interleaved: true });
  const d = cleanAdvDiagonal(sim);
  assert.deepEqual(d.map((p) => p.layer), RESNET_LAYERS);
  for (const p of d) assert.equal(p.cka, at(sim, `${p.layer}@clean`, `${p.layer}@adv`));
  assert.ok(Math.abs(d[d.length - 1].cka - 0.2) < 1e-12, 'synthetic profile ends at 0.2');
});

test('pooledLayer prefers pool, then the layer before logits, then the last layer', () => {
  assert.equal(pooledLayer(['stem', 'pool', 'logits']), 'pool');
  assert.equal(pooledLayer(['conv1', 'conv2', 'fc', 'logits']), 'fc');
  assert.equal(pooledLayer(['conv1', 'conv2']), 'conv2');
  assert.equal(pooledLayer(['logits']), undefined);
  assert.equal(pooledLayer([]), undefined);
});

test('mergeLayerOrder keeps every list in order', () => {
  assert.deepEqual(mergeLayerOrder([['stem', 'b1', 'pool'], ['stem', 'b1', 'b2', 'pool', 'logits']]), ['stem', 'b1', 'b2', 'pool', 'logits']);
  assert.deepEqual(mergeLayerOrder([['a', 'c'], ['a', 'b', 'c']]), ['a', 'b', 'c']);
});

test('heatmap spec: magma on a fixed [0, 1] domain, columns left to right, first row at the bottom', () => {
  const [m] = splitMatrices(selfSimilarity({ name: 'm' }));
  const s = spec(heatmapSpec(m, { title: 'clean x clean' }));
  assert.deepEqual(s.encoding.x.sort, RESNET_LAYERS);
  // Vega-Lite puts the first value of an ordinal y domain at the top, so the sort lists the last layer first.
  assert.deepEqual(s.encoding.y.sort, [...RESNET_LAYERS].reverse());
  assert.equal(s.encoding.y.sort.at(-1), 'stem');
  const rect = s.layer.find((l: Json) => l.mark.type === 'rect');
  assert.deepEqual(rect.encoding.color.scale.domain, [0, 1]);
  assert.equal(rect.encoding.color.scale.scheme, 'magma');
  assert.ok(s.encoding.tooltip.some((t: Json) => t.field === 'cka' && t.format === '.3f'), 'tooltip shows the value');
  assert.equal(s.data.values.length, RESNET_LAYERS.length ** 2);
  assert.deepEqual(s.data.values[1], { row: 'stem', col: 'stage1.block1', cka: m.values[1] });
  assert.equal(s.width, RESNET_LAYERS.length * cellSize(RESNET_LAYERS.length));
  assert.equal(s.title, 'clean x clean');
});

test('heatmap spec: cell text for small matrices only, NaN becomes an empty cell', () => {
  const [small] = splitMatrices(selfSimilarity({ name: 'm' }));
  assert.ok(spec(heatmapSpec(small)).layer.some((l: Json) => l.mark.type === 'text'));
  assert.ok(!spec(heatmapSpec(small, { cellText: false })).layer.some((l: Json) => l.mark.type === 'text'));
  const layers = Array.from({ length: 40 }, (_, i) => `l${i}`);
  const [big] = splitMatrices(selfSimilarity({ name: 'm', layers }));
  const b = spec(heatmapSpec(big));
  assert.ok(!b.layer.some((l: Json) => l.mark.type === 'text'), 'no cell text at 40 layers');
  assert.ok(b.width <= 40 * 12 && b.width >= 400, `40 layers fit a readable width (${b.width})`);
  assert.equal(b.encoding.x.axis.labelAngle, -90, 'narrow columns get vertical labels');
  const nan = { ...small, values: Float64Array.from(small.values, (v, k) => (k === 0 ? NaN : v)) };
  assert.equal(spec(heatmapSpec(nan)).data.values[0].cka, null);
});

test('xLabelAngle: flat for few short names, diagonal for more, vertical when crowded', () => {
  assert.equal(xLabelAngle(['a', 'b', 'c'], 36), 0);
  assert.equal(xLabelAngle(RESNET_LAYERS, 36), -45);
  assert.equal(xLabelAngle(RESNET_LAYERS, 12), -90);
});

test('diagonal spec: y fixed to [0, 1], layers in network order, one coloured line per model', () => {
  const st = cleanAdvDiagonal(selfSimilarity({ name: 'st', end: 0.05 }));
  const at2 = cleanAdvDiagonal(selfSimilarity({ name: 'at', end: 0.9 }));
  const one = spec(diagonalSpec([{ model: 'st', points: st }]));
  assert.deepEqual(one.encoding.y.scale.domain, [0, 1]);
  assert.deepEqual(one.encoding.x.sort, RESNET_LAYERS);
  assert.equal(one.encoding.color.field, undefined, 'a single model needs no colour legend');
  const two = spec(diagonalSpec([{ model: 'st', points: st }, { model: 'at', points: at2 }]));
  assert.equal(two.encoding.color.field, 'model');
  assert.deepEqual(two.encoding.color.sort, ['st', 'at']);
  assert.equal(two.data.values.length, 2 * RESNET_LAYERS.length);
  assert.equal(two.data.values.find((v: Json) => v.model === 'at' && v.layer === 'logits').cka, at2[at2.length - 1].cka);
});

test('escapeHtml escapes every HTML-special character', () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
});

test('scopeSvgIds prefixes ids and their references only', () => {
  const svg = '<svg><defs><linearGradient id="gradient_0"/></defs><path fill="url(#gradient_0)"/><use href="#gradient_0"/><path fill="url(#other)"/></svg>';
  const out = scopeSvgIds(svg, 'c1-');
  assert.ok(out.includes('id="c1-gradient_0"'));
  assert.ok(out.includes('fill="url(#c1-gradient_0)"'));
  assert.ok(out.includes('href="#c1-gradient_0"'));
  assert.ok(out.includes('url(#other)'), 'unknown references untouched');
});

test('metadata: nested keys flatten to dotted paths; eps shown as k/255', () => {
  assert.equal(formatValue('attack.eps', 8 / 255), '0.03137 (8/255)');
  assert.equal(formatValue('attack.steps', 10), '10');
  assert.equal(formatValue('model.metrics.clean_acc', 0.812345), '0.8123');
  const rows = flattenMetadata({ model: { name: 'x', metrics: { clean_acc: 0.5 } }, inputs: ['a', 'b'], extra: null });
  assert.deepEqual(rows, [['model.name', 'x'], ['model.metrics.clean_acc', '0.5'], ['inputs', 'a, b'], ['extra', '—']]);
  const tables = metadataTables(selfSimilarity({ name: 'sl-at' }).metadata);
  assert.deepEqual(tables.map((t) => t.caption), ['similarity', 'source: sl-at — runs/sl-at/activations.arrow', 'provenance of source: sl-at — runs/sl-at/activations.arrow', 'provenance']);
  assert.ok(tables[1].rows.some(([k, v]) => k === 'attack.eps' && v.includes('8/255')));
  assert.equal(tables[3].folded, true);
});

test('labels come from the model name, else from the path; repeats are numbered', () => {
  assert.equal(labelSimilarity(selfSimilarity({ name: 'sl-at' }), '/x/whatever/similarity.arrow').label, 'sl-at');
  const anonymous = { ...selfSimilarity({ name: 'x' }), metadata: { estimator: 'biased', n: 1, inputs: ['a'] } };
  assert.equal(labelSimilarity(anonymous, '/runs/cl-fat/similarity.arrow').label, 'cl-fat');
  assert.equal(labelSimilarity(anonymous, '/runs/cl-fat/eps8.arrow').label, 'eps8');
  assert.equal(nameFromPath('runs/sl-st/activations.arrow'), 'sl-st');
  const cross = labelSimilarity(crossSimilarity('sl-st', 'sl-at'), '/runs/x/similarity.arrow');
  assert.equal(cross.label, 'sl-st vs sl-at');
  assert.deepEqual(cross.sides, { rows: 'sl-st', cols: 'sl-at' });
  assert.deepEqual(uniqueLabels(['a', 'b', 'a', 'a']), ['a', 'b', 'a (2)', 'a (3)']);
});

test('reportSummary gives the pooled and logits clean-vs-adv CKA, and model-vs-model CKA for cross tables', () => {
  const st = selfSimilarity({ name: 'sl-st', end: 0.05 });
  const cross = crossSimilarity('sl-st', 'sl-at');
  const rows = reportSummary([
    { label: 'sl-st', source: 'a', sim: st, sides: { rows: 'sl-st', cols: 'sl-st' } },
    { label: 'st vs at', source: 'b', sim: cross, sides: { rows: 'sl-st', cols: 'sl-at' } },
  ]);
  assert.equal(rows[0].kind, 'self');
  assert.equal(rows[0].pooledLayer, 'pool');
  assert.equal(rows[0].pooledCka, at(st, 'pool@clean', 'pool@adv'));
  assert.equal(rows[0].logitsCka, at(st, 'logits@clean', 'logits@adv'));
  assert.equal(rows[0].estimator, 'debiased');
  assert.equal(rows[0].n, 200);
  assert.match(formatSummaryLine(rows[0]), /^sl-st: clean-vs-adv CKA at pool = 0\.\d{3} \(logits 0\.050\)$/);
  assert.equal(rows[1].kind, 'cross');
  assert.equal(rows[1].pooledCka, null);
  assert.deepEqual(rows[1].crossPooled.map((c) => [c.input, c.layer, c.cka]), [
    ['clean', 'pool', at(cross, 'pool@clean', 'pool@clean')],
    ['adv', 'pool', at(cross, 'pool@adv', 'pool@adv')],
  ]);
});

test('reportHtml escapes every string from files and needs no external resource', () => {
  const sim = selfSimilarity({ name: HOSTILE, layers: ['stem', HOSTILE, 'pool', 'logits'] });
  sim.metadata.provenance = { command: `robustsim cka "${HOSTILE}"` };
  const [summary] = reportSummary([{ label: HOSTILE, source: `/tmp/${HOSTILE}`, sim, sides: { rows: HOSTILE, cols: HOSTILE } }]);
  const section: ReportSection = {
    label: HOSTILE,
    source: `/tmp/${HOSTILE}/similarity.arrow`,
    summary,
    heatmaps: [{ title: `${HOSTILE}: clean x clean`, svg: '<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>' }],
    metadata: metadataTables(sim.metadata),
  };
  const html = reportHtml({ title: HOSTILE, notes: `notes ${HOSTILE}`, summaryCharts: [], sections: [section] });
  assert.ok(!/<script/i.test(html), 'no script element anywhere');
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(html.includes('<p class="notes">notes &lt;script&gt;'));
  assert.ok(!/(src|href)\s*=\s*["']?\s*(https?:)?\/\//i.test(html), 'no remote src/href');
  assert.ok(!/url\(\s*["']?(?!#)/i.test(html), 'no url() except local fragment references');
  assert.match(html, /^<!DOCTYPE html>/);
  assert.ok(html.includes("default-src 'none'"), 'the page forbids loading anything');
});
