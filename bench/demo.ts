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
const stageTimes: Array<[string, number]> = [];
let last = performance.now();
let lastName = 'start';
const started = performance.now();
const result = await runDemo({
  ...DEMO_DEFAULTS,
  out,
  backend,
  onStage: (stage, detail) => {
    const now = performance.now();
    if (lastName !== 'start') stageTimes.push([lastName, (now - last) / 1000]);
    last = now;
    lastName = `${stage}${detail ? ` ${detail}` : ''}`;
  },
});
stageTimes.push([lastName, (performance.now() - last) / 1000]);
const total = (performance.now() - started) / 1000;
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`Machine: ${os.cpus().length} x ${cpu}, Node ${process.version}, backend ${backend}\n`);
console.log(`| model | clean acc | PGD-${DEMO_DEFAULTS.captureSteps} acc (eps ${DEMO_DEFAULTS.eps}) | clean-vs-adv CKA, pooled |`);
console.log('|---|---|---|---|');
for (const m of result.models) {
  console.log(`| ${m.label} | ${m.cleanAccuracy.toFixed(3)} | ${m.robustAccuracy.toFixed(3)} | ${m.pooledCleanVsAdv.toFixed(3)} |`);
}
console.log('\n| stage | seconds |\n|---|---|');
for (const [name, s] of stageTimes) console.log(`| ${name} | ${s.toFixed(0)} |`);
console.log(`| total | ${total.toFixed(0)} |`);
