import type { CommandModule } from 'yargs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { readMeta, MODEL_JSON } from '../../models/checkpoint.js';
import { TAP_SETS, type TapSet } from '../../models/architectures.js';
import type { CheckpointMeta } from '../../models/checkpoint-meta.js';
import { InputError } from '../../errors.js';

/** Every layer after the input, read from model.json's topology (no model is built: this command loads no backend). */
async function allLayers(dir: string): Promise<string[]> {
  const file = path.join(dir, MODEL_JSON);
  const json = JSON.parse(await fs.readFile(file, 'utf8')) as { modelTopology?: { config?: { layers?: Array<{ class_name: string; name?: string; config?: { name?: string } }> }; model_config?: { config?: { layers?: Array<{ class_name: string; name?: string; config?: { name?: string } }> } } } };
  const layers = json.modelTopology?.model_config?.config?.layers ?? json.modelTopology?.config?.layers;
  if (!layers) throw new InputError(`${file}: modelTopology has no layer list (expected a tfjs LayersModel functional model)`);
  return layers.filter((l) => l.class_name !== 'InputLayer').map((l) => l.name ?? l.config?.name ?? '');
}

export const layersCommand: CommandModule = {
  command: 'layers <checkpoint>',
  describe: 'List the tap points (layers whose activations can be captured) of a checkpoint, in network order',
  builder: (y) =>
    y
      .positional('checkpoint', { type: 'string', describe: 'Checkpoint directory', demandOption: true })
      .option('taps', { choices: TAP_SETS, default: 'blocks', describe: 'blocks: the model\'s tap points (stem, blocks, pool, logits); all: every layer after the input' }),
  handler: async (argv) => {
    const dir = String(argv.checkpoint);
    const meta = await readMeta<CheckpointMeta>(dir);
    const list = (argv.taps as TapSet) === 'all' ? await allLayers(dir) : meta.taps;
    for (const t of list) process.stdout.write(`${t}\n`);
  },
};
