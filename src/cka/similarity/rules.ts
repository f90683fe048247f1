import { check, InputError } from '../../errors.js';
import { MEASURES, MEASURE_NAMES } from '../measures/index.js';
import { ESTIMATORS, type Estimator, type ResolvedRequest, type SimilarityRequest } from './request.js';
import { statsBatchWarnings } from './stats-rule.js';

/** Defaults of a request's unset fields (those of the CLI). */
export const REQUEST_DEFAULTS = { batchSize: 256, seed: 0, n: 10000, inputs: ['clean', 'adv'] as const };

/**
 * Which measure x estimator x input source may be combined, for the CLI and library callers
 * alike: every refusal is an InputError naming the flag. Returns the request with its defaults.
 * Rules that need the number of samples (statistics on few batches) are in `samplesRules`.
 */
export function combinationRules(req: SimilarityRequest): ResolvedRequest {
  const workers = req.workers ?? 1;
  check(Number.isInteger(workers) && workers >= 1, '--workers', `expected a positive integer, got ${workers}`);
  const models = req.models ?? [];
  check((req.acts === undefined) !== (models.length === 0), '--acts/--model', 'give either --acts (stored activations) or --model (stream from checkpoints), not both and not neither');
  const source = models.length > 0 ? 'models' : 'activations';
  const measure = req.measure ?? 'cka';
  if (!Object.prototype.hasOwnProperty.call(MEASURES, measure)) throw new InputError(`--measure: '${measure}', expected ${MEASURE_NAMES.join(', ')}`);
  const spec = MEASURES[measure];
  if (source === 'models' && !spec.fromModels) throw new InputError(`--measure: ${measure} ${spec.modelsRefusal ?? 'cannot be streamed; use it with --acts'}`);
  if (req.estimator !== undefined && !ESTIMATORS.includes(req.estimator)) throw new InputError(`--estimator: '${req.estimator}', expected ${ESTIMATORS.join(', ')}`);
  if (spec.estimators.length === 0) check(req.estimator === undefined, '--estimator', `does not apply to --measure ${measure}`);
  // Streamed batches give the minibatch estimator only; a measure without estimators has its own name in the tables.
  const estimator: Estimator = req.estimator ?? (spec.estimators.length === 0 ? 'biased' : source === 'models' ? 'minibatch' : spec.estimators[0]);
  if (spec.estimators.length > 0) {
    check(spec.estimators.includes(estimator), '--estimator', `${estimator} ${spec.estimatorRefusal ?? `does not apply to --measure ${measure}`}`);
    check(source === 'activations' || estimator === 'minibatch', '--estimator', `${estimator} needs all activations at once; --model streams batches and computes the minibatch estimator only`);
  }
  const minibatch = spec.estimators.length > 0 && estimator === 'minibatch';
  if (minibatch) {
    check(req.formulation !== 'feature' || (spec.kernel ?? 'linear') === 'linear', '--formulation', `feature needs the linear kernel; --measure ${measure} has no feature space (use gram or auto)`);
  } else {
    check(req.shard === undefined, '--shard', 'only the minibatch estimator can be sharded');
    check(req.blockRows === undefined || (Number.isInteger(req.blockRows) && req.blockRows >= 1), '--block-rows', `expected a positive integer, got ${req.blockRows}`);
    check(req.memoryBytes === undefined || (Number.isFinite(req.memoryBytes) && req.memoryBytes > 0), '--memory-mb', `expected a positive budget, got ${req.memoryBytes} bytes`);
  }
  if (source === 'models' && (req.acts2 !== undefined || req.sets !== undefined)) throw new InputError('--acts2/--sets: only with --acts; with --model use --layers and a second --model');
  if (source === 'activations' && req.attackLoss !== undefined) throw new InputError('--attack-loss: only with --model (stored activations were attacked when they were captured)');
  return {
    ...req,
    measure,
    estimator,
    source,
    workers,
    batchSize: req.batchSize ?? REQUEST_DEFAULTS.batchSize,
    seed: req.seed ?? REQUEST_DEFAULTS.seed,
    bootstrap: req.bootstrap ?? 0,
    permutations: req.permutations ?? 0,
    ...(source === 'models' ? { n: req.n ?? REQUEST_DEFAULTS.n, inputs: req.inputs ?? [...REQUEST_DEFAULTS.inputs] } : {}),
    warnings: [],
  };
}

/**
 * The rules that need the number of samples n (known after reading activations; for models, the
 * requested --n): a bootstrap over the minibatches of the whole run (every shard) needs enough of them.
 */
export function samplesRules(req: ResolvedRequest, n: number): ResolvedRequest {
  if (req.estimator !== 'minibatch' || MEASURES[req.measure].estimators.length === 0) return req;
  const batches = Math.ceil(n / req.batchSize);
  return { ...req, warnings: [...req.warnings, ...statsBatchWarnings(batches, req.bootstrap)] };
}
