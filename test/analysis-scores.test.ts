import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestMatch, blockScore, duplicateTaps, matricesOf, meanDiagonal, meanOffDiagonal, scoreInterval, strongestBlock, type Matrix } from '../src/cka/scores/scores.js';
import { scoreCoverage } from '../src/cka/scores/coverage.js';
import { blockLayers, populationCka, simulateState } from '../src/cka/scores/simulate.js';

const mat = (rows: number[][]): Matrix => ({ rows: rows.length, cols: rows[0].length, values: Float64Array.from(rows.flat()) });

test('redundancy, universality and best match on a hand-made matrix', () => {
  const m = mat([
    [1, 0.8, 0.2],
    [0.8, 1, 0.4],
    [0.2, 0.4, 1],
  ]);
  assert.ok(Math.abs(meanOffDiagonal(m) - (0.8 + 0.2 + 0.4) / 3) < 1e-12);
  assert.ok(Math.abs(meanOffDiagonal(m, new Set([2])) - 0.8) < 1e-12);
  assert.equal(meanDiagonal(m), 1);
  const r = mat([
    [0.1, 0.9],
    [0.7, 0.3],
  ]);
  assert.deepEqual(bestMatch(r), { index: [1, 0], value: [0.9, 0.7] });
  assert.ok(Math.abs(meanDiagonal(r) - 0.2) < 1e-12);
});

test('the block score finds the bright square and is higher for one than for a flat matrix', () => {
  const n = 6;
  const blocky = mat(Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : i < 3 && j < 3 ? 0.9 : 0.2))));
  const b = strongestBlock(blocky)!;
  assert.deepEqual([b.start, b.end], [0, 2]);
  assert.ok(Math.abs(b.contrast - 0.7) < 1e-12);
  const flat = mat(Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0.5))));
  assert.ok(Math.abs(blockScore(flat)) < 1e-12);
});

test('a tap whose activations copy an earlier tap is marked as a duplicate', () => {
  // Sets a, b (a copy of a), c: identical HSIC rows and columns for a and b.
  const sets = ['a', 'b', 'c'];
  const hsic = Float64Array.from([2, 2, 0.5, 2, 2, 0.5, 0.5, 0.5, 1]);
  const dups = duplicateTaps({ sets, hsic, boot: new Float64Array(0), replicates: 0 }, sets);
  assert.deepEqual([...dups], [[1, 0]]);
});

test('scores from a minibatch state: the point matrix is the population CKA within the interval width', () => {
  const s = blockLayers([0, 0, 0, 1], { d: 6, p: 5, sigma: 1, spread: 0.35, seed: 3 });
  const names = ['l0', 'l1', 'l2', 'l3'];
  const state = simulateState(s, names, { batches: 64, batchSize: 32, bootstrap: 100, seed: 5 });
  const { point, replicates } = matricesOf({ sets: state.sets, hsic: state.hsic, boot: state.boot, replicates: 100 }, names, names);
  const pop = populationCka(s);
  for (let k = 0; k < 16; k++) assert.ok(Math.abs(point.values[k] - pop[k]) < 0.05, `entry ${k}: ${point.values[k]} vs ${pop[k]}`);
  const iv = scoreInterval((x) => meanOffDiagonal(x), point, replicates);
  assert.ok(iv.low < iv.value && iv.value < iv.high);
});

test('coverage by simulation: nominal 95% intervals of every score cover the population score in 90-98% of runs', () => {
  const r = scoreCoverage({ runs: 200, batches: 32, batchSize: 32, bootstrap: 200 });
  for (const [k, c] of Object.entries(r.covered)) assert.ok(c >= 0.9 && c <= 0.98, `${k}: coverage ${c} (truth ${r.truth[k].toFixed(3)}, mean width ${r.meanWidth[k].toFixed(3)})`);
});
