import type { CommandModule } from 'yargs';
import { TAP_SETS, type TapSet } from '../../models/architectures.js';
import { captureActivations } from '../../cka/capture/capture.js';
import { ATTACK_LOSSES, type AttackLoss, type InputKind } from '../../cka/capture/source.js';
import { datasetNames, type DatasetName } from '../../data/index.js';
import { makeTicker } from '../progress.js';
import { parseList, readAttackOverride } from '../parse.js';

export const captureCommand: CommandModule = {
  command: 'capture <checkpoint>',
  describe: 'Capture every tap point\'s activations on clean and PGD adversarial inputs into an Arrow file',
  builder: (y) =>
    y
      .positional('checkpoint', { type: 'string', describe: 'Checkpoint directory', demandOption: true })
      .option('out', { type: 'string', demandOption: true, describe: 'Output Arrow file (e.g. acts.arrow)' })
      .option('dataset', { choices: datasetNames, describe: 'Evaluation data (default: the training dataset)' })
      .option('data-dir', { type: 'string', describe: 'Directory with CIFAR binary files' })
      .option('split', { choices: ['test', 'train'], default: 'test' })
      .option('n', { type: 'number', default: 1000, describe: 'Number of samples (first n after the seeded shuffle)' })
      .option('seed', { type: 'number', default: 0, describe: 'Seed of the sample shuffle and attack random starts' })
      .option('batch-size', { type: 'number', default: 128 })
      .option('layers', { type: 'string', describe: 'Comma-separated tap points (default: all; see `robustsim layers`)' })
      .option('taps', { choices: TAP_SETS, default: 'blocks', describe: 'Tap set: blocks (stem, every block, pool, logits) or all (every layer after the input: each conv, BatchNorm, ReLU, add); see `robustsim layers --taps`' })
      .option('inputs', { type: 'string', default: 'clean,adv', describe: 'clean, adv or clean,adv' })
      .option('attack-loss', { choices: ATTACK_LOSSES, default: 'cross-entropy', describe: 'What the attack maximises: cross-entropy of the label, or the contrastive loss through the projection head (cl/scl models, "threat model I")' })
      .option('norm', { choices: ['linf', 'l2'], describe: 'Attack norm (default: the model\'s evaluation attack)' })
      .option('eps', { type: 'string', describe: 'Attack radius (default: the model\'s evaluation attack; 8/255 style accepted)' })
      .option('step-size', { type: 'string', describe: 'Attack step size (default: the model\'s evaluation attack)' })
      .option('steps', { type: 'number', describe: 'Attack steps (default: the model\'s evaluation attack)' })
      .option('random-start', { type: 'boolean', describe: 'Random start in the eps-ball (default: the model\'s evaluation attack)' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const attack = readAttackOverride(a);
    const tick = makeTicker();
    const res = await captureActivations({
      checkpoint: String(a.checkpoint),
      out: String(a.out),
      dataset: a.dataset as DatasetName | undefined,
      dataDir: a['data-dir'] as string | undefined,
      split: a.split as 'test' | 'train',
      n: a.n as number,
      seed: a.seed as number,
      batchSize: a['batch-size'] as number,
      layers: parseList(a.layers),
      tapSet: a.taps as TapSet,
      inputs: parseList(a.inputs) as InputKind[],
      attack,
      attackLoss: a['attack-loss'] as AttackLoss,
      onProgress: (done, total) => tick('capture', done, total),
    });
    process.stdout.write(
      `${res.out}: ${res.n} samples, ${res.sets.length} sets; clean accuracy ${res.cleanAccuracy.toFixed(4)}` +
        (res.advAccuracy !== undefined ? `, adversarial accuracy ${res.advAccuracy.toFixed(4)}` : '') +
        '\n',
    );
  },
};
