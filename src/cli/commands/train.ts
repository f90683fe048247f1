import type { Argv, CommandModule } from 'yargs';
import { trainModel, type TrainEvent, type TrainRequest } from '../../train/loop.js';
import { isFineTuningRegime, SCENARIOS, trainScenario } from '../../pipeline/scenario.js';
import { DEFAULT_FINE_TUNE } from '../../probe/finetune.js';
import { FINE_TUNE_OBJECTIVES, type FineTuneObjective } from '../../probe/meta.js';
import { DEFAULT_TRAIN, FINE_TUNING_REGIMES, type Method, type Scheme, type AugmentName, type Regime, type TrainConfig } from '../../train/options.js';
import { defaultMethod, METHOD_PARAMS, methodsFor } from '../../train/methods/index.js';
import { archNames } from '../../models/architectures.js';
import { datasetNames, type DatasetName } from '../../data/index.js';
import { logLine, makeTicker } from '../progress.js';
import { parseFraction, parseList } from '../parse.js';

export function trainProgressPrinter(label: string): (e: TrainEvent) => void {
  const steps = makeTicker('loss {loss} acc {acc} {ips} img/s');
  const evals = makeTicker('');
  return (e) => {
    switch (e.type) {
      case 'start': {
        const p = e.meta.progress;
        const c = e.meta.config;
        logLine(
          `${label}: ${c.scheme}/${c.regime} ${c.arch} on ${c.dataset} (${e.meta.trainSamples} images, ${e.stepsPerEpoch} steps/epoch${c.workers > 1 ? `, ${c.workers} threads` : ''})` +
            (e.resumed ? `, resumed at epoch ${p.epochsDone + 1} step ${p.stepInEpoch}` : ''),
        );
        break;
      }
      case 'step':
        steps(`${label} epoch ${e.epoch + 1}`, e.step, e.stepsPerEpoch, {
          loss: e.loss.toFixed(3),
          acc: e.accuracy.toFixed(3),
          ips: e.imagesPerSecond.toFixed(0),
        });
        break;
      case 'evaluate':
        evals(`${label} eval ${e.what}`, e.done, e.total);
        break;
      case 'epoch': {
        const m = e.metrics;
        logLine(
          `${label} epoch ${m.epoch}: loss ${m.loss.toFixed(4)}  train acc ${m.trainAccuracy.toFixed(4)}  test acc ${m.testAccuracy.toFixed(4)}  ${m.imagesPerSecond.toFixed(0)} img/s  ${m.seconds.toFixed(0)} s`,
        );
        break;
      }
      case 'checkpoint':
        break;
      case 'done': {
        const m = e.meta.metrics;
        if (m) {
          logLine(
            `${label}: clean accuracy ${m.cleanAccuracy.toFixed(4)}, PGD-${m.evalAttack.steps} (eps ${m.evalAttack.eps.toFixed(4)}) accuracy ${m.robustAccuracy.toFixed(4)} on ${m.evalSamples} test images`,
          );
        }
        break;
      }
    }
  };
}

/** Flags shared by every command that runs a PGD attack; `prefix` distinguishes train/eval attacks. */
export function attackFlags<T>(y: Argv<T>, prefix: '' | 'eval-', defaults: { eps: number; stepSize: number; steps: number; randomStart: boolean }, what: string) {
  return y
    .option(`${prefix}eps`, { type: 'string', default: String(defaults.eps), describe: `${what}: l_inf/l_2 radius in [0,1] pixel units (fractions like 8/255 accepted)` })
    .option(`${prefix}step-size`, { type: 'string', default: String(defaults.stepSize), describe: `${what}: PGD step size` })
    .option(`${prefix}steps`, { type: 'number', default: defaults.steps, describe: `${what}: PGD steps` })
    .option(`${prefix}random-start`, { type: 'boolean', default: defaults.randomStart, describe: `${what}: start from a random point of the eps-ball` });
}

export function readAttackFlags(argv: Record<string, unknown>, prefix: '' | 'eval-', norm: string, restarts = 1) {
  return {
    norm: norm as 'linf' | 'l2',
    eps: parseFraction(`--${prefix}eps`, argv[`${prefix}eps`]),
    stepSize: parseFraction(`--${prefix}step-size`, argv[`${prefix}step-size`]),
    steps: Number(argv[`${prefix}steps`]),
    randomStart: Boolean(argv[`${prefix}random-start`]),
    restarts,
    seed: 0,
  };
}

const SCHEMES: Scheme[] = ['sl', 'cl', 'scl'];

