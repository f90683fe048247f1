/**
 * robustsim's library API: every stage of the pipeline as a function taking a typed options object.
 * The CLI is a thin layer over these.
 */
export { InputError } from './errors.js';
export { initBackend, activeBackend, describeBackend, type BackendChoice } from './backend/index.js';
export { loadDataset, datasetNames, batchIndices, gatherBatch, subset, type Dataset, type DatasetName } from './data/index.js';
export { buildModel, tapModel, resolveArch, archNames, ARCH_PRESETS, type ArchConfig } from './models/architectures.js';
export { saveCheckpoint, loadCheckpoint, readMeta } from './models/checkpoint.js';
export { pgdAttack, fgsmAttack, DEFAULT_PGD, type PgdOptions, type PerSampleLoss, type Norm } from './attacks/pgd.js';
export { crossEntropyLoss, crossEntropyPerSample } from './attacks/losses.js';
export { evaluateAccuracy } from './attacks/evaluate.js';
export { trainModel, type TrainRequest, type TrainEvent } from './train/loop.js';
export { DEFAULT_TRAIN, METHODS_BY_SCHEME, type TrainConfig, type Scheme, type Method } from './train/options.js';
export { augment, sampleAugmentParams, applyAugment, CONTRASTIVE_AUGMENT, SUPERVISED_AUGMENT, type AugmentConfig } from './train/augment.js';
export { groupContrastivePerAnchor, contrastivePerImage } from './train/contrastive.js';
export { makeLearner, learnerVariables, disposeLearner, type Learner } from './train/learner.js';
export { prepareBatch, trainStep, embed, contrastiveAttack, contrastiveAttackLoss, aclAttack, tradesAttack } from './train/methods.js';
export { loadContrastiveThreatModel, type ContrastiveThreatModel } from './train/threat-models.js';
export { buildProjectionHead, l2Normalize, type ProjectionConfig } from './models/projection.js';
export type { CheckpointMeta } from './train/meta.js';
export { captureActivations, type CaptureOptions } from './cka/capture.js';
export { linearCkaMatrix, type CkaEstimator } from './cka/engine.js';
export { computeSimilarity } from './cka/compute.js';
export * as ckaReference from './cka/reference.js';
export { streamMinibatchCka, type StreamCkaOptions } from './cka/stream.js';
export { minibatchStateOfSets, accumulateMinibatches, planBatches, parseShard, type MinibatchBatch, type Shard } from './cka/minibatch.js';
export { batchHsic, type Kernel } from './cka/minibatch-hsic.js';
export { emptyState, addBatch, mergeStates, type MinibatchState, type MinibatchConfig } from './cka/minibatch-state.js';
export { minibatchMatrix } from './cka/minibatch-result.js';
export { minibatchSimilarityOfFiles, mergeMinibatchRuns } from './cka/minibatch-files.js';
export { procrustesMatrix } from './cka/procrustes.js';
export { readActivations, writeActivations } from './formats/activations.js';
export { readSimilarity, writeSimilarity, type SimilarityTable } from './formats/similarity.js';
export { buildReport, reportSummary } from './report/build.js';
export { runDemo, type DemoOptions } from './pipeline/demo.js';
export { apgdAttack, classifierObjective, lossObjective, DEFAULT_APGD, type ApgdOptions, type AttackObjective } from './attacks/apgd.js';
export { apgdCheckpoints } from './attacks/apgd-schedule.js';
export { dlrPerSample, dlrLoss } from './attacks/losses.js';
export { parseAttackSpec, runAttack, type AttackSpec, type AttackSettings } from './attacks/suite.js';
export { evaluateRobustness, type EvalRow } from './probe/robust-eval.js';
export { runEvaluation, formatEvalTable, type EvaluationRequest } from './probe/eval-run.js';
export { fineTune, DEFAULT_FINE_TUNE, type FineTuneOptions, type FineTuneResult } from './probe/finetune.js';
export { layerProbes, type LayerProbeOptions, type LayerProbeResult } from './probe/layer-probes.js';
export { loadClassifier, attachHead, type Classifier } from './probe/classifier.js';
export { FINE_TUNE_MODES, type FineTuneMode, type ProbeMeta } from './probe/meta.js';
export { readEval, writeEval, type EvalTableRow } from './formats/eval.js';
// AutoAttack: components, presets and checks (issue 11 item 4).
export { ATTACKS, PRESETS, attackDefinition, type AttackDefinition, type AttackContext, type AttackKind } from './attacks/suite.js';
export { apgdTargeted, targetedObjective, DEFAULT_TARGETS, type ApgdTargetedOptions } from './attacks/apgd-targeted.js';
export { fabTargeted, fabTargetedMinNorm, DEFAULT_FAB, type FabOptions, type FabResult } from './attacks/fab.js';
export { projectOntoHyperplaneInBox } from './attacks/fab-projections.js';
export { squareAttackRun, DEFAULT_SQUARE, type SquareOptions, type SquareResult } from './attacks/square.js';
export { squareP, squareSide, squarePattern } from './attacks/square-schedule.js';
export { AUTOATTACK_STANDARD, AUTOATTACK_RAND, presetSpec, presetComponents, type AttackPreset, type PresetBudget } from './attacks/autoattack.js';
export { attackConsistency, presetSquareCheck, modelChecks, CHECK_TOLERANCE, type EvalWarning, type CheckName } from './attacks/checks.js';
export { targetedDlrPerSample, marginPerSample } from './attacks/losses.js';
export { logitsOf, type LogitsFn } from './attacks/rows.js';
export { formatEvalWarnings, type EvaluationResult } from './probe/eval-run.js';
