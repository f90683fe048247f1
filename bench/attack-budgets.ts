/**
 * APGD vs PGD at equal budgets (10, 20, 50 iterations) on a standard-trained (ST) and an
 * adversarially trained (AT) Fashion-MNIST convnet, on the same test samples, with standard
 * AutoAttack (apgd-ce, apgd-t, fab-t, square at the paper's budgets) beside them. Reuses the encoders
 * of `npm run bench:probe` when they exist in <dir>, else trains them the same way.
 * Prints markdown tables (docs/evaluation.md): accuracies, AutoAttack's components (robust accuracy
 * after each), the seconds each part took, and AutoAttack's warnings.
 *   npm run bench:attacks [-- <dir> <n>]
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { trainModel } from '../src/train/loop.js';
import { resolveCheckpointDir } from '../src/models/checkpoint.js';
import { runEvaluation } from '../src/probe/eval-run.js';
import { attackDefinition, parseAttackSpec } from '../src/attacks/suite.js';
import { attackConsistency } from '../src/attacks/checks.js';

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
const aaComponents = ['apgd-ce', 'apgd-t', 'fab-t', 'square'];
const lines: string[] = [];
const aaLines: string[] = [];
const warnings: string[] = [];
for (const [regime, eps] of [['st', 0.03], ['st', 0.1], ['at', 0.1]] as const) {
  const tRun = performance.now();
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
  const tBudgets = (performance.now() - tRun) / 1000;
  const tAa = performance.now();
  const aa = await runEvaluation({
    models: [path.join(dir, regime)],
    attacks: ['autoattack'],
    eps: [eps],
    settings: { norm: 'linf', restarts: 1, seed: 0 },
    n,
    batchSize: 128,
    worstCase: false,
    outDir: path.join(dir, `autoattack-${regime}-${eps}`),
  });
  const aaSeconds = (performance.now() - tAa) / 1000;
  const rows = [...res.rows, ...aa.rows];
  const pct = (a: string) => `${(100 * rows.find((r) => r.attack === a)!.accuracy).toFixed(1)}%`;
  lines.push(`| ${regime.toUpperCase()} | ${eps} | ${[...attacks, 'autoattack'].map(pct).join(' | ')} |`);
  aaLines.push(`| ${regime.toUpperCase()} | ${eps} | ${aaComponents.map((c) => pct(`autoattack/${c}`)).join(' | ')} | ${tBudgets.toFixed(0)} | ${aaSeconds.toFixed(0)} |`);
  // AutoAttack's checks across both evaluations (the budget columns and AutoAttack are one comparison).
  const figures = [...attacks.filter((a) => a !== 'clean'), 'autoattack'].map((a) => {
    const spec = parseAttackSpec(a);
    const def = spec.components ? undefined : attackDefinition(spec);
    const steps = spec.components ? spec.components.reduce((t, c) => t + c.steps, 0) : spec.steps;
    return { name: a, kind: spec.kind, steps, tier: def?.tier ?? 4, gradientFree: Boolean(def?.gradientFree), accuracy: rows.find((r) => r.attack === a)!.accuracy };
  });
  const found = [...aa.warnings.filter((w) => w.check !== 'weaker-beats-stronger'), ...attackConsistency(regime, eps, figures)];
  for (const w of found) warnings.push(`${regime.toUpperCase()} eps ${eps}: ${w.check}: ${w.message}`);
  console.error(`${regime} eps ${eps}: budget columns ${tBudgets.toFixed(0)} s, autoattack ${aaSeconds.toFixed(0)} s`);
}
const seconds = (performance.now() - t0) / 1000;
console.log(`Fashion-MNIST convnet (width 16, 2000 training images, 4 epochs; AT: PGD-3 eps 0.1), ${n} test images, l_inf; ` +
  `backend ${backend}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}); ${seconds.toFixed(0)} s\n`);
console.log(`| model | eps | ${[...attacks, 'autoattack'].join(' | ')} |`);
console.log(`|---|---|${[...attacks, 'autoattack'].map(() => '---').join('|')}|`);
for (const l of lines) console.log(l);
console.log(`\nAutoAttack (standard), robust accuracy after each component; seconds for the ${attacks.length - 1} attacks above and for AutoAttack:\n`);
console.log(`| model | eps | ${aaComponents.map((c) => `after ${c}`).join(' | ')} | s (budget columns) | s (autoattack) |`);
console.log(`|---|---|${aaComponents.map(() => '---').join('|')}|---|---|`);
for (const l of aaLines) console.log(l);
console.log(warnings.length ? `\nwarnings:\n${warnings.map((w) => `- ${w}`).join('\n')}` : '\nwarnings: none');
