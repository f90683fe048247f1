import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { writeSimilarity, type SimilarityTable } from '../../formats/similarity.js';
import { provenance } from '../../util/provenance.js';
import { activationSides, flagOutOfRange, sharedMetadata } from '../similarity/metadata.js';
import { procrustesMatrix } from './procrustes-matrix.js';
import type { MeasureSpec } from './spec.js';

/**
 * `cka --measure procrustes`: the orthogonal Procrustes similarity of stored activations, written
 * as similarity.arrow (the `cka` column holds the similarity, in [0, 1]; `distance` the distance).
 * Float64 on the host, O(min(n,p)^3) per pair, all samples at once: no estimator, no streaming.
 */
export const procrustes: MeasureSpec = {
  describe: 'orthogonal Procrustes similarity (--acts only, float64 on the host, O(min(n,p)^3) per pair)',
  estimators: [],
  modelsRefusal: 'needs all samples at once; use it with --acts (stored activations), not --model',
  async fromActivations({ first, second }, req) {
    const res = procrustesMatrix(first.sets, second ? second.sets : null);
    const flagged = flagOutOfRange(res.similarity, res.rows, res.cols);
    const [rows, cols] = activationSides(first, second);
    const similarity: SimilarityTable = {
      rows: res.rows,
      cols: res.cols,
      cka: res.similarity,
      extra: { distance: res.distance },
      metadata: {
        estimator: 'procrustes',
        measure: 'procrustes',
        measure_note: 'orthogonal Procrustes similarity ||X^T Y||_* of centred, unit-Frobenius activations (1 = equal up to rotation); the cka column holds it',
        ...sharedMetadata(first.sampleIds.length, rows, cols, flagged, req.warnings),
        provenance: provenance(req.backend ?? tf.getBackend()),
      },
    };
    const file = path.join(req.out, 'similarity.arrow');
    await writeSimilarity(file, similarity);
    return { written: [{ file, similarity, flagged }] };
  },
};
