/** Learning rate at `step` of `totalSteps`: cosine decay to zero (Loshchilov & Hutter) or constant. */
export function learningRateAt(schedule: 'cosine' | 'constant', base: number, step: number, totalSteps: number): number {
  if (schedule === 'constant' || totalSteps <= 0) return base;
  const t = Math.min(step, totalSteps) / totalSteps;
  return 0.5 * base * (1 + Math.cos(Math.PI * t));
}
