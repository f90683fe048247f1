import { MEASURES } from '../measures/index.js';
import { readActivationInputs } from './inputs.js';
import type { SimilarityRequest, SimilarityResult } from './request.js';
import { combinationRules, samplesRules } from './rules.js';

/**
 * The one entry point of every similarity measure: apply the combination rules (measure x
 * estimator x input source; InputError naming the flag), read the activations once, or stream from
 * the models, and write the tables through the measure's spec. Returns the tables written and the
 * warnings to show.
 */
export async function runSimilarity(request: SimilarityRequest): Promise<SimilarityResult> {
  let req = combinationRules(request);
  const spec = MEASURES[req.measure];
  let out;
  if (req.source === 'models') {
    // The number of samples is the requested --n (the dataset may hold fewer).
    req = samplesRules(req, req.n!);
    out = await spec.fromModels!(req);
  } else {
    const inputs = await readActivationInputs(req.acts!, req.acts2, req.sets);
    req = samplesRules(req, inputs.first.sampleIds.length);
    out = await spec.fromActivations(inputs, req);
  }
  const warnings = [...req.warnings];
  for (const w of out.written) {
    for (const f of w.flagged) warnings.push(`CKA(${f.row}, ${f.col}) = ${f.cka} in ${w.file} is outside [0, 1] beyond rounding or undefined; kept as is`);
  }
  return { ...out, warnings };
}
