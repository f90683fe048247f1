/**
 * Minibatch CKA on an NVIDIA GPU, prepared for a GPU machine (none was available when it was
 * written): 18 ResNet-18-shaped layers on clean and adversarial inputs (18 x 18 cross pairs and the
 * self terms), --n images in minibatches of --batch-size, unbiased HSIC per batch accumulated in
 * float64. Three rows in one run, on the same GPU:
 *   robustsim, wasm backend with the cuBLAS provider (ROBUSTSIM_CUBLAS=require: Grams on the GPU)
 *   robustsim, --backend webgpu (tfjs' WebGPU matmuls through Dawn; needs libvulkan1 + the driver's ICD)
 *   PyTorch on CUDA, torch matmuls in the pytorch-cka style (bench/cka_torch_gpu.py)
 *   npm run bench:cka-gpu [-- --n 10000 --batch-size 1000 --width 16 --timeout 540]
 * Activations are synthetic (bench/cka-sets.ts), generated per batch outside the timings. The
 * default width 16 is quarter-width ResNet-18 (0.57 GB of activations per batch of 1000; full width
 * would exceed the 4 GiB wasm heap); pass --width 64 for full width on the PyTorch and WebGPU rows.
 * Fits in 10 minutes on a current GPU at the defaults.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describeBackend, initBackend } from '../src/backend/index.js';
import { loadedCublas } from '../src/backend/native/index.js';
import { batchHsic } from '../src/cka/minibatch/hsic.js';
import { resnet18Widths, syntheticSets } from './cka-sets.js';
import { loadLine, machineLine } from './machine.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const n = arg('n', 10000);
const batchSize = arg('batch-size', 1000);
const width = arg('width', 16);
const timeout = arg('timeout', 540);
const widths = resnet18Widths(width);
const batches = Math.floor(n / batchSize);
const started = performance.now();

/** Seconds in batchHsic over all batches on the active backend (generation and upload not timed). */
async function timeRobustsim(): Promise<{ seconds: number; hsic: Float64Array }> {
  let seconds = 0;
  let hsic = new Float64Array(0);
  for (let q = 0; q < batches; q++) {
    if ((performance.now() - started) / 1000 > timeout) throw new Error(`--timeout ${timeout}s reached`);
    const sets = syntheticSets(batchSize, widths, q + 1).map((s) => tf.tensor2d(s.data, [s.n, s.dim]));
    await Promise.all(sets.map((s) => s.data())); // on the backend before the clock starts
    const t0 = performance.now();
    const r = await batchHsic(sets, [], 'linear', 'gram');
    seconds += (performance.now() - t0) / 1000;
    if (!hsic.length) hsic = new Float64Array(r.hsic.length);
    r.hsic.forEach((v, k) => (hsic[k] += v / batches));
    tf.dispose(sets);
  }
  return { seconds, hsic };
}

const rows: [string, string][] = [];
console.log(`Machine: ${machineLine()}; ${loadLine()}`);
console.log(`Workload: 36 sets (18 layers x clean/adv, widths ${widths.join(',')}), n = ${n}, minibatch ${batchSize}, unbiased HSIC\n`);

process.env.ROBUSTSIM_CUBLAS ??= 'require';
let cublasHsic: Float64Array | undefined;
try {
  await initBackend('wasm');
  const gpu = loadedCublas();
  const r = await timeRobustsim();
  cublasHsic = r.hsic;
  rows.push([`robustsim minibatch, ${describeBackend()}`, r.seconds.toFixed(2) + (gpu ? '' : ' (no cuBLAS: CPU)')]);
} catch (err) {
  rows.push(['robustsim minibatch, wasm + cuBLAS', `not run: ${err instanceof Error ? err.message : String(err)}`]);
}
try {
  await initBackend('webgpu');
  const r = await timeRobustsim();
  const diff = cublasHsic ? Math.max(...Array.from(r.hsic, (v, k) => Math.abs(v - cublasHsic![k]) / Math.max(1e-12, Math.abs(cublasHsic![k])))) : NaN;
  rows.push([`robustsim minibatch, ${describeBackend()}`, `${r.seconds.toFixed(2)} (max rel. diff to cuBLAS ${diff.toExponential(1)})`]);
} catch (err) {
  rows.push(['robustsim minibatch, webgpu (Dawn)', `not run: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`]);
}
const left = Math.max(30, timeout - (performance.now() - started) / 1000);
const py = spawnSync(process.env.ROBUSTSIM_BENCH_PYTHON ?? 'python3', [path.resolve('bench/cka_torch_gpu.py'), JSON.stringify({ n, batchSize, widths })], { encoding: "utf8", timeout: Math.round(left * 1000) });
if (py.status === 0) {
  const r = JSON.parse(py.stdout.trim().split('\n').pop()!) as { seconds: number; torch: string; device: string };
  rows.push([`PyTorch ${r.torch} matmuls on ${r.device} (pytorch-cka style)`, r.seconds.toFixed(2)]);
} else {
  rows.push(['PyTorch on CUDA', `not run: ${(py.stderr || String(py.error ?? 'timeout')).trim().split('\n').pop()}`]);
}
console.log('| implementation | seconds in the HSIC computation |');
console.log('|---|---|');
for (const [name, s] of rows) console.log(`| ${name} | ${s} |`);
console.log(`\nLoad at the end: ${loadLine()}`);
