import type { CommandModule } from 'yargs';
import { TAP_SETS, type TapSet } from '../../models/architectures.js';
import { ATTACK_LOSSES, type AttackLoss, type InputKind } from '../../cka/capture/source.js';
import { parseShard } from '../../cka/minibatch/batches.js';
import type { Formulation } from '../../cka/minibatch/hsic.js';
import { MEASURES, MEASURE_NAMES } from '../../cka/measures/index.js';
import { ESTIMATORS, type Estimator, type Measure } from '../../cka/similarity/request.js';
import { runSimilarity } from '../../cka/similarity/run.js';
import { datasetNames, type DatasetName } from '../../data/index.js';
import { check } from '../../errors.js';
import { makeTicker } from '../progress.js';
import { parseList, readAttackOverride } from '../parse.js';

/** Replicates used by --stats unless --bootstrap / --permutations say otherwise. */
const STATS_BOOTSTRAP = 200;
const STATS_PERMUTATIONS = 20;

export const ckaCommand: CommandModule = {
  command: 'cka',
  describe: 'Linear CKA between every pair of activation sets (layer x input): from stored activations (--acts) or streamed from models batch by batch (--model), written to <out>/similarity.arrow',
  builder: (y) =>
    y
      .option('acts', {
        type: 'string',
        describe: 'Activations: an Arrow file from `capture`, or a directory of <set>.npy files (first axis = samples; optional sample_ids.npy, labels.npy, order.txt)',
      })
      .option('acts2', {
        type: 'string',
        describe: 'Second activations on the same samples (e.g. another model): rows come from --acts, columns from --acts2',
      })
      .option('model', {
        type: 'string',
        array: true,
        describe: 'Checkpoint(s) to stream from, instead of --acts: give one, or two (--model A --model B) for A x B as well. Minibatch CKA; no activations are stored',
      })
      .option('estimator', {
        choices: ESTIMATORS,
        describe:
          'HSIC estimator: biased = Kornblith et al. 2019 linear CKA; debiased = unbiased HSIC (Song et al. 2012) on all n; minibatch = unbiased HSIC averaged over minibatches (Nguyen et al. 2021). Default: biased with --acts, minibatch (the only one) with --model',
      })
      .option('measure', {
        choices: MEASURE_NAMES,
        default: 'cka',
        describe: MEASURE_NAMES.map((m) => `${m} = ${MEASURES[m].describe}`).join('; '),
      })
      .option('sets', { type: 'string', describe: 'With --acts: comma-separated set names to use, in this order (default: all, in file order)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output directory (similarity.arrow is written there; minibatch runs also write accumulators.{json,npy})' })
      .option('block-rows', { type: 'number', describe: 'biased/debiased: sample rows per Gram panel (default: chosen from the memory budget)' })
      .option('memory-mb', { type: 'number', default: 1024, describe: 'biased/debiased: budget for the Gram panels and tiles of one step, in MiB' })
      .option('batch-size', { type: 'number', default: 256, describe: 'minibatch: samples per batch (at least 4)' })
      .option('shard', { type: 'string', describe: 'minibatch: compute only batches j with j % k == i, as i/k; combine the k outputs with `robustsim cka-merge`' })
      .option('workers', { type: 'number', default: 1, describe: 'Worker threads, each with its own wasm/cpu backend instance: the minibatch estimator (--model or --acts) splits the batches, biased/debiased the Gram tiles' })
      .option('formulation', {
        choices: ['auto', 'gram', 'feature'],
        default: 'auto',
        describe: 'minibatch, linear: per-batch HSIC from b x b Grams, from feature cross-products (cheaper when the sets\' total width is about the batch size or less), or auto = chosen per set by a flop model. Same values within float rounding; forcing one is for tests and benchmarks',
      })
      .option('stats', { type: 'boolean', default: false, describe: `minibatch: add ci_low, ci_high (95% bootstrap over minibatches, ${STATS_BOOTSTRAP} replicates) and null_mean, null_sd (permutation null, ${STATS_PERMUTATIONS} replicates) columns` })
      .option('bootstrap', { type: 'number', describe: `minibatch: bootstrap replicates (default ${STATS_BOOTSTRAP} with --stats, else 0)` })
      .option('permutations', { type: 'number', describe: `minibatch: permutation-null replicates (default ${STATS_PERMUTATIONS} with --stats, else 0)` })
      .option('dataset', { choices: datasetNames, describe: '--model: evaluation data (default: the dataset model A was trained on)' })
      .option('data-dir', { type: 'string', describe: '--model: directory with CIFAR binary files' })
      .option('split', { choices: ['test', 'train'], default: 'test', describe: '--model: which split' })
      .option('n', { type: 'number', default: 10000, describe: '--model: number of samples (first n after the seeded shuffle)' })
      .option('seed', { type: 'number', default: 0, describe: 'Seed of the sample shuffle, attack random starts, bootstrap weights and permutations' })
      .option('layers', { type: 'string', describe: '--model: comma-separated tap points (default: all; see `robustsim layers`)' })
      .option('taps', { choices: TAP_SETS, default: 'blocks', describe: '--model: tap set: blocks (stem, every block, pool, logits) or all (every layer after the input: each conv, BatchNorm, ReLU, add); see `robustsim layers --taps`' })
      .option('inputs', { type: 'string', default: 'clean,adv', describe: '--model: clean, adv or clean,adv (adversarial inputs attack the model they are fed to)' })
      .option('norm', { choices: ['linf', 'l2'], describe: '--model: attack norm (default: each model\'s evaluation attack)' })
      .option('eps', { type: 'string', describe: '--model: attack radius (8/255 style accepted; default: each model\'s evaluation attack)' })
      .option('step-size', { type: 'string', describe: '--model: attack step size' })
      .option('steps', { type: 'number', describe: '--model: attack steps' })
      .option('random-start', { type: 'boolean', describe: '--model: random start in the eps-ball' })
      .option('attack-loss', { choices: ATTACK_LOSSES, describe: '--model: what the attack maximises: cross-entropy of the label (default), or the contrastive loss through the projection head (cl/scl models, "threat model I"), as `capture --attack-loss`' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const models = parseList(a.model);
    const sets = parseList(a.sets);
    const memoryMb = a['memory-mb'] as number;
    check(Number.isFinite(memoryMb) && memoryMb > 0, '--memory-mb', `expected a positive number, got ${memoryMb}`);
    const stats = a.stats === true;
    const streamed = models.length > 0;
    const tick = makeTicker(streamed || a.estimator === 'minibatch' || a.measure === 'rbf-cka' ? 'samples' : 'tiles');
    const res = await runSimilarity({
      measure: a.measure as Measure,
      estimator: a.estimator as Estimator | undefined,
      acts: a.acts === undefined ? undefined : String(a.acts),
      acts2: a.acts2 === undefined ? undefined : String(a.acts2),
      sets: a.sets === undefined ? undefined : sets,
      models: streamed ? models : undefined,
      out: String(a.out),
      blockRows: a['block-rows'] as number | undefined,
      // The engine's budget: only for the full-data estimators (the default 1024 MiB is always set).
      memoryBytes: Math.round(memoryMb * 1024 * 1024),
      batchSize: a['batch-size'] as number,
      seed: a.seed as number,
      bootstrap: (a.bootstrap as number | undefined) ?? (stats ? STATS_BOOTSTRAP : 0),
      permutations: (a.permutations as number | undefined) ?? (stats ? STATS_PERMUTATIONS : 0),
      formulation: a.formulation as Formulation,
      shard: a.shard === undefined ? undefined : parseShard(String(a.shard)),
      workers: a.workers as number,
      ...(streamed
        ? {
            dataset: a.dataset as DatasetName | undefined,
            dataDir: a['data-dir'] as string | undefined,
            split: a.split as 'test' | 'train',
            n: a.n as number,
            layers: parseList(a.layers),
            tapSet: a.taps as TapSet,
            inputs: parseList(a.inputs) as InputKind[],
            attack: readAttackOverride(a),
            attackLoss: a['attack-loss'] as AttackLoss | undefined,
          }
        : { attackLoss: a['attack-loss'] as AttackLoss | undefined }),
      onProgress: (done, total) => tick('cka', done, total),
    });
    for (const w of res.warnings) process.stderr.write(`warning: ${w}\n`);
    const sim = res.written[0].similarity;
    const files = res.written.map((w) => w.file).join(', ');
    const md = sim.metadata;
    if (md.measure === 'procrustes') process.stdout.write(`cka: n=${md.n}, ${sim.rows.length} x ${sim.cols.length} sets, measure procrustes -> ${files}\n`);
    else if (md.estimator === 'minibatch') process.stdout.write(`cka: n=${md.n} in ${md.batches} batches of ${md.batch_size}, estimator minibatch, measure ${a.measure} -> ${files}\n`);
    else process.stdout.write(`cka: n=${md.n}, ${sim.rows.length} x ${sim.cols.length} sets, estimator ${md.estimator} -> ${files}\n`);
  },
};
