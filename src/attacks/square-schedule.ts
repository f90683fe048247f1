/**
 * The schedule and patterns of the Square Attack (Andriushchenko, Croce, Flammarion & Hein, "Square
 * Attack: a query-efficient black-box adversarial attack via random search", ECCV 2020). Pure math.
 */

/** Iterations after which the fraction p of pixels changed per query is halved. */
const HALVINGS = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];

/**
 * p at iteration `it` (0-based): p_init while it <= 10, then halved after iterations 10, 50, 200, 500,
 * 1000, 2000, 4000, 6000 and 8000 (the paper's schedule, written for 10,000 queries). AutoAttack keeps
 * the iteration counts as they are for its 5,000 queries (`rescale` false); with `rescale` the
 * schedule is stretched to `queries` (it -> it * 10000 / queries), for budgets far from 10,000.
 */
export function squareP(it: number, queries: number, pInit: number, rescale: boolean): number {
  const t = rescale ? Math.floor((it / queries) * 10000) : it;
  let p = pInit;
  for (const h of HALVINGS) if (t > h) p /= 2;
  return p;
}

/**
 * Side of the square changed at iteration `it` on an h x w image: round(sqrt(p h w)), at least 1
 * (l_inf) or the odd number >= 3 (l_2, whose pattern needs a centre), at most min(h, w).
 */
export function squareSide(p: number, h: number, w: number, norm: 'linf' | 'l2'): number {
  let s = Math.round(Math.sqrt(p * h * w));
  if (norm === 'linf') s = Math.max(s, 1);
  else {
    s = Math.max(s, 3);
    if (s % 2 === 0) s += 1;
  }
  return Math.min(s, h, w);
}

/**
 * An a x b block of concentric square rings around its centre (floor(a/2), floor(b/2)): the ring at
 * Chebyshev distance k from the centre is worth sum_{j >= k} 1 / (j + 1)^2, so the mass peaks in the
 * middle and decays outwards. Row-major.
 */
function rings(a: number, b: number): Float64Array {
  const out = new Float64Array(a * b);
  const ci = Math.floor(a / 2);
  const cj = Math.floor(b / 2);
  const kMax = Math.max(ci, cj) + 1;
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      let v = 0;
      for (let k = Math.max(Math.abs(i - ci), Math.abs(j - cj)); k < kMax; k++) v += 1 / ((k + 1) * (k + 1));
      out[i * b + j] = v;
    }
  }
  return out;
}

/**
 * The l_2 Square Attack's update pattern on an s x s window: rings of one sign on the top floor(s/2)
 * rows and of the other sign below, unit l_2 norm; `transpose` swaps rows and columns (the attack
 * flips a coin). Row-major.
 */
export function squarePattern(s: number, transpose: boolean): Float64Array {
  const top = Math.floor(s / 2);
  const upper = rings(top, s);
  const lower = rings(s - top, s);
  const out = new Float64Array(s * s);
  out.set(upper, 0);
  for (let i = 0; i < lower.length; i++) out[upper.length + i] = -lower[i];
  let norm = 0;
  for (const v of out) norm += v * v;
  norm = Math.sqrt(norm) || 1;
  if (!transpose) return out.map((v) => v / norm);
  const t = new Float64Array(s * s);
  for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) t[j * s + i] = out[i * s + j] / norm;
  return t;
}
