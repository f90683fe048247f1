import type { TopLevelSpec } from 'vega-lite';
import type { EvalTableRow } from '../formats/eval.js';

/**
 * Charts of eval.arrow rows for one model, as vega-lite specs (pure data; rendering is separate).
 * Clean accuracy is drawn as every attack's point at eps 0, so each curve starts where the model starts.
 */
export function robustAccuracySpec(model: string, rows: EvalTableRow[]): TopLevelSpec {
  const mine = rows.filter((r) => r.model === model);
  const clean = mine.find((r) => r.attack === 'clean');
  const attacks = [...new Set(mine.filter((r) => r.attack !== 'clean').map((r) => r.attack))];
  const values = attacks.flatMap((a) => [
    ...(clean ? [{ attack: a, eps: 0, accuracy: clean.accuracy }] : []),
    ...mine.filter((r) => r.attack === a).map((r) => ({ attack: a, eps: r.eps, accuracy: r.accuracy })),
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${model}: robust accuracy vs eps`,
    background: 'white',
    width: 360,
    height: 220,
    data: { values },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'eps', type: 'quantitative', title: `eps (${mine.find((r) => r.attack !== 'clean')?.norm ?? 'linf'})` },
      y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: { domain: [0, 1] } },
      color: { field: 'attack', type: 'nominal', sort: attacks, scale: { scheme: 'category10' } },
      tooltip: [
        { field: 'attack', type: 'nominal' },
        { field: 'eps', type: 'quantitative', format: '.4f' },
        { field: 'accuracy', type: 'quantitative', format: '.3f' },
      ],
    },
  } as TopLevelSpec;
}

/** The accuracy table of one model (rows: attacks, columns: eps) drawn as text marks. */
export function accuracyTableSpec(model: string, rows: EvalTableRow[]): TopLevelSpec {
  const mine = rows.filter((r) => r.model === model);
  const values = mine.map((r) => ({
    attack: r.attack,
    eps: r.attack === 'clean' ? '-' : r.eps.toFixed(4),
    text: `${(100 * r.accuracy).toFixed(1)}%`,
  }));
  const epsOrder = ['-', ...[...new Set(mine.filter((r) => r.attack !== 'clean').map((r) => r.eps))].sort((a, b) => a - b).map((e) => e.toFixed(4))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${model}: accuracy (n = ${mine[0]?.n ?? 0})`,
    background: 'white',
    width: { step: 72 },
    height: { step: 22 },
    data: { values },
    mark: { type: 'text', fontSize: 12 },
    encoding: {
      x: { field: 'eps', type: 'ordinal', sort: epsOrder, title: 'eps', axis: { orient: 'top', labelAngle: 0 } },
      y: { field: 'attack', type: 'ordinal', sort: [...new Set(mine.map((r) => r.attack))], title: null },
      text: { field: 'text', type: 'nominal' },
    },
    config: { view: { stroke: null }, axis: { domain: false, ticks: false } },
  } as TopLevelSpec;
}
