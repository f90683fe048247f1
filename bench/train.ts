/**
 * Training throughput (images/s) of one optimizer step at batch 128 on the small ResNet (CIFAR
 * shape, 32x32x3), for standard training, PGD adversarial training, SimCLR and the study's contrastive
 * AT (study-at, no PyTorch twin), on the current
 * backend, on the main thread alone and data-parallel over --workers threads (src/train/data-parallel.ts);
 * next to the same model in PyTorch (--threads threads) when /usr/bin/python3 has torch, measured in the same run.
 *   npm run bench:train [-- --backend wasm --steps 4 --threads 2 --workers 2]
 * Prints a markdown table (docs/benchmarks-train.md quotes it).
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describeBackend, initBackend, native, type BackendChoice } from '../src/backend/index.js';
import { loadLine, machineLine } from './machine.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { trainStep } from '../src/train/methods.js';
import { startDataParallel } from '../src/train/data-parallel.js';
import { THREAD_BACKENDS } from '../src/parallel/threads.js';
import { makeLearner, learnerVariables, disposeLearner } from '../src/train/learner.js';
import { resolveTrainConfig, type TrainConfig } from '../src/train/options.js';
import { augment, CONTRASTIVE_AUGMENT } from '../src/train/augment.js';
import { makeRng } from '../src/util/rng.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const backendChoice = arg('backend', 'auto') as BackendChoice;
const steps = Number(arg('steps', '4'));
const warmup = Number(arg('warmup', '1'));
const threads = Number(arg('threads', String(os.cpus().length)));
const workers = Number(arg('workers', String(threads)));
const batch = 128;
const attack = { norm: 'linf' as const, eps: 8 / 255, stepSize: 2 / 255, steps: 5, randomStart: true, restarts: 1, seed: 0 };

interface Row {
  key: string;
  label: string;
  cfg: Partial<TrainConfig>;
  /** Images per step (default: the batch); SimCLR pushes 2 x batch views through the encoder. */
  images?: number;
  /** Data-parallel over this many threads (main thread included); compared with PyTorch's row `torchKey`. */
  workers?: number;
  torchKey?: string;
  /** No PyTorch twin (bench/train_torch.py has no such method). */
  noTorch?: boolean;
}
// The sl rows train without augmentation (sl's default augments) because the PyTorch side does not augment them.
const ROWS: Row[] = [
  { key: 'sl-st', label: 'ST (sl, cross-entropy)', cfg: { scheme: 'sl', regime: 'st', augment: 'none' } },
  { key: 'sl-st-256', label: 'ST at batch 256 (as many images per step as SimCLR encodes)', cfg: { scheme: 'sl', regime: 'st', augment: 'none' }, images: 2 * batch },
  { key: 'sl-pgd', label: 'PGD-AT (sl, PGD-5 8/255)', cfg: { scheme: 'sl', regime: 'at', method: 'pgd', augment: 'none' } },
  { key: 'cl-st', label: 'SimCLR (cl, 2 views, NT-Xent; robustsim includes its augmentation, PyTorch only a flip)', cfg: { scheme: 'cl', regime: 'st' } },
  { key: 'sl-st-dp', label: `ST, ${workers} workers`, cfg: { scheme: 'sl', regime: 'st' }, workers, torchKey: 'sl-st' },
  { key: 'sl-pgd-dp', label: `PGD-AT, ${workers} workers`, cfg: { scheme: 'sl', regime: 'at', method: 'pgd' }, workers, torchKey: 'sl-pgd' },
  { key: 'cl-st-dp', label: `SimCLR, ${workers} workers (embeddings all-gathered)`, cfg: { scheme: 'cl', regime: 'st' }, workers, torchKey: 'cl-st' },
  // The study's contrastive AT: PGD-5 on the clean image, then x, x_adv and two views through the encoder.
  { key: 'cl-study-at', label: 'study-at (cl, PGD-5 8/255 on x; x, x_adv, 2 views in the loss)', cfg: { scheme: 'cl', regime: 'at', method: 'study-at' }, noTorch: true },
  { key: 'cl-study-at-dp', label: `study-at (cl), ${workers} workers (embeddings all-gathered at every attack step)`, cfg: { scheme: 'cl', regime: 'at', method: 'study-at' }, workers, noTorch: true },
];

