import seedrandom from 'seedrandom';

/** A seeded uniform [0, 1) generator; every random choice in robustsim goes through one. */
export type Rng = () => number;

export function makeRng(seed: number | string): Rng {
  return seedrandom(String(seed));
}

/** Fisher-Yates permutation of 0..n-1 driven by `rng`. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Derive an integer seed for a sub-stream (e.g. epoch e of run seed s) deterministically. */
export function subSeed(seed: number, ...parts: Array<number | string>): number {
  const rng = makeRng([seed, ...parts].join(':'));
  return Math.floor(rng() * 2 ** 31);
}
