import { test } from 'node:test';
import assert from 'node:assert/strict';
import { intervalCoverage, mixingMatrix, populationCka, simulateRun, type CoverageSetup } from '../src/cka/minibatch/coverage.js';

const SETUP: CoverageSetup = { p: 4, q: 4, noise: 1, batchSize: 16, batches: 16, bootstrap: 200, seed: 1 };

test('the population CKA of the simulation is what many samples estimate', () => {
  const A = mixingMatrix(SETUP);
  const pop = populationCka(SETUP, A);
  assert.ok(pop > 0.2 && pop < 0.8, `${pop}: neither trivial nor saturated`);
  // One long run (2048 batches of 16): the estimate sits within a few standard errors of the truth.
  const long = simulateRun({ ...SETUP, batches: 2048, bootstrap: 1 }, A, 99);
  assert.ok(Math.abs(long.cka - pop) < 0.01, `${long.cka} vs ${pop}`);
});

test('the nominal 95% bootstrap interval of minibatch CKA covers the population CKA in 90-98% of runs', () => {
  // 300 seeded runs of 16 batches each (npm run bench:cka-coverage runs more, and other batch counts).
  const r = intervalCoverage(SETUP, 300);
  assert.ok(r.coverage >= 0.9 && r.coverage <= 0.98, `coverage ${r.coverage} (${r.covered}/${r.runs}), population ${r.population}`);
  assert.ok(r.meanWidth > 0);
});

test('with one batch the interval has zero width and covers nothing: why runSimilarity refuses it', () => {
  const r = intervalCoverage({ ...SETUP, batches: 1 }, 50);
  assert.ok(r.meanWidth < 1e-12, `${r.meanWidth}`);
  assert.ok(r.coverage < 0.1);
});
