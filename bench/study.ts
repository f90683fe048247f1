import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { PRESETS } from '../src/pipeline/study/presets.js';

/**
 * `npm run bench:study`: runs the fmnist-quick preset (`robustsim study --preset fmnist-quick
 * --jobs 2`), then writes docs/study.md: the machine and its load, the wall time per stage, and the
 * findings table (each SPEC finding, what the study reports, what this run measured with its 95%
 * bootstrap interval, and whether it holds at this scale, by the criterion written beside it).
 * Re-running reuses finished stages (their recorded times are reported); `--fresh` starts over.
 */
const out = path.resolve(process.env.STUDY_OUT ?? 'out/bench-study');
const jobs = Number(process.env.STUDY_JOBS ?? 2);
const cli = path.resolve('dist/src/cli/main.js');
if (process.argv.includes('--fresh')) await fs.rm(out, { recursive: true, force: true });

const load = () => os.loadavg().map((x) => x.toFixed(2)).join(', ');
const cpu = (() => {
  try {
    return /Model name:\s*(.+)/.exec(execFileSync('lscpu', { encoding: 'utf8' }))?.[1]?.trim() ?? os.cpus()[0]?.model;
  } catch {
    return os.cpus()[0]?.model ?? 'unknown CPU';
  }
})();
const loadBefore = load();
const t0 = Date.now();
let maxLoad = 0;
const sampler = setInterval(() => (maxLoad = Math.max(maxLoad, os.loadavg()[0])), 5000);
await new Promise<void>((resolve, reject) => {
  const child = spawn(process.execPath, [cli, '--backend', 'wasm', 'study', '--preset', 'fmnist-quick', '--out', out, '--jobs', String(jobs)], { stdio: 'inherit' });
  child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`study exited with ${code}`))));
});
clearInterval(sampler);
const wall = (Date.now() - t0) / 1000;
const loadAfter = load();

interface StageRec { id: string; kind: string; seconds: number; finished: string; host: string }
const stages: StageRec[] = [];
async function walk(dir: string): Promise<void> {
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const rec = await fs.readFile(path.join(p, 'stage.json'), 'utf8').then((t) => JSON.parse(t) as StageRec, () => undefined);
      if (rec) stages.push(rec);
      else await walk(p);
    }
  }
}
await walk(path.join(out, 'stages'));
const log = (await fs.readFile(path.join(out, 'stages.log'), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; time: string });
const starts = log.filter((l) => l.event === 'start').map((l) => Date.parse(l.time));
const ends = log.filter((l) => l.event === 'done').map((l) => Date.parse(l.time));
const studyWall = (Math.max(...ends) - Math.min(...starts)) / 1000;

const table = async (f: string) => arrow.tableFromIPC(await fs.readFile(path.join(out, f)));
const summary = (await table('summary.arrow')).toArray().map((r) => r.toJSON() as Record<string, any>);
const study = (await table('study.arrow')).toArray().map((r) => r.toJSON() as Record<string, any>);
const cell = (name: string) => summary.find((r) => r.kind === 'cell' && r.cell === name)!;
const pair = (a: string, b: string) => summary.find((r) => r.kind === 'comparison' && r.cell === a && r.cell_b === b)!;
const iv = (r: Record<string, any>, k: string) => `${r[k].toFixed(3)} [${r[`${k}_ci_low`].toFixed(3)}, ${r[`${k}_ci_high`].toFixed(3)}]`;
const entry = (c: string, m: string, row: string, col: string) => study.find((r) => r.cell === c && r.cell_b === '' && r.matrix === m && r.row === row && r.col === col)!;
const above = (a: Record<string, any>, b: Record<string, any>, k: string) => a[`${k}_ci_low`] > b[`${k}_ci_high`];
const verdict = (ok: boolean[]) => (ok.every(Boolean) ? 'holds' : ok.some(Boolean) ? `holds for ${ok.filter(Boolean).length} of ${ok.length}` : 'does not hold');
const schemes = ['sl', 'cl', 'scl'];