/** --method's help from the registry: per scheme (schemes offering the same methods together), its at-methods, the default marked. */
export function methodHelp(): string {
  const groups: Array<{ schemes: Scheme[]; text: string }> = [];
  for (const scheme of SCHEMES) {
    const text = methodsFor(scheme, 'at')
      .map((m) => (m === defaultMethod(scheme, 'at') ? `${m} (default)` : m))
      .join(', ');
    const same = groups.find((g) => g.text === text);
    if (same) same.schemes.push(scheme);
    else groups.push({ schemes: [scheme], text });
  }
  return `Adversarial method for --regime at: ${groups.map((g) => `${g.schemes.join('/')}: ${g.text}`).join('; ')} (docs/training-methods.md)`;
}

/** Every adversarial method, in registry order (each scheme's are methodsFor(scheme, 'at')). */
const AT_METHODS = [...new Set(SCHEMES.flatMap((s) => methodsFor(s, 'at')))];

export const trainCommand: CommandModule = {
  command: 'train',
  describe: 'Train a model (supervised or contrastive; standard or adversarial) and write a checkpoint directory',
  builder: (y) => {
    let b = y
      .option('out', { type: 'string', demandOption: true, describe: 'Checkpoint directory (model.json, weights.bin, meta.json)' })
      .option('dataset', { choices: datasetNames, default: DEFAULT_TRAIN.dataset, describe: 'Training data' })
      .option('data-dir', { type: 'string', describe: 'Directory with CIFAR binary files (or MNIST IDX files)' })
      .option('limit', { type: 'number', describe: 'Train on the first N training images after the seeded shuffle' })
      .option('eval-limit', { type: 'number', default: DEFAULT_TRAIN.evalLimit, describe: 'Test images used for accuracy after each epoch' })
      .option('arch', { choices: archNames, default: DEFAULT_TRAIN.arch, describe: 'Architecture' })
      .option('width', { type: 'number', describe: 'Channels of the first stage (overrides the preset)' })
      .option('blocks', { type: 'string', describe: 'Blocks per stage, e.g. 2,2,2,2 (overrides the preset depth)' })
      .option('scheme', {
        choices: ['sl', 'cl', 'scl'],
        default: DEFAULT_TRAIN.scheme,
        describe: 'Learning scheme: sl = supervised (cross-entropy), cl = SimCLR (NT-Xent), scl = SupCon',
      })
      .option('regime', {
        choices: ['st', 'at', ...FINE_TUNING_REGIMES],
        default: DEFAULT_TRAIN.regime,
        describe:
          'st = standard, at = adversarial training with --method; pat/fat (st-pat/st-fat) = adversarial (standard) pre-training into <out>-encoder, then a head on CE(clean)+CE(adv) on the frozen encoder (pat) or encoder and head (fat)',
      })
      .option('method', { choices: AT_METHODS, describe: methodHelp() })
      .option('augment', { choices: ['none', 'supervised', 'contrastive'], describe: 'Training augmentation (default: supervised = pad 4 + random crop + flip for sl, contrastive for cl/scl; none = off)' })
      .option('temperature', { type: 'number', default: DEFAULT_TRAIN.temperature, describe: 'Contrastive temperature tau (cl/scl)' })
      .option('proj-hidden', { type: 'number', default: DEFAULT_TRAIN.projHidden, describe: 'Projection head hidden units (0 = feature dimension)' })
      .option('proj-dim', { type: 'number', default: DEFAULT_TRAIN.projDim, describe: 'Projection head output dimension' })
      .options(Object.fromEntries(METHOD_PARAMS.map((p) => [p.flag, { type: 'number' as const, default: p.default, describe: p.help }])))
      .option('epochs', { type: 'number', default: DEFAULT_TRAIN.epochs })
      .option('finetune-epochs', { type: 'number', default: DEFAULT_FINE_TUNE.epochs, describe: 'Fine-tuning epochs of the pat/fat/st-pat/st-fat scenarios' })
      .option('finetune-lr', { type: 'number', default: DEFAULT_FINE_TUNE.lr, describe: 'Fine-tuning learning rate (Adam) of the scenarios' })
      .option('finetune-objective', {
        choices: FINE_TUNE_OBJECTIVES,
        describe: 'Fine-tuning loss of the scenarios: ce-ce = CE(clean)+CE(adv) (default), trades (default for --method acl with fat/st-fat: ACL fine-tunes with TRADES)',
      })
      .option('finetune-trades-beta', { type: 'number', default: DEFAULT_FINE_TUNE.tradesBeta, describe: 'beta of the TRADES fine-tuning loss' })
      .option('batch-size', { type: 'number', default: DEFAULT_TRAIN.batchSize })
      .option('optimizer', { choices: ['sgd', 'adam'], default: DEFAULT_TRAIN.optimizer, describe: 'sgd = SGD with momentum' })
      .option('lr', { type: 'number', default: DEFAULT_TRAIN.lr, describe: 'Peak learning rate' })
      .option('momentum', { type: 'number', default: DEFAULT_TRAIN.momentum, describe: 'SGD momentum' })
      .option('weight-decay', { type: 'number', default: DEFAULT_TRAIN.weightDecay, describe: 'L2 penalty on conv/dense kernels' })
      .option('schedule', { choices: ['cosine', 'constant'], default: DEFAULT_TRAIN.schedule, describe: 'Learning-rate schedule over all steps' })
      .option('norm', { choices: ['linf', 'l2'], default: 'linf', describe: 'Threat model of the training and evaluation attacks' })
      .option('seed', { type: 'number', default: DEFAULT_TRAIN.seed, describe: 'Seed for initialisation, shuffles and attacks' })
      .option('save-every', { type: 'number', default: 0, describe: 'Also checkpoint every N steps (0 = at epoch ends only)' })
      .option('workers', {
        type: 'number',
        default: DEFAULT_TRAIN.workers,
        describe:
          'Threads per step (data-parallel, wasm/cpu): each takes a contiguous shard of the batch on its own backend instance; 2 uses both cores of a 2-core machine. 1 = one thread (the reference results); BatchNorm statistics are per shard',
      })
      .option('resume', { type: 'boolean', default: false, describe: 'Continue from the last complete checkpoint in --out' });
    b = attackFlags(b, '', DEFAULT_TRAIN.attack, 'training attack (regime at)');
    b = attackFlags(b, 'eval-', DEFAULT_TRAIN.evalAttack, 'final robust-accuracy attack');
    return b;
  },
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const request: TrainRequest = {
      out: String(a.out),
      resume: Boolean(a.resume),
      dataset: a.dataset as DatasetName,
      dataDir: a['data-dir'] as string | undefined,
      limit: a.limit as number | undefined,
      evalLimit: a['eval-limit'] as number,
      arch: a.arch as string,
      width: a.width as number | undefined,
      blocks: a.blocks === undefined ? undefined : parseList(a.blocks).map(Number),
      scheme: a.scheme as Scheme,
      method: a.method as Method | undefined,
      augment: a.augment as AugmentName | undefined,
      temperature: a.temperature as number,
      projHidden: a['proj-hidden'] as number,
      projDim: a['proj-dim'] as number,
      ...(Object.fromEntries(METHOD_PARAMS.map((p) => [p.key, a[p.flag]])) as Partial<Pick<TrainConfig, (typeof METHOD_PARAMS)[number]['key']>>),
      epochs: a.epochs as number,
      batchSize: a['batch-size'] as number,
      optimizer: a.optimizer as 'sgd' | 'adam',
      lr: a.lr as number,
      momentum: a.momentum as number,
      weightDecay: a['weight-decay'] as number,
      schedule: a.schedule as 'cosine' | 'constant',
      attack: readAttackFlags(a, '', String(a.norm)),
      evalAttack: readAttackFlags(a, 'eval-', String(a.norm)),
      seed: a.seed as number,
      saveEvery: a['save-every'] as number,
      workers: a.workers as number,
      onEvent: trainProgressPrinter('train'),
    };
    const regime = String(a.regime);
    if (isFineTuningRegime(regime)) {
      const tick = makeTicker('loss {loss}');
      const res = await trainScenario({
        ...request,
        regime,
        fineTuneEpochs: a['finetune-epochs'] as number,
        fineTuneLr: a['finetune-lr'] as number,
        fineTuneObjective: a['finetune-objective'] as FineTuneObjective | undefined,
        fineTuneTradesBeta: a['finetune-trades-beta'] as number,
        onFineTuneEvent: (e) => {
          if (e.type === 'step') tick(`fine-tune (${SCENARIOS[regime].mode}) epoch ${e.epoch + 1}`, e.step, e.stepsPerEpoch, { loss: e.loss.toFixed(3) });
        },
      });
      const m = res.fineTuned.metrics;
      const figures = m ? `clean accuracy ${m.cleanAccuracy.toFixed(4)}, PGD-${m.evalAttack.steps} accuracy ${m.robustAccuracy.toFixed(4)}` : 'incomplete: run again with --resume';
      process.stdout.write(`encoder: ${res.encoderDir}\n${res.fineTuned.kind}: ${res.fineTuned.out} (${figures})\n`);
      return;
    }
    const meta = await trainModel({ ...request, regime: regime as Regime });
    process.stdout.write(`checkpoint: ${a.out} (${meta.progress.epochsDone}/${meta.config.epochs} epochs)\n`);
  },
};
