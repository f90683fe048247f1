import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';
import { readEval } from '../../formats/eval.js';
import { readAccumulators } from '../../formats/accumulators.js';
import { withMetadata, writeArrowFile } from '../../formats/arrow-file.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { bestMatch, blockScore, duplicateTaps, matricesOf, meanDiagonal, meanOffDiagonal, scoreInterval, strongestBlock, type HsicSums, type Interval, type Matrix } from '../../cka/scores/scores.js';
import { studyReportHtml } from './report.js';
import { epsNumber } from './config.js';
import type { Cell } from './grid.js';
import type { StudyContext } from './context.js';
import type { StudyResults, CellResult, MatrixResult, ComparisonResult } from './results.js';

export type { StudyResults, CellResult, MatrixResult, ComparisonResult } from './results.js';
import { stageDir } from './store.js';
import type { Comparison } from './plan.js';

function sumsOf(state: { sets: string[]; hsic: Float64Array; boot: Float64Array; config: { bootstrap: number } }): HsicSums {
  return { sets: state.sets, hsic: state.hsic, boot: state.boot, replicates: state.config.bootstrap };
}

function entryIntervals(point: Matrix, replicates: Matrix[], level: number): { low: Float64Array; high: Float64Array } {
  const low = new Float64Array(point.values.length).fill(NaN);
  const high = new Float64Array(point.values.length).fill(NaN);
  for (let k = 0; k < point.values.length; k++) {
    const iv = scoreInterval((m) => m.values[k], point, replicates, level);
    low[k] = iv.low;
    high[k] = iv.high;
  }
  return { low, high };
}

function matrixResult(sums: HsicSums, name: string, rowSets: string[], colSets: string[], level: number, strip: (s: string) => string): MatrixResult & { replicates: Matrix[] } {
  const { point, replicates } = matricesOf(sums, rowSets, colSets);
  return { name, rows: rowSets.map(strip), cols: colSets.map(strip), point, replicates, ...entryIntervals(point, replicates, level) };
}

const layerOf = (s: string) => s.slice(0, s.lastIndexOf('@'));

async function cellResult(ctx: StudyContext, cell: Cell, level: number): Promise<CellResult> {
  const { state } = await readAccumulators(stageDir(ctx.studyDir, `cka/${cell.name}`));
  const sums = sumsOf(state);
  const clean = state.sets.filter((s) => s.endsWith('@clean'));
  const adv = state.sets.filter((s) => s.endsWith('@adv'));
  const layers = clean.map(layerOf);
  const mats = [
    matrixResult(sums, 'clean', clean, clean, level, layerOf),
    matrixResult(sums, 'adv', adv, adv, level, layerOf),
    matrixResult(sums, 'clean-vs-adv', clean, adv, level, layerOf),
  ];
  const duplicates = duplicateTaps(sums, clean);
  const skip = new Set(duplicates.keys());
  const scores: Record<string, Interval> = {};
  for (const m of mats.slice(0, 2)) {
    scores[`redundancy_${m.name}`] = scoreInterval((x) => meanOffDiagonal(x, skip), m.point, m.replicates, level);
    scores[`block_${m.name}`] = scoreInterval((x) => blockScore(x, skip), m.point, m.replicates, level);
  }
  const cva = mats[2];
  const diagonal = layers.map((layer, i) => ({ layer, ...scoreInterval((x) => x.values[i * x.cols + i], cva.point, cva.replicates, level) }));
  const pool = layers.indexOf('pool');
  if (pool >= 0) scores.pooled_clean_vs_adv = diagonal[pool];
  scores.mean_clean_vs_adv = scoreInterval((x) => meanDiagonal(x, skip), cva.point, cva.replicates, level);
  const b = strongestBlock(mats[0].point, skip);
  const accuracy: Record<string, number> = {};
  let evalRows: CellResult['evalRows'] = [];
  if (ctx.config.eval) {
    const { rows } = await readEval(path.join(stageDir(ctx.studyDir, `eval/${cell.name}`), 'eval.arrow'));
    evalRows = rows.map((r) => ({ attack: r.attack, eps: r.eps, accuracy: r.accuracy, n: r.n }));
    const eps0 = epsNumber(ctx.config.eval.eps[0]);
    const near = (x: number) => Math.abs(x - eps0) < 1e-9;
    const steps = ctx.config.eval.threatSteps;
    accuracy.clean = rows.find((r) => r.attack === 'clean')?.accuracy ?? NaN;
    accuracy.tm1 = rows.find((r) => r.attack === `contrastive${steps}` && near(r.eps))?.accuracy ?? NaN;
    accuracy.tm2 = rows.find((r) => r.attack === `pgd${steps}` && near(r.eps))?.accuracy ?? NaN;
  }
  let probes: CellResult['probes'] = [];
  if (ctx.config.probes) {
    const j = JSON.parse(await fs.readFile(path.join(stageDir(ctx.studyDir, `probes/${cell.name}`), 'probes.json'), 'utf8')) as { results: CellResult['probes'] };
    probes = j.results.map((r) => ({ layer: r.layer, dim: r.dim, testAccuracy: r.testAccuracy, trainAccuracy: r.trainAccuracy, adversarialAccuracy: r.adversarialAccuracy }));
  }
  return {
    cell,
    layers,
    matrices: mats.map(({ replicates: _r, ...m }) => m),
    duplicates,
    scores,
    block: b ? { start: layers[b.start], end: layers[b.end] } : undefined,
    diagonal,
    accuracy,
    evalRows,
    probes,
  };
}

