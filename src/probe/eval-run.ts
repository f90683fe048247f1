import { loadProjectionEmbedder, type ProjectionEmbedder } from '../models/projection.js';
import { isProbeDir } from '../models/classifier.js';
import { readMeta } from '../models/checkpoint.js';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { loadDataset, type DatasetName } from '../data/index.js';
import { attackDefinition, parseAttackSpec, type AttackSettings, type AttackSpec } from '../attacks/suite.js';
import type { EvalWarning } from '../attacks/checks.js';
import { writeEval } from '../formats/eval.js';
import { writeFileAtomic } from '../util/atomic.js';
import { provenance } from '../util/provenance.js';
import { activeBackend } from '../backend/index.js';
import { loadClassifier, type Classifier } from './classifier.js';
import { evaluateRobustness, type EvalRow } from './robust-eval.js';

export interface EvaluationRequest {
  /** Checkpoint or probe directories. */
  models: string[];
  /** Attack names (see src/attacks/suite.ts). */
  attacks: string[];
  eps: number[];
  settings: AttackSettings;
  /** Default: the first model's dataset. */
  dataset?: DatasetName;
  dataDir?: string;
  split?: 'train' | 'test';
  n: number;
  batchSize: number;
  worstCase?: boolean;
  /** Where eval.arrow and eval.json go. */
  outDir: string;
  onProgress?: (p: { model: string; attack: string; eps: number; done: number; total: number }) => void;
}

export interface EvaluationResult {
  rows: EvalRow[];
  /** AutoAttack's checks that fired (also in eval.json and eval.arrow's metadata). */
  warnings: EvalWarning[];
  arrowFile: string;
  jsonFile: string;
}

/** Model labels must tell rows apart: fall back to the directory name when two models share a name. */
function labels(classifiers: Classifier[], dirs: string[]): string[] {
  const names = classifiers.map((c) => c.name);
  return names.map((n, i) => (names.indexOf(n) !== names.lastIndexOf(n) ? `${n} (${path.basename(dirs[i])})` : n));
}

