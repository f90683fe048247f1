import type { CommandModule } from 'yargs';
import { InputError } from '../../errors.js';
import { importOnnx } from '../../pipeline/import-onnx.js';
import type { DatasetName } from '../../data/index.js';

function numbers(flag: string, v: unknown, count?: number): number[] | undefined {
  if (v === undefined) return undefined;
  const xs = String(v).split(/[,x]/).map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isFinite(x)) || (count !== undefined && xs.length !== count)) {
    throw new InputError(`${flag}: expected ${count ?? 'comma-separated'} numbers, got '${String(v)}'`);
  }
  return xs;
}

export const importCommand: CommandModule = {
  command: 'import <model>',
  describe: 'Import a PyTorch model exported to ONNX as a robustsim checkpoint (see docs/import.md)',
  builder: (y) =>
    y
      .positional('model', { type: 'string', describe: 'ONNX file (torch.onnx.export, opsets 13-17)', demandOption: true })
      .option('out', { type: 'string', demandOption: true, describe: 'Checkpoint directory to write' })
      .option('input-shape', { type: 'string', describe: 'CxHxW as PyTorch sees it (e.g. 3x32x32); required when the input has dynamic sizes' })
      .option('range', { type: 'string', describe: "Pixel range the model expects, LOW,HIGH (default 0,1; '0,255' for uint8-style inputs)" })
      .option('mean', { type: 'string', describe: 'Per-channel mean subtracted after --range (e.g. 0.4914,0.4822,0.4465)' })
      .option('std', { type: 'string', describe: 'Per-channel std divided by after the mean (e.g. 0.2470,0.2435,0.2616)' })
      .option('taps', { type: 'string', array: true, describe: "Glob(s) over node names for the tap points (default: every PyTorch module's output), e.g. 'layer*'" })
      .option('dataset', { type: 'string', default: 'cifar10', describe: 'Dataset the model classifies (for capture/eval defaults)' })
      .option('name', { type: 'string', describe: 'Run name (default: the file name)' }),
  handler: async (argv) => {
    const shape = numbers('--input-shape', argv['input-shape'], 3) as [number, number, number] | undefined;
    if (shape && shape.some((d) => !Number.isInteger(d) || d < 1)) throw new InputError(`--input-shape: expected CxHxW positive integers, got '${String(argv['input-shape'])}'`);
    const meta = await importOnnx(String(argv.model), String(argv.out), {
      inputShape: shape,
      range: numbers('--range', argv.range, 2) as [number, number] | undefined,
      mean: numbers('--mean', argv.mean),
      std: numbers('--std', argv.std),
      taps: (argv.taps as string[] | undefined)?.flatMap((t) => t.split(',')),
      dataset: argv.dataset as DatasetName,
      name: argv.name as string | undefined,
    });
    process.stdout.write(`checkpoint: ${String(argv.out)} (${meta.numClasses} classes, input ${meta.inputShape.join('x')} NHWC, ${meta.taps.length} tap points)\n`);
  },
};