const findings: string[][] = [];
{
  const ok = schemes.map((s) => {
    const stem = entry(`${s}-st`, 'clean-vs-adv', 'stem', 'stem');
    const pool = entry(`${s}-st`, 'clean-vs-adv', 'pool', 'pool');
    return pool.ci_high < stem.ci_low;
  });
  findings.push([
    '1. ST separates clean and adversarial representations, worst near the end',
    'pooled clean-vs-adv CKA 0.02-0.06 (SL/CL/SCL 0.022/0.058/0.030)',
    schemes.map((s) => `${s}-st: stem ${entry(`${s}-st`, 'clean-vs-adv', 'stem', 'stem').cka.toFixed(3)}, pool ${iv(cell(`${s}-st`), 'pooled_clean_vs_adv')}`).join('; '),
    `${verdict(ok)} (criterion: pool interval below stem interval, per scheme)`,
  ]);
}
{
  const ok = schemes.map((s) => above(cell(`${s}-at`), cell(`${s}-st`), 'pooled_clean_vs_adv'));
  findings.push([
    '2a. AT raises clean-vs-adv similarity',
    'pooled 0.88-0.97 after AT (0.888/0.876/0.965)',
    schemes.map((s) => `${s}-at pool ${iv(cell(`${s}-at`), 'pooled_clean_vs_adv')}`).join('; '),
    `${verdict(ok)} (criterion: AT interval above ST interval, per scheme)`,
  ]);
  const ok2 = schemes.map((s) => above(cell(`${s}-at`), cell(`${s}-st`), 'redundancy_clean'));
  findings.push([
    '2b. AT raises the similarity between layers ("redundancy")',
    'read off heatmaps (no number)',
    schemes.map((s) => `${s}: ST ${iv(cell(`${s}-st`), 'redundancy_clean')} -> AT ${iv(cell(`${s}-at`), 'redundancy_clean')}`).join('; '),
    `${verdict(ok2)} (criterion: AT redundancy interval above ST's, per scheme)`,
  ]);
}
{
  const lo = cell('sl-at-eps12.75');
  const mid = cell('sl-at');
  const hi = cell('sl-at-eps51');
  findings.push([
    '3. A larger training eps raises clean/adv similarity, mostly late',
    'CL pooled 0.597 (2/255) -> 0.924 (16/255)',
    `SL-AT pooled: eps 0.05 ${iv(lo, 'pooled_clean_vs_adv')}, 0.1 ${iv(mid, 'pooled_clean_vs_adv')}, 0.2 ${iv(hi, 'pooled_clean_vs_adv')}; stem: ${[lo, mid, hi].map((c) => entry(c.cell, 'clean-vs-adv', 'stem', 'stem').cka.toFixed(3)).join(' / ')}`,
    `${verdict([above(hi, lo, 'pooled_clean_vs_adv')])} (criterion: eps 0.2 interval above eps 0.05; the sweep is on SL here, not CL)`,
  ]);
}
{
  const pairs: Array<[string, string]> = [['sl', 'cl'], ['sl', 'scl'], ['cl', 'scl']];
  const ok = pairs.map(([a, b]) => above(pair(`${a}-at`, `${b}-at`), pair(`${a}-st`, `${b}-st`), 'universality_adv'));
  findings.push([
    '4. After AT, schemes converge (universality, adversarial inputs)',
    'cross-scheme diagonal mean ST -> AT: SL-CL 0.39 -> 0.70, SL-SCL 0.45 -> 0.83, SCL-CL 0.47 -> 0.73',
    pairs.map(([a, b]) => `${a}-${b}: ${iv(pair(`${a}-st`, `${b}-st`), 'universality_adv')} -> ${iv(pair(`${a}-at`, `${b}-at`), 'universality_adv')}`).join('; '),
    `${verdict(ok)} (criterion: AT interval above ST interval, per pair)`,
  ]);
}
{
  const drop = (s: string) => cell(`${s}-at`).redundancy_clean - cell(`${s}-fat`).redundancy_clean;
  const clDrops = cell('cl-fat').redundancy_clean_ci_high < cell('cl-at').redundancy_clean_ci_low;
  const more = drop('cl') > drop('sl') && drop('cl') > drop('scl');
  findings.push([
    '5. Full adversarial fine-tuning reduces redundancy for CL much more than for SCL or SL',
    'read off heatmaps (no number)',
    schemes.map((s) => `${s}: AT ${iv(cell(`${s}-at`), 'redundancy_clean')} -> FAT ${iv(cell(`${s}-fat`), 'redundancy_clean')} (drop ${drop(s).toFixed(3)})`).join('; '),
    `${clDrops && more ? 'holds' : clDrops || more ? 'holds in part' : 'does not hold'} (criterion: CL's FAT interval below its AT interval, and CL's drop the largest)`,
  ]);
}

