import type { CommandModule } from 'yargs';
import { datasetNames, type DatasetName } from '../../data/index.js';
import { DEFAULT_ATTACK_SETTINGS } from '../../attacks/suite.js';
import { runEvaluation, formatEvalTable, formatEvalWarnings } from '../../probe/eval-run.js';
import { makeTicker } from '../progress.js';
import { parseFraction, parseList } from '../parse.js';

export const evalCommand: CommandModule = {
  command: 'eval',
  describe: 'Clean and robust accuracy of models (checkpoints or probes) under FGSM, PGD, APGD, FAB-T, Square and AutoAttack over an eps sweep',
  builder: (y) =>
    y
      .option('model', { type: 'string', array: true, demandOption: true, describe: 'Checkpoint or probe directory (repeat or comma-separate for several)' })
      .option('attacks', { type: 'string', default: 'clean,pgd20,apgd-ce,apgd-dlr', describe: 'Comma-separated: clean, fgsm, pgd<N> (default 20 steps), apgd-ce[<N>], apgd-dlr[<N>], apgd-t[<N>], fab-t[<N>] (default 100 iterations), square[<N>] (default 5000 queries), contrastive[<N>] (label-free NT-Xent PGD, default 20); presets autoattack (standard: apgd-ce, apgd-t, fab-t, square on the survivors) and autoattack-rand (apgd-ce, apgd-dlr with EoT 20)' })
      .option('eps', { type: 'string', default: '8/255', describe: 'Comma-separated radii, fractions accepted: 2/255,4/255,8/255' })
      .option('norm', { choices: ['linf', 'l2'], default: 'linf', describe: 'Threat model' })
      .option('restarts', { type: 'number', default: 1, describe: 'Random restarts of PGD, APGD and the contrastive attack; each restart re-attacks only the samples that survived' })
      .option('step-size', { type: 'string', describe: 'PGD step size (default 2.5 * eps / steps); APGD needs none' })
      .option('embedding-layer', { type: 'string', describe: "Contrastive attack: layer to embed with (default: 'projection' if the model has one, else 'pool')" })
      .option('temperature', { type: 'number', describe: "Contrastive attack: NT-Xent temperature (default: the model's training temperature if it has a projection head, else 0.5)" })
      .option('seed', { type: 'number', default: 0, describe: 'Seed of the sample shuffle and of the attacks\' random starts' })
      .option('dataset', { choices: datasetNames, describe: 'Evaluation data (default: the model\'s dataset)' })
      .option('data-dir', { type: 'string', describe: 'Directory with CIFAR binary files (or MNIST IDX files)' })
      .option('split', { choices: ['test', 'train'], default: 'test' })
      .option('n', { type: 'number', default: 1000, describe: 'Samples evaluated (first n after the seeded shuffle)' })
      .option('batch-size', { type: 'number', default: 128 })
      .option('worst-case', { type: 'boolean', default: true, describe: 'Add a worst-case row per eps: a sample counts only if it survives every attack' })
      .option('out', { type: 'string', default: '.', describe: 'Directory for eval.arrow and eval.json' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const tick = makeTicker();
    const res = await runEvaluation({
      models: parseList(a.model),
      attacks: parseList(a.attacks),
      eps: parseList(a.eps).map((e) => parseFraction('--eps', e)),
      settings: {
        ...DEFAULT_ATTACK_SETTINGS,
        norm: a.norm as 'linf' | 'l2',
        restarts: a.restarts as number,
        seed: a.seed as number,
        stepSize: a['step-size'] !== undefined ? parseFraction('--step-size', a['step-size']) : undefined,
        embeddingLayer: a['embedding-layer'] as string | undefined,
        temperature: a.temperature as number,
      },
      dataset: a.dataset as DatasetName | undefined,
      dataDir: a['data-dir'] as string | undefined,
      split: a.split as 'test' | 'train',
      n: a.n as number,
      batchSize: a['batch-size'] as number,
      worstCase: Boolean(a['worst-case']),
      outDir: String(a.out),
      onProgress: (p) => tick(`${p.model} ${p.attack}${p.attack === 'clean' ? '' : ` eps ${p.eps.toFixed(4)}`}`, p.done, p.total),
    });
    process.stdout.write(formatEvalTable(res.rows) + '\n');
    if (res.warnings.length > 0) process.stdout.write(formatEvalWarnings(res.warnings) + '\n');
    process.stdout.write(`wrote ${res.arrowFile} and ${res.jsonFile}\n`);
  },
};
