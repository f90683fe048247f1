import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { readActivations } from '../../formats/activations.js';
import { writeSimilarity, type SimilarityTable } from '../../formats/similarity.js';
import { provenance } from '../../util/provenance.js';
import { requireSameSamples } from '../engine/compute.js';
import { procrustesMatrix } from './procrustes-matrix.js';

/**
 * `cka --measure procrustes`: the orthogonal Procrustes similarity of stored activations, written
 * as similarity.arrow (the `cka` column holds the similarity, in [0, 1]; `distance` the distance).
 */
export async function procrustesSimilarityOfFiles(opts: { acts: string; acts2?: string; sets?: string[]; out: string }): Promise<{ file: string; similarity: SimilarityTable }> {
  const first = await readActivations(opts.acts, { sets: opts.sets });
  const second = opts.acts2 ? await readActivations(opts.acts2, { sets: opts.sets }) : null;
  if (second) requireSameSamples(first, second);
  const res = procrustesMatrix(first.sets, second ? second.sets : null);
  const similarity: SimilarityTable = {
    rows: res.rows,
    cols: res.cols,
    cka: res.similarity,
    extra: { distance: res.distance },
    metadata: {
      estimator: 'procrustes',
      measure: 'procrustes',
      measure_note: 'orthogonal Procrustes similarity ||X^T Y||_* of centred, unit-Frobenius activations (1 = equal up to rotation); the cka column holds it',
      n: first.sampleIds.length,
      inputs: second ? [first.source, second.source] : [first.source],
      rows_from: first.source,
      cols_from: second ? second.source : first.source,
      sources: second ? [first.metadata, second.metadata] : [first.metadata],
      provenance: provenance(tf.getBackend()),
    },
  };
  const file = path.join(opts.out, 'similarity.arrow');
  await writeSimilarity(file, similarity);
  return { file, similarity };
}
