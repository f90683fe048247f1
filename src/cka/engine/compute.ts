import { InputError } from '../../errors.js';
import type { Activations } from '../../formats/activations.js';
import type { ActivationSet } from '../../formats/activations.js';
import type { WrittenSimilarity } from '../minibatch/output.js';
import { writeActivationTable } from '../similarity/activation-table.js';
import type { ActivationInputs, ResolvedRequest } from '../similarity/request.js';
import { linearCkaMatrix, type CkaEstimator } from './engine.js';
import { linearCkaMatrixInWorkers } from './workers.js';
import { setStats } from './set-stats.js';

/**
 * Linear CKA of all samples at once (biased or debiased HSIC; the tiled engine), rows x cols with
 * two inputs, sets x sets with one, written to `<out>/similarity.arrow` atomically: any failure
 * leaves no output. The implementation of measure 'cka' with a full-data estimator.
 */
export async function fullDataSimilarity(inputs: ActivationInputs, req: ResolvedRequest): Promise<WrittenSimilarity> {
  const { first, second } = inputs;
  const estimator = req.estimator as CkaEstimator;
  for (const acts of second ? [first, second] : [first]) checkUsable(acts);
  const engineOptions = { estimator, blockRows: req.blockRows, memoryBytes: req.memoryBytes, onProgress: req.onProgress };
  const result =
    req.workers > 1
      ? await linearCkaMatrixInWorkers(first.sets, second ? second.sets : null, engineOptions, req.workers)
      : await linearCkaMatrix(first.sets, second ? second.sets : null, engineOptions);
  return writeActivationTable(
    inputs,
    req,
    { rows: result.rows, cols: result.cols, values: result.cka, extra: { hsic: result.hsic }, n: result.n },
    { estimator },
    {
      hsic_rows: Array.from(result.hsicRows),
      hsic_cols: Array.from(result.hsicCols),
      engine: { block_rows: result.blockRows, chunk_cols: result.chunkCols, resident: result.resident, workers: req.workers },
    },
  );
}

/** Fail early, naming the file, on inputs the engine cannot use (n < 4, NaN/Inf, zero variance). */
function checkUsable(acts: Activations): void {
  const n = acts.sampleIds.length;
  if (n < 4) throw new InputError(`${acts.source}: ${n} samples; linear CKA needs at least 4`);
  for (const set of acts.sets) checkSet(acts.source, set);
}

function checkSet(source: string, set: ActivationSet): void {
  try {
    setStats(set);
  } catch (err) {
    if (err instanceof InputError) throw new InputError(`${source}: ${err.message}`);
    throw err;
  }
}
