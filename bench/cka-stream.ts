/**
 * The fused stream (model forward + PGD + per-batch HSIC of every tap pair) on Fashion-MNIST with 1
 * and with 2 worker threads, to choose the default by measurement.
 *   npm run bench:cka-stream [-- --n 2048 --batch-size 256 --steps 3 --arch resnet-small]
 * The model is an untrained (seeded) network: the cost does not depend on the weights.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { trainModel } from '../src/train/loop.js';
import { streamMinibatchCka } from '../src/cka/stream.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const n = Number(arg('n', '2048'));
const batchSize = Number(arg('batch-size', '256'));
const steps = Number(arg('steps', '3'));
const arch = arg('arch', 'resnet-small');
const workerCounts = arg('workers', '1,2').split(',').map(Number);

const backend = await initBackend('auto');
const root = await mkdtemp(path.join(os.tmpdir(), 'robustsim-bench-stream-'));
try {
  const ckpt = path.join(root, 'model');
  await trainModel({
    out: ckpt, dataset: 'fashion-mnist', arch, epochs: 1, maxSteps: 0, batchSize: 64, optimizer: 'sgd', lr: 0.1, seed: 0,
    evalLimit: 16, evalAttack: { norm: 'linf', eps: 0.1, stepSize: 0.03, steps: 1, randomStart: true, restarts: 1, seed: 0 },
  });
  console.log(`Machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, backend ${backend}`);
  console.log(`Fashion-MNIST, ${arch}, n = ${n}, batch ${batchSize}, clean + PGD-${steps} adversarial inputs, all tap points\n`);
  console.log('| worker threads | seconds | samples/s |\n|---|---|---|');
  for (const workers of workerCounts) {
    const t0 = performance.now();
    const res = await streamMinibatchCka({
      models: [ckpt], out: path.join(root, `out-${workers}`), dataset: 'fashion-mnist', n, seed: 0, batchSize, inputs: ['clean', 'adv'],
      attack: { steps, eps: 0.1, stepSize: 0.03 }, workers,
    });
    const s = (performance.now() - t0) / 1000;
    console.log(`| ${workers} | ${s.toFixed(1)} | ${(res.samples / s).toFixed(0)} |`);
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
