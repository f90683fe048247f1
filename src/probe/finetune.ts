import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { loadDataset, batchIndices, gatherBatch, type DatasetName, type Dataset } from '../data/index.js';
import { loadCheckpoint, resolveCheckpointDir, saveCheckpoint } from '../models/checkpoint.js';
import { PROJECTION_GROUP } from '../models/projection.js';
import { batchTensors } from '../models/inputs.js';
import { DEFAULT_PGD, validatePgd, type PgdOptions } from '../attacks/pgd.js';
import { evaluateAccuracy } from '../attacks/evaluate.js';
import { activeBackend } from '../backend/index.js';
import { provenance } from '../util/provenance.js';
import { makeRng, subSeed } from '../util/rng.js';
import type { CheckpointMeta } from '../train/meta.js';
import { attachHead } from './classifier.js';
import {
  FINE_TUNE_MODES,
  FINE_TUNE_OBJECTIVES,
  isAdversarialMode,
  trainsEncoder,
  type FineTuneConfig,
  type FineTuneMetrics,
  type FineTuneMode,
  type FineTuneObjective,
  type ProbeMeta,
} from './meta.js';
import { fineTuneAttack, fineTuneLoss } from './objective.js';

export interface FineTuneOptions {
  /** Pre-trained encoder checkpoint. */
  checkpoint: string;
  mode: FineTuneMode;
  /** Output directory; default `<checkpoint>-<mode>` (plus `-<dataset>` for transfer), beside the encoder. */
  out?: string;
  /** Replace an existing output directory. */
  overwrite?: boolean;
  /** Probe dataset (default: the encoder's); must have the encoder's image shape. */
  dataset?: DatasetName;
  dataDir?: string;
  limit?: number;
  evalLimit?: number;
  featureLayer?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** Default: the encoder's training attack (its eval attack's eps for standard-trained encoders). */
  attack?: Partial<PgdOptions>;
  /** Loss of the adversarial modes (default ce-ce: SPEC's PAT/FAT). */
  objective?: FineTuneObjective;
  advWeight?: number;
  tradesBeta?: number;
  /** Default: the encoder's evaluation attack. */
  evalAttack?: Partial<PgdOptions>;
  seed?: number;
  onEvent?: (e: FineTuneEvent) => void;
}

export type FineTuneEvent =
  | { type: 'start'; mode: FineTuneMode; trainSamples: number; stepsPerEpoch: number }
  | { type: 'step'; epoch: number; step: number; stepsPerEpoch: number; loss: number }
  | { type: 'epoch'; epoch: number; loss: number }
  | { type: 'done'; out: string; metrics: FineTuneMetrics };

export interface FineTuneResult {
  out: string;
  /** 'probe' (linear modes: head + meta.json referencing the encoder) or 'checkpoint' (full modes). */
  kind: 'probe' | 'checkpoint';
  config: FineTuneConfig;
  metrics: FineTuneMetrics;
}

export const DEFAULT_FINE_TUNE = { epochs: 5, batchSize: 128, lr: 1e-3, objective: 'ce-ce' as FineTuneObjective, advWeight: 1, tradesBeta: 6, evalLimit: 1000, featureLayer: 'pool', seed: 0 };

export function defaultFineTuneOut(checkpoint: string, mode: FineTuneMode, dataset: string | undefined, encoderDataset: string): string {
  const base = checkpoint.replace(/[\\/]+$/, '');
  return `${base}-${mode}${dataset && dataset !== encoderDataset ? `-${dataset}` : ''}`;
}

function checkShape(ds: Dataset, meta: CheckpointMeta, checkpoint: string): void {
  const [h, w, c] = meta.inputShape;
  if (ds.height !== h || ds.width !== w || ds.channels !== c) {
    throw new InputError(`--probe-dataset: ${ds.name} images are ${ds.height}x${ds.width}x${ds.channels} but the encoder ${checkpoint} takes ${h}x${w}x${c}; transfer needs matching image shapes`);
  }
}

/**
 * Train a classifier head on a pre-trained encoder (linear, robust-linear) or fine-tune encoder and
 * head together (full, full-adv), then measure clean and PGD accuracy on the test split. The head is
 * new (the probe dataset may have other classes: transfer). Linear modes keep the encoder frozen and
 * in inference mode (BatchNorm statistics untouched) and save only the head, beside the encoder;
 * full modes save a complete checkpoint usable by every other command (eval, capture, cka).
 */
