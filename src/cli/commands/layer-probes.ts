import type { CommandModule } from 'yargs';
import { datasetNames, type DatasetName } from '../../data/index.js';
import { layerProbes } from '../../probe/layer-probes.js';
import { parseList } from '../parse.js';

export const layerProbesCommand: CommandModule = {
  command: 'layer-probes <checkpoint>',
  describe: 'A clean linear probe per tap point (globally average-pooled features of the frozen encoder)',
  builder: (y) =>
    y
      .positional('checkpoint', { type: 'string', demandOption: true, describe: 'Encoder checkpoint directory' })
      .option('layers', { type: 'string', describe: 'Comma-separated tap points (default: all)' })
      .option('probe-dataset', { choices: datasetNames, describe: 'Probe on another dataset with the same image shape' })
      .option('data-dir', { type: 'string' })
      .option('limit', { type: 'number', describe: 'Training images for the probes' })
      .option('eval-limit', { type: 'number', default: 1000 })
      .option('epochs', { type: 'number', default: 10 })
      .option('batch-size', { type: 'number', default: 128 })
      .option('lr', { type: 'number', default: 0.01, describe: 'Adam learning rate' })
      .option('seed', { type: 'number', default: 0 })
      .option('out', { type: 'string', describe: 'Output directory (default: <checkpoint>-layer-probes)' })
      .option('overwrite', { type: 'boolean', default: false }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const { out, results } = await layerProbes({
      checkpoint: String(a.checkpoint),
      layers: parseList(a.layers),
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
    process.stdout.write(`${'layer'.padEnd(w)}  ${'dim'.padStart(5)}  train acc  test acc\n`);
    for (const r of results) {
      process.stdout.write(`${r.layer.padEnd(w)}  ${String(r.dim).padStart(5)}  ${(100 * r.trainAccuracy).toFixed(2).padStart(8)}%  ${(100 * r.testAccuracy).toFixed(2).padStart(7)}%\n`);
    }
    process.stdout.write(`wrote ${out}\n`);
  },
};
