import { minibatchOf, streamOf } from './minibatch-runs.js';
import type { MeasureSpec } from './spec.js';

/** CKA with the RBF kernel, median-distance bandwidth per minibatch; minibatch estimator only (--batch-size n gives the debiased full-data value). */
export const rbfCka: MeasureSpec = {
  describe: 'CKA with the RBF kernel, median-distance bandwidth per minibatch (minibatch estimator; --batch-size n for full data)',
  estimators: ['minibatch'],
  estimatorRefusal: 'is for linear CKA; --measure rbf-cka uses the minibatch estimator (--batch-size <n> gives the debiased full-data value)',
  kernel: 'rbf',
  fromActivations: (inputs, req) => minibatchOf(inputs, req, 'rbf'),
  fromModels: (req) => streamOf(req, 'rbf'),
};
