import type { CommandModule } from 'yargs';
import { computeSimilarity } from '../../cka/compute.js';
import type { CkaEstimator } from '../../cka/engine.js';
import { check } from '../../errors.js';
import { makeTicker } from '../progress.js';
import { parseList } from '../parse.js';

export const ckaCommand: CommandModule = {
  command: 'cka',
  describe: 'Linear CKA between every pair of activation sets (layer x input), written to <out>/similarity.arrow',
  builder: (y) =>
    y
      .option('acts', {
        type: 'string',
        demandOption: true,
        describe: 'Activations: an Arrow file from `capture`, or a directory of <set>.npy files (first axis = samples; optional sample_ids.npy, labels.npy, order.txt)',
      })
      .option('acts2', {
        type: 'string',
        describe: 'Second activations on the same samples (e.g. another model): rows come from --acts, columns from --acts2',
      })
      .option('estimator', {
        choices: ['biased', 'debiased'],
        default: 'biased',
        describe: 'HSIC estimator: biased = Kornblith et al. 2019 linear CKA; debiased = unbiased HSIC (Song et al. 2012), as used by minibatch CKA',
      })
      .option('sets', { type: 'string', describe: 'Comma-separated set names to use, in this order (default: all, in file order)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output directory (similarity.arrow is written there)' })
      .option('block-rows', { type: 'number', describe: 'Sample rows per Gram panel (default: chosen from the memory budget)' })
      .option('memory-mb', { type: 'number', default: 1024, describe: 'Budget for the Gram panels and tiles of one step, in MiB' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const sets = parseList(a.sets);
    const blockRows = a['block-rows'] as number | undefined;
    const memoryMb = a['memory-mb'] as number;
    check(blockRows === undefined || (Number.isInteger(blockRows) && blockRows >= 1), '--block-rows', `expected a positive integer, got ${blockRows}`);
    check(Number.isFinite(memoryMb) && memoryMb > 0, '--memory-mb', `expected a positive number, got ${memoryMb}`);
    const tick = makeTicker('tiles');
    const res = await computeSimilarity({
      acts: String(a.acts),
      acts2: a.acts2 === undefined ? undefined : String(a.acts2),
      estimator: a.estimator as CkaEstimator,
      out: String(a.out),
      sets: sets.length > 0 ? sets : undefined,
      blockRows,
      memoryBytes: Math.round(memoryMb * 1024 * 1024),
      onProgress: (done, total) => tick('cka', done, total),
    });
    const sim = res.similarity;
    for (const f of res.flagged) process.stderr.write(`warning: CKA(${f.row}, ${f.col}) = ${f.cka} is outside [0, 1] beyond rounding; kept as is\n`);
    process.stdout.write(`cka: n=${sim.metadata.n}, ${sim.rows.length} x ${sim.cols.length} sets, estimator ${sim.metadata.estimator} -> ${res.file}\n`);
  },
};