const kinds = new Map<string, { n: number; s: number }>();
for (const s of stages) {
  const k = kinds.get(s.kind) ?? { n: 0, s: 0 };
  k.n++;
  k.s += s.seconds;
  kinds.set(s.kind, k);
}
const probes = (await table('probes.arrow')).toArray().map((r) => r.toJSON() as Record<string, any>);
const probeLayers = [...new Set(probes.map((p) => p.layer as string))];
const probeRows = [...new Set(probes.map((p) => p.cell as string))].map((c) => {
  const at = (l: string) => probes.find((p) => p.cell === c && p.layer === l);
  return `| ${c} | ${probeLayers.map((l) => { const p = at(l); return p ? `${p.clean_accuracy.toFixed(2)} / ${Number.isFinite(p.adversarial_accuracy) ? p.adversarial_accuracy.toFixed(2) : '—'}` : '—'; }).join(' | ')} |`;
});
const preset = PRESETS['fmnist-quick'].config as { training: { all: { limit: number; epochs: number } }; cka: { n: number; batchSize: number }; probes: { adversarialN: number } };
// Quiet = nothing else running when the study started (its own jobs and their native threads then make the load).
const quiet = Number(loadBefore.split(',')[0]) < 1;
const acc = summary.filter((r) => r.kind === 'cell').map((r) => `| ${r.cell} | ${r.clean_accuracy.toFixed(3)} | ${Number.isFinite(r.tm1_accuracy) ? r.tm1_accuracy.toFixed(3) : '—'} | ${r.tm2_accuracy.toFixed(3)} | ${iv(r, 'redundancy_clean')} | ${iv(r, 'block_clean')} | ${iv(r, 'pooled_clean_vs_adv')} | ${r.duplicate_taps || 'none'} |`);
const md = `<!-- measured section: written by \`npm run bench:study\` (bench/study.ts); do not edit by hand -->
## Measured run: fmnist-quick

${cpu}, ${os.cpus().length} cores, Node ${process.version}, wasm backend, \`--jobs ${jobs}\`. Load average (1, 5, 15 min)
before: ${loadBefore}; after: ${loadAfter}; highest 1-min load seen during the run: ${maxLoad.toFixed(2)} (${quiet ? `nothing else was running when it started: the load is the study's own ${jobs} jobs and their native threads` : 'the machine was shared with other work, so these times are slower than on a quiet machine'}). Bench wall time this call: ${wall.toFixed(0)} s; first stage start to
last stage end, from stages.log: ${studyWall.toFixed(0)} s (${(studyWall / 60).toFixed(1)} min).

### Wall time per stage kind (sum over stages; each stage one process, ${jobs} at a time)

| kind | stages | seconds (sum) | mean per stage |
|---|---|---|---|
${[...kinds].map(([k, v]) => `| ${k} | ${v.n} | ${v.s.toFixed(0)} | ${(v.s / v.n).toFixed(1)} |`).join('\n')}

<details><summary>every stage</summary>

| stage | seconds |
|---|---|
${stages.map((s) => `| ${s.id} | ${s.seconds.toFixed(1)} |`).join('\n')}

</details>

### Accuracy and scores per cell (95% bootstrap intervals over minibatches)

| cell | clean | TM-I | TM-II | redundancy (clean) | block score (clean) | pooled clean-vs-adv | duplicate taps |
|---|---|---|---|---|---|---|---|
${acc.join('\n')}

### Per-layer linear probes (test accuracy, clean / under white-box PGD on the probe)

| cell | ${probeLayers.join(' | ')} |
|---|${probeLayers.map(() => '---').join('|')}|
${probeRows.join('\n')}

### Findings

| finding (SPEC.md) | what the study reports | what we measured (95% interval) | at this scale |
|---|---|---|---|
${findings.map((f) => `| ${f.join(' | ')} |`).join('\n')}

This is a tiny run (resnet-small of width 16, ${preset.training.all.limit} Fashion-MNIST training images, ${preset.training.all.epochs} epoch(s), eps 0.1, CKA on ${preset.cka.n} test images
in ${preset.cka.n / preset.cka.batchSize} minibatches of ${preset.cka.batchSize}; probes attacked on ${preset.probes.adversarialN} test images): a finding that does not hold here is a result at this scale, not a statement about the reference study.
The intervals are over minibatches of the CKA evaluation only; they do not include training randomness (one seed per cell).
`;
const doc = path.resolve('docs/study.md');
const existing = await fs.readFile(doc, 'utf8').catch(() => '');
const marker = '<!-- measured section';
const head = existing.includes(marker) ? existing.slice(0, existing.indexOf(marker)) : existing;
await fs.writeFile(doc, head + md);
console.log(`wrote ${doc} (${findings.length} findings, ${stages.length} stages, ${studyWall.toFixed(0)} s)`);
