import type { CommandModule } from 'yargs';
import { mergeMinibatchRuns } from '../../cka/minibatch/files.js';

export const ckaMergeCommand: CommandModule = {
  command: 'cka-merge <dirs..>',
  describe: 'Merge the accumulators of minibatch CKA runs over disjoint shards (cka --shard i/k) into the tables of one run',
  builder: (y) =>
    y
      .positional('dirs', { type: 'string', array: true, demandOption: true, describe: 'Output directories of `robustsim cka ... --shard i/k`' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output directory (similarity.arrow, accumulators.{json,npy})' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    const dirs = (a.dirs as unknown[]).map(String);
    const written = await mergeMinibatchRuns(dirs, String(a.out));
    const sim = written[0].similarity;
    for (const w of written) for (const f of w.flagged) process.stderr.write(`warning: CKA(${f.row}, ${f.col}) = ${f.cka} in ${w.file} is outside [0, 1] beyond rounding or undefined; kept as is\n`);
    process.stdout.write(`cka-merge: ${dirs.length} run(s), n=${sim.metadata.n} in ${sim.metadata.batches} batches -> ${written.map((w) => w.file).join(', ')}\n`);
  },
};
