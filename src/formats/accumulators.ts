import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { encodeNpy, readNpy } from './npy.js';
import type { MinibatchState } from '../cka/minibatch/state.js';

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