async function comparisonResult(ctx: StudyContext, cmp: Comparison, level: number): Promise<ComparisonResult> {
  const { state } = await readAccumulators(stageDir(ctx.studyDir, `cross/${cmp.a}~${cmp.b}`));
  const sums = sumsOf(state);
  const strip = (s: string) => layerOf(s.slice(s.indexOf(':') + 1));
  const matrices: MatrixResult[] = [];
  const scores: Record<string, Interval> = {};
  const best: ComparisonResult['bestMatch'] = {};
  let layers: string[] = [];
  for (const input of cmp.inputs) {
    const rows = state.sets.filter((s) => s.startsWith('a:') && s.endsWith(`@${input}`));
    const colsAll = state.sets.filter((s) => s.startsWith('b:') && s.endsWith(`@${input}`));
    // Layer i of A against layer i of B: both models share the architecture, so tap names match.
    const cols = rows.map((r) => `b:${r.slice(2)}`).filter((c) => colsAll.includes(c));
    layers = rows.map(strip);
    const m = matrixResult(sums, `cross-${input}`, rows, cols, level, strip);
    const { replicates, ...kept } = m;
    matrices.push(kept);
    scores[`universality_${input}`] = scoreInterval((x) => meanDiagonal(x), m.point, replicates, level);
    const pointBest = bestMatch(m.point);
    best[input] = layers.map((layer, i) => ({
      layer,
      match: m.cols[pointBest.index[i]],
      ...scoreInterval((x) => bestMatch(x).value[i], m.point, replicates, level),
    }));
  }
  return { comparison: cmp, layers, matrices, scores, bestMatch: best };
}

export async function gatherResults(ctx: StudyContext): Promise<StudyResults> {
  const level = 0.95;
  const cells: CellResult[] = [];
  for (const c of ctx.plan.cells) cells.push(await cellResult(ctx, c, level));
  const comparisons: ComparisonResult[] = [];
  for (const cmp of ctx.plan.comparisons) comparisons.push(await comparisonResult(ctx, cmp, level));
  return { name: ctx.config.name, description: ctx.config.description, cells, comparisons, level };
}

/** study.arrow: cell, cell_b ('' within a cell), matrix, row, col, cka, ci_low, ci_high. */
export function studyTable(r: StudyResults): arrow.Table {
  const cell: string[] = [];
  const cellB: string[] = [];
  const matrix: string[] = [];
  const row: string[] = [];
  const col: string[] = [];
  const cka: number[] = [];
  const lo: number[] = [];
  const hi: number[] = [];
  const push = (a: string, b: string, m: MatrixResult) => {
    for (let i = 0; i < m.rows.length; i++) {
      for (let j = 0; j < m.cols.length; j++) {
        const k = i * m.cols.length + j;
        cell.push(a);
        cellB.push(b);
        matrix.push(m.name);
        row.push(m.rows[i]);
        col.push(m.cols[j]);
        cka.push(m.point.values[k]);
        lo.push(m.low[k]);
        hi.push(m.high[k]);
      }
    }
  };
  for (const c of r.cells) for (const m of c.matrices) push(c.cell.name, '', m);
  for (const c of r.comparisons) {
    for (const m of c.matrices) push(c.comparison.a, c.comparison.b, m);
    for (const [input, curve] of Object.entries(c.bestMatch)) {
      for (const p of curve) {
        cell.push(c.comparison.a);
        cellB.push(c.comparison.b);
        matrix.push(`best-match-${input}`);
        row.push(p.layer);
        col.push(p.match);
        cka.push(p.value);
        lo.push(p.low);
        hi.push(p.high);
      }
    }
  }
  const t = arrow.tableFromArrays({
    cell,
    cell_b: cellB,
    matrix,
    row,
    col,
    cka: Float64Array.from(cka),
    ci_low: Float64Array.from(lo),
    ci_high: Float64Array.from(hi),
  });
  return withMetadata(t, { 'robustsim.study': r.name, 'robustsim.level': String(r.level), 'robustsim.format': 'robustsim-study/1' });
}

