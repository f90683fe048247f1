/**
 * All-pairs linear CKA of 36 activation sets (ResNet-18-shaped widths, clean + adversarial) at
 * n = 2048: robustsim's engines against two NumPy implementations in the same run, with ratios.
 *   npm run bench:cka [-- --n 2048 --width 16 --pairs 12 --batch-size 256 --workers 2]
 * NumPy comes from Debian (/usr/bin/python3 with python3-numpy; apt-get install python3-numpy
 * libopenblas0-pthread); ROBUSTSIM_BENCH_PYTHON overrides the interpreter. The per-pair baseline is
 * timed on --pairs sampled pairs and scaled to all pairs (it recomputes both Grams for every pair).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeBackend, initBackend } from '../src/backend/index.js';
import { hostOpenBlas } from '../src/backend/native/index.js';
import { loadLine, machineLine } from './machine.js';
import { linearCkaMatrix } from '../src/cka/engine/engine.js';
import { linearCkaMatrixInWorkers } from '../src/cka/engine/workers.js';
import { minibatchStateOfSets } from '../src/cka/minibatch/batches.js';
import { encodeNpy } from '../src/formats/npy.js';
import { resnet18Widths, syntheticSets } from './cka-sets.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** Peak resident memory of this process so far (Linux), in MiB. */
export function peakRssMiB(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

const n = arg('n', 2048);
const width = arg('width', 16);
const pairs = arg('pairs', 12);
const batchSize = arg('batch-size', 256);
const workers = arg('workers', 2);
const skipWorkers = process.argv.includes('--no-workers');
const python = process.env.ROBUSTSIM_BENCH_PYTHON ?? '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.resolve(here, '../../bench/cka_numpy.py');

const backend = await initBackend(process.argv.includes('--cpu') ? 'cpu' : 'auto');
// The tiled engine's path: Grams and products on host memory through OpenBLAS, or tfjs tensors.
const engineLabel = hostOpenBlas() ? `${backend}; native OpenBLAS on host memory` : backend;
const widths = resnet18Widths(width);
const sets = syntheticSets(n, widths);
const features = sets.reduce((s, x) => s + x.dim, 0);
console.log(`Machine: ${machineLine()}; backend ${describeBackend()}`);
console.log(`Load at the start: ${loadLine()}`);
console.log(`Data: ${sets.length} sets, n = ${n}, widths ${widths.join(',')} (x2: clean, adv), ${features} features, ${((4 * n * features) / 2 ** 30).toFixed(2)} GiB float32\n`);

const dir = await mkdtemp(path.join(os.tmpdir(), 'robustsim-bench-cka-'));
try {
  await writeFile(path.join(dir, 'order.txt'), sets.map((s) => s.name).join('\n') + '\n');
  for (const s of sets) await writeFile(path.join(dir, `${s.name}.npy`), encodeNpy(s.data, [s.n, s.dim]));

  // Warm-up: kernels compiled and the backend started outside the timings.
  await linearCkaMatrix(syntheticSets(64, [8, 16], 2), null, { estimator: 'biased' });
  let t0 = performance.now();
  const ours = await linearCkaMatrix(sets, null, { estimator: 'biased' });
  const tEngine = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const inWorkers = skipWorkers ? null : await linearCkaMatrixInWorkers(sets, null, { estimator: 'biased' }, workers);
  const tWorkers = (performance.now() - t0) / 1000;
  const workerDiff = inWorkers ? Math.max(...Array.from(inWorkers.cka, (v, k) => Math.abs(v - ours.cka[k]))) : NaN;
  t0 = performance.now();
  await minibatchStateOfSets(sets, { batchSize, seed: 0, bootstrap: 0, permutations: 0 });
  const tMinibatch = (performance.now() - t0) / 1000;
  const rss = peakRssMiB();

  const rows: [string, number, string][] = [
    [`robustsim tiled engine (biased, full data; ${engineLabel})`, tEngine, 'same estimator as the NumPy rows'],
    ...(inWorkers ? [[`robustsim tiled engine, ${workers} worker threads`, tWorkers, `max diff to one thread ${workerDiff.toExponential(1)}`] as [string, number, string]] : []),
    [`robustsim minibatch (batch ${batchSize}; ${backend})`, tMinibatch, 'unbiased HSIC per batch: ~n*b work instead of n^2'],
  ];
  const py = spawnSync(python, [script, dir, String(pairs)], { encoding: 'utf8', maxBuffer: 1 << 28 });
  let agreement = '';
  if (py.status === 0) {
    const r = JSON.parse(py.stdout) as { numpy: string; blas: string; per_pair_s: number; per_pair_pairs_timed: number; per_pair_all_pairs: number; gram_once_s: number; gram_once: number[]; per_pair_values: [number, number, number][] };
    rows.push([`NumPy per-pair Grams (float64; ${r.per_pair_pairs_timed} of ${r.per_pair_all_pairs} pairs timed, scaled)`, r.per_pair_s, `numpy ${r.numpy}`]);
    rows.push(['NumPy Gram-once, one product (float32 GEMM)', r.gram_once_s, `numpy ${r.numpy}`]);
    const m = sets.length;
    const dOnce = Math.max(...r.gram_once.map((v, k) => Math.abs(v - ours.cka[k])));
    const dPair = Math.max(...r.per_pair_values.map(([i, j, v]) => Math.abs(v - ours.cka[i * m + j])));
    agreement = `max |robustsim - NumPy|: ${dPair.toExponential(1)} (per-pair, float64), ${dOnce.toExponential(1)} (Gram-once, float32)`;
  } else {
    console.log(`NumPy baselines skipped: ${python} failed (${(py.stderr || String(py.error)).trim().split('\n').pop()}); apt-get install python3-numpy libopenblas0-pthread\n`);
  }
  console.log('| implementation | seconds | vs robustsim tiled | note |');
  console.log('|---|---|---|---|');
  for (const [name, s, note] of rows) console.log(`| ${name} | ${s.toFixed(1)} | ${(s / tEngine).toFixed(2)}x | ${note} |`);
  console.log(`\nPeak RSS of the robustsim process: ${rss.toFixed(0)} MiB (the sets themselves: ${((4 * n * features) / 2 ** 20).toFixed(0)} MiB).`);
  if (agreement) console.log(agreement);
  console.log(`Load at the end: ${loadLine()} (a shared machine: both sides ran in this run under the same load)`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
