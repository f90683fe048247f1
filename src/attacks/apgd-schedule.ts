/**
 * The checkpoint schedule of APGD (Croce & Hein, "Reliable evaluation of adversarial robustness with
 * an ensemble of diverse parameter-free attacks", ICML 2020, Sec. 3.2):
 *   p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06),
 * checkpoints w_j = ceil(p_j * N_iter) for p_j <= 1. The first phase is long (22% of the budget);
 * later phases shrink by 3% of the budget each, down to 6%.
 * Pure math: returns the iteration counts (1-based, strictly increasing, <= nIter) where APGD checks
 * whether to halve its step size.
 */
export function apgdCheckpoints(nIter: number): number[] {
  const out: number[] = [];
  let prev = 0;
  let p = 0.22;
  while (p <= 1) {
    const w = Math.ceil(p * nIter - 1e-9);
    if (w >= 1 && w <= nIter && (out.length === 0 || w > out[out.length - 1])) out.push(w);
    const next = p + Math.max(p - prev - 0.03, 0.06);
    prev = p;
    p = next;
  }
  return out;
}

/**
 * Condition 1 of the paper at a checkpoint: the loss increased in fewer than a fraction rho of
 * the steps since the previous checkpoint (the step size makes the iterates oscillate).
 */
export function tooFewIncreases(increases: number, phaseLength: number, rho = 0.75): boolean {
  return increases < rho * phaseLength;
}
