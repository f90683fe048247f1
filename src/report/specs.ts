import type { TopLevelSpec } from 'vega-lite';
import { mergeLayerOrder, type DiagonalPoint, type SubMatrix } from './matrices.js';

/**
 * Vega-Lite specs as plain objects. Rendering is a separate step (render.ts), so tests can check
 * what a chart encodes without drawing it.
 */

/** Matrices at most this many layers on each side get the value printed in each cell. */
export const CELL_TEXT_MAX_LAYERS = 12;

/** The config every chart shares: default sans-serif fonts, white background, no outer frame. */
const BASE_CONFIG = {
  font: 'sans-serif',
  view: { stroke: null },
  axis: { labelFontSize: 10, titleFontSize: 11, labelLimit: 140 },
  legend: { labelFontSize: 10, titleFontSize: 11 },
  title: { fontSize: 13, anchor: 'start' as const },
};

/** Side of one heatmap cell: large for few layers, shrinking to stay readable up to ~40 layers. */
export function cellSize(layers: number): number {
  return Math.max(12, Math.min(36, Math.floor(480 / Math.max(1, layers))));
}

/**
 * Angle of the x labels: horizontal for a few short names, diagonal for more, vertical when the
 * columns are so narrow (< 16 px) that diagonal labels would overlap their neighbours.
 */
export function xLabelAngle(layers: string[], spacing: number): number {
  const longest = layers.reduce((m, l) => Math.max(m, l.length), 0);
  if (spacing < 16) return -90;
  return layers.length > 6 || longest * 6 > spacing ? -45 : 0;
}

export interface HeatmapOptions {
  title?: string;
  /** Print each value in its cell; default: when both sides have at most CELL_TEXT_MAX_LAYERS layers. */
  cellText?: boolean;
}

/**
 * A CKA heatmap: columns on x left to right and rows on y bottom to top, both in network order, so the
 * first layers meet at the bottom-left corner. Colour is magma on a fixed [0, 1] domain so that charts
 * of different models can be compared by eye.
 */
export function heatmapSpec(m: SubMatrix, opts: HeatmapOptions = {}): TopLevelSpec {
  const nr = m.rowLayers.length;
  const nc = m.colLayers.length;
  const values: { row: string; col: string; cka: number | null }[] = [];
  for (let i = 0; i < nr; i++) {
    for (let j = 0; j < nc; j++) {
      const v = m.values[i * nc + j];
      // NaN cannot be coloured; null makes Vega-Lite leave the cell empty instead of failing.
      values.push({ row: m.rowLayers[i], col: m.colLayers[j], cka: Number.isFinite(v) ? v : null });
    }
  }
  const cell = cellSize(Math.max(nr, nc));
  const cellText = opts.cellText ?? (nr <= CELL_TEXT_MAX_LAYERS && nc <= CELL_TEXT_MAX_LAYERS);
  const rect = {
    mark: { type: 'rect' as const },
    encoding: {
      color: {
        field: 'cka',
        type: 'quantitative' as const,
        title: 'CKA',
        scale: { domain: [0, 1], scheme: 'magma', clamp: true },
        legend: { gradientLength: Math.max(80, Math.min(200, nr * cell)) },
      },
    },
  };
  const text = {
    mark: { type: 'text' as const, fontSize: Math.max(7, Math.min(11, cell / 3.2)) },
    encoding: {
      text: { field: 'cka', type: 'quantitative' as const, format: '.2f' },
      // magma is dark at 0 and pale at 1: switch the text colour where the cell turns light.
      color: { condition: { test: 'datum.cka > 0.6', value: 'black' }, value: 'white' },
    },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: opts.title ?? m.key,
    background: 'white',
    width: nc * cell,
    height: nr * cell,
    data: { values },
    transform: [{ calculate: "datum.row + ' × ' + datum.col + ': ' + (datum.cka == null ? 'n/a' : format(datum.cka, '.3f'))", as: 'label' }],
    encoding: {
      x: {
        field: 'col',
        type: 'ordinal',
        sort: m.colLayers.slice(),
        title: m.colAxis,
        axis: { labelAngle: xLabelAngle(m.colLayers, cell) },
      },
      y: {
        field: 'row',
        type: 'ordinal',
        // Ordinal y scales start at the top; listing rows last-to-first puts the first layer at the bottom.
        sort: m.rowLayers.slice().reverse(),
        title: m.rowAxis,
      },
      tooltip: [
        { field: 'row', type: 'nominal', title: m.rowAxis },
        { field: 'col', type: 'nominal', title: m.colAxis },
        { field: 'cka', type: 'quantitative', title: 'CKA', format: '.3f' },
      ],
      description: { field: 'label', type: 'nominal' },
    },
    layer: cellText ? [rect, text] : [rect],
    config: BASE_CONFIG,
  } as TopLevelSpec;
}