/** Load models and data, evaluate every attack at every eps, write eval.arrow + eval.json. */
export async function runEvaluation(req: EvaluationRequest): Promise<EvaluationResult> {
  if (req.models.length === 0) throw new InputError('--model: name at least one checkpoint or probe directory');
  if (req.attacks.length === 0) throw new InputError('--attacks: name at least one attack');
  const specs = req.attacks.map(parseAttackSpec);
  const needsEps = specs.some((s) => s.kind !== 'clean');
  if (needsEps && req.eps.length === 0) throw new InputError('--eps: give at least one radius, e.g. 8/255');
  if (!Number.isInteger(req.n) || req.n < 1) throw new InputError(`--n: expected a positive integer, got ${req.n}`);
  const classifiers: Classifier[] = [];
  const embedders: Array<ProjectionEmbedder | undefined> = [];
  try {
    for (const dir of req.models) classifiers.push(await loadClassifier(dir));
    // Contrastive models attack through their projection head (a probe's head sits on its encoder's).
    if (specs.some((s) => s.kind === 'contrastive') && req.settings.embeddingLayer === undefined) {
      for (let i = 0; i < req.models.length; i++) {
        const meta = await readMeta<{ format?: string; encoder?: string }>(req.models[i]);
        const source = isProbeDir(meta) ? path.resolve(req.models[i], meta.encoder) : req.models[i];
        embedders[i] = await loadProjectionEmbedder(source, classifiers[i].model);
      }
    }
    const first = classifiers[0];
    const datasetName = req.dataset ?? first.dataset;
    const dataDir = req.dataDir ?? (datasetName === first.dataset ? first.dataDir : undefined);
    const ds = await loadDataset({ name: datasetName, split: req.split ?? 'test', dataDir, seed: req.settings.seed, limit: req.n });
    classifiers.forEach((c, i) => {
      const [h, w, ch] = c.inputShape;
      if (ds.height !== h || ds.width !== w || ds.channels !== ch) {
        throw new InputError(`--dataset: ${datasetName} images are ${ds.height}x${ds.width}x${ds.channels} but ${req.models[i]} expects ${c.inputShape.join('x')}`);
      }
      if (c.numClasses !== ds.numClasses) {
        throw new InputError(`--dataset: ${datasetName} has ${ds.numClasses} classes but ${req.models[i]} predicts ${c.numClasses} (train a probe on it first: robustsim finetune)`);
      }
    });
    for (const spec of specs.flatMap((s): AttackSpec[] => s.components ?? [s])) {
      const fewest = attackDefinition(spec).minClasses ?? 0;
      if (ds.numClasses < fewest) throw new InputError(`--attacks: ${spec.kind} needs at least ${fewest} classes, ${datasetName} has ${ds.numClasses}`);
    }
    const warnings: EvalWarning[] = [];
    const names = labels(classifiers, req.models);
    const rows = await evaluateRobustness({
      models: classifiers.map((c, i) => ({ name: names[i], model: c.model, embedder: embedders[i] })),
      dataset: ds,
      attacks: specs,
      eps: needsEps ? req.eps : [],
      settings: req.settings,
      batchSize: req.batchSize,
      worstCase: req.worstCase,
      onProgress: req.onProgress,
      onWarning: (w) => warnings.push(w),
    });
    const prov = provenance(activeBackend());
    const about = {
      dataset: datasetName,
      split: req.split ?? 'test',
      n: ds.n,
      models: req.models.map((dir, i) => ({ name: names[i], dir, kind: classifiers[i].kind })),
      attacks: req.attacks,
      eps: req.eps,
      settings: req.settings,
      protocol: 'only clean-correct samples are attacked; a sample counts as robust if the attack fails on it',
      presets: Object.fromEntries(specs.filter((s) => s.components).map((s) => [s.name, s.components!.map((c) => ({ attack: c.name, steps: c.steps, ...c.overrides }))])),
      warnings,
      provenance: prov,
    };
    const arrowFile = path.join(req.outDir, 'eval.arrow');
    const jsonFile = path.join(req.outDir, 'eval.json');
    await writeEval(arrowFile, rows, ds.ids, about);
    const summary = rows.map(({ correct: _c, ...r }) => r);
    await writeFileAtomic(jsonFile, JSON.stringify({ ...about, rows: summary }, null, 2) + '\n');
    return { rows, warnings, arrowFile, jsonFile };
  } finally {
    for (const c of classifiers) c.model.dispose();
    for (const e of embedders) e?.dispose();
  }
}

/** The result table as fixed-width text, one row per evaluation. */
export function formatEvalTable(rows: EvalRow[]): string {
  const header = ['model', 'attack', 'eps', 'steps', 'restarts', 'n', 'accuracy'];
  const body = rows.map((r) => [
    r.model,
    r.attack,
    r.attack === 'clean' ? '-' : `${r.eps.toFixed(4)}${epsFraction(r.eps)}`,
    String(r.steps),
    String(r.restarts),
    String(r.n),
    (100 * r.accuracy).toFixed(2) + '%',
  ]);
  const widths = header.map((h, j) => Math.max(h.length, ...body.map((b) => b[j].length)));
  const line = (cells: string[]) => cells.map((c, j) => (j >= 2 ? c.padStart(widths[j]) : c.padEnd(widths[j]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** One line per warning, for the terminal. */
export function formatEvalWarnings(warnings: EvalWarning[]): string {
  return warnings.map((w) => `warning (${w.check}): ${w.model}${w.eps !== undefined ? ` at eps ${w.eps.toFixed(4)}` : ''}: ${w.message}`).join('\n');
}

/** ' (8/255)' when eps is a whole number of 255ths, as eps is usually quoted. */
function epsFraction(eps: number): string {
  const k = eps * 255;
  return Math.abs(k - Math.round(k)) < 1e-6 && k > 0 ? ` (${Math.round(k)}/255)` : '';
}
