import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { loadDataset, batchIndices, gatherBatch, type DatasetName, type Dataset } from '../data/index.js';
import { loadCheckpoint, optimizerState, restoreOptimizer, readMeta, resolveCheckpointDir, saveCheckpoint, type NamedTensor } from '../models/checkpoint.js';
import { isProbeDir } from '../models/classifier.js';
import { PROJECTION_GROUP } from '../models/projection.js';
import { batchTensors } from '../models/inputs.js';
import { DEFAULT_PGD, validatePgd, type PgdOptions } from '../attacks/pgd.js';
import { evaluateAccuracy } from '../attacks/evaluate.js';
import { activeBackend } from '../backend/index.js';
import { provenance } from '../util/provenance.js';
import { makeRng, subSeed } from '../util/rng.js';
import { checkResumable, runResumableEpochs } from '../util/resumable-epochs.js';
import type { CheckpointMeta } from '../models/checkpoint-meta.js';
import { attachHead } from './classifier.js';
import {
  FINE_TUNE_MODES,
  FINE_TUNE_OBJECTIVES,
  FINE_TUNE_RESUME_KEYS,
  isAdversarialMode,
  trainsEncoder,
  type FineTuneConfig,
  type FineTuneMetrics,
  type FineTuneMode,
  type FineTuneObjective,
  type FineTuneProgress,
  type FineTuneRecord,
  type ProbeMeta,
} from './meta.js';
import { fineTuneAttack, fineTuneLoss } from './objective.js';
import { fineTuneVariables, startFineTuneParallel, type FineTuneParallel } from './finetune-parallel.js';

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
  /** Continue the run saved in `out` (refused if options that matter differ: FINE_TUNE_RESUME_KEYS). */
  resume?: boolean;
  /** Also checkpoint every N optimizer steps (0 = at epoch ends only). */
  saveEvery?: number;
  /** Threads that compute each step's gradient, one contiguous shard of the batch each (wasm/cpu backends; default 1). */
  workers?: number;
  /** Stop after this many optimizer steps in this call (tests use it to simulate an interruption). */
  maxSteps?: number;
  onEvent?: (e: FineTuneEvent) => void;
}

export type FineTuneEvent =
  | { type: 'start'; mode: FineTuneMode; trainSamples: number; stepsPerEpoch: number; resumed: boolean; globalStep: number }
  | { type: 'step'; epoch: number; step: number; stepsPerEpoch: number; loss: number }
  | { type: 'epoch'; epoch: number; loss: number }
  | { type: 'done'; out: string; metrics: FineTuneMetrics };

