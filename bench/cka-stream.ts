/**
 * The fused stream (model forward + PGD + per-batch HSIC of every tap pair) with 1 and with 2 worker
 * threads, to choose the default by measurement.
 *   npm run bench:cka-stream [-- --n 2048 --batch-size 256 --steps 3 --arch resnet-small --workers 1,2]
 * The GPU workload (ResNet-18, 10k CIFAR images, batch 1000, clean + adversarial), for a
 * machine with a GPU and the CIFAR-10 binary files:
 *   npm run bench:cka-stream -- --backend webgpu --arch resnet18 --dataset cifar10 \
 *     --data-dir data/cifar-10-batches-bin --n 10000 --batch-size 1000 --workers 1
 * The model is an untrained (seeded) network: the cost does not depend on the weights.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, type BackendChoice } from '../src/backend/index.js';
import type { DatasetName } from '../src/data/index.js';
import { trainModel } from '../src/train/loop.js';
import { streamMinibatchCka } from '../src/cka/similarity/shortcuts.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const n = Number(arg('n', '2048'));
const batchSize = Number(arg('batch-size', '256'));
const steps = Number(arg('steps', '3'));
const arch = arg('arch', 'resnet-small');
const workerCounts = arg('workers', '1,2').split(',').map(Number);
const dataset = arg('dataset', 'fashion-mnist') as DatasetName;
const dataDir = process.argv.includes('--data-dir') ? arg('data-dir', '') : undefined;

const backend = await initBackend(arg('backend', 'auto') as BackendChoice);
const root = await mkdtemp(path.join(os.tmpdir(), 'robustsim-bench-stream-'));
try {
  const ckpt = path.join(root, 'model');
  await trainModel({
    out: ckpt, dataset, dataDir, arch, epochs: 1, maxSteps: 0, batchSize: 64, optimizer: 'sgd', lr: 0.1, seed: 0,
    evalLimit: 16, evalAttack: { norm: 'linf', eps: 0.1, stepSize: 0.03, steps: 1, randomStart: true, restarts: 1, seed: 0 },
  });
  console.log(`Machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, backend ${backend}`);
  console.log(`${dataset}, ${arch}, n = ${n}, batch ${batchSize}, clean + PGD-${steps} adversarial inputs, all tap points\n`);
  console.log('| worker threads | seconds | samples/s |\n|---|---|---|');
  for (const workers of workerCounts) {
    const t0 = performance.now();
    const res = await streamMinibatchCka({
      models: [ckpt], out: path.join(root, `out-${workers}`), dataset, dataDir, n, seed: 0, batchSize, inputs: ['clean', 'adv'],
      attack: { steps, eps: 0.1, stepSize: 0.03 }, workers,
    });
    const s = (performance.now() - t0) / 1000;
    console.log(`| ${workers} | ${s.toFixed(1)} | ${(res.samples / s).toFixed(0)} |`);
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
