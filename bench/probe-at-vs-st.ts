/**
 * Does a robust linear probe keep more PGD accuracy on an adversarially trained (AT) encoder than
 * on a standard-trained (ST) one? Trains both encoders on a Fashion-MNIST subset, fits a robust
 * linear probe (frozen encoder, head on CE(clean) + CE(PGD)) and a clean linear probe on each,
 * then evaluates clean, PGD-20 and APGD-CE accuracy. Prints a markdown table (docs/evaluation.md).
 *   npm run bench:probe [-- <out dir> <train images>]
 */
import { rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { trainModel } from '../src/train/loop.js';
import { fineTune } from '../src/probe/finetune.js';
import { runEvaluation } from '../src/probe/eval-run.js';

const out = process.argv[2] ?? 'out/bench-probe';
const limit = Number(process.argv[3] ?? 2000);
const eps = 0.1;
await rm(out, { recursive: true, force: true });
const backend = await initBackend('auto');
const t0 = performance.now();
const attack = { norm: 'linf' as const, eps, stepSize: 0.04, steps: 3, randomStart: true, restarts: 1, seed: 0 };
const evalAttack = { ...attack, stepSize: 0.0125, steps: 20 };
const dirs: string[] = [];
for (const regime of ['st', 'at'] as const) {
  const enc = path.join(out, regime);
  // Unaugmented, as when docs/evaluation.md's figures were measured (sl now augments by default).
  await trainModel({ out: enc, dataset: 'fashion-mnist', limit, evalLimit: 200, arch: 'convnet', width: 16, epochs: 4, batchSize: 64, lr: 0.005, regime, augment: 'none', attack, evalAttack, seed: 1 });
  for (const mode of ['linear', 'robust-linear'] as const) {
    const res = await fineTune({ checkpoint: enc, mode, limit, evalLimit: 200, epochs: 3, batchSize: 64, lr: 0.01, attack, evalAttack, seed: 2 });
    dirs.push(res.out);
  }
}
const res = await runEvaluation({
  models: dirs,
  attacks: ['clean', 'pgd20', 'apgd-ce20'],
  eps: [eps],
  settings: { norm: 'linf', restarts: 1, seed: 0 },
  n: 500,
  batchSize: 128,
  worstCase: false,
  outDir: out,
});
const seconds = (performance.now() - t0) / 1000;
console.log(`Fashion-MNIST, convnet width 16, ${limit} training images, 4 encoder epochs (AT: PGD-3, eps ${eps}), 3 probe epochs; ` +
  `500 test images; backend ${backend}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}); ${seconds.toFixed(0)} s total\n`);
console.log('| encoder + probe | clean | PGD-20 (eps 0.1) | APGD-CE-20 (eps 0.1) |');
console.log('|---|---|---|---|');
for (const dir of dirs) {
  // Rows come per model in request order: clean, pgd20, apgd-ce20.
  const rows = res.rows.filter((r) => r.model === res.rows[dirs.indexOf(dir) * 3].model);
  const pct = (a: string) => `${(100 * rows.find((r) => r.attack === a)!.accuracy).toFixed(1)}%`;
  console.log(`| ${rows[0].model} | ${pct('clean')} | ${pct('pgd20')} | ${pct('apgd-ce20')} |`);
}
