import * as os from 'node:os';
import type { CommandModule } from 'yargs';
import { InputError } from '../../errors.js';
import { applyNativeFlags } from '../../backend/native/cli.js';
import { formatPlan, loadStudy, planStatus, prepareStudyDir, PRESETS, runLocal, runStage, submitSlurm, writeK8sManifests, writeSlurmScripts } from '../../pipeline/study/index.js';

interface StudyArgs {
  config?: string;
  preset?: string;
  out?: string;
  'data-dir'?: string;
  'dry-run': boolean;
  stage?: string;
  jobs?: number;
  slurm: boolean;
  k8s: boolean;
  sbatch: string;
}

export const studyCommand: CommandModule<object, StudyArgs> = {
  command: 'study',
  describe: 'Run a whole study (grid of schemes x scenarios x training eps x seeds): train, fine-tune, eval, probes, CKA within and across cells, report; resumable',
  builder: (y) =>
    y
      .option('config', { type: 'string', describe: 'Study config (JSON; docs/study.md)' })
      .option('preset', { type: 'string', describe: `A shipped config: ${Object.keys(PRESETS).join(', ')}` })
      .option('out', { type: 'string', describe: 'Study directory (default out/study/<name>)' })
      .option('data-dir', { type: 'string', describe: 'Override the config\'s dataset.dataDir (e.g. for the CIFAR presets)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Print every stage (done, pending or stale) and the estimated cost; run nothing' })
      .option('stage', { type: 'string', describe: 'Run one stage (its inputs must be done): what cluster tasks run' })
      .option('jobs', { type: 'number', describe: 'Independent stages run at once, one process each (default: the cores, at most 4)' })
      .option('slurm', { type: 'boolean', default: false, describe: 'Submit the pending stages as Slurm job arrays, one per level, chained with --dependency=afterok' })
      .option('k8s', { type: 'boolean', default: false, describe: 'Write Kubernetes Indexed Job manifests (one per level) and run.sh into <study>/k8s' })
      .option('sbatch', { type: 'string', default: 'sbatch', describe: 'The sbatch command' }),
  handler: async (argv) => {
    const ctx = await loadStudy({ config: argv.config, preset: argv.preset, out: argv.out, dataDir: argv['data-dir'] });
    if (argv['dry-run']) {
      process.stdout.write(formatPlan(ctx, await planStatus(ctx)) + '\n');
      return;
    }
    if ([argv.slurm, argv.k8s, argv.stage !== undefined].filter(Boolean).length > 1) throw new InputError('study: --stage, --slurm and --k8s exclude each other');
    const configFile = await prepareStudyDir(ctx);
    if (argv.stage !== undefined) {
      const stage = ctx.plan.byId.get(argv.stage);
      if (!stage) throw new InputError(`--stage: no stage '${argv.stage}' in this study (see --dry-run)`);
      const r = await runStage(ctx, stage);
      process.stderr.write(`${stage.id}: ${r === 'ran' ? 'done' : 'already done'}\n`);
      return;
    }
    if (argv.slurm) {
      const levels = await writeSlurmScripts(ctx, configFile);
      if (!levels.length) {
        process.stdout.write('study: every stage is done; nothing to submit\n');
        return;
      }
      const ids = await submitSlurm(levels, argv.sbatch);
      levels.forEach((l, i) => process.stdout.write(`level ${l.level}: job ${ids[i]} (${l.stages.length} task(s)) ${l.script}\n`));
      return;
    }
    if (argv.k8s) {
      const files = await writeK8sManifests(ctx, configFile);
      process.stdout.write(`wrote ${files.join(', ')}\nrun: bash ${files[files.length - 1]}\n`);
      return;
    }
    const jobs = argv.jobs ?? Math.max(1, Math.min(4, os.availableParallelism()));
    // Each --jobs child gets floor(cores / jobs) native threads (the children inherit the environment),
    // so native threads x jobs never exceed the cores.
    applyNativeFlags(undefined, jobs);
    const t0 = Date.now();
    const { ran, reused } = await runLocal(ctx, {
      jobs,
      configFile,
      onStage: (s, e) => {
        if (e !== 'reused') process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${e === 'start' ? 'start' : 'done '} ${s.id}\n`);
      },
    });
    process.stdout.write(ran.length ? `study ${ctx.config.name}: ran ${ran.length} stage(s), reused ${reused.length}; ${ctx.studyDir}/report.html\n` : `study ${ctx.config.name}: every stage is done (nothing to do); ${ctx.studyDir}/report.html\n`);
  },
};
