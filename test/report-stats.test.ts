import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanAdvDiagonal } from '../src/report/matrices.js';
import { diagonalSpec } from '../src/report/specs.js';
import type { SimilarityTable } from '../src/formats/similarity.js';

const names = ['l1@clean', 'l2@clean', 'l1@adv', 'l2@adv'];
const filled = (f: (k: number) => number) => Float64Array.from({ length: 16 }, (_, k) => f(k));

test('the clean-vs-adv curve carries minibatch statistics into the chart when present', () => {
  const sim: SimilarityTable = {
    rows: names,
    cols: names,
    cka: filled((k) => k / 20),
    extra: { ci_low: filled((k) => k / 20 - 0.01), ci_high: filled((k) => k / 20 + 0.01), null_mean: filled(() => 0.002) },
    metadata: { estimator: 'minibatch', n: 64, inputs: ['m'] },
  };
  const points = cleanAdvDiagonal(sim);
  // l1@clean x l1@adv is entry (0, 2).
  assert.deepEqual(points[0], { layer: 'l1', cka: 2 / 20, ciLow: 2 / 20 - 0.01, ciHigh: 2 / 20 + 0.01, nullMean: 0.002 });
  const spec = diagonalSpec([{ model: 'm', points }]) as unknown as { layer: { mark: { type: string } }[]; data: { values: Record<string, unknown>[] } };
  assert.deepEqual(spec.layer.map((l) => l.mark.type), ['rule', 'line', 'line']);
  assert.equal(spec.data.values[1].ci_high, points[1].ciHigh);
  // Without statistics the chart stays a plain line.
  const plain = diagonalSpec([{ model: 'm', points: points.map((p) => ({ layer: p.layer, cka: p.cka })) }]) as unknown as { layer?: unknown; mark: { type: string } };
  assert.equal(plain.layer, undefined);
  assert.equal(plain.mark.type, 'line');
});
