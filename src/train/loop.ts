import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { loadDataset, batchIndices, gatherBatch } from '../data/index.js';
import type { Dataset } from '../data/types.js';
import { buildModel, resolveArch } from '../models/architectures.js';
import { loadCheckpoint, optimizerState, restoreOptimizer, readMeta, saveCheckpoint, resolveCheckpointDir, type NamedTensor } from '../models/checkpoint.js';
import { batchTensors } from '../models/inputs.js';
import { trainStep } from './methods.js';
import { startDataParallel, type DataParallel } from './data-parallel.js';
import { makeLearner, learnerVariables, learnerExtraWeights, extraGroupsFor, disposeLearner, type Learner } from './learner.js';
import { evaluateAccuracy } from '../attacks/evaluate.js';
import { makeRng, subSeed } from '../util/rng.js';
import { provenance } from '../util/provenance.js';
import { activeBackend } from '../backend/index.js';
import { learningRateAt } from './schedule.js';
import { RESUME_KEYS, resolveTrainConfig, type TrainConfig } from './options.js';
import { checkResumable, runResumableEpochs } from '../util/resumable-epochs.js';
import type { TrainCheckpointMeta as CheckpointMeta } from './meta.js';
import type { EpochMetrics } from '../models/checkpoint-meta.js';

export type TrainEvent =
  | { type: 'start'; meta: CheckpointMeta; resumed: boolean; stepsPerEpoch: number }
  | { type: 'step'; epoch: number; step: number; stepsPerEpoch: number; loss: number; accuracy: number; imagesPerSecond: number; lr: number }
  | { type: 'epoch'; metrics: EpochMetrics }
  | { type: 'checkpoint'; dir: string; epochsDone: number; stepInEpoch: number }
  | { type: 'evaluate'; what: 'clean' | 'robust'; done: number; total: number }
  | { type: 'done'; meta: CheckpointMeta };

export interface TrainRequest extends Partial<TrainConfig> {
  /** Checkpoint directory (written atomically; the last complete one survives a crash). */
  out: string;
  /** Continue from the checkpoint in `out` if there is one. */
  resume?: boolean;
  /** Stop after this many optimizer steps in this call (tests use it to simulate an interruption). */
  maxSteps?: number;
  onEvent?: (e: TrainEvent) => void;
}

function makeOptimizer(cfg: TrainConfig): tf.Optimizer {
  return cfg.optimizer === 'sgd' ? tf.train.momentum(cfg.lr, cfg.momentum) : tf.train.adam(cfg.lr);
}

/**
 * tfjs 4.22's MomentumOptimizer.dispose frees its momentum scalar and slots but not the learning-rate
 * scalar `c` it inherits from SGDOptimizer (whose own dispose would free it): one tensor per run.
 */
function disposeOptimizer(opt: tf.Optimizer): void {
  const inherited = (opt as unknown as { c?: tf.Tensor }).c;
  opt.dispose();
  if (opt instanceof tf.MomentumOptimizer && inherited && !inherited.isDisposed) inherited.dispose();
}

function setLearningRate(opt: tf.Optimizer, lr: number): void {
  // SGD/momentum keep a cached scalar that setLearningRate refreshes; Adam reads the field per step.
  const o = opt as unknown as { setLearningRate?: (lr: number) => void; learningRate: number };
  if (o.setLearningRate) o.setLearningRate(lr);
  else o.learningRate = lr;
}

async function writeCheckpoint(out: string, learner: Learner, optimizer: tf.Optimizer, meta: CheckpointMeta): Promise<void> {
  const state = await optimizerState(optimizer);
  await saveCheckpoint(out, { model: learner.model, meta, optimizerWeights: state.weights, extraWeights: learnerExtraWeights(learner) });
  state.release();
}