export const SCORE_COLUMNS = ['redundancy_clean', 'redundancy_adv', 'block_clean', 'block_adv', 'pooled_clean_vs_adv', 'mean_clean_vs_adv', 'universality_clean', 'universality_adv'] as const;

/** summary.arrow: one row per cell (kind 'cell') and per comparison (kind 'comparison'). */
export function summaryTable(r: StudyResults): arrow.Table {
  const cols: Record<string, (string | number)[]> = { kind: [], cell: [], cell_b: [], comparison: [], scheme: [], regime: [], method: [], train_eps: [], seed: [], clean_accuracy: [], tm1_accuracy: [], tm2_accuracy: [], duplicate_taps: [] };
  for (const s of SCORE_COLUMNS) for (const suffix of ['', '_ci_low', '_ci_high']) cols[`${s}${suffix}`] = [];
  const put = (scores: Record<string, Interval>) => {
    for (const s of SCORE_COLUMNS) {
      cols[s].push(scores[s]?.value ?? NaN);
      cols[`${s}_ci_low`].push(scores[s]?.low ?? NaN);
      cols[`${s}_ci_high`].push(scores[s]?.high ?? NaN);
    }
  };
  for (const c of r.cells) {
    cols.kind.push('cell');
    cols.cell.push(c.cell.name);
    cols.cell_b.push('');
    cols.comparison.push('');
    cols.scheme.push(c.cell.scheme);
    cols.regime.push(c.cell.regime);
    cols.method.push(c.cell.method ?? '');
    cols.train_eps.push(c.cell.trainEps ?? NaN);
    cols.seed.push(c.cell.seed);
    cols.clean_accuracy.push(c.accuracy.clean ?? NaN);
    cols.tm1_accuracy.push(c.accuracy.tm1 ?? NaN);
    cols.tm2_accuracy.push(c.accuracy.tm2 ?? NaN);
    cols.duplicate_taps.push([...c.duplicates].map(([j, i]) => `${c.layers[j]}=${c.layers[i]}`).join(','));
    put(c.scores);
  }
  for (const c of r.comparisons) {
    const a = r.cells.find((x) => x.cell.name === c.comparison.a)!.cell;
    cols.kind.push('comparison');
    cols.cell.push(c.comparison.a);
    cols.cell_b.push(c.comparison.b);
    cols.comparison.push(c.comparison.kind);
    cols.scheme.push(a.scheme);
    cols.regime.push(a.regime);
    cols.method.push(a.method ?? '');
    cols.train_eps.push(a.trainEps ?? NaN);
    cols.seed.push(a.seed);
    for (const k of ['clean_accuracy', 'tm1_accuracy', 'tm2_accuracy']) cols[k].push(NaN);
    cols.duplicate_taps.push('');
    put(c.scores);
  }
  const data: Record<string, string[] | Float64Array> = {};
  for (const [k, v] of Object.entries(cols)) data[k] = typeof v[0] === 'string' || ['kind', 'cell', 'cell_b', 'comparison', 'scheme', 'regime', 'method', 'duplicate_taps'].includes(k) ? (v as string[]) : Float64Array.from(v as number[]);
  return withMetadata(arrow.tableFromArrays(data), { 'robustsim.study': r.name, 'robustsim.level': String(r.level), 'robustsim.format': 'robustsim-study-summary/1' });
}

/** probes.arrow: cell, layer, dim, train_accuracy, clean_accuracy, adversarial_accuracy (NaN when not measured). */
export function probesTable(r: StudyResults): arrow.Table {
  const rows = r.cells.flatMap((c) => c.probes.map((p) => ({ cell: c.cell.name, ...p })));
  return withMetadata(
    arrow.tableFromArrays({
      cell: rows.map((p) => p.cell),
      layer: rows.map((p) => p.layer),
      dim: Int32Array.from(rows.map((p) => p.dim)),
      train_accuracy: Float64Array.from(rows.map((p) => p.trainAccuracy)),
      clean_accuracy: Float64Array.from(rows.map((p) => p.testAccuracy)),
      adversarial_accuracy: Float64Array.from(rows.map((p) => p.adversarialAccuracy ?? NaN)),
    }),
    { 'robustsim.study': r.name, 'robustsim.format': 'robustsim-study-probes/1' },
  );
}

export async function writeStudyOutputs(ctx: StudyContext, work: string): Promise<StudyResults> {
  const results = await gatherResults(ctx);
  await writeArrowFile(path.join(work, 'study.arrow'), studyTable(results));
  await writeArrowFile(path.join(work, 'summary.arrow'), summaryTable(results));
  await writeArrowFile(path.join(work, 'probes.arrow'), probesTable(results));
  await writeFileAtomic(path.join(work, 'report.html'), await studyReportHtml(results, { version: ctx.plan.version }));
  return results;
}
