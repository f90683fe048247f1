import type { TopLevelSpec } from 'vega-lite';
import { escapeHtml, scopeSvgIds } from '../../report/html.js';
import { renderSvg } from '../../report/render.js';
import { diagonalSpec, heatmapSpec, type DiagonalSeries } from '../../report/specs.js';
import type { StudyResults, CellResult, MatrixResult, ComparisonResult } from './results.js';
import type { Interval } from '../../cka/scores/scores.js';

/**
 * The study's one page: every figure type of the reference study, laid out as grids a reader can scan
 * (rows = schemes, columns = scenarios), with the scores and their intervals. Self-contained like the
 * other reports: inline SVG and CSS, no script.
 */
const SCHEMES = ['sl', 'cl', 'scl'];
const REGIMES = ['st', 'at', 'pat', 'fat', 'st-pat', 'st-fat'];

const CSS = `
body { font-family: sans-serif; color: #222; margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 1800px; line-height: 1.4; }
h2 { margin-top: 2.2rem; border-top: 1px solid #ddd; padding-top: .8rem; }
table { border-collapse: collapse; font-size: .88rem; margin: .4rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.grid td { min-width: 120px; }
figure { margin: 0; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption, p.muted { color: #666; font-size: .85rem; }
`;

function fmt(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(3);
}

function fmtInterval(iv: Interval | undefined): string {
  if (!iv) return '—';
  return `${fmt(iv.value)} <span class="ci">[${fmt(iv.low)}, ${fmt(iv.high)}]</span>`;
}

