import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { parseStudyConfig, type StudyConfig } from './config.js';
import { checkConfig, expandCells } from './grid.js';
import { buildPlan, estimateSeconds, SECONDS_PER_PASS, type Stage } from './plan.js';
import { nativeSummary } from '../../backend/native/index.js';
import { PRESETS } from './presets.js';
import { stageStatus, type StageStatus } from './store.js';
import type { StudyContext } from './stages.js';

export { parseStudyConfig, studySchema, type StudyConfig } from './config.js';
export { expandCells, cellName, type Cell } from './grid.js';
export { buildPlan, type Stage, type StudyPlan } from './plan.js';
export { PRESETS } from './presets.js';
export { runStage, type StudyContext } from './stages.js';
export { runLocal } from './local.js';
export { writeSlurmScripts, submitSlurm } from './slurm.js';
export { writeK8sManifests } from './k8s.js';
export { readStageLog } from './store.js';

/** The config file a study directory keeps (what cluster tasks and `--jobs` children read). */
export const STUDY_CONFIG_FILE = 'study.json';

export interface LoadOptions {
  config?: string;
  preset?: string;
  out?: string;
  /** Replaces dataset.dataDir (the CIFAR presets need one). */
  dataDir?: string;
}

/** Read and validate the config (file or preset), expand the grid, plan the DAG. Writes nothing. */
export async function loadStudy(opts: LoadOptions): Promise<StudyContext> {
  if ((opts.config === undefined) === (opts.preset === undefined)) throw new InputError('study: give exactly one of --config FILE or --preset NAME');
  let json: unknown;
  let source: string;
  if (opts.preset !== undefined) {
    const preset = PRESETS[opts.preset];
    if (!preset) throw new InputError(`--preset: unknown preset '${opts.preset}' (expected one of ${Object.keys(PRESETS).join(', ')})`);
    json = structuredClone(preset.config);
    source = `preset ${opts.preset}`;
  } else {
    source = opts.config!;
    let text: string;
    try {
      text = await fs.readFile(source, 'utf8');
    } catch (err) {
      throw new InputError(`--config ${source}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new InputError(`${source}: not valid JSON (${(err as Error).message})`);
    }
  }
  if (opts.dataDir !== undefined && json && typeof json === 'object' && (json as { dataset?: unknown }).dataset && typeof (json as { dataset: unknown }).dataset === 'object') {
    ((json as { dataset: Record<string, unknown> }).dataset).dataDir = opts.dataDir;
  }
  const config: StudyConfig = parseStudyConfig(json, source);
  const cells = expandCells(config, source);
  await checkConfig(config, cells, source);
  const plan = buildPlan(config, cells);
  const studyDir = path.resolve(opts.out ?? path.join('out', 'study', config.name));
  return { config, plan, studyDir, source };
}

/** Make the study directory (refusing one that cannot be written) and store the config in it. */
export async function prepareStudyDir(ctx: StudyContext): Promise<string> {
  const existed = await fs.stat(ctx.studyDir).then(() => true, () => false);
  try {
    await fs.mkdir(ctx.studyDir, { recursive: true });
    await fs.access(ctx.studyDir, fs.constants.W_OK);
  } catch (err) {
    if (!existed) await fs.rm(ctx.studyDir, { recursive: true, force: true }).catch(() => {});
    throw new InputError(`--out ${ctx.studyDir}: cannot write there (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const file = path.join(ctx.studyDir, STUDY_CONFIG_FILE);
  const text = JSON.stringify(ctx.config, null, 2) + '\n';
  const old = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (old !== text) await writeFileAtomic(file, text);
  return file;
}

export interface PlannedStage {
  stage: Stage;
  status: StageStatus;
  seconds: number;
}

/** The cost model's seconds per sample pass on this machine's kernels (native when oneDNN is loaded). */
export function passSeconds(): { seconds: number; kernels: 'wasm' | 'native' } {
  const kernels = nativeSummary()?.onednn ? 'native' : 'wasm';
  return { seconds: SECONDS_PER_PASS[kernels], kernels };
}

export async function planStatus(ctx: StudyContext): Promise<PlannedStage[]> {
  const out: PlannedStage[] = [];
  const { seconds } = passSeconds();
  for (const stage of ctx.plan.stages) out.push({ stage, status: await stageStatus(ctx.studyDir, stage), seconds: estimateSeconds(ctx.config, stage.passes, seconds) });
  return out;
}

function duration(s: number): string {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** The dry run's text: every stage, its status and estimated cost, then totals. */
export function formatPlan(ctx: StudyContext, planned: PlannedStage[]): string {
  const lines = [`study ${ctx.config.name}: ${ctx.plan.cells.length} cells, ${ctx.plan.comparisons.length} comparisons, ${planned.length} stages -> ${ctx.studyDir}`];
  const w = Math.max(...planned.map((p) => p.stage.id.length));
  for (const p of planned) {
    lines.push(`  ${p.stage.id.padEnd(w)}  ${p.status.padEnd(7)}  level ${p.stage.level}  ~${duration(p.seconds)}  key ${p.stage.key}`);
  }
  const todo = planned.filter((p) => p.status !== 'done');
  const total = todo.reduce((s, p) => s + p.seconds, 0);
  lines.push(
    `${planned.length - todo.length} done, ${todo.filter((p) => p.status === 'pending').length} pending, ${todo.filter((p) => p.status === 'stale').length} stale; ` +
      `estimated ${duration(total)} of one CPU core for what is left (a model of ${(passSeconds().seconds * 1000).toFixed(1)} ms per sample pass of resnet-small on Fashion-MNIST on the ${passSeconds().kernels} kernels, scaled by width, depth and image size; a GPU is much faster)`,
  );
  return lines.join('\n');
}
