import type { EvalTableRow } from '../formats/eval.js';
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { gatherBatch, type Dataset } from '../data/index.js';
import { batchTensors } from '../models/inputs.js';
import { runAttack, type AttackSettings, type AttackSpec } from '../attacks/suite.js';
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
  const restarts = spec.kind === 'clean' || spec.kind === 'fgsm' ? 1 : opts.settings.restarts;
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

function rowOf(model: string, spec: { name: string; steps: number }, eps: number, opts: RobustEvalOptions, correct: Uint8Array): EvalRow {
  const hits = correct.reduce((a, b) => a + b, 0);
  return {
    model,
    attack: spec.name,
    eps,
    norm: opts.settings.norm,
    steps: spec.steps,
    restarts: spec.name === 'clean' || spec.name === 'fgsm' ? 1 : opts.settings.restarts,
    n: correct.length,
    accuracy: correct.length ? hits / correct.length : NaN,
    correct,
  };
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
  for (const { name, model, embedder } of opts.models) {
    const modelOpts = embedder ? { ...opts, settings: { ...opts.settings, embedder } } : opts;
    const clean = await correctnessOn(model, ds, all, cleanSpec, 0, opts, (done) =>
      opts.onProgress?.({ model: name, attack: 'clean', eps: 0, done, total: ds.n }),
    );
    if (opts.attacks.some((a) => a.kind === 'clean')) rows.push(rowOf(name, cleanSpec, 0, opts, clean));
    const survivors = all.filter((i) => clean[i] === 1);
    const attacks = opts.attacks.filter((a) => a.kind !== 'clean');
    for (const eps of opts.eps) {
      const worst = Uint8Array.from(clean);
      for (const spec of attacks) {
        const attacked = await correctnessOn(model, ds, survivors, spec, eps, modelOpts, (done) =>
          opts.onProgress?.({ model: name, attack: spec.name, eps, done, total: survivors.length }),
        );
        const correct = new Uint8Array(ds.n);
        survivors.forEach((s, k) => {
          correct[s] = attacked[k];
          if (!attacked[k]) worst[s] = 0;
        });
        rows.push(rowOf(name, spec, eps, opts, correct));
      }
      if (opts.worstCase && attacks.length > 1) {
        rows.push(rowOf(name, { name: 'worst-case', steps: attacks.reduce((s, a) => s + a.steps, 0) }, eps, opts, worst));
      }
    }
  }
  return rows;
}
