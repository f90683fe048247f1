/**
 * How often the nominal 95% bootstrap interval of minibatch CKA (cka --stats) covers the
 * population CKA, by number of minibatches, on synthetic pairs with a known answer
 * (src/cka/minibatch/coverage.ts: X ~ N(0, I_p), Y = X A + s E). Sets the --stats batch rules
 * (src/cka/similarity/stats-rule.ts) and the table in docs/cka.md.
 *   npm run bench:cka-coverage [-- --runs 2000]
 */
import * as os from 'node:os';
import { intervalCoverage, type CoverageSetup } from '../src/cka/minibatch/coverage.js';
import { MIN_STATS_BATCHES, WARN_STATS_BATCHES } from '../src/cka/similarity/stats-rule.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const runs = arg('runs', 2000);
const setups: Array<{ label: string; setup: Omit<CoverageSetup, 'batches'> }> = [
  { label: 'p = q = 4, s = 1', setup: { p: 4, q: 4, noise: 1, batchSize: 16, bootstrap: 200, seed: 1 } },
  { label: 'p = q = 8, s = 0.3', setup: { p: 8, q: 8, noise: 0.3, batchSize: 32, bootstrap: 200, seed: 2 } },
];
const t0 = performance.now();
console.log(`Machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`${runs} seeded runs per row; Poisson bootstrap, 200 replicates, percentile interval; rules: refuse below ${MIN_STATS_BATCHES} batches, warn below ${WARN_STATS_BATCHES}\n`);
console.log('| setup | batch size | batches | population CKA | mean estimate | mean width | coverage | 95% range of the coverage estimate |');
console.log('|---|---|---|---|---|---|---|---|');
for (const { label, setup } of setups) {
  for (const batches of [1, 2, 3, 4, 8, 16, 32, 64]) {
    const r = intervalCoverage({ ...setup, batches }, runs);
    const se = Math.sqrt((r.coverage * (1 - r.coverage)) / runs);
    console.log(`| ${label} | ${setup.batchSize} | ${batches} | ${r.population.toFixed(4)} | ${r.meanEstimate.toFixed(4)} | ${r.meanWidth.toFixed(4)} | ${(100 * r.coverage).toFixed(1)}% | ${(100 * Math.max(0, r.coverage - 1.96 * se)).toFixed(1)}-${(100 * Math.min(1, r.coverage + 1.96 * se)).toFixed(1)}% |`);
  }
}
console.log(`\n${((performance.now() - t0) / 1000).toFixed(0)} s, load after ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
