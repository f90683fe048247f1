import type { CommandModule } from 'yargs';
import { readMeta } from '../../models/checkpoint.js';
import type { CheckpointMeta } from '../../models/checkpoint-meta.js';

export const layersCommand: CommandModule = {
  command: 'layers <checkpoint>',
  describe: 'List the tap points (layers whose activations can be captured) of a checkpoint, in network order',
  builder: (y) => y.positional('checkpoint', { type: 'string', describe: 'Checkpoint directory', demandOption: true }),
  handler: async (argv) => {
    const meta = await readMeta<CheckpointMeta>(String(argv.checkpoint));
    for (const t of meta.taps) process.stdout.write(`${t}\n`);
  },
};