/** Train (or resume training) a model; returns the final checkpoint's meta. */
export async function trainModel(req: TrainRequest): Promise<CheckpointMeta> {
  // Only the TrainConfig fields go into meta.json; the request's run controls stay out of it.
  const { out: _out, resume: _resume, maxSteps: _maxSteps, onEvent, ...requested } = req;
  const cfg = resolveTrainConfig(requested);
  const emit = onEvent ?? (() => {});
  const train: Dataset = await loadDataset({ name: cfg.dataset, split: 'train', dataDir: cfg.dataDir, seed: cfg.seed, limit: cfg.limit });
  const test: Dataset = await loadDataset({ name: cfg.dataset, split: 'test', dataDir: cfg.dataDir, seed: cfg.seed, limit: cfg.evalLimit });
  const inputShape: [number, number, number] = [train.height, train.width, train.channels];
  if (train.n < cfg.batchSize) {
    throw new InputError(`--batch-size: ${cfg.batchSize} is larger than the ${train.n} training samples of ${cfg.dataset}`);
  }

  let model: tf.LayersModel;
  let meta: CheckpointMeta;
  let optimizerWeights: NamedTensor[] | undefined;
  let extraWeights: Record<string, NamedTensor[]> | undefined;
  const existing = await resolveCheckpointDir(req.out);
  const resumed = Boolean(req.resume && existing);
  if (existing && !req.resume) {
    throw new InputError(`${req.out}: a checkpoint already exists (pass --resume to continue it, or choose another --out)`);
  }
  if (resumed) {
    const saved = await readMeta<CheckpointMeta>(req.out);
    checkResumable(saved.config, cfg, RESUME_KEYS, req.out);
    const ckpt = await loadCheckpoint<CheckpointMeta>(req.out, { withOptimizer: true, extraWeights: extraGroupsFor(cfg) });
    model = ckpt.model;
    optimizerWeights = ckpt.optimizerWeights;
    extraWeights = ckpt.extraWeights;
    // Epochs may be extended on resume, and run controls changed; everything else must match (checked above).
    // (workers: a run resumed with another count records the latest; see docs/decisions.md.)
    meta = { ...ckpt.meta, config: { ...ckpt.meta.config, epochs: cfg.epochs, evalLimit: cfg.evalLimit, saveEvery: cfg.saveEvery, workers: cfg.workers } };
    meta.progress.complete = meta.progress.epochsDone >= cfg.epochs;
  } else {
    const archConfig = resolveArch(cfg.arch, cfg.width, cfg.blocks);
    const built = buildModel({ arch: archConfig, inputShape, numClasses: train.numClasses, seed: subSeed(cfg.seed, 'init') });
    model = built.model;
    const featureDim = model.getLayer('pool').outputShape[1] as number;
    meta = {
      format: 'robustsim-checkpoint/1',
      name: cfg.name,
      config: cfg,
      archConfig,
      inputShape,
      numClasses: train.numClasses,
      classNames: train.classNames,
      taps: built.taps,
      ...(cfg.scheme === 'sl' ? {} : { projection: { hidden: cfg.projHidden || featureDim, dim: cfg.projDim } }),
      trainSamples: train.n,
      progress: { epochsDone: 0, stepInEpoch: 0, globalStep: 0, complete: false },
      history: [],
      backend: activeBackend(),
      provenance: provenance(activeBackend()),
    };
  }

  const optimizer = makeOptimizer(cfg);
  if (optimizerWeights) {
    await restoreOptimizer(optimizer, optimizerWeights);
    tf.dispose(optimizerWeights.map((w) => w.tensor));
  }
  const learner = makeLearner(model, cfg, meta.projection, extraWeights);
  // Order matters for resume: the optimizer's slots follow the variable order.
  const vars = learnerVariables(learner);
  const decayed = vars.filter((v) => /kernel/.test(v.name));
  const stepsPerEpoch = Math.ceil(train.n / cfg.batchSize);
  const totalSteps = stepsPerEpoch * cfg.epochs;
  // Worker threads of a data-parallel run (cfg.workers > 1); the main thread's learner is the one trained and saved.
  let parallel: DataParallel | null = null;
  try {
    if (cfg.workers > 1) parallel = await startDataParallel(learner, cfg.workers, inputShape, meta.projection);
  } catch (err) {
    disposeLearner(learner);
    disposeOptimizer(optimizer);
    throw err;
  }
  emit({ type: 'start', meta, resumed, stepsPerEpoch });

  const snapshot = async () => {
    meta.backend = activeBackend();
    meta.provenance = provenance(activeBackend());
    await writeCheckpoint(req.out, learner, optimizer, meta);
    emit({ type: 'checkpoint', dir: req.out, epochsDone: meta.progress.epochsDone, stepInEpoch: meta.progress.stepInEpoch });
  };

  const shape = inputShape;
  let epochStart = 0;
  let lossSum = 0;
  let correctSum = 0;
  let seen = 0;
  let saved = false;
  try {
    ({ saved } = await runResumableEpochs({
      progress: meta.progress,
      epochs: cfg.epochs,
      batchesOf: (epoch) => batchIndices(train.n, cfg.batchSize, makeRng(subSeed(cfg.seed, 'epoch', epoch))),
      saveEvery: cfg.saveEvery,
      maxSteps: req.maxSteps,
      snapshot,
      beginEpoch: () => {
        epochStart = performance.now();
        lossSum = 0;
        correctSum = 0;
        seen = 0;
      },
      step: async (epoch, step, indices) => {
        const lr = learningRateAt(cfg.schedule, cfg.lr, meta.progress.globalStep, totalSteps);
        setLearningRate(optimizer, lr);
        const t0 = performance.now();
        const batch = gatherBatch(train, indices);
        const seeds = {
          attack: subSeed(cfg.seed, 'attack', meta.progress.globalStep),
          augment: subSeed(cfg.seed, 'augment', meta.progress.globalStep),
        };
        let lossValue: number;
        let correctValue: number;
        if (parallel) {
          ({ loss: lossValue, correct: correctValue } = await parallel.step(batch.x, batch.y, seeds, optimizer));
        } else {
          const { x, y } = batchTensors(batch.x, batch.y, shape);
          const { loss, correct } = trainStep(learner, optimizer, vars, decayed, x, y, seeds);
          [lossValue] = await loss.data();
          [correctValue] = await correct.data();
          tf.dispose([x, y, loss, correct]);
        }
        if (!Number.isFinite(lossValue)) {
          throw new Error(`training diverged: loss is ${lossValue} at epoch ${epoch + 1} step ${step + 1} (try a lower --lr)`);
        }
        const bs = indices.length;
        lossSum += lossValue * bs;
        correctSum += correctValue;
        seen += bs;
        emit({
          type: 'step',
          epoch,
          step: step + 1,
          stepsPerEpoch,
          loss: lossValue,
          accuracy: correctValue / bs,
          imagesPerSecond: bs / ((performance.now() - t0) / 1000),
          lr,
        });
      },
      endEpoch: async (epoch) => {
        const seconds = (performance.now() - epochStart) / 1000;
        const clean = await evaluateAccuracy(model, test, {
          batchSize: 256,
          onBatch: (done, total) => emit({ type: 'evaluate', what: 'clean', done, total }),
        });
        const metrics: EpochMetrics = {
          epoch: epoch + 1,
          loss: seen ? lossSum / seen : NaN,
          trainAccuracy: seen ? correctSum / seen : NaN,
          testAccuracy: clean.accuracy,
          imagesPerSecond: seen / seconds,
          seconds,
        };
        meta.history.push(metrics);
        emit({ type: 'epoch', metrics });
        if (epoch + 1 === cfg.epochs) {
          const robust = await evaluateAccuracy(model, test, {
            batchSize: 256,
            attack: { ...cfg.evalAttack, seed: subSeed(cfg.seed, 'eval-attack') },
            onBatch: (done, total) => emit({ type: 'evaluate', what: 'robust', done, total }),
          });
          meta.metrics = { cleanAccuracy: clean.accuracy, robustAccuracy: robust.accuracy, evalSamples: test.n, evalAttack: cfg.evalAttack };
          meta.progress.complete = true;
        }
      },
    }));
  } catch (err) {
    await parallel?.terminate();
    disposeLearner(learner);
    disposeOptimizer(optimizer);
    throw err;
  }
  await parallel?.close();
  // A call stopped before its first step still leaves a checkpoint to resume from.
  if (!saved && !resumed) await snapshot();
  if (meta.progress.complete) emit({ type: 'done', meta });
  disposeLearner(learner);
  disposeOptimizer(optimizer);
  return meta;
}
