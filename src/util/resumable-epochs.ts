import { InputError } from '../errors.js';

/** Where a resumable run stands: whole epochs done, optimizer steps into the current epoch, steps in all. */
export interface RunProgress {
  epochsDone: number;
  stepInEpoch: number;
  globalStep: number;
  complete: boolean;
}

/** One resumable run of epochs of optimizer steps (`robustsim train` and `robustsim finetune`). */
export interface ResumableEpochs {
  /** Updated in place as steps and epochs complete; saved by `snapshot`, restored by the caller on resume. */
  progress: RunProgress;
  epochs: number;
  /** The batches (sample indices) of an epoch; must depend on the epoch only, so a resumed run sees the same. */
  batchesOf: (epoch: number) => ArrayLike<number>[];
  /** Also checkpoint every N global steps (0 = at epoch ends only). */
  saveEvery: number;
  /** Stop after this many steps in this call, leaving a checkpoint to resume (tests simulate a kill with it). */
  maxSteps?: number;
  /** Start of an epoch in this call, from `firstStep` (non-zero after a mid-epoch resume). */
  beginEpoch?: (epoch: number, firstStep: number) => void;
  /** One optimizer step; `progress.globalStep` is still the index of this step (seeds derive from it). */
  step: (epoch: number, step: number, batch: ArrayLike<number>) => Promise<void>;
  /** After an epoch's last step (progress already counts it), before its checkpoint; set progress.complete on the last. */
  endEpoch: (epoch: number) => Promise<void>;
  /** Write the checkpoint (atomically) with the current progress. */
  snapshot: () => Promise<void>;
}

/**
 * Run the remaining steps of a resumable run. Checkpoints at each epoch end, every `saveEvery` steps, and
 * where `maxSteps` stops it mid-epoch, so a resumed run continues exactly where this one left off.
 * Returns whether this call wrote a checkpoint.
 */
export async function runResumableEpochs(r: ResumableEpochs): Promise<{ saved: boolean }> {
  const p = r.progress;
  let stepsThisCall = 0;
  let saved = false;
  const stopEarly = () => r.maxSteps !== undefined && stepsThisCall >= r.maxSteps;
  const snapshot = async () => {
    await r.snapshot();
    saved = true;
  };
  while (p.epochsDone < r.epochs && !stopEarly()) {
    const epoch = p.epochsDone;
    const batches = r.batchesOf(epoch);
    r.beginEpoch?.(epoch, p.stepInEpoch);
    for (let step = p.stepInEpoch; step < batches.length && !stopEarly(); step++) {
      await r.step(epoch, step, batches[step]);
      p.stepInEpoch = step + 1;
      p.globalStep += 1;
      stepsThisCall += 1;
      if (r.saveEvery > 0 && p.globalStep % r.saveEvery === 0 && step + 1 < batches.length) await snapshot();
    }
    if (p.stepInEpoch < batches.length) {
      // Interrupted mid-epoch (maxSteps): keep the partial progress so a resume continues exactly here.
      await snapshot();
      break;
    }
    p.epochsDone = epoch + 1;
    p.stepInEpoch = 0;
    await r.endEpoch(epoch);
    await snapshot();
  }
  return { saved };
}

/**
 * Refuse to resume a run whose options that matter differ from the saved ones, naming meta.json and
 * the key (JSON comparison: nested attack settings compare by value).
 */
export function checkResumable<T>(saved: T, wanted: T, keys: readonly (keyof T)[], dir: string): void {
  for (const key of keys) {
    const a = JSON.stringify(saved[key]);
    const b = JSON.stringify(wanted[key]);
    if (a !== b) {
      throw new InputError(`${dir}/meta.json: cannot resume: '${String(key)}' was ${a} in the checkpoint but is ${b} now (use another --out, or the same options)`);
    }
  }
}
