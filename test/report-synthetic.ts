import * as path from 'node:path';
import { writeSimilarity, type SimilarityTable } from '../src/formats/similarity.js';

/**
 * Synthetic similarity tables for the report tests: plausible shapes (CKA decays with layer distance,
 * clean-vs-adv similarity falls with depth to `pooledCka`), tiny sizes, no model needed.
 */

export const RESNET_LAYERS = ['stem', 'stage1.block1', 'stage1.block2', 'stage2.block1', 'stage2.block2', 'pool', 'logits'];

/** Clean-vs-adv CKA at each depth: 1 at the input side, `end` at the last layer. */
function profile(layers: number, end: number): number[] {
  return Array.from({ length: layers }, (_, i) => 1 - ((1 - end) * (i + 1)) / layers);
}

function cka(i: number, j: number, sameInput: boolean, d: number[]): number {
  const decay = Math.exp(-Math.abs(i - j) / 3);
  return sameInput ? decay : decay * Math.sqrt(d[i] * d[j]);
}

export interface SyntheticOptions {
  name: string;
  layers?: string[];
  /** Clean-vs-adv CKA at the last layer. */
  end?: number;
  /** Interleave `l@clean, l@adv` instead of all clean sets then all adv sets. */
  interleaved?: boolean;
}

function sourceMeta(name: string, regime: string): Record<string, unknown> {
  return {
    model: { name, arch: 'resnet-mini', scheme: 'sl', regime, dataset: 'fashion-mnist', epochs: 1, metrics: { clean_acc: 0.81234, robust_acc: 0.4 } },
    attack: { name: 'pgd', eps: 8 / 255, step: 2 / 255, steps: 10, random_start: true },
    provenance: { tool: 'robustsim', version: '0.1.0', backend: 'wasm' },
  };
}

/** A within-model table over `<layer>@clean` and `<layer>@adv` sets. */
export function selfSimilarity(opts: SyntheticOptions): SimilarityTable {
  const layers = opts.layers ?? RESNET_LAYERS;
  const d = profile(layers.length, opts.end ?? 0.5);
  const sets: { layer: number; input: 'clean' | 'adv' }[] = opts.interleaved
    ? layers.flatMap((_, i) => [{ layer: i, input: 'clean' as const }, { layer: i, input: 'adv' as const }])
    : [...layers.map((_, i) => ({ layer: i, input: 'clean' as const })), ...layers.map((_, i) => ({ layer: i, input: 'adv' as const }))];
  const names = sets.map((s) => `${layers[s.layer]}@${s.input}`);
  const values = new Float64Array(sets.length * sets.length);
  sets.forEach((a, i) => sets.forEach((b, j) => (values[i * sets.length + j] = cka(a.layer, b.layer, a.input === b.input, d))));
  return {
    rows: names,
    cols: names.slice(),
    cka: values,
    metadata: {
      estimator: 'debiased',
      n: 200,
      inputs: [`runs/${opts.name}/activations.arrow`],
      sources: [sourceMeta(opts.name, (opts.end ?? 0.5) > 0.5 ? 'at' : 'st')],
      provenance: { tool: 'robustsim', version: '0.1.0', command: 'robustsim cka', backend: 'wasm' },
    },
  };
}

/** A two-model table: rows from A, cols from B, on the given input kinds. */
export function crossSimilarity(a: string, b: string, inputs: string[] = ['clean', 'adv'], layers = RESNET_LAYERS): SimilarityTable {
  const names = inputs.flatMap((k) => layers.map((l) => `${l}@${k}`));
  const values = new Float64Array(names.length * names.length);
  names.forEach((_, i) => names.forEach((__, j) => (values[i * names.length + j] = 0.9 * Math.exp(-Math.abs((i % layers.length) - (j % layers.length)) / 2))));
  return {
    rows: names,
    cols: names.slice(),
    cka: values,
    metadata: {
      estimator: 'debiased',
      n: 200,
      inputs: [`runs/${a}/activations.arrow`, `runs/${b}/activations.arrow`],
      rows_from: `runs/${a}/activations.arrow`,
      cols_from: `runs/${b}/activations.arrow`,
      sources: [sourceMeta(a, 'st'), sourceMeta(b, 'at')],
      provenance: { tool: 'robustsim', version: '0.1.0', command: 'robustsim cka', backend: 'wasm' },
    },
  };
}

/** Write a table as `<dir>/<name>/similarity.arrow` and return the directory. */
export async function writeSimilarityDir(dir: string, name: string, sim: SimilarityTable): Promise<string> {
  const target = path.join(dir, name);
  await writeSimilarity(path.join(target, 'similarity.arrow'), sim);
  return target;
}
