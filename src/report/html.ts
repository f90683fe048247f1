import type { MetaTable } from './metadata.js';
import type { ReportSummaryRow } from './summary.js';

/**
 * Assembly of the self-contained report page: inline CSS, inline SVG, no script, no external URL.
 * Every string that came from a file goes through escapeHtml; SVG comes from Vega's renderer, which
 * escapes its own text.
 */

/** An already rendered chart. */
export interface Chart {
  title: string;
  svg: string;
}

/** Everything shown for one similarity file. */
export interface ReportSection {
  label: string;
  source: string;
  summary: ReportSummaryRow;
  heatmaps: Chart[];
  /** The clean-vs-adversarial diagonal; absent for tables comparing two models. */
  diagonal?: Chart;
  metadata: MetaTable[];
}

export interface ReportPage {
  title: string;
  notes?: string;
  /** Charts that span inputs (e.g. every model's diagonal on one axis). */
  summaryCharts: Chart[];
  sections: ReportSection[];
  /** Free text for the footer, e.g. the tool and version. */
  footer?: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/**
 * Prefix every id in an SVG (and the references to it) so several inline SVGs can share one page:
 * Vega names its gradients and clip paths `gradient_0`, `clip1`, ... in every chart.
 */
export function scopeSvgIds(svg: string, prefix: string): string {
  const ids = new Set([...svg.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]));
  if (ids.size === 0) return svg;
  return svg
    .replace(/(\sid=")([^"]+)"/g, (whole, head: string, id: string) => (ids.has(id) ? `${head}${prefix}${id}"` : whole))
    .replace(/url\(#([^)]+)\)/g, (whole, id: string) => (ids.has(id) ? `url(#${prefix}${id})` : whole))
    .replace(/(href=")#([^"]+)"/g, (whole, head: string, id: string) => (ids.has(id) ? `${head}#${prefix}${id}"` : whole));
}

const CSS = `
:root { color-scheme: light; }
body { font-family: sans-serif; color: #222; background: #fff; margin: 0 auto; padding: 1.5rem 2rem 3rem; max-width: 1200px; line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; }
h2 { font-size: 1.25rem; margin: 2.5rem 0 .25rem; padding-top: 1rem; border-top: 1px solid #ddd; }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
p.notes { background: #f6f6f6; border-left: 4px solid #b5367a; padding: .6rem .9rem; white-space: pre-wrap; }
p.source, p.muted, footer { color: #666; font-size: .9rem; }
code { font-family: monospace; font-size: .92em; }
p.source code { word-break: break-all; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem 2rem; align-items: flex-start; }
figure { margin: 0; max-width: 100%; overflow-x: auto; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: .85rem; color: #555; margin-top: .25rem; }
table { border-collapse: collapse; margin: .25rem 0 1rem; font-size: .9rem; }
caption { text-align: left; font-weight: bold; padding: .3rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.meta td:first-child { font-family: monospace; white-space: nowrap; }
table.meta td { word-break: break-word; }
details { margin: .25rem 0 1rem; }
summary { cursor: pointer; font-weight: bold; }
`;

function fmt(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '—' : v.toFixed(3);
}

function chartFigure(chart: Chart, id: string): string {
  return `<figure>${scopeSvgIds(chart.svg, `${id}-`)}<figcaption>${escapeHtml(chart.title)}</figcaption></figure>`;
}

function summaryTable(sections: ReportSection[]): string {
  const rows = sections.map(({ summary: s }) => {
    const pooled = s.kind === 'self' ? fmt(s.pooledCka) : '—';
    const logits = s.kind === 'self' ? fmt(s.logitsCka) : '—';
    const cross = s.crossPooled.map((c) => `${escapeHtml(c.input || 'all')}: ${fmt(c.cka)}`).join('<br>') || '—';
    return `<tr><td>${escapeHtml(s.label)}</td><td>${s.kind === 'self' ? 'within one model' : 'two models'}</td><td>${escapeHtml(s.estimator)}</td><td class="num">${s.n ?? '—'}</td><td>${escapeHtml(s.pooledLayer ?? '—')}</td><td class="num">${pooled}</td><td class="num">${logits}</td><td class="num">${cross}</td></tr>`;
  });
  return `<table class="summary"><thead><tr><th>input</th><th>compares</th><th>estimator</th><th>n</th><th>pooled layer</th><th>clean-vs-adv CKA, pooled</th><th>clean-vs-adv CKA, logits</th><th>model-vs-model CKA, pooled</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function pooledTable(s: ReportSummaryRow): string {
  if (s.kind === 'cross') {
    if (s.crossPooled.length === 0) return '<p class="muted">No layer shared by both models.</p>';
    const rows = s.crossPooled.map((c) => `<tr><td>${escapeHtml(c.input || 'all')}</td><td>${escapeHtml(c.layer)}</td><td class="num">${fmt(c.cka)}</td></tr>`);
    return `<p class="muted">This file compares two models, so it holds no clean-vs-adversarial pair of one model; shown instead is the CKA between the two models' pooled features per input.</p><table><thead><tr><th>input</th><th>layer</th><th>CKA</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  }
  if (s.pooledCka === null && s.logitsCka === null) return '<p class="muted">This file has no layer with both a clean and an adversarial set.</p>';
  return `<table><thead><tr><th>model</th><th>pooled layer</th><th>CKA(pooled@clean, pooled@adv)</th><th>CKA(logits@clean, logits@adv)</th></tr></thead><tbody><tr><td>${escapeHtml(s.label)}</td><td>${escapeHtml(s.pooledLayer ?? '—')}</td><td class="num">${fmt(s.pooledCka)}</td><td class="num">${fmt(s.logitsCka)}</td></tr></tbody></table>`;
}

function metaTable(t: MetaTable): string {
  const body = t.rows.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(v)}</td></tr>`).join('');
  const table = `<table class="meta"><tbody>${body}</tbody></table>`;
  if (t.folded) return `<details><summary>${escapeHtml(t.caption)}</summary>${table}</details>`;
  return `<table class="meta"><caption>${escapeHtml(t.caption)}</caption><tbody>${body}</tbody></table>`;
}

function sectionHtml(s: ReportSection, index: number): string {
  const id = `input-${index + 1}`;
  const parts = [
    `<section id="${id}"><h2>${escapeHtml(s.label)}</h2>`,
    `<p class="source">from <code>${escapeHtml(s.source)}</code></p>`,
    '<h3>CKA heatmaps</h3>',
    '<p class="muted">Layers in network order on both axes; the first layer sits at the bottom-left. Colour scale fixed to [0, 1].</p>',
    `<div class="charts">${s.heatmaps.map((c, k) => chartFigure(c, `${id}-h${k}`)).join('')}</div>`,
  ];
  if (s.diagonal) {
    parts.push('<h3>Clean vs adversarial, layer by layer</h3>', `<div class="charts">${chartFigure(s.diagonal, `${id}-d`)}</div>`);
  }
  parts.push('<h3>Clean-vs-adversarial CKA at the pooled features</h3>', pooledTable(s.summary));
  parts.push('<h3>Metadata</h3>', s.metadata.map(metaTable).join(''), '</section>');
  return parts.join('\n');
}

/** The whole page. Pure: same input, same bytes. */
export function reportHtml(page: ReportPage): string {
  const toc = page.sections.map((s, i) => `<li><a href="#input-${i + 1}">${escapeHtml(s.label)}</a></li>`).join('');
  const summaryCharts = page.summaryCharts.length
    ? `<div class="charts">${page.summaryCharts.map((c, k) => chartFigure(c, `summary-${k}`)).join('')}</div>`
    : '';
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    // Belt and braces: even if some string slipped through unescaped, the page may load nothing and run nothing.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(page.title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    `<header><h1>${escapeHtml(page.title)}</h1>`,
    page.notes ? `<p class="notes">${escapeHtml(page.notes)}</p>` : '',
    '</header>',
    '<section id="summary"><h2>Summary</h2>',
    '<p class="muted">Linear CKA between the representations of clean inputs and of their adversarial versions (1 = same representation up to rotation and scale, 0 = unrelated). "Pooled" is the layer named <code>pool</code>, else the last layer before <code>logits</code>.</p>',
    summaryTable(page.sections),
    summaryCharts,
    `<nav><ul>${toc}</ul></nav>`,
    '</section>',
    ...page.sections.map(sectionHtml),
    page.footer ? `<footer><p>${escapeHtml(page.footer)}</p></footer>` : '',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
