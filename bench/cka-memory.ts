/**
 * Memory of streaming minibatch CKA does not grow with n: the same 36 ResNet-18-shaped sets
 * streamed at n = 2048 and n = 20480 (batches generated on the backend, as the fused capture hands
 * them over), each run in its own process, comparing peak resident memory (VmHWM).
 *   npm run bench:cka-memory [-- --width 4 --batch-size 256]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { accumulateMinibatches, planBatches, type MinibatchBatch } from '../src/cka/minibatch/batches.js';
import { emptyState } from '../src/cka/minibatch/state.js';
import { resnet18Widths } from './cka-sets.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const width = arg('width', 4);
const batchSize = arg('batch-size', 256);
const child = arg('child', 0);

if (child > 0) {
  const backend = await initBackend('auto');
  const widths = [...resnet18Widths(width), ...resnet18Widths(width)];
  const state = emptyState(widths.map((_, k) => `s${k}`), { batchSize, seed: 0, bootstrap: 0, permutations: 0 });
  async function* batches(): AsyncGenerator<MinibatchBatch> {
    for (const span of planBatches(child, batchSize)) {
      const sets = widths.map((d, k) => tf.randomNormal([span.size, d], k % 3, 1, 'float32', span.id * 100 + k));
      try {
        yield { id: span.id, sets };
      } finally {
        tf.dispose(sets);
      }
    }
  }
  const t0 = performance.now();
  await accumulateMinibatches(batches(), state);
  console.log(JSON.stringify({ n: child, backend, seconds: (performance.now() - t0) / 1000, peakRssMiB: peakRssMiB(), tensors: tf.memory().numTensors }));
} else {
  const self = fileURLToPath(import.meta.url);
  console.log(`Machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`);
  console.log(`36 sets, widths ${resnet18Widths(width).join(',')} (x2), batch ${batchSize}\n`);
  console.log('| n | batches | seconds | peak RSS (MiB) |\n|---|---|---|---|');
  const results: { n: number; peakRssMiB: number; seconds: number }[] = [];
  for (const n of [2048, 20480]) {
    const r = spawnSync(process.execPath, [self, '--child', String(n), '--width', String(width), '--batch-size', String(batchSize)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`child n=${n} failed: ${r.stderr}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { n: number; peakRssMiB: number; seconds: number };
    results.push(res);
    console.log(`| ${n} | ${Math.ceil(n / batchSize)} | ${res.seconds.toFixed(1)} | ${res.peakRssMiB.toFixed(0)} |`);
  }
  const growth = results[1].peakRssMiB / results[0].peakRssMiB - 1;
  console.log(`\nPeak RSS at n = 20480 vs n = 2048: ${(100 * growth).toFixed(1)}% (${Math.abs(growth) <= 0.1 ? 'within' : 'NOT within'} 10%)`);
  if (Math.abs(growth) > 0.1) process.exitCode = 1;
}
