import { writeActivationTable } from '../similarity/activation-table.js';
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
  async fromActivations(inputs, req) {
    const res = procrustesMatrix(inputs.first.sets, inputs.second ? inputs.second.sets : null);
    const matrix = { rows: res.rows, cols: res.cols, values: res.similarity, extra: { distance: res.distance }, n: inputs.first.sampleIds.length };
    const own = {
      estimator: 'procrustes',
      measure: 'procrustes',
      measure_note: 'orthogonal Procrustes similarity ||X^T Y||_* of centred, unit-Frobenius activations (1 = equal up to rotation); the cka column holds it',
    };
    return { written: [await writeActivationTable(inputs, req, matrix, own)] };
  },
};
