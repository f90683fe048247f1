import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { encodeNpy, readNpy } from './npy.js';

/**
 * Minibatch CKA accumulators on disk, beside similarity.arrow:
 * - accumulators.npy: float64, shape (1 + bootstrap + permutations, sets, sets): the HSIC sums, then
 *   the bootstrap replicates, then the permutation-null replicates (readable with numpy.load);
 * - accumulators.json: the set names (the order of both set axes), the configuration, the batches
 *   held, and `context` (what made them: models, data, attack), which `cka-merge` requires to agree.
 * The .npy is written first and the .json last, so a directory with a .json has a complete pair.
 */
export const ACCUMULATORS_JSON = 'accumulators.json';
export const ACCUMULATORS_NPY = 'accumulators.npy';
const FORMAT = 'robustsim-cka-accumulators/1';

/**
 * The kernel of the Gram matrices: linear (K = X X^T) or RBF with the median-distance bandwidth of
 * Kornblith et al.'s notebook, K_ij = exp(-d_ij^2 / (2 median(d^2))), the median taken over all b^2
 * entries of the batch's squared-distance matrix (diagonal included, as np.median does there).
 */
export type Kernel = 'linear' | 'rbf';

/**
 * The whole state of a minibatch CKA run (Nguyen, Raghu, Kornblith 2021): float64 sums of the
 * per-batch unbiased HSIC of every pair of sets. Its size is (1 + bootstrap + permutations) x
 * sets x sets whatever the number of samples, and two states over disjoint batches of the same
 * run add up to the state of one run over both (`mergeStates`), because every random choice
 * (bootstrap weights, permutations) is drawn from the run seed and the batch's global index.
 *
 * Statistics, both over minibatches:
 * - bootstrap: an online Poisson bootstrap; replicate r adds batch t's terms w_rt ~ Poisson(1)
 *   times, so replicate sums are resampled-batch sums without storing per-batch terms;
 * - permutation null: null replicate q adds HSIC(K, P L P^T) with P a random permutation of the
 *   batch (the rows of the column set shuffled against the row set).
 */
export interface MinibatchConfig {
  batchSize: number;
  /** Seed of the bootstrap weights and the permutations. */
  seed: number;
  /** Poisson bootstrap replicates (0 = none). */
  bootstrap: number;
  /** Permutation-null replicates (0 = none). */
  permutations: number;
  /** Kernel of the Gram matrices (default linear): 'rbf' gives RBF-kernel CKA. */
  kernel?: Kernel;
}

export interface MinibatchState {
  /** Unique set names, in the order of the accumulators' axes. */
  sets: string[];
  config: MinibatchConfig;
  /** Global indices of the batches added (to refuse overlapping merges). */
  batchIds: number[];
  /** Samples over all batches added. */
  samples: number;
  /** sets x sets: sum over batches of the unbiased HSIC. */
  hsic: Float64Array;
  /** bootstrap x sets x sets: Poisson-weighted sums. */
  boot: Float64Array;
  /** permutations x sets x sets: sums of HSIC(K, P L P^T). */
  nullHsic: Float64Array;
}

export interface SavedAccumulators {
  state: MinibatchState;
  /** Anything describing how the sets were produced; shards of one run share it. */
  context: Record<string, unknown>;
  /** Free-form: provenance, shard, ... (not compared when merging). */
  info: Record<string, unknown>;
}

export async function writeAccumulators(dir: string, saved: SavedAccumulators): Promise<void> {
  const { state } = saved;
  const m = state.sets.length;
  const layers = 1 + state.config.bootstrap + state.config.permutations;
  const all = new Float64Array(layers * m * m);
  all.set(state.hsic, 0);
  all.set(state.boot, m * m);
  all.set(state.nullHsic, (1 + state.config.bootstrap) * m * m);
  await writeFileAtomic(path.join(dir, ACCUMULATORS_NPY), encodeNpy(all, [layers, m, m]));
  const json = {
    format: FORMAT,
    sets: state.sets,
    config: state.config,
    batch_ids: state.batchIds,
    samples: state.samples,
    context: saved.context,
    info: saved.info,
  };
  await writeFileAtomic(path.join(dir, ACCUMULATORS_JSON), JSON.stringify(json, null, 1) + '\n');
}

/** Read a directory written by writeAccumulators; errors name the file and what is wrong. */
export async function readAccumulators(dir: string): Promise<SavedAccumulators> {
  const jsonFile = path.join(dir, ACCUMULATORS_JSON);
  let text: string;
  try {
    text = await fs.readFile(jsonFile, 'utf8');
  } catch (err) {
    throw new InputError(`${jsonFile}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)}); expected the output directory of 'robustsim cka --model ...'`);
  }
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new InputError(`${jsonFile}: not valid JSON (${(err as Error).message})`);
  }
  if (j.format !== FORMAT) throw new InputError(`${jsonFile}: format ${JSON.stringify(j.format)}, expected ${FORMAT}`);
  const sets = j.sets as string[];
  const config = j.config as MinibatchState['config'];
  const batchIds = j.batch_ids as number[];
  if (!Array.isArray(sets) || !sets.every((s) => typeof s === 'string')) throw new InputError(`${jsonFile}: 'sets' must be a list of names`);
  if (!Array.isArray(batchIds) || !batchIds.every(Number.isInteger)) throw new InputError(`${jsonFile}: 'batch_ids' must be a list of integers`);
  if (!config || typeof config !== 'object') throw new InputError(`${jsonFile}: 'config' missing`);
  const npyFile = path.join(dir, ACCUMULATORS_NPY);
  const arr = await readNpy(npyFile);
  const m = sets.length;
  const layers = 1 + config.bootstrap + config.permutations;
  if (arr.dtype !== '<f8' || arr.shape.join(',') !== [layers, m, m].join(',')) {
    throw new InputError(`${npyFile}: ${arr.dtype} (${arr.shape.join(', ')}), expected <f8 (${layers}, ${m}, ${m}) as ${ACCUMULATORS_JSON} says`);
  }
  const all = arr.data as Float64Array;
  const mm = m * m;
  const state: MinibatchState = {
    sets,
    config,
    batchIds,
    samples: Number(j.samples),
    hsic: all.slice(0, mm),
    boot: all.slice(mm, (1 + config.bootstrap) * mm),
    nullHsic: all.slice((1 + config.bootstrap) * mm),
  };
  return { state, context: (j.context ?? {}) as Record<string, unknown>, info: (j.info ?? {}) as Record<string, unknown> };
}