async function figure(spec: TopLevelSpec, caption: string, id: string): Promise<string> {
  return `<figure>${scopeSvgIds(await renderSvg(spec), `${id}-`)}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

function subMatrix(m: MatrixResult, key: string, rowAxis: string, colAxis: string) {
  return { key, rowAxis, colAxis, rowLayers: m.rows, colLayers: m.cols, values: m.point.values };
}

/** The cell shown at (scheme, regime) of a grid: the one with the default method, base eps and first seed. */
function gridCell(cells: CellResult[], scheme: string, regime: string): CellResult | undefined {
  return cells.find((c) => c.cell.name === `${scheme}-${regime}`);
}

async function grid(r: StudyResults, title: string, render: (c: CellResult, id: string) => Promise<string>): Promise<string> {
  const schemes = SCHEMES.filter((s) => r.cells.some((c) => c.cell.scheme === s));
  const regimes = REGIMES.filter((g) => r.cells.some((c) => c.cell.regime === g));
  const rows: string[] = [];
  let k = 0;
  for (const s of schemes) {
    const tds: string[] = [];
    for (const g of regimes) {
      const c = gridCell(r.cells, s, g);
      tds.push(`<td>${c ? await render(c, `${title.replace(/\W+/g, '')}-${k++}`) : ''}</td>`);
    }
    rows.push(`<tr><th>${s.toUpperCase()}</th>${tds.join('')}</tr>`);
  }
  const others = r.cells.filter((c) => !gridCell(r.cells, c.cell.scheme, c.cell.regime) || gridCell(r.cells, c.cell.scheme, c.cell.regime) !== c);
  const extra = others.length ? `<tr><th>other cells</th><td colspan="${regimes.length}">${(await Promise.all(others.map((c) => render(c, `${title.replace(/\W+/g, '')}-${k++}`)))).join('')}</td></tr>` : '';
  return `<table class="grid"><tr><th></th>${regimes.map((g) => `<th>${g.toUpperCase()}</th>`).join('')}</tr>${rows.join('')}${extra}</table>`;
}

function accuracyTable(r: StudyResults): string {
  const head = '<tr><th>cell</th><th>clean</th><th>TM-I (contrastive PGD)</th><th>TM-II (CE PGD)</th><th>redundancy (clean)</th><th>block score (clean)</th><th>redundancy (adv)</th><th>pooled clean-vs-adv</th><th>duplicate taps</th></tr>';
  const rows = r.cells.map(
    (c) =>
      `<tr><td><code>${escapeHtml(c.cell.name)}</code></td><td class="num">${fmt(c.accuracy.clean)}</td><td class="num">${fmt(c.accuracy.tm1)}</td><td class="num">${fmt(c.accuracy.tm2)}</td>` +
      `<td class="num">${fmtInterval(c.scores.redundancy_clean)}</td><td class="num">${fmtInterval(c.scores.block_clean)}${c.block ? ` <br>(${escapeHtml(c.block.start)} … ${escapeHtml(c.block.end)})` : ''}</td>` +
      `<td class="num">${fmtInterval(c.scores.redundancy_adv)}</td><td class="num">${fmtInterval(c.scores.pooled_clean_vs_adv)}</td>` +
      `<td>${escapeHtml([...c.duplicates].map(([j, i]) => `${c.layers[j]} = ${c.layers[i]}`).join(', ') || 'none')}</td></tr>`,
  );
  return `<table>${head}${rows.join('')}</table>`;
}

function comparisonTable(r: StudyResults): string {
  if (!r.comparisons.length) return '<p class="muted">No comparisons across cells.</p>';
  const head = '<tr><th>A</th><th>B</th><th>kind</th><th>universality, clean inputs</th><th>universality, adversarial inputs</th></tr>';
  const rows = r.comparisons.map(
    (c) => `<tr><td><code>${escapeHtml(c.comparison.a)}</code></td><td><code>${escapeHtml(c.comparison.b)}</code></td><td>${c.comparison.kind}</td><td class="num">${fmtInterval(c.scores.universality_clean)}</td><td class="num">${fmtInterval(c.scores.universality_adv)}</td></tr>`,
  );
  return `<table>${head}${rows.join('')}</table>`;
}

function probeSpec(series: Array<{ name: string; points: Array<{ layer: string; accuracy: number; input: 'clean' | 'adversarial' }> }>, title: string, subtitle: string): TopLevelSpec {
  const order = [...new Set(series.flatMap((s) => s.points.map((p) => p.layer)))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle },
    background: 'white',
    width: Math.max(240, order.length * 36),
    height: 200,
    data: { values: series.flatMap((s) => s.points.map((p) => ({ model: s.name, layer: p.layer, accuracy: p.accuracy, input: p.input }))) },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'layer', type: 'ordinal', sort: order, title: 'layer (network order)' },
      y: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, title: 'linear-probe test accuracy' },
      color: { field: 'model', type: 'nominal', title: 'cell' },
      strokeDash: { field: 'input', type: 'nominal', sort: ['clean', 'adversarial'], title: 'inputs' },
      detail: [{ field: 'model' }, { field: 'input' }],
    },
  } as TopLevelSpec;
}

/** A cell's probe curve points: clean test accuracy, and adversarial accuracy where it was measured. */
function probePoints(c: CellResult): Array<{ layer: string; accuracy: number; input: 'clean' | 'adversarial' }> {
  return c.probes.flatMap((p) => [
    { layer: p.layer, accuracy: p.testAccuracy, input: 'clean' as const },
    ...(p.adversarialAccuracy !== undefined && p.adversarialAccuracy !== null ? [{ layer: p.layer, accuracy: p.adversarialAccuracy, input: 'adversarial' as const }] : []),
  ]);
}

function bestMatchSpec(c: ComparisonResult, input: string): TopLevelSpec {
  const curve = c.bestMatch[input];
  const order = curve.map((p) => p.layer);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${c.comparison.a} → ${c.comparison.b} (${input}): best match per layer`,
    background: 'white',
    width: Math.max(240, order.length * 36),
    height: 180,
    data: { values: curve.map((p) => ({ layer: p.layer, match: p.match, cka: p.value, low: p.low, high: p.high })) },
    layer: [
      { mark: { type: 'rule' }, encoding: { y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' } } },
      { mark: { type: 'line', point: true }, encoding: { y: { field: 'cka', type: 'quantitative', scale: { domain: [0, 1] }, title: 'best CKA with any layer of B' } } },
      { mark: { type: 'text', dy: -10, fontSize: 9 }, encoding: { y: { field: 'cka', type: 'quantitative' }, text: { field: 'match' } } },
    ],
    encoding: { x: { field: 'layer', type: 'ordinal', sort: order, title: `layer of ${c.comparison.a}` } },
  } as TopLevelSpec;
}

function diagonalSeries(c: CellResult, name = c.cell.name): DiagonalSeries {
  return { model: name, points: c.diagonal.map((p) => ({ layer: p.layer, cka: p.value, ciLow: p.low, ciHigh: p.high })) };
}

export async function studyReportHtml(r: StudyResults, opts: { version: string }): Promise<string> {
  const parts: string[] = [];
  const matrix = (c: CellResult, name: string) => c.matrices.find((m) => m.name === name)!;
  parts.push('<h2>Accuracy and scores</h2>');
  parts.push(`<p class="muted">Accuracies on ${escapeHtml('the evaluation set')}: TM-I = PGD on the contrastive loss through the encoder (cl/scl only), TM-II = end-to-end cross-entropy PGD, at the first eval eps. Scores with ${Math.round(r.level * 100)}% bootstrap intervals over minibatches: redundancy = mean off-diagonal CKA of the layer x layer matrix; block score = mean CKA inside the strongest contiguous block of at least 3 layers minus its mean CKA with the other layers; taps with activations identical to an earlier tap's are listed and left out of both.</p>`);
  parts.push(accuracyTable(r));
  parts.push('<h2>Layer x layer CKA, clean inputs</h2>');
  parts.push(await grid(r, 'self-clean', (c, id) => figure(heatmapSpec(subMatrix(matrix(c, 'clean'), c.cell.name, 'clean', 'clean')), `${c.cell.name}: clean x clean`, id)));
  parts.push('<h2>Layer x layer CKA, adversarial inputs</h2>');
  parts.push(await grid(r, 'self-adv', (c, id) => figure(heatmapSpec(subMatrix(matrix(c, 'adv'), c.cell.name, 'adv', 'adv')), `${c.cell.name}: adv x adv`, id)));
  parts.push('<h2>Clean vs adversarial (rows: clean layer i; columns: adversarial layer j)</h2>');
  parts.push(await grid(r, 'clean-adv', (c, id) => figure(heatmapSpec(subMatrix(matrix(c, 'clean-vs-adv'), c.cell.name, 'clean', 'adv')), `${c.cell.name}: clean x adv`, id)));
  parts.push('<h2>Clean-vs-adversarial diagonal per layer</h2><div>');
  const schemes = SCHEMES.filter((s) => r.cells.some((c) => c.cell.scheme === s));
  for (const s of schemes) {
    const cells = r.cells.filter((c) => c.cell.scheme === s);
    parts.push(await figure(diagonalSpec(cells.map((c) => diagonalSeries(c)), { title: `${s.toUpperCase()}: CKA(layer@clean, layer@adv)` }), `${s}: every cell, with intervals`, `diag-${s}`));
  }
  parts.push('</div><h2>Training-eps sweep</h2>');
  let sweeps = 0;
  for (const s of schemes) {
    const at = r.cells.filter((c) => c.cell.scheme === s && c.cell.regime === 'at' && c.cell.trainEps !== undefined);
    const byGroup = new Map<string, CellResult[]>();
    for (const c of at) {
      const g = `${c.cell.method}|${c.cell.seed}`;
      byGroup.set(g, [...(byGroup.get(g) ?? []), c]);
    }
    for (const group of byGroup.values()) {
      if (group.length < 2) continue;
      group.sort((x, y) => x.cell.trainEps! - y.cell.trainEps!);
      parts.push(await figure(diagonalSpec(group.map((c) => diagonalSeries(c, `train eps ${(c.cell.trainEps! * 255).toFixed(1)}/255`)), { title: `${s.toUpperCase()}-AT: clean-vs-adv diagonal across training eps` }), `${group.map((c) => c.cell.name).join(', ')}`, `sweep-${sweeps++}`));
    }
  }
  if (!sweeps) parts.push('<p class="muted">This study has no cells that differ only in training eps.</p>');
  parts.push('<h2>Per-layer linear probes</h2>');
  if (r.cells.some((c) => c.probes.length)) {
    for (const s of schemes) {
      const cells = r.cells.filter((c) => c.cell.scheme === s && c.probes.length);
      parts.push(await figure(probeSpec(cells.map((c) => ({ name: c.cell.name, points: probePoints(c) })), `${s.toUpperCase()}: linear probe per layer`, 'solid: clean; dashed: white-box PGD on the probe'), s, `probe-${s}`));
    }
  } else parts.push('<p class="muted">Probes were not part of this study (config key <code>probes</code>).</p>');
  parts.push('<h2>Across cells</h2>');
  parts.push('<p class="muted">Universality = mean over layers of CKA(layer i of A, layer i of B).</p>');
  parts.push(comparisonTable(r));
  const kinds: Array<[ComparisonResult['comparison']['kind'], string]> = [['cross-scheme', 'Scheme x scheme'], ['at-vs-fat', 'AT vs FAT'], ['pair', 'Pairs named in the config']];
  let k = 0;
  for (const [kind, title] of kinds) {
    const list = r.comparisons.filter((c) => c.comparison.kind === kind);
    if (!list.length) continue;
    parts.push(`<h3>${title}</h3><table class="grid"><tr><th>A vs B</th><th>adversarial inputs</th><th>clean inputs</th><th>best match (adversarial)</th></tr>`);
    for (const c of list) {
      const cell = async (name: string) => {
        const m = c.matrices.find((x) => x.name === name);
        return m ? figure(heatmapSpec(subMatrix(m, `${c.comparison.a} x ${c.comparison.b}`, c.comparison.a, c.comparison.b)), name, `cross-${k++}`) : '';
      };
      const best = c.bestMatch.adv ? await figure(bestMatchSpec(c, 'adv'), 'labels: the best-matching layer of B', `best-${k++}`) : '';
      parts.push(`<tr><th>${escapeHtml(c.comparison.a)} vs ${escapeHtml(c.comparison.b)}</th><td>${await cell('cross-adv')}</td><td>${await cell('cross-clean')}</td><td>${best}</td></tr>`);
    }
    parts.push('</table>');
  }
  return [
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    `<title>${escapeHtml(`robustsim study: ${r.name}`)}</title><style>${CSS}</style></head><body>`,
    `<h1>robustsim study: ${escapeHtml(r.name)}</h1>`,
    r.description ? `<p>${escapeHtml(r.description)}</p>` : '',
    `<p class="muted">${r.cells.length} cells, ${r.comparisons.length} comparisons. Tables: study.arrow (every matrix entry with its interval), summary.arrow (accuracies and scores per cell and comparison).</p>`,
    ...parts,
    `<footer><p class="muted">Made by robustsim ${escapeHtml(opts.version)}.</p></footer></body></html>`,
    '',
  ].join('\n');
}
