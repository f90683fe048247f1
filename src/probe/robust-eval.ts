import type { EvalTableRow } from '../formats/eval.js';
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { gatherBatch, type Dataset } from '../data/index.js';
import { batchTensors } from '../models/inputs.js';
import { attackDefinition, runAttack, type AttackSettings, type AttackSpec } from '../attacks/suite.js';
import { attackConsistency, modelChecks, presetSquareCheck, type AttackFigure, type EvalWarning } from '../attacks/checks.js';
import { logitsOf } from '../attacks/rows.js';
import { subSeed } from '../util/rng.js';

/** One (model, attack, eps) evaluation: attack is as requested ('clean', 'pgd20', ...) or 'worst-case'. */
export type EvalRow = EvalTableRow;

export interface EvalModel {
  name: string;
  model: tf.LayersModel;
  /** Projection head of a contrastive model, used by the contrastive attack. */
  embedder?: AttackSettings['embedder'];
}

export interface RobustEvalOptions {
  models: EvalModel[];
  dataset: Dataset;
  attacks: AttackSpec[];
  /** Radii of the eps sweep; every attack except clean runs at each. */
  eps: number[];
  settings: AttackSettings;
  batchSize: number;
  /** Add a 'worst-case' row per eps (a sample counts only if it survives every attack), as AutoAttack reports. */
  worstCase?: boolean;
  onProgress?: (p: { model: string; attack: string; eps: number; done: number; total: number }) => void;
  /** AutoAttack's checks (src/attacks/checks.ts): each warning as it is found. */
  onWarning?: (w: EvalWarning) => void;
}

async function predictCorrect(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D): Promise<Uint8Array> {
  const hits = tf.tidy(() => tf.cast(tf.equal(tf.argMax(model.apply(x, { training: false }) as tf.Tensor2D, 1), tf.cast(y, 'int32')), 'int32'));
  const values = Uint8Array.from(await hits.data());
  hits.dispose();
  return values;
}

/** Per-sample correctness of `model` on `indices` of ds, clean or under one attack at one eps. */
async function correctnessOn(
  model: tf.LayersModel,
  ds: Dataset,
  indices: number[],
  spec: AttackSpec,
  eps: number,
  opts: RobustEvalOptions,
  progress: (done: number) => void,
): Promise<Uint8Array> {
  const out = new Uint8Array(indices.length).fill(1);
  const shape: [number, number, number] = [ds.height, ds.width, ds.channels];
  // Restarts as in AutoAttack: each new random start only attacks the samples that survived the
  // previous ones, so a sample is robust only if every restart failed. Clean and FGSM are deterministic.
  const restarts = restartsOf(spec, opts.settings);
  let remaining = indices.map((_, k) => k);
  for (let r = 0; r < restarts && remaining.length > 0; r++) {
    for (let start = 0; start < remaining.length; start += opts.batchSize) {
      const positions = remaining.slice(start, start + opts.batchSize);
      const idx = positions.map((k) => indices[k]);
      const batch = gatherBatch(ds, idx);
      const { x, y } = batchTensors(batch.x, batch.y, shape);
      // Seeds follow the attack, the restart and the batch's first sample: reproducible for the same request.
      const settings = { ...opts.settings, restarts: 1, seed: subSeed(opts.settings.seed, spec.name, r, idx[0]) };
      const adv = spec.kind === 'clean' ? x : runAttack(spec, model, x, y, eps, settings);
      const hits = await predictCorrect(model, adv, y);
      positions.forEach((k, i) => (out[k] = hits[i]));
      tf.dispose([x, y, adv]);
      if (r === 0) progress(start + idx.length);
    }
    remaining = remaining.filter((k) => out[k] === 1);
  }
  return out;
}

/** Restarts an attack runs with: 1 for deterministic attacks and where a preset fixes it. */
function restartsOf(spec: AttackSpec, s: AttackSettings): number {
  if (spec.components) return 1;
  return attackDefinition(spec).deterministic ? 1 : (spec.overrides?.restarts ?? s.restarts);
}

function rowOf(model: string, spec: { name: string; steps: number; restarts: number }, eps: number, opts: RobustEvalOptions, correct: Uint8Array): EvalRow {
  const hits = correct.reduce((a, b) => a + b, 0);
  return {
    model,
    attack: spec.name,
    eps,
    norm: opts.settings.norm,
    steps: spec.steps,
    restarts: spec.restarts,
    n: correct.length,
    accuracy: correct.length ? hits / correct.length : NaN,
    correct,
  };
}

