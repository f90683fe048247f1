/**
 * Per-batch HSIC of all pairs, Gram path against feature path, for m sets of equal width d in
 * batches of b (wasm unless --cpu): the measured times beside the flop model's choice, to check
 * (and set) the crossover the model in src/cka/hsic-plan.ts predicts.
 *   npm run bench:cka-formulation [-- --b 256 --m 12 --permutations 0 --reps 5]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { batchHsicPlanned } from '../src/cka/minibatch/hsic.js';
import { batchFlops, planFormulation } from '../src/cka/minibatch/hsic-plan.js';
import { makeRng, permutation } from '../src/util/rng.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const b = arg('b', 256);
const m = arg('m', 12);
const P = arg('permutations', 0);
const reps = arg('reps', 5);
const backend = await initBackend(process.argv.includes('--cpu') ? 'cpu' : 'wasm');
const rng = makeRng(1);
const perms = Array.from({ length: P }, () => permutation(b, rng));

async function time(sets: tf.Tensor[], feature: boolean[]): Promise<number> {
  await batchHsicPlanned(sets, perms, 'linear', feature); // warm-up
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) await batchHsicPlanned(sets, perms, 'linear', feature);
  return (performance.now() - t0) / reps;
}

console.log(`backend ${backend}, b = ${b}, m = ${m} sets of width d, ${P} permutations; ms per batch (mean of ${reps})`);
console.log('d\tD=m*d\tgram ms\tfeature ms\tmeasured\tmodel picks\tmodel gram/feature');
for (const d of [4, 8, 16, 32, 64, 128, 256, 512]) {
  const sets = Array.from({ length: m }, (_, k) => tf.randomNormal([b, d], 0, 1, 'float32', k + 1));
  const widths = new Array<number>(m).fill(d);
  const allGram = new Array<boolean>(m).fill(false);
  const allFeature = new Array<boolean>(m).fill(true);
  const tg = await time(sets, allGram);
  // Beyond the feature path's memory limit (forced only; 'auto' never goes there): not timed.
  const tfeat = 8 * (m * d) ** 2 > 2 ** 30 ? NaN : await time(sets, allFeature);
  const plan = planFormulation(b, widths, P);
  const picks = plan.every(Boolean) ? 'feature' : plan.some(Boolean) ? 'mixed' : 'gram';
  const ratio = batchFlops(b, widths, allGram, P) / batchFlops(b, widths, allFeature, P);
  console.log(`${d}\t${m * d}\t${tg.toFixed(2)}\t${tfeat.toFixed(2)}\t${Number.isNaN(tfeat) || tg < tfeat ? 'gram' : 'feature'}\t${picks}\t${ratio.toFixed(2)}`);
  tf.dispose(sets);
}
