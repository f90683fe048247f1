import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { readSimilarity } from '../formats/similarity.js';
import { readEval } from '../formats/eval.js';
import { accuracyTableSpec, robustAccuracySpec } from './eval-specs.js';
import { writeFileAtomic } from '../util/atomic.js';
import { provenance } from '../util/provenance.js';
import { reportHtml, type Chart, type ReportSection } from './html.js';
import { cleanAdvDiagonal, splitMatrices } from './matrices.js';
import { metadataTables } from './metadata.js';
import { renderSvg } from './render.js';
import { diagonalSpec, heatmapSpec, type DiagonalSeries } from './specs.js';
import { labelSimilarity, reportSummary, uniqueLabels, type LabelledSimilarity, type ReportSummaryRow } from './summary.js';

export { reportSummary, formatSummaryLine, type ReportSummaryRow, type LabelledSimilarity } from './summary.js';

export interface BuildReportOptions {
  /** Directories containing similarity.arrow, or .arrow files. */
  sims: string[];
  /** The HTML file to write. */
  out: string;
  title?: string;
  /** A paragraph shown under the title (plain text). */
  notes?: string;
  /** eval.arrow files (or directories holding one): accuracy table and robust-accuracy-vs-eps chart per model. */
  evals?: string[];
}

export const DEFAULT_REPORT_TITLE = 'robustsim: representation similarity report';

/** Where the similarity table for a --sim argument lives; InputError naming the path when nowhere. */
export async function resolveSimilarityFile(p: string): Promise<string> {
  let stat;
  try {
    stat = await fs.stat(p);
  } catch (err) {
    throw new InputError(`--sim ${p}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (!stat.isDirectory()) return p;
  const file = path.join(p, 'similarity.arrow');
  try {
    await fs.access(file);
  } catch {
    throw new InputError(`--sim ${p}: directory has no similarity.arrow (expected the output of 'robustsim cka')`);
  }
  return file;
}

/** Read and label every input; labels are made unique so charts and tables can tell inputs apart. */
export async function loadReportInputs(paths: string[]): Promise<LabelledSimilarity[]> {
  if (paths.length === 0) throw new InputError('--sim: give at least one similarity directory or .arrow file');
  const loaded = [];
  for (const p of paths) {
    const source = await resolveSimilarityFile(p);
    const sim = await readSimilarity(source);
    if (sim.rows.length === 0 || sim.cols.length === 0) throw new InputError(`${source}: the similarity table is empty`);
    loaded.push({ source, sim, ...labelSimilarity(sim, source) });
  }
  const labels = uniqueLabels(loaded.map((l) => l.label));
  return loaded.map((l, i) => {
    if (labels[i] === l.label) return l;
    const self = l.sides.rows === l.sides.cols;
    return { ...l, label: labels[i], sides: self ? { rows: labels[i], cols: labels[i] } : l.sides };
  });
}

export interface BuildReportResult {
  /** Absolute path of the written HTML file. */
  out: string;
  /** Number of charts drawn. */
  charts: number;
  /** The headline numbers per input (as reportSummary gives them). */
  summary: ReportSummaryRow[];
}

/** Read every input, render every chart, assemble the page and write it atomically. */
export async function buildReport(opts: BuildReportOptions): Promise<BuildReportResult> {
  const inputs = await loadReportInputs(opts.sims);
  const summary = reportSummary(inputs);
  let charts = 0;
  const render = async (title: string, spec: Parameters<typeof renderSvg>[0]): Promise<Chart> => {
    charts++;
    return { title, svg: await renderSvg(spec) };
  };

  const sections: ReportSection[] = [];
  const series: DiagonalSeries[] = [];
  for (const [i, input] of inputs.entries()) {
    const heatmaps: Chart[] = [];
    for (const m of splitMatrices(input.sim, input.sides)) {
      heatmaps.push(await render(`rows: ${m.rowAxis}; columns: ${m.colAxis}`, heatmapSpec(m, { title: m.key })));
    }
    const points = cleanAdvDiagonal(input.sim);
    let diagonal: Chart | undefined;
    if (points.length > 0) {
      series.push({ model: input.label, points });
      diagonal = await render(`${input.label}: CKA(layer@clean, layer@adv)`, diagonalSpec([{ model: input.label, points }]));
    }
    sections.push({
      label: input.label,
      source: input.source,
      summary: summary[i],
      heatmaps,
      diagonal,
      metadata: metadataTables(input.sim.metadata),
    });
  }
  const evalCharts: Chart[] = [];
  for (const p of opts.evals ?? []) {
    const file = (await fs.stat(p).catch(() => undefined))?.isDirectory() ? path.join(p, 'eval.arrow') : p;
    const { rows } = await readEval(file);
    for (const model of [...new Set(rows.map((r) => r.model))]) {
      evalCharts.push(await render(`${model}: accuracy table`, accuracyTableSpec(model, rows)));
      if (rows.some((r) => r.model === model && r.attack !== 'clean')) evalCharts.push(await render(`${model}: robust accuracy vs eps`, robustAccuracySpec(model, rows)));
    }
  }
  const summaryCharts = evalCharts.concat(series.length > 1 ? [await render('every model: CKA(layer@clean, layer@adv)', diagonalSpec(series, { title: 'clean-vs-adversarial CKA per layer, all models' }))] : []);

  const html = reportHtml({
    title: opts.title ?? DEFAULT_REPORT_TITLE,
    notes: opts.notes,
    summaryCharts,
    sections,
    footer: `Made by robustsim ${provenance().version} on ${new Date().toISOString()} from ${inputs.length} similarity file(s).`,
  });
  const out = path.resolve(opts.out);
  try {
    const stat = await fs.stat(out);
    if (stat.isDirectory()) throw new InputError(`--out ${opts.out}: is a directory (expected an .html file path)`);
  } catch (err) {
    if (err instanceof InputError) throw err;
  }
  await writeFileAtomic(out, html);
  return { out, charts, summary };
}
