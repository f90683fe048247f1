#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { InputError } from '../errors.js';
import { describeBackend, initBackend, type BackendChoice } from '../backend/index.js';
import { applyNativeFlags } from '../backend/native/cli.js';
import { trainCommand } from './commands/train.js';
import { layersCommand } from './commands/layers.js';
import { captureCommand } from './commands/capture.js';
import { ckaCommand } from './commands/cka.js';
import { ckaMergeCommand } from './commands/cka-merge.js';
import { reportCommand } from './commands/report.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { finetuneCommand } from './commands/finetune.js';
import { layerProbesCommand } from './commands/layer-probes.js';
import { studyCommand } from './commands/study.js';
import { importCommand } from './commands/import.js';

/** Commands that never touch tensors skip backend start-up. */
const NO_BACKEND = new Set(['layers', 'report', 'cka-merge']);

function fail(message: string): never {
  process.stderr.write(`robustsim: error: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const cli = yargs(hideBin(process.argv))
    .scriptName('robustsim')
    .usage('$0 <command> [options]\n\nStudy how adversarial training changes what a network learns: train, capture activations on clean and adversarial inputs, compute linear CKA, report.')
    .option('backend', {
      choices: ['auto', 'wasm', 'cpu', 'tensorflow', 'webgpu'],
      default: 'auto',
      global: true,
      describe: 'Compute backend: auto = tensorflow if @tensorflow/tfjs-node(-gpu) is installed, else wasm',
    })
    .option('native', {
      choices: ['auto', 'off', 'require'],
      global: true,
      describe: 'Native kernels for the wasm backend (OpenBLAS, oneDNN): auto = when installed; require = fail if missing (default: $ROBUSTSIM_NATIVE or auto)',
    })
    .middleware(async (argv) => {
      const command = String(argv._[0] ?? '');
      if (!command || NO_BACKEND.has(command)) return;
      applyNativeFlags(argv.native as string | undefined, argv.workers);
      await initBackend(argv.backend as BackendChoice);
      process.stderr.write(`backend: ${describeBackend()}\n`);
    })
    .command(demoCommand)
    .command(trainCommand)
    .command(layersCommand)
    .command(captureCommand)
    .command(ckaCommand)
    .command(ckaMergeCommand)
    .command(reportCommand)
    .command(evalCommand)
    .command(finetuneCommand)
    .command(layerProbesCommand)
    .command(studyCommand)
    .command(importCommand)
    .demandCommand(1, 'Name a command (see --help).')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(120, process.stdout.columns || 100))
    .epilogue('Each command has its own --help. Docs: README.md')
    .fail((msg, err, y) => {
      if (err) throw err;
      y.showHelp();
      fail(msg);
    });
  try {
    await cli.parseAsync();
  } catch (err) {
    if (err instanceof InputError) fail(err.message);
    throw err;
  }
}

main().catch((err) => {
  process.stderr.write(`robustsim: internal error (please report): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
