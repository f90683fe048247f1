import { InputError } from '../../errors.js';
import { readActivations, type Activations } from '../../formats/activations.js';
import type { ActivationInputs } from './request.js';

/** Read the activation inputs once (both on the same samples), for whichever measure runs. */
export async function readActivationInputs(acts: string, acts2: string | undefined, sets: string[] | undefined): Promise<ActivationInputs> {
  const first = await readActivations(acts, { sets });
  const second = acts2 ? await readActivations(acts2, { sets }) : null;
  if (second) requireSameSamples(first, second);
  return { first, second };
}

/** Two inputs must hold the same samples in the same order, or pairs of sets mean nothing. */
export function requireSameSamples(a: Pick<Activations, 'sampleIds' | 'source'>, b: Pick<Activations, 'sampleIds' | 'source'>): void {
  if (a.sampleIds.length !== b.sampleIds.length) {
    throw new InputError(`${a.source} has ${a.sampleIds.length} samples but ${b.source} has ${b.sampleIds.length}; both inputs must hold the same sample ids in the same order`);
  }
  for (let i = 0; i < a.sampleIds.length; i++) {
    if (a.sampleIds[i] !== b.sampleIds[i]) {
      throw new InputError(`${a.source} and ${b.source} hold different samples: at position ${i} sample_id ${a.sampleIds[i]} vs ${b.sampleIds[i]}; capture both on the same samples in the same order`);
    }
  }
}
