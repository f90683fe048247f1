import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { arrowColumns, runCli, spawnCli, tinyStudy, writeConfig } from './study-fixture.js';

/**
 * The study end to end on a 4-cell study: a local run (the reference), a run killed with SIGKILL
 * mid-way and resumed, and a run through a real single-node Slurm cluster (.ci/slurm-up.sh). The
 * resumed and the Slurm runs must give the same study.arrow as the uninterrupted local run.
 */
let root: string;
let config: string;
let reference: string;

before(async () => {
  root = await fs.mkdtemp(path.join(tmpdir(), 'robustsim-study-'));
  config = await writeConfig(root, tinyStudy());
  reference = path.join(root, 'local');
  const r = runCli(['study', '--config', config, '--out', reference, '--jobs', '1']);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

interface LogLine { event: string; stage: string; pid: number; time: string }
async function readLog(dir: string): Promise<LogLine[]> {
  return (await fs.readFile(path.join(dir, 'stages.log'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('a local study writes report.html, study.arrow and summary.arrow; re-running it does nothing', async () => {
  for (const f of ['report.html', 'study.arrow', 'summary.arrow', 'study.json']) await fs.access(path.join(reference, f));
  const cols = await arrowColumns(path.join(reference, 'study.arrow'));
  assert.deepEqual([...new Set(cols.cell)].sort(), ['cl-at', 'cl-st', 'sl-at', 'sl-st']);
  assert.deepEqual([...new Set(cols.matrix)].sort(), ['best-match-adv', 'best-match-clean', 'clean', 'clean-vs-adv', 'cross-adv', 'cross-clean', 'adv'].sort());
  const summary = await arrowColumns(path.join(reference, 'summary.arrow'));
  assert.equal(summary.kind.filter((k) => k === 'cell').length, 4);
  const probes = await arrowColumns(path.join(reference, 'probes.arrow'));
  assert.deepEqual([...new Set(probes.cell)].sort(), ['cl-at', 'cl-st', 'sl-at', 'sl-st']);
  for (const [k, v] of (probes.adversarial_accuracy as Array<number | string>).entries()) {
    assert.ok(typeof v === 'number' && v >= 0 && v <= (probes.clean_accuracy[k] as number) + 0.25, `${String(probes.cell[k])} ${String(probes.layer[k])}: adversarial accuracy ${v}`);
  }
  const before = (await readLog(reference)).length;
  const again = runCli(['study', '--config', config, '--out', reference]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /nothing to do/);
  assert.equal((await readLog(reference)).length, before, 'a second run started no stage');
  const dry = runCli(['study', '--config', config, '--out', reference, '--dry-run']);
  assert.match(dry.stdout, /report\s+done/);
  assert.doesNotMatch(dry.stdout, /^\s+\S+\s+(pending|stale)\s/m);
});

test('editing one cell setting re-runs only what depends on it (dry run: stale)', async () => {
  const edited = tinyStudy();
  (edited.training as { cl: unknown }).cl = { lr: 0.002 };
  const file = await writeConfig(path.join(root, 'edited'), edited);
  const dry = runCli(['study', '--config', file, '--out', reference, '--dry-run']);
  assert.equal(dry.code, 0, dry.stderr);
  const status = Object.fromEntries(dry.stdout.split('\n').filter((l) => /^\s+\S+\s+(done|pending|stale)/.test(l)).map((l) => l.trim().split(/\s+/).slice(0, 2)));
  assert.equal(status['train/sl-st'], 'done');
  assert.equal(status['cka/sl-at'], 'done');
  assert.equal(status['train/cl-st'], 'stale');
  assert.equal(status['cka/cl-at'], 'stale');
  assert.equal(status['cross/sl-st~cl-st'], 'stale');
  assert.equal(status.report, 'stale');
});

test('SIGKILL mid-way, then re-run: finished stages are not redone and the result equals the uninterrupted run', async () => {
  const dir = path.join(root, 'killed');
  const child = spawnCli(['study', '--config', config, '--out', dir, '--jobs', '1']);
  // Kill once three stages have finished (the log is written as each one commits).
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(async () => {
      const log = await readLog(dir).catch(() => [] as LogLine[]);
      if (log.filter((l) => l.event === 'done').length >= 3) {
        clearInterval(timer);
        child.kill('SIGKILL');
        resolve();
      }
    }, 100);
    child.on('exit', () => {
      clearInterval(timer);
      reject(new Error('the study finished before it could be killed'));
    });
  });
  await new Promise((r) => child.once('exit', r));
  const killedLog = await readLog(dir);
  const finished = killedLog.filter((l) => l.event === 'done').map((l) => l.stage);
  assert.ok(finished.length >= 3);
  const mtimes = new Map<string, number>();
  for (const s of finished) mtimes.set(s, (await fs.stat(path.join(dir, 'stages', ...s.split('/'), 'stage.json'))).mtimeMs);
  const r = runCli(['study', '--config', config, '--out', dir, '--jobs', '1']);
  assert.equal(r.code, 0, r.stderr);
  const after = (await readLog(dir)).slice(killedLog.length);
  for (const s of finished) {
    assert.ok(!after.some((l) => l.stage === s && l.event === 'start'), `${s} was started again after the kill`);
    assert.equal((await fs.stat(path.join(dir, 'stages', ...s.split('/'), 'stage.json'))).mtimeMs, mtimes.get(s));
  }
  assert.deepEqual(await arrowColumns(path.join(dir, 'study.arrow')), await arrowColumns(path.join(reference, 'study.arrow')));
  assert.deepEqual(await arrowColumns(path.join(dir, 'summary.arrow')), await arrowColumns(path.join(reference, 'summary.arrow')));
  assert.deepEqual(await arrowColumns(path.join(dir, 'probes.arrow')), await arrowColumns(path.join(reference, 'probes.arrow')));
});

function startSlurm(): { ok: true; conf: string } | { ok: false; why: string } {
  const r = spawnSync('bash', [path.resolve('.ci/slurm-up.sh')], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) return { ok: false, why: (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
  const m = /export SLURM_CONF=(\S+)/.exec(r.stdout);
  return m ? { ok: true, conf: m[1] } : { ok: false, why: `unexpected output: ${r.stdout}` };
}

test('--slurm: job arrays per level chained by afterok run the study on a real Slurm; study.arrow equals the local run', async (t) => {
  const slurm = startSlurm();
  if (!slurm.ok) {
    const message = `Slurm could not start on this machine: ${slurm.why}`;
    if (process.env.CI === 'true') assert.fail(`${message} (CI=true: the Slurm test must run in CI)`);
    t.skip(message);
    return;
  }
  process.env.SLURM_CONF = slurm.conf;
  const dir = path.join(root, 'slurm');
  const r = runCli(['study', '--config', config, '--out', dir, '--slurm']);
  assert.equal(r.code, 0, r.stderr);
  const jobs = [...r.stdout.matchAll(/level (\d+): job (\d+) \((\d+) task/g)].map((m) => ({ level: Number(m[1]), id: m[2], tasks: Number(m[3]) }));
  // Level 0: the 4 encoders; 1: cl's linear heads and sl's eval/probes/cka; 2: cl's eval/probes/cka and the 2 cross-scheme pairs; 3: report.
  assert.deepEqual(jobs.map((j) => j.level), [0, 1, 2, 3], r.stdout);
  assert.deepEqual(jobs.map((j) => j.tasks), [4, 8, 8, 1]);
  const level1 = await fs.readFile(path.join(dir, 'slurm', 'level-1.sh'), 'utf8');
  assert.match(level1, /#SBATCH --array=0-7/);
  const deadline = Date.now() + 540_000;
  for (;;) {
    if (await fs.stat(path.join(dir, 'report.html')).then(() => true, () => false)) break;
    const q = spawnSync('squeue', ['-h', '-j', jobs.map((j) => j.id).join(',')], { encoding: 'utf8' });
    if (q.stdout.trim() === '' || Date.now() > deadline) {
      const logs = await fs.readdir(path.join(dir, 'slurm')).then((fs_) => fs_.filter((f) => f.endsWith('.out')));
      const tail = await Promise.all(logs.slice(0, 3).map((f) => fs.readFile(path.join(dir, 'slurm', f), 'utf8').then((s) => `${f}: ${s.slice(-400)}`)));
      assert.fail(`the Slurm jobs ended without a report (squeue: ${q.stdout.trim() || 'empty'}): ${tail.join(' | ')}`);
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
  // Every stage ran in a Slurm task, and no stage started before all of its level's predecessors finished.
  const log = await readLog(dir);
  const done = new Map(log.filter((l) => l.event === 'done').map((l) => [l.stage, Date.parse(l.time)]));
  const starts = log.filter((l) => l.event === 'start');
  assert.equal(starts.length, 21);
  const lastTrain = Math.max(...[...done].filter(([s]) => s.startsWith('train/')).map(([, t]) => t));
  for (const s of starts.filter((l) => !l.stage.startsWith('train/'))) assert.ok(Date.parse(s.time) >= lastTrain, `${s.stage} started before level 0 finished`);
  assert.deepEqual(await arrowColumns(path.join(dir, 'study.arrow')), await arrowColumns(path.join(reference, 'study.arrow')));
  assert.deepEqual(await arrowColumns(path.join(dir, 'summary.arrow')), await arrowColumns(path.join(reference, 'summary.arrow')));
  assert.deepEqual(await arrowColumns(path.join(dir, 'probes.arrow')), await arrowColumns(path.join(reference, 'probes.arrow')));
});
