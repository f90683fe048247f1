/**
 * The projection step of FAB (Croce & Hein, "Minimally distorted adversarial examples with a fast
 * adaptive boundary attack", ICML 2020): the smallest perturbation d (in l_inf or l_2) that puts a
 * point t on the hyperplane w . (t + d) = b while t + d stays in the [0, 1] box. Pure math.
 *
 * Derivation. Flip the sign of (w, b) so that the gap r = b - w . t is >= 0. Coordinate i can move
 * towards the hyperplane by at most room_i (1 - t_i when w_i > 0, t_i when w_i < 0). For l_inf at
 * radius delta the largest reachable w . d is sum_i |w_i| min(delta, room_i); for l_2 the minimiser is
 * d_i = sign(w_i) min(lambda |w_i|, room_i) (KKT with the box), reaching sum_i |w_i| min(lambda |w_i|,
 * room_i). Both are s_i-scaled: d_i = sign(w_i) min(lambda s_i, room_i) with s_i = 1 (l_inf) or |w_i|
 * (l_2), and the reach is increasing and piecewise linear in lambda with breakpoints room_i / s_i, so
 * one sort and one pass find the lambda that closes the gap exactly. When even the whole box cannot
 * close it, every coordinate moves as far as it can (the box point nearest the hyperplane's side).
 */

export type ProjectionNorm = 'linf' | 'l2';

/**
 * d for one point: t and w of length D (views allowed), returns a new Float64Array. Coordinates with
 * w_i = 0 do not move.
 */
export function projectOntoHyperplaneInBox(t: ArrayLike<number>, w: ArrayLike<number>, b: number, norm: ProjectionNorm): Float64Array {
  const n = t.length;
  let dot = 0;
  for (let i = 0; i < n; i++) dot += w[i] * t[i];
  const gap = b - dot;
  const flip = gap < 0 ? -1 : 1;
  const r = gap * flip;
  const d = new Float64Array(n);
  if (r === 0) return d;
  // Direction, room and scale per moving coordinate.
  const dir = new Int8Array(n);
  const room = new Float64Array(n);
  const scale = new Float64Array(n);
  const absW = new Float64Array(n);
  const moving: number[] = [];
  let reachAll = 0;
  for (let i = 0; i < n; i++) {
    const wi = w[i] * flip;
    if (wi === 0) continue;
    dir[i] = wi > 0 ? 1 : -1;
    room[i] = wi > 0 ? 1 - t[i] : t[i];
    if (room[i] < 0) room[i] = 0;
    absW[i] = Math.abs(wi);
    scale[i] = norm === 'linf' ? 1 : absW[i];
    reachAll += absW[i] * room[i];
    moving.push(i);
  }
  if (reachAll <= r) {
    for (const i of moving) d[i] = dir[i] * room[i];
    return d;
  }
  // Breakpoints lambda_i = room_i / s_i, ascending; on a segment, reach(lambda) = fixed + lambda * slope.
  const breakpoints = new Float64Array(n);
  for (const i of moving) breakpoints[i] = room[i] / scale[i];
  moving.sort((i, j) => breakpoints[i] - breakpoints[j]);
  let slope = 0;
  for (const i of moving) slope += absW[i] * scale[i];
  let fixed = 0;
  let lambda = 0;
  for (const i of moving) {
    const breakpoint = breakpoints[i];
    const candidate = (r - fixed) / slope;
    if (candidate <= breakpoint) {
      lambda = candidate;
      break;
    }
    fixed += absW[i] * room[i];
    slope -= absW[i] * scale[i];
    lambda = breakpoint;
  }
  for (const i of moving) d[i] = dir[i] * Math.min(lambda * scale[i], room[i]);
  return d;
}

/** ||v||_inf or ||v||_2. */
export function vectorNorm(v: ArrayLike<number>, norm: ProjectionNorm): number {
  let acc = 0;
  for (let i = 0; i < v.length; i++) acc = norm === 'linf' ? Math.max(acc, Math.abs(v[i])) : acc + v[i] * v[i];
  return norm === 'linf' ? acc : Math.sqrt(acc);
}
