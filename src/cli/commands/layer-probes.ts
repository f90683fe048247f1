import type { CommandModule } from 'yargs';
import { TAP_SETS, type TapSet } from '../../models/architectures.js';
import { datasetNames, type DatasetName } from '../../data/index.js';
import { layerProbes } from '../../probe/layer-probes.js';
import { parseList, readAttackOverride } from '../parse.js';
import { InputError } from '../../errors.js';

export const layerProbesCommand: CommandModule = {
  command: 'layer-probes <checkpoint>',
  describe: 'A linear probe per tap point (globally average-pooled features of the frozen encoder): clean and, with --adv-n, adversarial accuracy',
  builder: (y) =>
    y
      .positional('checkpoint', { type: 'string', demandOption: true, describe: 'Encoder checkpoint directory' })
      .option('layers', { type: 'string', describe: 'Comma-separated tap points (default: all)' })
      .option('taps', { choices: TAP_SETS, default: 'blocks', describe: 'Tap set: blocks (stem, every block, pool, logits) or all (every layer after the input: each conv, BatchNorm, ReLU, add); see `robustsim layers --taps`' })
      .option('probe-dataset', { choices: datasetNames, describe: 'Probe on another dataset with the same image shape' })
      .option('data-dir', { type: 'string' })
      .option('limit', { type: 'number', describe: 'Training images for the probes' })
      .option('eval-limit', { type: 'number', default: 1000 })
      .option('epochs', { type: 'number', default: 10 })
      .option('batch-size', { type: 'number', default: 128 })
      .option('lr', { type: 'number', default: 0.01, describe: 'Adam learning rate' })
      .option('seed', { type: 'number', default: 0 })
      .option('out', { type: 'string', describe: 'Output directory (default: <checkpoint>-layer-probes)' })
      .option('overwrite', { type: 'boolean', default: false })
      .option('adv-n', { type: 'number', default: 0, describe: 'Also measure each probe\'s adversarial accuracy on this many test images: PGD on the probe end to end (encoder prefix, pooling, head). 0 = clean only' })
      .option('norm', { choices: ['linf', 'l2'], describe: '--adv-n: attack norm (default linf)' })
      .option('eps', { type: 'string', describe: '--adv-n: attack radius (8/255 style accepted; default 8/255)' })
      .option('step-size', { type: 'string', describe: '--adv-n: attack step size (default 2/255)' })
      .option('steps', { type: 'number', describe: '--adv-n: attack steps (default 10)' })
      .option('random-start', { type: 'boolean', describe: '--adv-n: random start in the eps-ball (default true)' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const advN = a['adv-n'] as number;
    if (!Number.isInteger(advN) || advN < 0) throw new InputError(`--adv-n: expected an integer >= 0 (0 = clean only), got ${String(a['adv-n'])}`);
    const { out, results } = await layerProbes({
      checkpoint: String(a.checkpoint),
      layers: parseList(a.layers),
      tapSet: a.taps as TapSet,
      adversarial: advN > 0 ? { n: advN, attack: readAttackOverride(a) } : undefined,
      dataset: a['probe-dataset'] as DatasetName | undefined,
      dataDir: a['data-dir'] as string | undefined,
      limit: a.limit as number | undefined,
      evalLimit: a['eval-limit'] as number,
      epochs: a.epochs as number,
      batchSize: a['batch-size'] as number,
      lr: a.lr as number,
      seed: a.seed as number,
      out: a.out as string | undefined,
      overwrite: Boolean(a.overwrite),
    });
    const w = Math.max(5, ...results.map((r) => r.layer.length));
    const adv = results.some((r) => r.adversarialAccuracy !== undefined);
    process.stdout.write(`${'layer'.padEnd(w)}  ${'dim'.padStart(5)}  train acc  test acc${adv ? '   adv acc' : ''}\n`);
    for (const r of results) {
      const advCol = r.adversarialAccuracy !== undefined ? `  ${(100 * r.adversarialAccuracy).toFixed(2).padStart(7)}%` : '';
      process.stdout.write(`${r.layer.padEnd(w)}  ${String(r.dim).padStart(5)}  ${(100 * r.trainAccuracy).toFixed(2).padStart(8)}%  ${(100 * r.testAccuracy).toFixed(2).padStart(7)}%${advCol}\n`);
    }
    process.stdout.write(`wrote ${out}\n`);
  },
};