const backend = await initBackend(backendChoice);
const loadBefore = loadLine();
const mainThreads = native.nativeSummary()?.threads ?? 1;
function batchOf(n: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  return {
    x: tf.randomUniform([n, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D,
    y: tf.tensor1d(Array.from({ length: n }, (_, i) => i % 10), 'int32'),
  };
}
const { x, y } = batchOf(batch);

async function measure(row: Row): Promise<number> {
  // Worker threads run CPU backends only (each thread its own instance).
  if (row.workers && !(THREAD_BACKENDS as readonly string[]).includes(backend)) return NaN;
  const cfg = resolveTrainConfig({ arch: 'resnet-small', attack, weightDecay: 0, ...row.cfg });
  const { model } = buildModel({ arch: resolveArch(cfg.arch), inputShape: [32, 32, 3], numClasses: 10, seed: 0 });
  const featureDim = model.getLayer('pool').outputShape[1] as number;
  const learner = makeLearner(model, cfg, cfg.scheme === 'sl' ? undefined : { hidden: featureDim, dim: 128 });
  const vars = learnerVariables(learner);
  const optimizer = tf.train.adam(1e-3);
  const images = row.images ?? batch;
  const data = images === batch ? { x, y } : batchOf(images);
  // Native threads x compute threads stay within the cores: each of the N threads gets floor(cores / N).
  native.setNativeThreads(row.workers ? native.threadsPerWorker(row.workers) : mainThreads);
  if (row.workers) process.env[native.NATIVE_THREADS_ENV] = String(native.threadsPerWorker(row.workers)); // the workers read it
  const parallel = row.workers ? await startDataParallel(learner, row.workers, [32, 32, 3], cfg.scheme === 'sl' ? undefined : { hidden: featureDim, dim: 128 }) : null;
  const flat = parallel ? { x: data.x.dataSync() as Float32Array, y: data.y.dataSync() as Int32Array } : null;
  const run = async (i: number) => {
    if (parallel) {
      await parallel.step(flat!.x, flat!.y, { attack: i, augment: i }, optimizer);
      return;
    }
    const { loss, correct } = trainStep(learner, optimizer, vars, [], data.x, data.y, { attack: i, augment: i });
    await loss.data();
    tf.dispose([loss, correct]);
  };
  for (let i = 0; i < warmup; i++) await run(i);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await run(warmup + i);
  const seconds = (performance.now() - t0) / 1000;
  await parallel?.close();
  optimizer.dispose();
  disposeLearner(learner);
  if (data.x !== x) tf.dispose([data.x, data.y]);
  return (images * steps) / seconds;
}

async function augmentRate(): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const v = augment(x, makeRng(i), CONTRASTIVE_AUGMENT);
    await v.data();
    v.dispose();
  }
  return (batch * steps) / ((performance.now() - t0) / 1000);
}

function torchRates(): { rates?: Record<string, number>; note: string } {
  const script = path.resolve('bench/train_torch.py');
  const cfg = { batch, steps, warmup, threads, attack, methods: ROWS.filter((r) => !r.torchKey && !r.noTorch).map((r) => r.key) };
  const r = spawnSync('/usr/bin/python3', [script, JSON.stringify(cfg)], { encoding: 'utf8' });
  if (r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop();
    return { note: `PyTorch not measured (${why})` };
  }
  const version = spawnSync('/usr/bin/python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim();
  return { rates: JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>, note: `PyTorch ${version}, ${threads} threads` };
}

const ours: Record<string, number> = {};
for (const row of ROWS) ours[row.key] = await measure(row);
const aug = await augmentRate();
tf.dispose([x, y]);
const torch = torchRates();

native.setNativeThreads(mainThreads);
console.log(`Machine: ${machineLine()}; robustsim backend ${describeBackend()}; ${torch.note}.`);
console.log(`Load: ${loadBefore} at the start, ${loadLine()} at the end (the machine is shared: figures under load are noisy; the PyTorch column ran in the same run).`);
console.log(`Small ResNet (resnet-small: 3 stages x 1 basic block, width 16), 32x32x3 inputs, batch ${batch}, Adam, ${steps} timed steps after ${warmup} warm-up.\n`);
console.log(`| training step | robustsim (${backend}) img/s | PyTorch img/s | robustsim / PyTorch |`);
console.log('|---|---|---|---|');
for (const row of ROWS) {
  const t = torch.rates?.[row.torchKey ?? row.key];
  const o = ours[row.key];
  const ratio = row.noTorch ? 'no PyTorch twin' : t && !Number.isNaN(o) ? (o / t).toFixed(3) : 'n/a';
  console.log(`| ${row.label} | ${Number.isNaN(o) ? 'n/a (CPU backends only)' : o.toFixed(1)} | ${row.noTorch ? '-' : t ? t.toFixed(1) : 'n/a'} | ${ratio} |`);
}
console.log(`\nContrastive augmentation alone (robustsim, ${backend}): ${aug.toFixed(0)} img/s per view.`);
