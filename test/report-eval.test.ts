import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accuracyTableSpec, robustAccuracySpec } from '../src/report/eval-specs.js';
import { renderSvg } from '../src/report/render.js';
import type { EvalTableRow } from '../src/formats/eval.js';

const row = (attack: string, eps: number, accuracy: number): EvalTableRow => ({
  model: 'm',
  attack,
  eps,
  norm: 'linf',
  steps: 20,
  restarts: 1,
  n: 10,
  accuracy,
  correct: new Uint8Array(10),
});
const rows = [row('clean', 0, 0.9), row('pgd20', 0.05, 0.4), row('pgd20', 0.1, 0.1), row('apgd-ce', 0.05, 0.3), row('apgd-ce', 0.1, 0.05)];

test('robust-accuracy-vs-eps chart: one curve per attack starting at clean accuracy, y fixed to [0, 1]', async () => {
  const spec = robustAccuracySpec('m', rows) as unknown as { data: { values: Array<{ attack: string; eps: number; accuracy: number }> }; encoding: { y: { scale: { domain: number[] } } } };
  const values = spec.data.values;
  assert.deepEqual(values.filter((v) => v.attack === 'pgd20').map((v) => [v.eps, v.accuracy]), [[0, 0.9], [0.05, 0.4], [0.1, 0.1]]);
  assert.equal(values.filter((v) => v.attack === 'clean').length, 0);
  assert.deepEqual(spec.encoding.y.scale.domain, [0, 1]);
  const svg = await renderSvg(robustAccuracySpec('m', rows));
  assert.match(svg, /<svg/);
});

test('accuracy table: a cell per evaluation with its percentage', async () => {
  const spec = accuracyTableSpec('m', rows) as unknown as { data: { values: Array<{ attack: string; eps: string; text: string }> } };
  assert.equal(spec.data.values.length, rows.length);
  assert.deepEqual(spec.data.values[0], { attack: 'clean', eps: '-', text: '90.0%' });
  assert.match(await renderSvg(accuracyTableSpec('m', rows)), /90\.0%/);
});
