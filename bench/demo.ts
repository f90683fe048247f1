/**
 * Re-runs the README's demo from scratch and prints the figures the README quotes, as markdown:
 * wall time per stage, accuracies and the clean-vs-adversarial CKA at the pooled features.
 *   npm run bench:demo
 */
import { rm } from 'node:fs/promises';
import * as os from 'node:os';
import { initBackend } from '../src/backend/index.js';
import { DEMO_DEFAULTS, runDemo } from '../src/pipeline/demo.js';

const out = process.argv[2] ?? 'out/bench-demo';
await rm(out, { recursive: true, force: true });
const backend = await initBackend('auto');
// The two models run side by side (worker threads), so stages are timed per model: a stage ends when
// the next stage of the same model (or the end) arrives.
const stageTimes: Array<[string, number]> = [];
const open = new Map<string, { name: string; t0: number }>();
const close = (key: string, now: number) => {
  const o = open.get(key);
  if (o) stageTimes.push([o.name, (now - o.t0) / 1000]);
  open.delete(key);
};
const started = performance.now();
const result = await runDemo({
  ...DEMO_DEFAULTS,
  out,
  backend,
  onStage: (stage, detail) => {
    const now = performance.now();
    const key = /^sl-(st|at)\b/.test(detail ?? '') && !/ x /.test(detail ?? '') ? detail!.split(/[: ]/)[0] : 'joint';
    // A joint stage (cross-model CKA, report) starts once both models are done.
    for (const k of key === 'joint' ? [...open.keys()] : [key]) close(k, now);
    if (stage === 'done') return;
    open.set(key, { name: `${stage}${detail ? ` ${detail.split(':')[0]}` : ''}`, t0: now });
  },
});
for (const key of [...open.keys()]) close(key, performance.now());
const total = (performance.now() - started) / 1000;
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`Machine: ${os.cpus().length} x ${cpu}, Node ${process.version}, backend ${backend}\n`);
console.log(`| model | clean acc | PGD-${DEMO_DEFAULTS.captureSteps} acc (eps ${DEMO_DEFAULTS.eps}) | clean-vs-adv CKA, pooled |`);
console.log('|---|---|---|---|');
for (const m of result.models) {
  console.log(`| ${m.label} | ${m.cleanAccuracy.toFixed(3)} | ${m.robustAccuracy.toFixed(3)} | ${m.pooledCleanVsAdv.toFixed(3)} |`);
}
console.log('\n| stage (on 2+ cores the two models run side by side, so their stages overlap) | seconds |\n|---|---|');
for (const [name, s] of stageTimes) console.log(`| ${name} | ${s.toFixed(0)} |`);
console.log(`| total | ${total.toFixed(0)} |`);