export interface FineTuneResult {
  out: string;
  /** 'probe' (linear modes: head + meta.json referencing the encoder) or 'checkpoint' (full modes). */
  kind: 'probe' | 'checkpoint';
  config: FineTuneConfig;
  progress: FineTuneProgress;
  /** Absent when the call stopped before the last epoch (maxSteps); resume to finish. */
  metrics?: FineTuneMetrics;
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
    workers: opts.workers ?? 1,
  };
  const int = (flag: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new InputError(`${flag}: expected an integer >= ${min}, got ${v}`);
  };
  int('--epochs', cfg.epochs, 1);
  int('--batch-size', cfg.batchSize, 1);
  int('--eval-limit', cfg.evalLimit, 1);
  int('--save-every', opts.saveEvery ?? 0, 0);
  int('--workers', cfg.workers ?? 1, 1);
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
  const encoderRef = path.relative(out, opts.checkpoint);
  const fail = (err: unknown): never => {
    encoder.dispose();
    throw err;
  };
  if (opts.resume && opts.overwrite) fail(new InputError(`--resume and --overwrite exclude each other (continue ${out}, or replace it)`));
  const existing = await resolveCheckpointDir(out);
  if (existing && !opts.resume && !opts.overwrite) {
    fail(new InputError(`${out}: already exists (pass --resume to continue it, --overwrite to replace it, or choose another --out)`));
  }
  const resumed = Boolean(existing && opts.resume);
  const saved = resumed ? await readSavedRun(out).catch(fail) : undefined;
  if (saved) {
    try {
      checkResumable({ encoder: saved.encoder }, { encoder: encoderRef }, ['encoder'], out);
      checkResumable(saved.config, cfg, FINE_TUNE_RESUME_KEYS, out);
    } catch (err) {
      fail(err);
    }
  }

  const train = await loadDataset({ name: cfg.dataset, split: 'train', dataDir: cfg.dataDir, seed: cfg.seed, limit: cfg.limit });
  const test = await loadDataset({ name: cfg.dataset, split: 'test', dataDir: cfg.dataDir, seed: cfg.seed, limit: cfg.evalLimit });
  try {
    checkShape(train, enc, opts.checkpoint);
  } catch (err) {
    fail(err);
  }
  const { model } = attachHead(encoder, cfg.featureLayer, train.numClasses, subSeed(cfg.seed, 'head'));
  const head = model.getLayer('logits');
  const training = trainsEncoder(cfg.mode);
  // Order matters for resume: the optimizer's slots follow the variable order.
  const vars = fineTuneVariables(model, cfg.mode);
  const optimizer = tf.train.adam(cfg.lr);
  const progress: FineTuneProgress = saved
    ? { ...saved.progress, complete: saved.progress.epochsDone >= cfg.epochs }
    : { epochsDone: 0, stepInEpoch: 0, globalStep: 0, complete: false, trainLoss: [], epochLossSum: 0, epochSeen: 0 };
  let metrics: FineTuneMetrics | undefined = progress.complete ? saved?.metrics : undefined;
  if (saved) await restoreWeights(out, training ? model.layers : [head], optimizer);
  const shape: [number, number, number] = [train.height, train.width, train.channels];
  const stepsPerEpoch = Math.ceil(train.n / cfg.batchSize);
  emit({ type: 'start', mode: cfg.mode, trainSamples: train.n, stepsPerEpoch, resumed, globalStep: progress.globalStep });

  const name = `${enc.name}+${cfg.mode}${cfg.dataset !== enc.config.dataset ? `@${cfg.dataset}` : ''}`;
  // Full modes keep the encoder's projection head (unchanged by fine-tuning) so the contrastive attack
  // still has "threat model I" on the fine-tuned model; meta.projection (copied from the encoder) says so.
  let extraWeights: Record<string, NamedTensor[]> | undefined;
  if (training && enc.projection) {
    const source = await loadCheckpoint<CheckpointMeta>(opts.checkpoint, { extraWeights: [PROJECTION_GROUP] });
    source.model.dispose();
    extraWeights = source.extraWeights;
  }
  const featureDim = (model.getLayer(cfg.featureLayer).output as tf.SymbolicTensor).shape[1] as number;
  const snapshot = async () => {
    const state = await optimizerState(optimizer);
    const optimizerWeights = state.weights;
    if (training) {
      const meta: CheckpointMeta & { finetune: FineTuneRecord } = {
        ...enc,
        name,
        config: { ...enc.config, name, dataset: cfg.dataset, dataDir: cfg.dataDir, evalAttack: cfg.evalAttack },
        numClasses: train.numClasses,
        classNames: train.classNames,
        // The encoder's training progress, but complete only once the fine-tuning is (tools skip incomplete checkpoints).
        progress: { ...enc.progress, complete: enc.progress.complete && progress.complete },
        metrics: metrics && { cleanAccuracy: metrics.cleanAccuracy, robustAccuracy: metrics.robustAccuracy, evalSamples: metrics.evalSamples, evalAttack: metrics.evalAttack },
        backend: activeBackend(),
        provenance: provenance(activeBackend()),
        finetune: { encoder: encoderRef, config: cfg, progress, metrics },
      };
      await saveCheckpoint(out, { model, meta, extraWeights, optimizerWeights });
    } else {
      const savedHead = tf.sequential({ layers: [tf.layers.dense({ name: 'logits', units: train.numClasses, inputShape: [featureDim] })] });
      savedHead.getLayer('logits').setWeights(head.getWeights());
      const meta: ProbeMeta = {
        format: 'robustsim-probe/1',
        name,
        mode: cfg.mode,
        encoder: encoderRef,
        encoderName: enc.name,
        featureLayer: cfg.featureLayer,
        dataset: cfg.dataset,
        dataDir: cfg.dataDir,
        inputShape: enc.inputShape,
        numClasses: train.numClasses,
        classNames: train.classNames,
        config: cfg,
        metrics,
        progress,
        backend: activeBackend(),
        provenance: provenance(activeBackend()),
      };
      await saveCheckpoint(out, { model: savedHead, meta, optimizerWeights });
      savedHead.dispose();
    }
    state.release();
  };

  // Worker threads of a data-parallel run (cfg.workers > 1); the main thread's model is the one trained and saved.
  let parallel: FineTuneParallel | undefined;
  let failed = false;
  try {
    if ((cfg.workers ?? 1) > 1) parallel = await startFineTuneParallel(model, { ...cfg, mode: cfg.mode }, cfg.workers!, shape);
    const { saved: wrote } = await runResumableEpochs({
      progress,
      epochs: cfg.epochs,
      batchesOf: (epoch) => batchIndices(train.n, cfg.batchSize, makeRng(subSeed(cfg.seed, 'epoch', epoch))),
      saveEvery: opts.saveEvery ?? 0,
      maxSteps: opts.maxSteps,
      snapshot,
      step: async (epoch, step, indices) => {
        const batch = gatherBatch(train, indices);
        const attackSeed = subSeed(cfg.seed, 'attack', progress.globalStep);
        let loss: number;
        if (parallel) loss = await parallel.step(batch.x, batch.y, attackSeed, optimizer);
        else {
          const { x, y } = batchTensors(batch.x, batch.y, shape);
          // The attack sees the current head (and encoder), in inference mode, as in adversarial training.
          const attack = isAdversarialMode(cfg.mode) ? fineTuneAttack(model, x, y, cfg, attackSeed) : undefined;
          const { value, grads } = tf.variableGrads(() => fineTuneLoss(model, x, y, attack?.adv, cfg, training), vars);
          optimizer.applyGradients(vars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
          [loss] = await value.data();
          tf.dispose([x, y, value, ...Object.values(grads), ...(attack ? [attack.adv, ...attack.owned] : [])]);
        }
        if (!Number.isFinite(loss)) throw new Error(`fine-tuning diverged: loss ${loss} at epoch ${epoch + 1} (try a lower --lr)`);
        progress.epochLossSum += loss * indices.length;
        progress.epochSeen += indices.length;
        emit({ type: 'step', epoch, step: step + 1, stepsPerEpoch, loss });
      },
      endEpoch: async (epoch) => {
        const loss = progress.epochLossSum / progress.epochSeen;
        progress.trainLoss.push(loss);
        progress.epochLossSum = 0;
        progress.epochSeen = 0;
        emit({ type: 'epoch', epoch: epoch + 1, loss });
        if (epoch + 1 === cfg.epochs) {
          const clean = await evaluateAccuracy(model, test, { batchSize: 256 });
          const robust = await evaluateAccuracy(model, test, { batchSize: 256, attack: { ...cfg.evalAttack, seed: subSeed(cfg.seed, 'eval-attack') } });
          metrics = { cleanAccuracy: clean.accuracy, robustAccuracy: robust.accuracy, evalSamples: test.n, evalAttack: cfg.evalAttack, trainLoss: [...progress.trainLoss] };
          progress.complete = true;
        }
      },
    });
    // A call stopped before its first step still leaves a checkpoint to resume from.
    if (!wrote && !resumed) await snapshot();
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    if (parallel) await (failed ? parallel.terminate() : parallel.close());
    if (extraWeights) tf.dispose(Object.values(extraWeights).flatMap((g) => g.map((w) => w.tensor)));
    model.dispose();
    optimizer.dispose();
  }
  const result = { out, kind: training ? ('checkpoint' as const) : ('probe' as const), config: cfg, progress, metrics };
  if (metrics) emit({ type: 'done', out, metrics });
  return result;
}

