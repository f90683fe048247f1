import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { trainModel } from '../../train/loop.js';
import { fineTune } from '../../probe/finetune.js';
import { runEvaluation } from '../../probe/eval-run.js';
import { layerProbes } from '../../probe/layer-probes.js';
import { streamMinibatchCka } from '../../cka/similarity/shortcuts.js';
import type { TrainRequest } from '../../train/loop.js';
import { InputError } from '../../errors.js';
import type { StudyConfig } from './config.js';
import type { Cell } from './grid.js';
import { analysisAttack, fineTuneMode, hasFrozenEncoder, modelSourceStage, type Stage, type StudyPlan } from './plan.js';
import { commitStage, stageDir, stageStatus } from './store.js';
import { writeStudyOutputs } from './outputs.js';
import type { StudyContext } from './context.js';

export type { StudyContext } from './context.js';


/** The model directory a stage's output holds (train and finetune stages write `model/`). */
export function modelDirOf(ctx: StudyContext, cell: Cell): string {
  return path.join(stageDir(ctx.studyDir, modelSourceStage(cell)), 'model');
}

/** The CKA settings every within-cell and cross-cell stage shares (the study's data, n, batches, attack). */
function ckaSettings(ctx: StudyContext) {
  return {
    dataset: ctx.config.dataset.name,
    dataDir: ctx.config.dataset.dataDir,
    n: ctx.config.cka.n,
    batchSize: ctx.config.cka.batchSize,
    seed: 0,
    bootstrap: ctx.config.cka.bootstrap,
    attack: analysisAttack(ctx.config),
    tapSet: ctx.config.taps,
  };
}

function cellOf(ctx: StudyContext, name: string): Cell {
  const c = ctx.plan.cells.find((x) => x.name === name);
  if (!c) throw new Error(`study: no cell '${name}'`);
  return c;
}

type Runner = (ctx: StudyContext, stage: Stage, work: string) => Promise<void>;

const RUNNERS: Record<Stage['kind'], Runner> = {
  async train(ctx, stage, work) {
    // The partial directory survives a kill, so a re-run continues from the last checkpoint in it.
    const req = { ...(stage.slice as Partial<TrainRequest>), out: path.join(work, 'model'), resume: true } as TrainRequest;
    const meta = await trainModel(req);
    if (!meta.progress.complete) throw new Error(`${stage.id}: training stopped before completing`);
  },
  async finetune(ctx, stage, work) {
    const cell = cellOf(ctx, stage.id.slice('finetune/'.length));
    const s = stage.slice as { epochs?: number; lr?: number; limit?: number; seed: number; evalLimit?: number; workers?: number };
    const res = await fineTune({
      checkpoint: path.join(stageDir(ctx.studyDir, `train/${cell.encoder.name}`), 'model'),
      mode: fineTuneMode(cell),
      out: path.join(work, 'model'),
      resume: true,
      dataset: ctx.config.dataset.name,
      dataDir: ctx.config.dataset.dataDir,
      epochs: s.epochs,
      lr: s.lr,
      limit: s.limit,
      evalLimit: s.evalLimit,
      seed: s.seed,
      workers: s.workers,
    });
    if (!res.metrics) throw new Error(`${stage.id}: fine-tuning stopped before completing`);
  },
  async eval(ctx, stage, work) {
    const cell = cellOf(ctx, stage.id.slice('eval/'.length));
    const s = stage.slice as { attacks: string[]; eps: number[]; n: number; batchSize: number; seed: number };
    await runEvaluation({
      models: [modelDirOf(ctx, cell)],
      attacks: s.attacks,
      eps: s.eps,
      settings: { norm: 'linf', restarts: 1, seed: s.seed },
      dataset: ctx.config.dataset.name,
      dataDir: ctx.config.dataset.dataDir,
      n: s.n,
      batchSize: s.batchSize,
      worstCase: false,
      outDir: work,
    });
  },
  async probes(ctx, stage, work) {
    const cell = cellOf(ctx, stage.id.slice('probes/'.length));
    const s = stage.slice as { epochs: number; limit?: number; evalLimit?: number; adversarialN: number; seed: number };
    // A frozen encoder's layers are the pre-trained encoder's, so probe that checkpoint.
    const source = hasFrozenEncoder(cell) ? path.join(stageDir(ctx.studyDir, `train/${cell.encoder.name}`), 'model') : modelDirOf(ctx, cell);
    const { results } = await layerProbes({
      checkpoint: source,
      out: path.join(work, 'probes'),
      dataset: ctx.config.dataset.name,
      dataDir: ctx.config.dataset.dataDir,
      epochs: s.epochs,
      limit: s.limit,
      evalLimit: s.evalLimit,
      seed: s.seed,
      tapSet: ctx.config.taps,
      adversarial: s.adversarialN > 0 ? { n: s.adversarialN, attack: { ...analysisAttack(ctx.config), seed: s.seed } } : undefined,
    });
    await fs.writeFile(path.join(work, 'probes.json'), JSON.stringify({ source: path.relative(ctx.studyDir, source), results }, null, 1) + '\n');
  },
  async cka(ctx, stage, work) {
    const cell = cellOf(ctx, stage.id.slice('cka/'.length));
    await streamMinibatchCka({
      models: [modelDirOf(ctx, cell)],
      out: work,
      inputs: ['clean', 'adv'],
      ...ckaSettings(ctx),
    });
  },
  async cross(ctx, stage, work) {
    const [a, b] = stage.id.slice('cross/'.length).split('~').map((n) => cellOf(ctx, n));
    await streamMinibatchCka({
      models: [modelDirOf(ctx, a), modelDirOf(ctx, b)],
      out: work,
      inputs: (stage.slice as { inputs: Array<'clean' | 'adv'> }).inputs,
      ...ckaSettings(ctx),
    });
  },
  async report(ctx, _stage, work) {
    await writeStudyOutputs(ctx, work);
  },
};

/** Run one stage (its inputs must be done) and commit it; a done stage is left as it is. */
export async function runStage(ctx: StudyContext, stage: Stage): Promise<'ran' | 'reused'> {
  if ((await stageStatus(ctx.studyDir, stage)) === 'done') return 'reused';
  for (const d of stage.deps) {
    const dep = ctx.plan.byId.get(d)!;
    if ((await stageStatus(ctx.studyDir, dep)) !== 'done') throw new InputError(`--stage ${stage.id}: its input ${d} is not done yet (run it first, or run the whole study)`);
  }
  await commitStage(ctx.studyDir, stage, ctx.plan.version, (work) => RUNNERS[stage.kind](ctx, stage, work));
  if (stage.kind === 'report') {
    // The study's result files sit at the top of the study directory, copied from the report stage.
    for (const f of ['report.html', 'study.arrow', 'summary.arrow', 'probes.arrow']) await copyAtomic(path.join(stageDir(ctx.studyDir, stage.id), f), path.join(ctx.studyDir, f));
  }
  return 'ran';
}

async function copyAtomic(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp-${process.pid}`;
  await fs.copyFile(from, tmp);
  await fs.rename(tmp, to);
}
