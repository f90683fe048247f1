/**
 * APGD vs PGD at equal budgets (10, 20, 50 iterations) on a standard-trained (ST) and an
 * adversarially trained (AT) Fashion-MNIST convnet, on the same test samples. Reuses the encoders of
 * `npm run bench:probe` when they exist in <dir>, else trains them the same way.
 * Prints a markdown table (docs/evaluation.md).
 *   npm run bench:attacks [-- <dir> <n>]
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { trainModel } from '../src/train/loop.js';
import { resolveCheckpointDir } from '../src/models/checkpoint.js';
import { runEvaluation } from '../src/probe/eval-run.js';

const dir = process.argv[2] ?? 'out/bench-probe';
const n = Number(process.argv[3] ?? 300);
const backend = await initBackend('auto');
const t0 = performance.now();
const attack = { norm: 'linf' as const, eps: 0.1, stepSize: 0.04, steps: 3, randomStart: true, restarts: 1, seed: 0 };
const evalAttack = { ...attack, stepSize: 0.0125, steps: 20 };
for (const regime of ['st', 'at'] as const) {
  const enc = path.join(dir, regime);
  if (!(await resolveCheckpointDir(enc))) {
    // Unaugmented, as when docs/evaluation.md's figures were measured (sl now augments by default).
    await trainModel({ out: enc, dataset: 'fashion-mnist', limit: 2000, evalLimit: 200, arch: 'convnet', width: 16, epochs: 4, batchSize: 64, lr: 0.005, regime, augment: 'none', attack, evalAttack, seed: 1 });
  }
}
const attacks = ['clean', 'pgd10', 'apgd-ce10', 'pgd20', 'apgd-ce20', 'pgd50', 'apgd-ce50', 'apgd-dlr50'];
const lines: string[] = [];
for (const [regime, eps] of [['st', 0.03], ['st', 0.1], ['at', 0.1]] as const) {
  const res = await runEvaluation({
    models: [path.join(dir, regime)],
    attacks,
    eps: [eps],
    settings: { norm: 'linf', restarts: 1, seed: 0 },
    n,
    batchSize: 128,
    worstCase: false,
    outDir: path.join(dir, `budgets-${regime}-${eps}`),
  });
  const pct = (a: string) => `${(100 * res.rows.find((r) => r.attack === a)!.accuracy).toFixed(1)}%`;
  lines.push(`| ${regime.toUpperCase()} | ${eps} | ${attacks.map(pct).join(' | ')} |`);
}
const seconds = (performance.now() - t0) / 1000;
console.log(`Fashion-MNIST convnet (width 16, 2000 training images, 4 epochs; AT: PGD-3 eps 0.1), ${n} test images, l_inf; ` +
  `backend ${backend}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}); ${seconds.toFixed(0)} s\n`);
console.log(`| model | eps | ${attacks.join(' | ')} |`);
console.log(`|---|---|${attacks.map(() => '---').join('|')}|`);
for (const l of lines) console.log(l);
