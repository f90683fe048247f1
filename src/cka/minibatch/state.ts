import { InputError } from '../../errors.js';
import { makeRng, permutation, subSeed, type Rng } from '../../util/rng.js';
import type { MinibatchConfig, MinibatchState } from '../../formats/accumulators.js';

/** The state's shape is the accumulators' file format (src/formats/accumulators.ts); the rules of adding and merging are here. */
export type { MinibatchConfig, MinibatchState } from '../../formats/accumulators.js';

export function validateConfig(c: MinibatchConfig): void {
  if (!Number.isInteger(c.batchSize) || c.batchSize < 4) {
    throw new InputError(`--batch-size: ${c.batchSize}; minibatch CKA needs batches of at least 4 samples (the unbiased HSIC divides by b(b-3))`);
  }
  if (!Number.isInteger(c.seed)) throw new InputError(`--seed: expected an integer, got ${c.seed}`);
  if (!Number.isInteger(c.bootstrap) || c.bootstrap < 0) throw new InputError(`--bootstrap: expected a non-negative integer, got ${c.bootstrap}`);
  if (!Number.isInteger(c.permutations) || c.permutations < 0) throw new InputError(`--permutations: expected a non-negative integer, got ${c.permutations}`);
  if (c.kernel !== undefined && c.kernel !== 'linear' && c.kernel !== 'rbf') throw new InputError(`--measure: kernel '${c.kernel}', expected linear or rbf`);
}

export function emptyState(sets: string[], config: MinibatchConfig): MinibatchState {
  validateConfig(config);
  const dup = sets.find((s, i) => sets.indexOf(s) !== i);
  if (dup !== undefined) throw new InputError(`minibatch cka: set '${dup}' appears twice`);
  const mm = sets.length * sets.length;
  return {
    sets: sets.slice(),
    config: { ...config, kernel: config.kernel ?? 'linear' },
    batchIds: [],
    samples: 0,
    hsic: new Float64Array(mm),
    boot: new Float64Array(config.bootstrap * mm),
    nullHsic: new Float64Array(config.permutations * mm),
  };
}

/** The permutations the null replicates use for global batch `batchId` of `b` samples. */
export function nullPermutations(config: MinibatchConfig, batchId: number, b: number): Int32Array[] {
  const rng = makeRng(subSeed(config.seed, 'cka-null', batchId));
  return Array.from({ length: config.permutations }, () => permutation(b, rng));
}

/** The Poisson(1) bootstrap weight of batch `batchId` in each replicate. */
export function bootstrapWeights(config: MinibatchConfig, batchId: number): Int32Array {
  const rng = makeRng(subSeed(config.seed, 'cka-bootstrap', batchId));
  return Int32Array.from({ length: config.bootstrap }, () => poisson1(rng));
}

/** A Poisson(1) draw (Knuth's product of uniforms; the mean is small, so this is cheap). */
function poisson1(rng: Rng): number {
  const limit = Math.exp(-1);
  let k = 0;
  let p = rng();
  while (p > limit) {
    k++;
    p *= rng();
  }
  return k;
}

/**
 * Add one batch's HSIC terms (from batchHsic, computed with nullPermutations(config, batchId, b)).
 * Mutates and returns `state`.
 */
export function addBatch(state: MinibatchState, batchId: number, b: number, hsic: Float64Array, nullHsic: Float64Array): MinibatchState {
  const mm = state.sets.length ** 2;
  if (hsic.length !== mm || nullHsic.length !== state.config.permutations * mm) throw new Error('addBatch: terms do not match the state');
  if (state.batchIds.includes(batchId)) throw new Error(`addBatch: batch ${batchId} added twice`);
  for (let k = 0; k < mm; k++) state.hsic[k] += hsic[k];
  const weights = bootstrapWeights(state.config, batchId);
  weights.forEach((w, r) => {
    if (w === 0) return;
    const base = r * mm;
    for (let k = 0; k < mm; k++) state.boot[base + k] += w * hsic[k];
  });
  for (let k = 0; k < nullHsic.length; k++) state.nullHsic[k] += nullHsic[k];
  state.batchIds.push(batchId);
  state.samples += b;
  return state;
}

/**
 * The state of the union of runs over disjoint batches. Refuses states that disagree on the sets
 * or the configuration, or that share a batch (the merged sums would count it twice).
 */
export function mergeStates(states: MinibatchState[], where = 'cka-merge'): MinibatchState {
  if (states.length === 0) throw new InputError(`${where}: nothing to merge`);
  const first = states[0];
  const seen = new Map<number, number>();
  for (const [i, s] of states.entries()) {
    if (JSON.stringify(s.sets) !== JSON.stringify(first.sets)) throw new InputError(`${where}: input ${i + 1} has sets [${s.sets.join(', ')}] but input 1 has [${first.sets.join(', ')}]; shards must come from the same command`);
    for (const key of ['batchSize', 'seed', 'bootstrap', 'permutations', 'kernel'] as const) {
      if ((s.config[key] ?? 'linear') !== (first.config[key] ?? 'linear')) throw new InputError(`${where}: input ${i + 1} has ${key} ${s.config[key]} but input 1 has ${first.config[key]}; shards must use the same options`);
    }
    for (const id of s.batchIds) {
      const other = seen.get(id);
      if (other !== undefined) throw new InputError(`${where}: inputs ${other + 1} and ${i + 1} both hold batch ${id}; shards must be disjoint`);
      seen.set(id, i);
    }
  }
  const out = emptyState(first.sets, first.config);
  for (const s of states) {
    for (let k = 0; k < out.hsic.length; k++) out.hsic[k] += s.hsic[k];
    for (let k = 0; k < out.boot.length; k++) out.boot[k] += s.boot[k];
    for (let k = 0; k < out.nullHsic.length; k++) out.nullHsic[k] += s.nullHsic[k];
    out.batchIds.push(...s.batchIds);
    out.samples += s.samples;
  }
  out.batchIds.sort((a, b) => a - b);
  return out;
}
