import type { CommandModule } from 'yargs';
import { datasetNames, type DatasetName } from '../../data/index.js';
import { fineTune, DEFAULT_FINE_TUNE } from '../../probe/finetune.js';
import { FINE_TUNE_MODES, FINE_TUNE_OBJECTIVES, type FineTuneMode, type FineTuneObjective } from '../../probe/meta.js';
import { logLine, makeTicker } from '../progress.js';
import { readAttackOverride } from '../parse.js';

export const finetuneCommand: CommandModule = {
  command: 'finetune <checkpoint>',
  aliases: ['probe'],
  describe: 'Linear probe, robust linear probe (PAT), full fine-tuning or adversarial full fine-tuning (FAT) of a pre-trained encoder',
  builder: (y) =>
    y
      .positional('checkpoint', { type: 'string', demandOption: true, describe: 'Encoder checkpoint directory' })
      .option('mode', { choices: FINE_TUNE_MODES, default: 'linear', describe: 'linear | robust-linear (head on CE(clean)+CE(PGD)) | full | full-adv' })
      .option('out', { type: 'string', describe: 'Output directory (default: <checkpoint>-<mode>[-<dataset>], beside the encoder)' })
      .option('overwrite', { type: 'boolean', default: false })
      .option('probe-dataset', { choices: datasetNames, describe: 'Train and evaluate the probe on another dataset with the same image shape (transfer)' })
      .option('data-dir', { type: 'string', describe: 'Directory with CIFAR binary files for the probe dataset' })
      .option('limit', { type: 'number', describe: 'Train on the first N training images after the seeded shuffle' })
      .option('eval-limit', { type: 'number', default: DEFAULT_FINE_TUNE.evalLimit })
      .option('feature-layer', { type: 'string', default: DEFAULT_FINE_TUNE.featureLayer, describe: 'Layer whose (flat) output feeds the head' })
      .option('epochs', { type: 'number', default: DEFAULT_FINE_TUNE.epochs })
      .option('batch-size', { type: 'number', default: DEFAULT_FINE_TUNE.batchSize })
      .option('lr', { type: 'number', default: DEFAULT_FINE_TUNE.lr, describe: 'Adam learning rate' })
      .option('objective', {
        choices: FINE_TUNE_OBJECTIVES,
        default: DEFAULT_FINE_TUNE.objective,
        describe: 'Loss of robust-linear/full-adv: ce-ce = CE(clean) + w CE(PGD on CE) (SPEC PAT/FAT); trades = CE(clean) + beta KL(p_clean || p_adv), PGD on the KL (ACL)',
      })
      .option('adv-weight', { type: 'number', default: DEFAULT_FINE_TUNE.advWeight, describe: 'w in CE(clean) + w CE(adv) (--objective ce-ce)' })
      .option('trades-beta', { type: 'number', default: DEFAULT_FINE_TUNE.tradesBeta, describe: 'beta in CE(clean) + beta KL (--objective trades)' })
      .option('norm', { choices: ['linf', 'l2'], describe: 'Attack norm (default: the encoder\'s)' })
      .option('eps', { type: 'string', describe: 'Training attack radius (default: the encoder\'s; 8/255 style accepted)' })
      .option('step-size', { type: 'string', describe: 'Training attack step size' })
      .option('steps', { type: 'number', describe: 'Training attack steps' })
      .option('eval-eps', { type: 'string', describe: 'Final PGD radius (default: the encoder\'s evaluation attack)' })
      .option('eval-step-size', { type: 'string' })
      .option('eval-steps', { type: 'number' })
      .option('seed', { type: 'number', default: DEFAULT_FINE_TUNE.seed })
      .option('save-every', { type: 'number', default: 0, describe: 'Also checkpoint every N steps (0 = at epoch ends only)' })
      .option('workers', {
        type: 'number',
        default: 1,
        describe: 'Threads per step (data-parallel, wasm/cpu): each takes a contiguous shard of the batch on its own backend instance. 1 = one thread (the reference results); in the full modes BatchNorm statistics are per shard',
      })
      .option('resume', { type: 'boolean', default: false, describe: 'Continue the run saved in --out (same options; --epochs may grow)' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const tick = makeTicker('loss {loss}');
    const res = await fineTune({
      checkpoint: String(a.checkpoint),
      mode: a.mode as FineTuneMode,
      out: a.out as string | undefined,
      overwrite: Boolean(a.overwrite),
      dataset: a['probe-dataset'] as DatasetName | undefined,
      dataDir: a['data-dir'] as string | undefined,
      limit: a.limit as number | undefined,
      evalLimit: a['eval-limit'] as number,
      featureLayer: a['feature-layer'] as string,
      epochs: a.epochs as number,
      batchSize: a['batch-size'] as number,
      lr: a.lr as number,
      objective: a.objective as FineTuneObjective,
      advWeight: a['adv-weight'] as number,
      tradesBeta: a['trades-beta'] as number,
      attack: readAttackOverride(a),
      evalAttack: readAttackOverride(a, 'eval-'),
      seed: a.seed as number,
      saveEvery: a['save-every'] as number,
      workers: a.workers as number,
      resume: Boolean(a.resume),
      onEvent: (e) => {
        if (e.type === 'start' && e.resumed) logLine(`finetune: resumed after ${e.globalStep} steps`);
        if (e.type === 'step') tick(`finetune epoch ${e.epoch + 1}`, e.step, e.stepsPerEpoch, { loss: e.loss.toFixed(3) });
      },
    });
    const m = res.metrics;
    if (!m) {
      process.stdout.write(`${res.out}: stopped at epoch ${res.progress.epochsDone + 1} step ${res.progress.stepInEpoch}; run again with --resume\n`);
      return;
    }
    process.stdout.write(
      `${res.out} (${res.kind}, ${res.config.mode} on ${res.config.dataset}): clean accuracy ${m.cleanAccuracy.toFixed(4)}, ` +
        `PGD-${m.evalAttack.steps} (eps ${m.evalAttack.eps.toFixed(4)}) accuracy ${m.robustAccuracy.toFixed(4)} on ${m.evalSamples} test images\n`,
    );
  },
};
