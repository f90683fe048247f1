import { fullDataSimilarity } from '../engine/compute.js';
import { minibatchOf, streamOf } from './minibatch-runs.js';
import type { MeasureSpec } from './spec.js';

/** Linear CKA (Kornblith et al. 2019): biased or debiased HSIC on all n (engine/), or minibatch HSIC (minibatch/, stream/). */
export const linearCka: MeasureSpec = {
  describe: 'linear CKA',
  estimators: ['biased', 'debiased', 'minibatch'],
  kernel: 'linear',
  fromActivations: async (inputs, req) => (req.estimator === 'minibatch' ? minibatchOf(inputs, req, 'linear') : { written: [await fullDataSimilarity(inputs, req)] }),
  fromModels: (req) => streamOf(req, 'linear'),
};
