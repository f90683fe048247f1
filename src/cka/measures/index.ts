import type { Measure } from '../similarity/request.js';
import { linearCka } from './linear-cka.js';
import { procrustes } from './procrustes.js';
import { rbfCka } from './rbf-cka.js';
import type { MeasureSpec } from './spec.js';

/** Every measure `cka --measure` and runSimilarity know; the compiler checks each Measure has its spec. */
export const MEASURES: Record<Measure, MeasureSpec> = {
  cka: linearCka,
  'rbf-cka': rbfCka,
  procrustes,
};

export const MEASURE_NAMES = Object.keys(MEASURES) as Measure[];
export type { MeasureSpec } from './spec.js';