export async function fineTune(opts: FineTuneOptions): Promise<FineTuneResult> {
  if (!FINE_TUNE_MODES.includes(opts.mode)) throw new InputError(`--mode: expected one of ${FINE_TUNE_MODES.join(', ')}, got '${opts.mode}'`);
  const emit = opts.onEvent ?? (() => {});
  const { model: encoder, meta: enc } = await loadCheckpoint<CheckpointMeta>(opts.checkpoint);
  const cfg: FineTuneConfig = {
    mode: opts.mode,
    dataset: opts.dataset ?? enc.config.dataset,
    dataDir: opts.dataDir ?? (opts.dataset && opts.dataset !== enc.config.dataset ? undefined : enc.config.dataDir),
    limit: opts.limit,
    evalLimit: opts.evalLimit ?? DEFAULT_FINE_TUNE.evalLimit,
    featureLayer: opts.featureLayer ?? DEFAULT_FINE_TUNE.featureLayer,
    epochs: opts.epochs ?? DEFAULT_FINE_TUNE.epochs,
    batchSize: opts.batchSize ?? DEFAULT_FINE_TUNE.batchSize,
    lr: opts.lr ?? DEFAULT_FINE_TUNE.lr,
    attack: { ...DEFAULT_PGD, ...(enc.config.regime === 'at' ? enc.config.attack : { ...enc.config.attack, eps: enc.config.evalAttack.eps }), ...opts.attack },
    objective: opts.objective ?? DEFAULT_FINE_TUNE.objective,
    advWeight: opts.advWeight ?? DEFAULT_FINE_TUNE.advWeight,
    tradesBeta: opts.tradesBeta ?? DEFAULT_FINE_TUNE.tradesBeta,
    evalAttack: { ...DEFAULT_PGD, ...enc.config.evalAttack, ...opts.evalAttack },
    seed: opts.seed ?? DEFAULT_FINE_TUNE.seed,
  };
  const int = (flag: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new InputError(`${flag}: expected an integer >= ${min}, got ${v}`);
  };
  int('--epochs', cfg.epochs, 1);
  int('--batch-size', cfg.batchSize, 1);
  int('--eval-limit', cfg.evalLimit, 1);
  if (!(cfg.lr > 0)) throw new InputError(`--lr: expected a number > 0, got ${cfg.lr}`);
  if (!(cfg.advWeight >= 0)) throw new InputError(`--adv-weight: expected a number >= 0, got ${cfg.advWeight}`);
  if (!(cfg.tradesBeta >= 0)) throw new InputError(`--trades-beta: expected a number >= 0, got ${cfg.tradesBeta}`);
  if (!FINE_TUNE_OBJECTIVES.includes(cfg.objective)) throw new InputError(`--objective: expected one of ${FINE_TUNE_OBJECTIVES.join(', ')}, got '${cfg.objective}'`);
  if (cfg.objective !== 'ce-ce' && !isAdversarialMode(cfg.mode)) {
    throw new InputError(`--objective: '${cfg.objective}' is an adversarial objective; use it with --mode robust-linear or full-adv (got --mode ${cfg.mode})`);
  }
  validatePgd(cfg.attack);
  validatePgd(cfg.evalAttack);
  const out = opts.out ?? defaultFineTuneOut(opts.checkpoint, cfg.mode, opts.dataset, enc.config.dataset);
  if (!opts.overwrite && (await resolveCheckpointDir(out))) {
    encoder.dispose();
    throw new InputError(`${out}: already exists (pass --overwrite, or choose another --out)`);
  }

  const train = await loadDataset({ name: cfg.dataset, split: 'train', dataDir: cfg.dataDir, seed: cfg.seed, limit: cfg.limit });
  const test = await loadDataset({ name: cfg.dataset, split: 'test', dataDir: cfg.dataDir, seed: cfg.seed, limit: cfg.evalLimit });
  try {
    checkShape(train, enc, opts.checkpoint);
  } catch (err) {
    encoder.dispose();
    throw err;
  }
  const { model } = attachHead(encoder, cfg.featureLayer, train.numClasses, subSeed(cfg.seed, 'head'));
  const head = model.getLayer('logits');
  const vars = (trainsEncoder(cfg.mode) ? model.trainableWeights : head.trainableWeights).map((w) => w.read() as tf.Variable);
  const optimizer = tf.train.adam(cfg.lr);
  const training = trainsEncoder(cfg.mode);
  const shape: [number, number, number] = [train.height, train.width, train.channels];
  const stepsPerEpoch = Math.ceil(train.n / cfg.batchSize);
  emit({ type: 'start', mode: cfg.mode, trainSamples: train.n, stepsPerEpoch });

  const trainLoss: number[] = [];
  let globalStep = 0;
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    const order = batchIndices(train.n, cfg.batchSize, makeRng(subSeed(cfg.seed, 'epoch', epoch)));
    let sum = 0;
    let seen = 0;
    for (let step = 0; step < order.length; step++) {
      const batch = gatherBatch(train, order[step]);
      const { x, y } = batchTensors(batch.x, batch.y, shape);
      // The attack sees the current head (and encoder), in inference mode, as in adversarial training.
      const attack = isAdversarialMode(cfg.mode) ? fineTuneAttack(model, x, y, cfg, subSeed(cfg.seed, 'attack', globalStep)) : undefined;
      const { value, grads } = tf.variableGrads(() => fineTuneLoss(model, x, y, attack?.adv, cfg, training), vars);
      optimizer.applyGradients(vars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
      const [loss] = await value.data();
      tf.dispose([x, y, value, ...Object.values(grads), ...(attack ? [attack.adv, ...attack.owned] : [])]);
      if (!Number.isFinite(loss)) throw new Error(`fine-tuning diverged: loss ${loss} at epoch ${epoch + 1} (try a lower --lr)`);
      sum += loss * order[step].length;
      seen += order[step].length;
      globalStep += 1;
      emit({ type: 'step', epoch, step: step + 1, stepsPerEpoch, loss });
    }
    trainLoss.push(sum / seen);
    emit({ type: 'epoch', epoch: epoch + 1, loss: sum / seen });
  }

  const clean = await evaluateAccuracy(model, test, { batchSize: 256 });
  const robust = await evaluateAccuracy(model, test, { batchSize: 256, attack: { ...cfg.evalAttack, seed: subSeed(cfg.seed, 'eval-attack') } });
  const metrics: FineTuneMetrics = { cleanAccuracy: clean.accuracy, robustAccuracy: robust.accuracy, evalSamples: test.n, evalAttack: cfg.evalAttack, trainLoss };
  const name = `${enc.name}+${cfg.mode}${cfg.dataset !== enc.config.dataset ? `@${cfg.dataset}` : ''}`;
  if (trainsEncoder(cfg.mode)) {
    const meta: CheckpointMeta & { finetune: { encoder: string; config: FineTuneConfig; metrics: FineTuneMetrics } } = {
      ...enc,
      name,
      config: { ...enc.config, name, dataset: cfg.dataset, dataDir: cfg.dataDir, evalAttack: cfg.evalAttack },
      numClasses: train.numClasses,
      classNames: train.classNames,
      metrics: { cleanAccuracy: clean.accuracy, robustAccuracy: robust.accuracy, evalSamples: test.n, evalAttack: cfg.evalAttack },
      backend: activeBackend(),
      provenance: provenance(activeBackend()),
      finetune: { encoder: path.relative(out, opts.checkpoint), config: cfg, metrics },
    };
    // Keep the encoder's projection head (unchanged by fine-tuning) so the contrastive attack still
    // has "threat model I" on the fine-tuned model; meta.projection (copied from the encoder) says so.
    let extraWeights: Awaited<ReturnType<typeof loadCheckpoint>>['extraWeights'];
    if (enc.projection) {
      const source = await loadCheckpoint<CheckpointMeta>(opts.checkpoint, { extraWeights: [PROJECTION_GROUP] });
      source.model.dispose();
      extraWeights = source.extraWeights;
    }
    await saveCheckpoint(out, { model, meta, extraWeights });
    if (extraWeights) tf.dispose(Object.values(extraWeights).flatMap((g) => g.map((w) => w.tensor)));
  } else {
    const featureDim = (model.getLayer(cfg.featureLayer).output as tf.SymbolicTensor).shape[1] as number;
    const saved = tf.sequential({ layers: [tf.layers.dense({ name: 'logits', units: train.numClasses, inputShape: [featureDim] })] });
    saved.getLayer('logits').setWeights(head.getWeights());
    const meta: ProbeMeta = {
      format: 'robustsim-probe/1',
      name,
      mode: cfg.mode,
      encoder: path.relative(out, opts.checkpoint),
      encoderName: enc.name,
      featureLayer: cfg.featureLayer,
      dataset: cfg.dataset,
      dataDir: cfg.dataDir,
      inputShape: enc.inputShape,
      numClasses: train.numClasses,
      classNames: train.classNames,
      config: cfg,
      metrics,
      backend: activeBackend(),
      provenance: provenance(activeBackend()),
    };
    await saveCheckpoint(out, { model: saved, meta });
    saved.dispose();
  }
  emit({ type: 'done', out, metrics });
  model.dispose();
  optimizer.dispose();
  return { out, kind: trainsEncoder(cfg.mode) ? 'checkpoint' : 'probe', config: cfg, metrics };
}
