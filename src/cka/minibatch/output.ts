import * as path from 'node:path';
import { InputError } from '../../errors.js';
import { writeSimilarity, type SimilarityTable } from '../../formats/similarity.js';
import { writeAccumulators, type SavedAccumulators } from '../../formats/accumulators.js';
import { minibatchMatrix } from './result.js';
import { flaggedWarning, flagOutOfRange, sharedMetadata, type FlaggedValue } from '../similarity/metadata.js';

/**
 * From accumulators to similarity.arrow files. The context's `groups` say where the sets came
 * from: one group (one model or one activation file) gives `<out>/similarity.arrow`, sets x sets;
 * two groups (model A, model B) give `<out>/similarity.arrow` with A's sets as rows and B's as
 * columns, plus `<out>/a/similarity.arrow` and `<out>/b/similarity.arrow` within each model. With
 * two groups the accumulator's set names carry a `<key>:` prefix that the tables drop.
 */
export interface SetGroup {
  /** 'a' or 'b'. */
  key: string;
  /** The checkpoint or file the group's sets came from. */
  source: string;
  /** Metadata of that source (model description), copied into the tables. */
  metadata?: unknown;
}

export interface WrittenSimilarity {
  file: string;
  similarity: SimilarityTable;
  flagged: FlaggedValue[];
}

export function groupsOf(context: Record<string, unknown>): SetGroup[] {
  const groups = context.groups as SetGroup[] | undefined;
  if (!Array.isArray(groups) || groups.length < 1 || groups.length > 2) throw new InputError(`accumulators: context.groups must list one or two sources`);
  return groups;
}

/** The accumulator name of a set of a group (prefixed only when there are two groups). */
export function qualifiedName(groups: SetGroup[], key: string, name: string): string {
  return groups.length === 1 ? name : `${key}:${name}`;
}

/** Write accumulators.{npy,json} and the similarity tables to `out`; returns the tables written. `notes`: warnings of the run's rules, added to every table's. */
export async function writeMinibatchResults(out: string, saved: SavedAccumulators, extraMetadata: Record<string, unknown>, notes: string[] = []): Promise<WrittenSimilarity[]> {
  await writeAccumulators(out, saved);
  const groups = groupsOf(saved.context);
  const { state } = saved;
  const setsOf = (g: SetGroup) =>
    groups.length === 1 ? state.sets.slice() : state.sets.filter((s) => s.startsWith(`${g.key}:`));
  const jobs: { file: string; rows: SetGroup; cols: SetGroup }[] =
    groups.length === 1
      ? [{ file: path.join(out, 'similarity.arrow'), rows: groups[0], cols: groups[0] }]
      : [
          { file: path.join(out, 'similarity.arrow'), rows: groups[0], cols: groups[1] },
          ...groups.map((g) => ({ file: path.join(out, g.key, 'similarity.arrow'), rows: g, cols: g })),
        ];
  const written: WrittenSimilarity[] = [];
  for (const job of jobs) {
    const rowSets = setsOf(job.rows);
    const colSets = setsOf(job.cols);
    const res = minibatchMatrix(state, rowSets, colSets);
    const strip = (s: string) => (groups.length === 1 ? s : s.slice(s.indexOf(':') + 1));
    const rows = rowSets.map(strip);
    const cols = colSets.map(strip);
    const flagged = flagOutOfRange(res.cka, rows, cols);
    const extra: Record<string, Float64Array> = { hsic: res.hsic };
    if (res.ciLow && res.ciHigh) Object.assign(extra, { ci_low: res.ciLow, ci_high: res.ciHigh });
    if (res.nullMean && res.nullSd) Object.assign(extra, { null_mean: res.nullMean, null_sd: res.nullSd });
    const warnings = flaggedWarning(flagged, true);
    if (res.undefinedSets.length > 0) warnings.push(`set(s) ${res.undefinedSets.map(strip).join(', ')} have no positive self-HSIC (constant over every batch?): their CKA is NaN`);
    warnings.push(...notes);
    const similarity: SimilarityTable = {
      rows,
      cols,
      cka: res.cka,
      extra,
      metadata: {
        estimator: 'minibatch',
        measure: state.config.kernel === 'rbf' ? 'rbf-cka' : 'linear-cka',
        ...(state.config.kernel === 'rbf' ? { bandwidth: 'median squared distance within each minibatch (Kornblith et al. gram_rbf, threshold 1)' } : {}),
        ...sharedMetadata(state.samples, job.rows, job.cols, flagged, warnings),
        batch_size: state.config.batchSize,
        batches: state.batchIds.length,
        seed: state.config.seed,
        bootstrap: state.config.bootstrap,
        permutations: state.config.permutations,
        ...(state.config.bootstrap > 0 ? { ci_level: 0.95, ci_method: 'percentile, Poisson bootstrap over minibatches' } : {}),
        ...(state.config.permutations > 0 ? { null_method: 'rows of the column set permuted within each minibatch' } : {}),
        context: saved.context,
        ...extraMetadata,
      },
    };
    await writeSimilarity(job.file, similarity);
    written.push({ file: job.file, similarity, flagged });
  }
  return written;
}
