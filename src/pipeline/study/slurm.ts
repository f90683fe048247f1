import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { InputError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic.js';
import type { Stage } from './plan.js';
import { stageCommand } from './local.js';
import type { StudyContext } from './stages.js';
import { stageStatus } from './store.js';

const run = promisify(execFile);

/**
 * The Slurm runner: one job array per level of the DAG, one array task per pending stage of that
 * level, each level waiting for the previous one with --dependency=afterok. Every task runs
 * `robustsim study --config <study>/study.json --stage ID` in the study directory, which must be on a
 * file system the compute nodes share.
 */
export interface SlurmLevel {
  level: number;
  stages: Stage[];
  script: string;
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function pendingByLevel(ctx: StudyContext): Promise<Stage[][]> {
  const levels: Stage[][] = [];
  for (const s of ctx.plan.stages) {
    if ((await stageStatus(ctx.studyDir, s)) === 'done') continue;
    (levels[s.level] ??= []).push(s);
  }
  return levels.filter((l) => l && l.length > 0);
}

export async function writeSlurmScripts(ctx: StudyContext, configFile: string): Promise<SlurmLevel[]> {
  const dir = path.join(ctx.studyDir, 'slurm');
  await fs.mkdir(dir, { recursive: true });
  const o = ctx.config.execution.slurm;
  const out: SlurmLevel[] = [];
  for (const stages of await pendingByLevel(ctx)) {
    const level = stages[0].level;
    const script = path.join(dir, `level-${level}.sh`);
    const cmd = stageCommand(configFile, ctx.studyDir, '__STAGE__');
    const lines = [
      '#!/bin/bash',
      `#SBATCH --job-name=${ctx.config.name}-L${level}`,
      `#SBATCH --array=0-${stages.length - 1}`,
      `#SBATCH --output=${path.join(dir, `level-${level}-%a.out`)}`,
      `#SBATCH --chdir=${ctx.studyDir}`,
      ...(o?.partition ? [`#SBATCH --partition=${o.partition}`] : []),
      ...(o?.time ? [`#SBATCH --time=${o.time}`] : []),
      `#SBATCH --cpus-per-task=${o?.cpusPerTask ?? 1}`,
      ...(o?.mem ? [`#SBATCH --mem=${o.mem}`] : []),
      ...(o?.gres ? [`#SBATCH --gres=${o.gres}`] : []),
      ...(o?.account ? [`#SBATCH --account=${o.account}`] : []),
      ...(o?.extra ?? []).map((e) => `#SBATCH ${e}`),
      'set -euo pipefail',
      `STAGES=(${stages.map((s) => q(s.id)).join(' ')})`,
      `exec ${q(process.execPath)} ${cmd.map((c) => (c === '__STAGE__' ? '"${STAGES[$SLURM_ARRAY_TASK_ID]}"' : q(c))).join(' ')}`,
      '',
    ];
    await writeFileAtomic(script, lines.join('\n'));
    await fs.chmod(script, 0o755);
    out.push({ level, stages, script });
  }
  return out;
}

/** Submit the levels in order, each after the previous one; returns the job ids. */
export async function submitSlurm(levels: SlurmLevel[], sbatch = 'sbatch'): Promise<string[]> {
  const ids: string[] = [];
  for (const l of levels) {
    const args = ['--parsable', ...(ids.length ? [`--dependency=afterok:${ids[ids.length - 1]}`, '--kill-on-invalid-dep=yes'] : []), l.script];
    let stdout: string;
    try {
      ({ stdout } = await run(sbatch, args));
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      throw new InputError(`--slurm: sbatch failed for ${l.script}: ${e.code === 'ENOENT' ? 'sbatch not found (is Slurm installed here?)' : (e.stderr ?? e.message).trim()}`);
    }
    ids.push(stdout.trim().split(';')[0]);
  }
  return ids;
}