/** AutoAttack's checks of the model itself, on the first batch of the data. */
function modelWarnings(name: string, model: tf.LayersModel, ds: Dataset, opts: RobustEvalOptions): EvalWarning[] {
  const flat = (a: AttackSpec): AttackSpec[] => a.components ?? [a];
  const kinds = opts.attacks.flatMap(flat).map((a) => a.kind);
  const usesTargets = kinds.includes('apgd-t') || kinds.includes('fab-t');
  const randomisedVersion = opts.attacks.some((a) => a.kind === 'autoattack-rand');
  const idx = Array.from({ length: Math.min(opts.batchSize, ds.n) }, (_, i) => i);
  const batch = gatherBatch(ds, idx);
  const { x, y } = batchTensors(batch.x, batch.y, [ds.height, ds.width, ds.channels]);
  try {
    return modelChecks(name, logitsOf(model), x, opts.settings.targets ?? 9, usesTargets, !randomisedVersion, y);
  } finally {
    tf.dispose([x, y]);
  }
}

/**
 * Clean and robust accuracy of each model on every sample of `dataset`, for each attack and eps.
 * As in AutoAttack, only samples classified correctly on clean inputs are attacked (a misclassified
 * sample is already an error), which also saves most of the cost on weak models.
 */
export async function evaluateRobustness(opts: RobustEvalOptions): Promise<EvalRow[]> {
  if (opts.dataset.n < 1) throw new InputError('--n: no samples to evaluate');
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new InputError(`--batch-size: expected a positive integer, got ${opts.batchSize}`);
  for (const e of opts.eps) if (!(e >= 0) || !Number.isFinite(e)) throw new InputError(`--eps: expected finite numbers >= 0, got ${e}`);
  const ds = opts.dataset;
  const all = Array.from({ length: ds.n }, (_, i) => i);
  const rows: EvalRow[] = [];
  const cleanSpec: AttackSpec = { name: 'clean', kind: 'clean', steps: 0 };
  const rowSpec = (spec: AttackSpec, name = spec.name) => ({ name, steps: spec.components ? spec.components.reduce((t, c) => t + c.steps, 0) : spec.steps, restarts: restartsOf(spec, opts.settings) });
  const warn = (w: EvalWarning) => opts.onWarning?.(w);
  for (const { name, model, embedder } of opts.models) {
    const modelOpts = embedder ? { ...opts, settings: { ...opts.settings, embedder } } : opts;
    const clean = await correctnessOn(model, ds, all, cleanSpec, 0, opts, (done) =>
      opts.onProgress?.({ model: name, attack: 'clean', eps: 0, done, total: ds.n }),
    );
    if (opts.attacks.some((a) => a.kind === 'clean')) rows.push(rowOf(name, rowSpec(cleanSpec), 0, opts, clean));
    const survivors = all.filter((i) => clean[i] === 1);
    const attacks = opts.attacks.filter((a) => a.kind !== 'clean');
    if (attacks.length > 0) modelWarnings(name, model, ds, opts).forEach(warn);
    for (const eps of opts.eps) {
      const worst = Uint8Array.from(clean);
      const figures: AttackFigure[] = [];
      // One attack on the samples in `on`; returns the per-sample correctness over the whole set.
      const attackOn = async (spec: AttackSpec, label: string, on: number[]) => {
        const attacked = await correctnessOn(model, ds, on, spec, eps, modelOpts, (done) =>
          opts.onProgress?.({ model: name, attack: label, eps, done, total: on.length }),
        );
        const correct = new Uint8Array(ds.n);
        on.forEach((s, k) => (correct[s] = attacked[k]));
        return correct;
      };
      for (const spec of attacks) {
        let correct: Uint8Array;
        if (spec.components) {
          // A preset: each component attacks the samples still robust; its row is the robust accuracy after it.
          correct = Uint8Array.from(clean);
          const cumulative: Array<{ name: string; gradientFree: boolean; accuracy: number }> = [];
          for (const c of spec.components) {
            const label = `${spec.name}/${c.name}`;
            const on = all.filter((i) => correct[i] === 1);
            correct = on.length > 0 ? await attackOn(c, label, on) : correct;
            const row = rowOf(name, rowSpec(c, label), eps, opts, correct);
            rows.push(row);
            cumulative.push({ name: c.name, gradientFree: Boolean(attackDefinition(c).gradientFree), accuracy: row.accuracy });
          }
          presetSquareCheck(name, eps, spec.name, cumulative).forEach(warn);
        } else {
          correct = await attackOn(spec, spec.name, survivors);
        }
        correct.forEach((v, i) => v === 0 && (worst[i] = 0));
        const row = rowOf(name, rowSpec(spec), eps, opts, correct);
        rows.push(row);
        const def = spec.components ? undefined : attackDefinition(spec);
        figures.push({ name: spec.name, kind: spec.kind, steps: spec.steps, tier: def?.tier ?? 4, gradientFree: Boolean(def?.gradientFree), accuracy: row.accuracy });
      }
      attackConsistency(name, eps, figures).forEach(warn);
      if (opts.worstCase && attacks.length > 1) {
        rows.push(rowOf(name, { name: 'worst-case', steps: attacks.reduce((s, a) => s + rowSpec(a).steps, 0), restarts: opts.settings.restarts }, eps, opts, worst));
      }
    }
  }
  return rows;
}
