/**
 * Where one training step's time goes on the wasm backend: every wasm kernel is wrapped with a timer,
 * a few ST and PGD-AT steps of resnet-small (batch 128, 32x32x3, Adam) run, and a table per method
 * lists kernel name, calls per step, ms per step, share of the step and the commonest input shapes.
 *   npm run bench:train-profile [-- --steps 2 --warmup 1 --top 25 --methods st,pgd]
 *
 * Times are inclusive for top-level kernels (what the engine called); kernels that our own gradient
 * kernels call internally are listed separately ("nested"), so nothing is counted twice. "outside
 * kernels" is the step time not spent in any kernel: tape bookkeeping, JS glue, tidy/dispose.
 * (wasm runs synchronously on the calling thread, so wall-clock around a kernel call is its cost.)
 * The process CPU time per step is printed too: on a shared, loaded machine it varies less than wall time.
 */
import * as tf from '@tensorflow/tfjs';
import { describeBackend, initBackend } from '../src/backend/index.js';
import { loadLine, machineLine } from './machine.js';
import { buildModel, resolveArch } from '../src/models/architectures.js';
import { trainStep } from '../src/train/methods.js';
import { makeLearner, learnerVariables, disposeLearner } from '../src/train/learner.js';
import { resolveTrainConfig, type TrainConfig } from '../src/train/options.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const steps = Number(arg('steps', '2'));
const warmup = Number(arg('warmup', '1'));
const top = Number(arg('top', '25'));
const methods = arg('methods', 'st,pgd').split(',');
const batch = 128;
const attack = { norm: 'linf' as const, eps: 8 / 255, stepSize: 2 / 255, steps: 5, randomStart: true, restarts: 1, seed: 0 };

interface Stat {
  calls: number;
  ms: number;
  shapes: Map<string, { calls: number; ms: number }>;
}

/** Per kernel name: top-level (called by the engine) and nested (called inside another kernel). */
const stats = { top: new Map<string, Stat>(), nested: new Map<string, Stat>() };
let depth = 0;
let recording = false;

function record(table: Map<string, Stat>, name: string, shapeKey: string, ms: number): void {
  let s = table.get(name);
  if (!s) table.set(name, (s = { calls: 0, ms: 0, shapes: new Map() }));
  s.calls++;
  s.ms += ms;
  const sh = s.shapes.get(shapeKey) ?? { calls: 0, ms: 0 };
  sh.calls++;
  sh.ms += ms;
  s.shapes.set(shapeKey, sh);
}

function shapeKeyOf(inputs: tf.NamedTensorInfoMap): string {
  return Object.entries(inputs)
    .filter((e): e is [string, tf.TensorInfo] => e[1] != null)
    .map(([k, t]) => `${k}[${t.shape.join(',')}]`)
    .join(' ');
}

/** Replace every wasm kernel by a timed wrapper around it (nested calls through tf.getKernel are timed too). */
function instrumentWasmKernels(): void {
  for (const config of tf.getKernelsForBackend('wasm')) {
    const inner = config.kernelFunc;
    const name = config.kernelName;
    const timed = ((args: Parameters<tf.KernelFunc>[0]) => {
      if (!recording) return inner(args);
      depth++;
      const t0 = performance.now();
      try {
        return inner(args);
      } finally {
        const ms = performance.now() - t0;
        depth--;
        record(depth === 0 ? stats.top : stats.nested, name, shapeKeyOf(args.inputs), ms);
      }
    }) as tf.KernelFunc;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...config, kernelFunc: timed });
  }
}

function fmt(n: number, digits = 1): string {
  return n.toFixed(digits);
}

function printTable(title: string, table: Map<string, Stat>, stepMs: number, rows: number): number {
  const entries = [...table.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const total = entries.reduce((s, [, v]) => s + v.ms, 0) / steps;
  console.log(`\n${title}`);
  console.log('| kernel | calls/step | ms/step | share of step | top input shapes (ms/step, calls/step) |');
  console.log('|---|---|---|---|---|');
  for (const [name, s] of entries.slice(0, rows)) {
    const shapes = [...s.shapes.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, 3)
      .map(([k, v]) => `${k} (${fmt(v.ms / steps)}, ${fmt(v.calls / steps, 0)})`)
      .join('; ');
    console.log(`| ${name} | ${fmt(s.calls / steps, 0)} | ${fmt(s.ms / steps)} | ${fmt((100 * s.ms) / steps / stepMs)}% | ${shapes} |`);
  }
  if (entries.length > rows) {
    const rest = entries.slice(rows).reduce((a, [, v]) => a + v.ms, 0) / steps;
    console.log(`| (${entries.length - rows} more kernels) | | ${fmt(rest)} | ${fmt((100 * rest) / stepMs)}% | |`);
  }
  return total;
}

async function profile(label: string, cfgPart: Partial<TrainConfig>): Promise<void> {
  const cfg = resolveTrainConfig({ arch: 'resnet-small', attack, weightDecay: 0, ...cfgPart });
  const { model } = buildModel({ arch: resolveArch(cfg.arch), inputShape: [32, 32, 3], numClasses: 10, seed: 0 });
  const learner = makeLearner(model, cfg, undefined);
  const vars = learnerVariables(learner);
  const optimizer = tf.train.adam(1e-3);
  const x = tf.randomUniform([batch, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const y = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32');
  const run = async (i: number) => {
    const { loss, correct } = trainStep(learner, optimizer, vars, [], x, y, { attack: i, augment: i });
    await loss.data();
    tf.dispose([loss, correct]);
  };
  for (let i = 0; i < warmup; i++) await run(i);
  stats.top.clear();
  stats.nested.clear();
  recording = true;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) await run(warmup + i);
  const stepMs = (performance.now() - t0) / steps;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000 / steps;
  recording = false;
  console.log(`\n## ${label}: ${fmt(stepMs)} ms/step (${fmt((batch * 1000) / stepMs)} img/s), process CPU ${fmt(cpuMs)} ms/step, batch ${batch}, ${steps} steps after ${warmup} warm-up`);
  const inKernels = printTable('Top-level kernels (inclusive time)', stats.top, stepMs, top);
  console.log(`\nIn kernels: ${fmt(inKernels)} ms/step; outside kernels (tape, JS glue, dispose): ${fmt(stepMs - inKernels)} ms/step (${fmt((100 * (stepMs - inKernels)) / stepMs)}%)`);
  if (stats.nested.size > 0) printTable('Nested kernels (called inside the kernels above; already included in their time)', stats.nested, stepMs, 12);
  optimizer.dispose();
  disposeLearner(learner);
  tf.dispose([x, y]);
}

const backend = await initBackend('wasm');
instrumentWasmKernels();
console.log(`# wasm kernel profile of one training step (backend ${backend}, resnet-small, 32x32x3, Adam)`);
console.log(`\nBackend: ${describeBackend()}. Machine: ${machineLine()}; ${loadLine()} at the start.`);
// Unaugmented, as bench:train's sl rows, so the two benches profile the same step.
if (methods.includes('st')) await profile('ST (sl, cross-entropy)', { scheme: 'sl', regime: 'st', augment: 'none' });
if (methods.includes('pgd')) await profile('PGD-AT (sl, PGD-5 8/255)', { scheme: 'sl', regime: 'at', method: 'pgd', augment: 'none' });
console.log(`\nLoad at the end: ${loadLine()}`);
