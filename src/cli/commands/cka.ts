import type { CommandModule } from 'yargs';
import { computeSimilarity } from '../../cka/engine/compute.js';
import type { CkaEstimator } from '../../cka/engine/engine.js';
import type { InputKind } from '../../cka/capture/capture.js';
import { parseShard } from '../../cka/minibatch/batches.js';
import { minibatchSimilarityOfFiles } from '../../cka/minibatch/files.js';
import type { WrittenSimilarity } from '../../cka/minibatch/output.js';
import { streamMinibatchCka } from '../../cka/stream/stream.js';
import type { Formulation } from '../../cka/minibatch/hsic.js';
import { procrustesSimilarityOfFiles } from '../../cka/measures/procrustes.js';
import { datasetNames, type DatasetName } from '../../data/index.js';
import { check, InputError } from '../../errors.js';
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
        choices: ['biased', 'debiased', 'minibatch'],
        describe:
          'HSIC estimator: biased = Kornblith et al. 2019 linear CKA; debiased = unbiased HSIC (Song et al. 2012) on all n; minibatch = unbiased HSIC averaged over minibatches (Nguyen et al. 2021). Default: biased with --acts, minibatch (the only one) with --model',
      })
      .option('measure', {
        choices: ['cka', 'rbf-cka', 'procrustes'],
        default: 'cka',
        describe:
          'cka = linear CKA; rbf-cka = CKA with the RBF kernel, median-distance bandwidth per minibatch (minibatch estimator; --batch-size n for full data); procrustes = orthogonal Procrustes similarity (--acts only, float64 on the host, O(min(n,p)^3) per pair)',
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
      .option('inputs', { type: 'string', default: 'clean,adv', describe: '--model: clean, adv or clean,adv (adversarial inputs attack the model they are fed to)' })
      .option('norm', { choices: ['linf', 'l2'], describe: '--model: attack norm (default: each model\'s evaluation attack)' })
      .option('eps', { type: 'string', describe: '--model: attack radius (8/255 style accepted; default: each model\'s evaluation attack)' })
      .option('step-size', { type: 'string', describe: '--model: attack step size' })
      .option('steps', { type: 'number', describe: '--model: attack steps' })
      .option('random-start', { type: 'boolean', describe: '--model: random start in the eps-ball' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const models = parseList(a.model);
    check(Number.isInteger(a.workers) && (a.workers as number) >= 1, '--workers', `expected a positive integer, got ${a.workers}`);
    check((a.acts === undefined) !== (models.length === 0), '--acts/--model', 'give either --acts (stored activations) or --model (stream from checkpoints), not both and not neither');
    const measure = a.measure as 'cka' | 'rbf-cka' | 'procrustes';
    if (measure === 'procrustes') {
      check(models.length === 0, '--measure', 'procrustes needs all samples at once; use it with --acts (stored activations), not --model');
      check(a.estimator === undefined, '--estimator', 'does not apply to --measure procrustes');
      const sets = parseList(a.sets);
      const res = await procrustesSimilarityOfFiles({ acts: String(a.acts), acts2: a.acts2 === undefined ? undefined : String(a.acts2), sets: sets.length ? sets : undefined, out: String(a.out) });
      process.stdout.write(`cka: n=${res.similarity.metadata.n}, ${res.similarity.rows.length} x ${res.similarity.cols.length} sets, measure procrustes -> ${res.file}\n`);
      return;
    }
    const estimator = (a.estimator as string | undefined) ?? (models.length > 0 || measure === 'rbf-cka' ? 'minibatch' : 'biased');
    check(measure === 'cka' || estimator === 'minibatch', '--estimator', `${estimator} is for linear CKA; --measure rbf-cka uses the minibatch estimator (--batch-size <n> gives the debiased full-data value)`);
    check(models.length === 0 || estimator === 'minibatch', '--estimator', `${estimator} needs all activations at once; --model streams batches and computes the minibatch estimator only`);
    if (estimator === 'minibatch') {
      const written = await runMinibatch(a, models);
      const first = written[0].similarity;
      for (const w of written) {
        for (const f of w.flagged) process.stderr.write(`warning: CKA(${f.row}, ${f.col}) = ${f.cka} in ${w.file} is outside [0, 1] beyond rounding or undefined; kept as is\n`);
      }
      process.stdout.write(`cka: n=${first.metadata.n} in ${first.metadata.batches} batches of ${first.metadata.batch_size}, estimator minibatch, measure ${a.measure} -> ${written.map((w) => w.file).join(', ')}\n`);
      return;
    }
    const sets = parseList(a.sets);
    const blockRows = a['block-rows'] as number | undefined;
    const memoryMb = a['memory-mb'] as number;
    check(blockRows === undefined || (Number.isInteger(blockRows) && blockRows >= 1), '--block-rows', `expected a positive integer, got ${blockRows}`);
    check(Number.isFinite(memoryMb) && memoryMb > 0, '--memory-mb', `expected a positive number, got ${memoryMb}`);
    check(a.shard === undefined, '--shard', 'only the minibatch estimator can be sharded');
    const tick = makeTicker('tiles');
    const res = await computeSimilarity({
      acts: String(a.acts),
      acts2: a.acts2 === undefined ? undefined : String(a.acts2),
      estimator: estimator as CkaEstimator,
      out: String(a.out),
      sets: sets.length > 0 ? sets : undefined,
      blockRows,
      memoryBytes: Math.round(memoryMb * 1024 * 1024),
      workers: a.workers as number,
      onProgress: (done, total) => tick('cka', done, total),
    });
    const sim = res.similarity;
    for (const f of res.flagged) process.stderr.write(`warning: CKA(${f.row}, ${f.col}) = ${f.cka} is outside [0, 1] beyond rounding; kept as is\n`);
    process.stdout.write(`cka: n=${sim.metadata.n}, ${sim.rows.length} x ${sim.cols.length} sets, estimator ${sim.metadata.estimator} -> ${res.file}\n`);
  },
};

async function runMinibatch(a: Record<string, unknown>, models: string[]): Promise<WrittenSimilarity[]> {
  const stats = a.stats === true;
  const config = {
    batchSize: a['batch-size'] as number,
    seed: a.seed as number,
    bootstrap: (a.bootstrap as number | undefined) ?? (stats ? STATS_BOOTSTRAP : 0),
    permutations: (a.permutations as number | undefined) ?? (stats ? STATS_PERMUTATIONS : 0),
    kernel: a.measure === 'rbf-cka' ? ('rbf' as const) : ('linear' as const),
  };
  const shard = a.shard === undefined ? undefined : parseShard(String(a.shard));
  const formulation = a.formulation as Formulation;
  check(formulation !== 'feature' || config.kernel === 'linear', '--formulation', 'feature needs the linear kernel; --measure rbf-cka has no feature space (use gram or auto)');
  if (models.length === 0) {
    const sets = parseList(a.sets);
    const tick = makeTicker('samples');
    return minibatchSimilarityOfFiles({
      acts: String(a.acts),
      acts2: a.acts2 === undefined ? undefined : String(a.acts2),
      sets: sets.length ? sets : undefined,
      out: String(a.out),
      config,
      shard,
      workers: a.workers as number,
      run: { formulation },
      onProgress: (done, total) => tick('cka', done, total),
    });
  }
  if (a.acts2 !== undefined || a.sets !== undefined) throw new InputError('--acts2/--sets: only with --acts; with --model use --layers and a second --model');
  const attack = readAttackOverride(a);
  const tick = makeTicker('samples');
  const res = await streamMinibatchCka({
    models,
    out: String(a.out),
    dataset: a.dataset as DatasetName | undefined,
    dataDir: a['data-dir'] as string | undefined,
    split: a.split as 'test' | 'train',
    n: a.n as number,
    seed: config.seed,
    batchSize: config.batchSize,
    layers: parseList(a.layers),
    inputs: parseList(a.inputs) as InputKind[],
    attack,
    bootstrap: config.bootstrap,
    permutations: config.permutations,
    kernel: config.kernel,
    formulation,
    shard,
    workers: a.workers as number,
    onProgress: (done, total) => tick('cka', done, total),
  });
  return res.written;
}