/** One model's clean-vs-adversarial diagonal. */
export interface DiagonalSeries {
  model: string;
  points: DiagonalPoint[];
}

export interface DiagonalOptions {
  title?: string;
}

/**
 * The headline curve: CKA(layer@clean, layer@adv) along the network, one line per model, y fixed to
 * [0, 1]. Models with different layer lists share one x axis in a merged network order.
 */
export function diagonalSpec(series: DiagonalSeries[], opts: DiagonalOptions = {}): TopLevelSpec {
  const order = mergeLayerOrder(series.map((s) => s.points.map((p) => p.layer)));
  const values = series.flatMap((s) =>
    s.points.map((p) => ({
      model: s.model,
      layer: p.layer,
      cka: Number.isFinite(p.cka) ? p.cka : null,
      label: `${s.model}, ${p.layer}: ${Number.isFinite(p.cka) ? p.cka.toFixed(3) : 'n/a'}`,
    })),
  );
  const several = series.length > 1;
  const withStats = series.some((s) => s.points.some((p) => p.ciLow !== undefined || p.nullMean !== undefined));
  const step = Math.max(14, Math.min(48, Math.floor(560 / Math.max(1, order.length))));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: opts.title ?? 'clean-vs-adversarial CKA per layer',
    background: 'white',
    width: Math.max(240, order.length * step),
    height: 220,
    data: { values: withStats ? withStatFields(series, values) : values },
    ...(withStats ? { layer: statLayers(Y_TITLE) } : { mark: { type: 'line', point: true, strokeWidth: 2 } }),
    encoding: {
      x: {
        field: 'layer',
        type: 'ordinal',
        sort: order,
        title: 'layer (network order)',
        axis: { labelAngle: xLabelAngle(order, step) },
      },
      y: {
        field: 'cka',
        type: 'quantitative',
        title: Y_TITLE,
        scale: { domain: [0, 1], clamp: true },
      },
      ...(several
        ? { color: { field: 'model', type: 'nominal', title: 'model', sort: series.map((s) => s.model), scale: { scheme: 'category10' } } }
        : { color: { value: '#b5367a' } }),
      tooltip: [
        { field: 'model', type: 'nominal' },
        { field: 'layer', type: 'nominal' },
        { field: 'cka', type: 'quantitative', title: 'CKA', format: '.3f' },
        ...(withStats
          ? [
              { field: 'ci_low', type: 'quantitative', title: '95% CI low', format: '.3f' },
              { field: 'ci_high', type: 'quantitative', title: '95% CI high', format: '.3f' },
              { field: 'null_mean', type: 'quantitative', title: 'permutation null', format: '.3f' },
            ]
          : []),
      ],
      description: { field: 'label', type: 'nominal' },
    },
    config: BASE_CONFIG,
  } as TopLevelSpec;
}

const Y_TITLE = 'CKA(layer@clean, layer@adv)';

/** Attach the statistics of each point (null where absent) to the chart rows of diagonalSpec. */
function withStatFields(series: DiagonalSeries[], values: Record<string, unknown>[]): Record<string, unknown>[] {
  const points = series.flatMap((s) => s.points);
  const num = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : null);
  return values.map((v, k) => ({ ...v, ci_low: num(points[k].ciLow), ci_high: num(points[k].ciHigh), null_mean: num(points[k].nullMean) }));
}

/**
 * With minibatch statistics: the bootstrap interval as a vertical bar per layer and the permutation
 * null as a dashed line under the CKA line (shared x, y and colour from the parent encoding).
 */
function statLayers(title: string): unknown[] {
  return [
    {
      transform: [{ filter: 'datum.ci_low != null' }],
      mark: { type: 'rule', strokeWidth: 1.5, opacity: 0.6 },
      encoding: { y: { field: 'ci_low', type: 'quantitative', title }, y2: { field: 'ci_high' } },
    },
    { mark: { type: 'line', point: true, strokeWidth: 2 } },
    {
      transform: [{ filter: 'datum.null_mean != null' }],
      mark: { type: 'line', strokeDash: [4, 3], strokeWidth: 1, opacity: 0.7 },
      encoding: { y: { field: 'null_mean', type: 'quantitative', title } },
    },
  ];
}
