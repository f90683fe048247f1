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
export { DEFAULT_TRAIN, type TrainConfig } from './train/options.js';
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