/** The run saved in a fine-tuning output directory (full: meta.finetune; linear: the probe's meta). */
async function readSavedRun(out: string): Promise<{ encoder: string; config: FineTuneConfig; progress: FineTuneProgress; metrics?: FineTuneMetrics }> {
  const meta = await readMeta<(ProbeMeta | (CheckpointMeta & { finetune?: FineTuneRecord })) & { format: string }>(out);
  const run = isProbeDir(meta) ? { encoder: meta.encoder, config: meta.config, progress: meta.progress, metrics: meta.metrics } : (meta as { finetune?: FineTuneRecord }).finetune;
  if (!run) throw new InputError(`${out}/meta.json: not a fine-tuning output (no 'finetune' record), so there is nothing to resume; choose another --out`);
  if (!run.progress) throw new InputError(`${out}/meta.json: no fine-tuning progress recorded (written before --resume existed); pass --overwrite instead`);
  // Outputs written before the objective existed trained with CE(clean) + CE(adv).
  const config: FineTuneConfig = { ...run.config, objective: run.config.objective ?? DEFAULT_FINE_TUNE.objective, tradesBeta: run.config.tradesBeta ?? DEFAULT_FINE_TUNE.tradesBeta };
  return { encoder: run.encoder, config, progress: run.progress, metrics: run.metrics };
}

/** Load the saved weights of `layers` (by name) and the optimizer's slots from a fine-tuning output. */
async function restoreWeights(out: string, layers: tf.layers.Layer[], optimizer: tf.Optimizer): Promise<void> {
  const ckpt = await loadCheckpoint<unknown>(out, { withOptimizer: true });
  try {
    for (const layer of layers) {
      if (layer.weights.length === 0) continue;
      const source = ckpt.model.layers.find((l) => l.name === layer.name);
      if (!source) throw new InputError(`${out}/model.json: no layer '${layer.name}' to resume from (not this encoder's fine-tuning?)`);
      layer.setWeights(source.getWeights());
    }
    if (ckpt.optimizerWeights) await restoreOptimizer(optimizer, ckpt.optimizerWeights);
  } finally {
    ckpt.model.dispose();
    tf.dispose((ckpt.optimizerWeights ?? []).map((w) => w.tensor));
  }
}
