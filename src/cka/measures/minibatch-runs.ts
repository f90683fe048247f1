import { minibatchOfActivations } from '../minibatch/files.js';
import type { Kernel } from '../minibatch/hsic.js';
import { streamMinibatch } from '../stream/stream.js';
import type { ActivationInputs, ResolvedRequest } from '../similarity/request.js';
import type { MeasureOutput } from './spec.js';

/** The minibatch estimator of a kernel CKA: from stored activations, or streamed from models. */
export function minibatchOf(inputs: ActivationInputs, req: ResolvedRequest, kernel: Kernel): Promise<MeasureOutput> {
  return minibatchOfActivations(inputs, req, kernel);
}

export async function streamOf(req: ResolvedRequest, kernel: Kernel): Promise<MeasureOutput> {
  const res = await streamMinibatch({
    models: req.models!,
    out: req.out,
    dataset: req.dataset,
    dataDir: req.dataDir,
    split: req.split,
    n: req.n!,
    seed: req.seed,
    batchSize: req.batchSize,
    layers: req.layers,
    tapSet: req.tapSet,
    inputs: req.inputs!,
    attack: req.attack,
    attackLoss: req.attackLoss,
    bootstrap: req.bootstrap,
    permutations: req.permutations,
    kernel,
    formulation: req.formulation,
    shard: req.shard,
    workers: req.workers,
    notes: req.warnings,
    onProgress: req.onProgress,
  });
  return { written: res.written, minibatch: { sets: res.sets, batches: res.batches, samples: res.samples } };
}
