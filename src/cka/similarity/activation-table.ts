import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { writeSimilarity } from '../../formats/similarity.js';
import { provenance } from '../../util/provenance.js';
import type { WrittenSimilarity } from '../minibatch/output.js';
import { activationSides, flaggedWarning, flagOutOfRange, sharedMetadata } from './metadata.js';
import type { ActivationInputs, ResolvedRequest } from './request.js';

/** A full-data measure's matrix of activation inputs: what every such table holds besides its own metadata. */
export interface ActivationMatrix {
  rows: string[];
  cols: string[];
  /** rows x cols, row-major: the similarity (the `cka` column). */
  values: Float64Array;
  extra: Record<string, Float64Array>;
  n: number;
}

/**
 * Write `<out>/similarity.arrow` of a measure computed from activations read once: the measure's
 * own metadata (`estimator` first), then the shared keys and flags, then `after` and the provenance.
 */
export async function writeActivationTable(
  inputs: ActivationInputs,
  req: ResolvedRequest,
  matrix: ActivationMatrix,
  own: { estimator: string } & Record<string, unknown>,
  after: Record<string, unknown> = {},
): Promise<WrittenSimilarity> {
  const flagged = flagOutOfRange(matrix.values, matrix.rows, matrix.cols);
  const [rows, cols] = activationSides(inputs.first, inputs.second);
  const similarity = {
    rows: matrix.rows,
    cols: matrix.cols,
    cka: matrix.values,
    extra: matrix.extra,
    metadata: {
      ...own,
      ...sharedMetadata(matrix.n, rows, cols, flagged, [...flaggedWarning(flagged, false), ...req.warnings]),
      ...after,
      provenance: provenance(req.backend ?? tf.getBackend()),
    },
  };
  const file = path.join(req.out, 'similarity.arrow');
  await writeSimilarity(file, similarity);
  return { file, similarity, flagged };
}
