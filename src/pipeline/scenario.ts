import { InputError } from '../errors.js';
import { trainModel, type TrainRequest } from '../train/loop.js';
import { FINE_TUNING_REGIMES, type Method, type Regime } from '../train/options.js';
import { METHOD_NAMES, methodSpec } from '../train/methods/index.js';
import type { TrainCheckpointMeta as CheckpointMeta } from '../train/meta.js';
import { fineTune, type FineTuneEvent, type FineTuneResult } from '../probe/finetune.js';
import type { FineTuneMode, FineTuneObjective } from '../probe/meta.js';

export type FineTuningRegime = (typeof FINE_TUNING_REGIMES)[number];

/**
 * SPEC.md's training scenarios that end with a fine-tuning stage: which encoder is pre-trained, and
 * how the head (and, for FAT, the encoder) is then trained on CE(clean) + CE(adversarial) (or, for
 * ACL's FAT, TRADES: defaultScenarioObjective).
 */
export const SCENARIOS: Record<FineTuningRegime, { pretrain: 'st' | 'at'; mode: FineTuneMode }> = {
  pat: { pretrain: 'at', mode: 'robust-linear' },
  fat: { pretrain: 'at', mode: 'full-adv' },
  'st-pat': { pretrain: 'st', mode: 'robust-linear' },
  'st-fat': { pretrain: 'st', mode: 'full-adv' },
};

/**
 * The fine-tuning loss of a scenario when the user names none: a method's spec may name its own for
 * full fine-tuning (`fullFineTuneObjective`: ACL, Jiang et al. 2020, fine-tunes its encoder with TRADES,
 * beta 6, so an `acl` FAT / ST-FAT run does too); every other method, and PAT, uses SPEC's CE(clean) + CE(adv).
 */
export function defaultScenarioObjective(method: Method | undefined, mode: FineTuneMode): FineTuneObjective {
  const own = method === undefined ? undefined : methodSpec(method)?.fullFineTuneObjective;
  return own && mode === 'full-adv' ? own : 'ce-ce';
}

/** The methods whose spec picks the full fine-tuning loss (acl). */
const FINE_TUNE_CHOOSING = METHOD_NAMES.filter((m) => methodSpec(m)?.fullFineTuneObjective);

export function isFineTuningRegime(regime: string): regime is FineTuningRegime {
  return (FINE_TUNING_REGIMES as readonly string[]).includes(regime);
}

/** Where a scenario keeps its pre-trained encoder: a checkpoint beside the final output. */
export function encoderDirFor(out: string): string {
  return `${out.replace(/[\\/]+$/, '')}-encoder`;
}

export interface ScenarioRequest extends Omit<TrainRequest, 'regime'> {
  regime: FineTuningRegime;
  fineTuneEpochs?: number;
  fineTuneLr?: number;
  /** Default: defaultScenarioObjective(method, mode). */
  fineTuneObjective?: FineTuneObjective;
  fineTuneTradesBeta?: number;
  onFineTuneEvent?: (e: FineTuneEvent) => void;
}

export interface ScenarioResult {
  encoderDir: string;
  encoder: CheckpointMeta;
  fineTuned: FineTuneResult;
}

/**
 * Run a PAT / FAT / ST-PAT / ST-FAT scenario: pre-train the encoder (standard or adversarial, any
 * scheme and method) into `<out>-encoder`, then fine-tune it into `out`. With `--resume` both stages
 * continue where they stopped (a finished stage is reused).
 */
export async function trainScenario(req: ScenarioRequest): Promise<ScenarioResult> {
  const scenario = SCENARIOS[req.regime];
  if (!scenario) throw new InputError(`--regime: expected one of ${FINE_TUNING_REGIMES.join(', ')}, got '${req.regime}'`);
  const { regime: _regime, fineTuneEpochs, fineTuneLr, fineTuneObjective, fineTuneTradesBeta, onFineTuneEvent, ...pretrain } = req;
  if (scenario.pretrain === 'st' && pretrain.method !== undefined) {
    // The encoder of st-* is standard-trained, so a method can only choose the fine-tuning loss: accept
    // it only where it does (acl's ST-FAT), rather than ignore it silently.
    if (defaultScenarioObjective(pretrain.method, scenario.mode) === 'ce-ce') {
      throw new InputError(
        `--method: '${pretrain.method}' has no effect in --regime ${req.regime} (the encoder is standard-trained and the fine-tuning is CE(clean)+CE(adv)); ` +
          `leave --method out (only ${FINE_TUNE_CHOOSING.map((m) => `${m}, with st-fat, selects a different fine-tuning: ${methodSpec(m)!.fullFineTuneObjective!.toUpperCase()}`).join('; ')})`,
      );
    }
    pretrain.method = undefined;
  }
  const objective = fineTuneObjective ?? defaultScenarioObjective(req.method, scenario.mode);
  const encoderDir = encoderDirFor(req.out);
  const encoder = await trainModel({ ...pretrain, regime: scenario.pretrain as Regime, out: encoderDir });
  if (!encoder.progress.complete) {
    throw new InputError(`${encoderDir}: pre-training stopped before completing; run again with --resume`);
  }
  const fineTuned = await fineTune({
    checkpoint: encoderDir,
    mode: scenario.mode,
    out: req.out,
    resume: req.resume,
    saveEvery: req.saveEvery,
    dataset: req.dataset,
    dataDir: req.dataDir,
    limit: req.limit,
    evalLimit: req.evalLimit,
    epochs: fineTuneEpochs,
    lr: fineTuneLr,
    objective,
    tradesBeta: fineTuneTradesBeta,
    batchSize: req.batchSize,
    evalAttack: req.evalAttack,
    seed: req.seed,
    // The fine-tuning stage runs data-parallel over as many threads as the pre-training.
    workers: req.workers,
    onEvent: onFineTuneEvent,
  });
  return { encoderDir, encoder, fineTuned };
}
