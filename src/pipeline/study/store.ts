import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../../util/atomic.js';
import type { Stage } from './plan.js';

/**
 * The study directory's stage store. A stage runs in `stages/<id>.partial-<key>` (so a killed training
 * stage resumes from its last checkpoint there, and a partial of another key is never mistaken for
 * it), writes `stage.json` last, and is then renamed to `stages/<id>`: a reader sees a stage either
 * complete, with the key it was made with, or not at all. `stages.log` records, one JSON line per
 * event, every stage started, finished or reused, by which process on which host.
 */
export type StageStatus = 'done' | 'pending' | 'stale';

export const STAGE_JSON = 'stage.json';
export const STAGE_LOG = 'stages.log';

export interface StageRecord {
  id: string;
  key: string;
  kind: string;
  version: string;
  slice: Record<string, unknown>;
  inputs: Record<string, string>;
  seconds: number;
  finished: string;
  host: string;
}

export function stageDir(studyDir: string, id: string): string {
  return path.join(studyDir, 'stages', ...id.split('/'));
}

export function partialDir(studyDir: string, stage: Stage): string {
  return `${stageDir(studyDir, stage.id)}.partial-${stage.key}`;
}

export async function readStageRecord(studyDir: string, id: string): Promise<StageRecord | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(stageDir(studyDir, id), STAGE_JSON), 'utf8')) as StageRecord;
  } catch {
    return undefined;
  }
}

export async function stageStatus(studyDir: string, stage: Stage): Promise<StageStatus> {
  const rec = await readStageRecord(studyDir, stage.id);
  if (!rec) return 'pending';
  return rec.key === stage.key ? 'done' : 'stale';
}

export interface LogEvent {
  event: 'start' | 'done' | 'reused' | 'failed';
  stage: string;
  key: string;
  seconds?: number;
  error?: string;
}

/** Append one line; O_APPEND writes this small are not interleaved between processes. */
export async function logStage(studyDir: string, e: LogEvent): Promise<void> {
  const line = JSON.stringify({ time: new Date().toISOString(), host: os.hostname(), pid: process.pid, ...e }) + '\n';
  await fs.mkdir(studyDir, { recursive: true });
  await fs.appendFile(path.join(studyDir, STAGE_LOG), line);
}

export async function readStageLog(studyDir: string): Promise<Array<LogEvent & { time: string; pid: number; host: string }>> {
  const text = await fs.readFile(path.join(studyDir, STAGE_LOG), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/**
 * Run `fill` for a stage in its partial directory and commit it. The previous (stale) output, if
 * any, is replaced; partial directories of other keys of the same stage are removed.
 */
export async function commitStage(studyDir: string, stage: Stage, version: string, fill: (workDir: string) => Promise<void>): Promise<StageRecord> {
  const dir = stageDir(studyDir, stage.id);
  const work = partialDir(studyDir, stage);
  await fs.mkdir(work, { recursive: true });
  const t0 = Date.now();
  await logStage(studyDir, { event: 'start', stage: stage.id, key: stage.key });
  try {
    await fill(work);
  } catch (err) {
    await logStage(studyDir, { event: 'failed', stage: stage.id, key: stage.key, error: err instanceof Error ? err.message.split('\n')[0] : String(err) });
    throw err;
  }
  const inputs: Record<string, string> = {};
  const record: StageRecord = {
    id: stage.id,
    key: stage.key,
    kind: stage.kind,
    version,
    slice: stage.slice,
    inputs,
    seconds: (Date.now() - t0) / 1000,
    finished: new Date().toISOString(),
    host: os.hostname(),
  };
  for (const d of stage.deps) inputs[d] = (await readStageRecord(studyDir, d))?.key ?? '';
  await writeFileAtomic(path.join(work, STAGE_JSON), JSON.stringify(record, null, 1) + '\n');
  const old = `${dir}.old-${process.pid}`;
  const had = await fs.stat(dir).then(() => true, () => false);
  if (had) await fs.rename(dir, old);
  await fs.rename(work, dir);
  if (had) await fs.rm(old, { recursive: true, force: true });
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  for (const f of await fs.readdir(parent)) {
    if (f.startsWith(`${base}.partial-`)) await fs.rm(path.join(parent, f), { recursive: true, force: true });
  }
  await logStage(studyDir, { event: 'done', stage: stage.id, key: stage.key, seconds: record.seconds });
  return record;
}
