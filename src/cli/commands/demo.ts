import { promises as fs } from 'node:fs';
import type { CommandModule } from 'yargs';
import { DEMO_DEFAULTS as D, runDemo } from '../../pipeline/demo.js';
import { archNames } from '../../models/architectures.js';
import { activeBackend } from '../../backend/index.js';
import { logLine, makeTicker } from '../progress.js';
import { parseFraction } from '../parse.js';
import { trainProgressPrinter } from './train.js';

export const demoCommand: CommandModule = {
  command: 'demo',
  describe: 'The whole pipeline on Fashion-MNIST: train SL-ST and SL-AT, capture clean/adversarial activations, CKA, report',
  builder: (y) =>
    y
      .option('out', { type: 'string', default: D.out, describe: 'Output directory' })
      .option('arch', { choices: archNames, default: D.arch, describe: 'Architecture of both models' })
      .option('epochs', { type: 'number', default: D.epochs, describe: 'Training epochs per model' })
      .option('train-limit', { type: 'number', default: D.trainLimit, describe: 'Training images (first N after the seeded shuffle)' })
      .option('batch-size', { type: 'number', default: D.batchSize })
      .option('n', { type: 'number', default: D.n, describe: 'Test images whose activations are captured' })
      .option('eps', { type: 'string', default: String(D.eps), describe: 'l_inf radius for adversarial training and the capture attack' })
      .option('train-steps', { type: 'number', default: D.trainSteps, describe: 'PGD steps during adversarial training' })
      .option('capture-steps', { type: 'number', default: D.captureSteps, describe: 'PGD steps for the adversarial inputs that are captured' })
      .option('estimator', { choices: ['biased', 'debiased'], default: D.estimator, describe: 'Linear CKA estimator' })
      .option('seed', { type: 'number', default: D.seed })
      .option('fresh', { type: 'boolean', default: false, describe: 'Delete --out first instead of continuing an earlier run' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const out = String(a.out);
    if (a.fresh) await fs.rm(out, { recursive: true, force: true });
    const started = Date.now();
    const capture = makeTicker('');
    const result = await runDemo({
      out,
      arch: a.arch as string,
      epochs: a.epochs as number,
      trainLimit: a['train-limit'] as number,
      batchSize: a['batch-size'] as number,
      n: a.n as number,
      eps: parseFraction('--eps', a.eps),
      trainSteps: a['train-steps'] as number,
      captureSteps: a['capture-steps'] as number,
      seed: a.seed as number,
      estimator: a.estimator as 'biased' | 'debiased',
      backend: activeBackend(),
      onTrainEvent: (label) => trainProgressPrinter(label),
      onStage: (stage, detail) => logLine(`== ${stage}${detail ? `: ${detail}` : ''}`),
      onCaptureProgress: (label, done, total) => capture(`capture ${label}`, done, total),
    });
    const minutes = ((Date.now() - started) / 60000).toFixed(1);
    process.stdout.write(`\nClean-vs-adversarial linear CKA at the pooled features (${a.estimator}):\n`);
    for (const m of result.models) {
      process.stdout.write(
        `  ${m.label}: ${m.pooledCleanVsAdv.toFixed(3)}   (clean acc ${m.cleanAccuracy.toFixed(3)}, PGD acc ${m.robustAccuracy.toFixed(3)})\n`,
      );
    }
    process.stdout.write(`report: ${result.report}\nsimilarity: ${result.models.map((m) => m.similarity).join(', ')}, ${result.crossModel}/similarity.arrow\n`);
    process.stdout.write(`done in ${minutes} min\n`);
  },
};
