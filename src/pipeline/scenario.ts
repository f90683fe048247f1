import { InputError } from '../errors.js';
import { trainModel, type TrainRequest } from '../train/loop.js';
import { FINE_TUNING_REGIMES, type Regime } from '../train/options.js';
import type { CheckpointMeta } from '../train/meta.js';
import { fineTune, type FineTuneEvent, type FineTuneResult } from '../probe/finetune.js';
import type { FineTuneMode } from '../probe/meta.js';

export type FineTuningRegime = (typeof FINE_TUNING_REGIMES)[number];

/**
 * SPEC.md's training scenarios that end with a fine-tuning stage: which encoder is pre-trained, and
 * how the head (and, for FAT, the encoder) is then trained on CE(clean) + CE(adversarial).
 */
export const SCENARIOS: Record<FineTuningRegime, { pretrain: 'st' | 'at'; mode: FineTuneMode }> = {
  pat: { pretrain: 'at', mode: 'robust-linear' },
  fat: { pretrain: 'at', mode: 'full-adv' },
  'st-pat': { pretrain: 'st', mode: 'robust-linear' },
  'st-fat': { pretrain: 'st', mode: 'full-adv' },
};

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
  onFineTuneEvent?: (e: FineTuneEvent) => void;
}

export interface ScenarioResult {
  encoderDir: string;
  encoder: CheckpointMeta;
  fineTuned: FineTuneResult;
}

/**
 * Run a PAT / FAT / ST-PAT / ST-FAT scenario: pre-train the encoder (standard or adversarial, any
 * scheme and method) into `<out>-encoder`, then fine-tune it into `out`. The pre-training resumes
 * like any training run; the fine-tuning stage is re-run on `--resume`.
 */
export async function trainScenario(req: ScenarioRequest): Promise<ScenarioResult> {
  const scenario = SCENARIOS[req.regime];
  if (!scenario) throw new InputError(`--regime: expected one of ${FINE_TUNING_REGIMES.join(', ')}, got '${req.regime}'`);
  const { regime: _regime, fineTuneEpochs, fineTuneLr, onFineTuneEvent, ...pretrain } = req;
  const encoderDir = encoderDirFor(req.out);
  const encoder = await trainModel({ ...pretrain, regime: scenario.pretrain as Regime, out: encoderDir });
  if (!encoder.progress.complete) {
    throw new InputError(`${encoderDir}: pre-training stopped before completing; run again with --resume`);
  }
  const fineTuned = await fineTune({
    checkpoint: encoderDir,
    mode: scenario.mode,
    out: req.out,
    overwrite: Boolean(req.resume),
    dataset: req.dataset,
    dataDir: req.dataDir,
    limit: req.limit,
    evalLimit: req.evalLimit,
    epochs: fineTuneEpochs,
    lr: fineTuneLr,
    batchSize: req.batchSize,
    evalAttack: req.evalAttack,
    seed: req.seed,
    onEvent: onFineTuneEvent,
  });
  return { encoderDir, encoder, fineTuned };
}
