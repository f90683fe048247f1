import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { InputError } from '../../errors.js';
import { activeBackend } from '../../backend/index.js';
import type { Stage } from './plan.js';
import { runStage, type StudyContext } from './stages.js';
import { stageStatus } from './store.js';

/**
 * The local runner: runs every stage that is not done, inputs first. With jobs = 1 the stages run in
 * this process, one after another; with jobs > 1 up to `jobs` independent stages run at once, each in
 * its own `robustsim study --stage ID` process (one backend instance per process, one core each on
 * wasm), exactly as a cluster task would.
 */
export interface LocalRunOptions {
  jobs: number;
  /** The config file the child processes read (the study directory's study.json). */
  configFile: string;
  onStage?: (stage: Stage, event: 'start' | 'done' | 'reused') => void;
}

export const CLI_MAIN = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

export function stageCommand(configFile: string, studyDir: string, id: string, backend?: string): string[] {
  return [CLI_MAIN, ...(backend ? ['--backend', backend] : []), 'study', '--config', configFile, '--out', studyDir, '--stage', id];
}

function runChild(ctx: StudyContext, opts: LocalRunOptions, stage: Stage): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, stageCommand(opts.configFile, ctx.studyDir, stage.id, activeBackend()), { stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.length > 20000) err = err.slice(-20000);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new InputError(`stage ${stage.id} failed (${signal ?? `exit ${code}`}): ${err.trim().split('\n').filter((l) => !l.startsWith('backend:')).slice(-1)[0] ?? ''}`));
    });
  });
}

export async function runLocal(ctx: StudyContext, opts: LocalRunOptions): Promise<{ ran: string[]; reused: string[] }> {
  if (!Number.isInteger(opts.jobs) || opts.jobs < 1) throw new InputError(`--jobs: expected a positive integer, got ${opts.jobs}`);
  const ran: string[] = [];
  const reused: string[] = [];
  const status = new Map<string, 'done' | 'waiting' | 'running'>();
  for (const s of ctx.plan.stages) {
    const st = await stageStatus(ctx.studyDir, s);
    status.set(s.id, st === 'done' ? 'done' : 'waiting');
    if (st === 'done') {
      reused.push(s.id);
      opts.onStage?.(s, 'reused');
    }
  }
  if (opts.jobs === 1) {
    for (const s of ctx.plan.stages) {
      if (status.get(s.id) === 'done') continue;
      opts.onStage?.(s, 'start');
      await runStage(ctx, s);
      status.set(s.id, 'done');
      ran.push(s.id);
      opts.onStage?.(s, 'done');
    }
    return { ran, reused };
  }
  const running = new Map<string, Promise<string>>();
  let failure: unknown;
  for (;;) {
    if (failure === undefined) {
      for (const s of ctx.plan.stages) {
        if (running.size >= opts.jobs) break;
        if (status.get(s.id) !== 'waiting' || !s.deps.every((d) => status.get(d) === 'done')) continue;
        status.set(s.id, 'running');
        opts.onStage?.(s, 'start');
        running.set(s.id, runChild(ctx, opts, s).then(() => s.id, (e) => { failure ??= e; return s.id; }));
      }
    }
    if (running.size === 0) break;
    const id = await Promise.race(running.values());
    running.delete(id);
    if ((await stageStatus(ctx.studyDir, ctx.plan.byId.get(id)!)) === 'done') {
      status.set(id, 'done');
      ran.push(id);
      opts.onStage?.(ctx.plan.byId.get(id)!, 'done');
    }
  }
  if (failure !== undefined) throw failure;
  return { ran, reused };
}
