import { InputError } from '../errors.js';

/** Parse a number that may be written as a fraction, e.g. `8/255` (how eps is usually quoted). */
export function parseFraction(flag: string, value: unknown): number {
  if (typeof value === 'number') return value;
  const text = String(value).trim();
  const m = /^([0-9.eE+-]+)\s*\/\s*([0-9.eE+-]+)$/.exec(text);
  const n = m ? Number(m[1]) / Number(m[2]) : Number(text);
  if (!Number.isFinite(n)) throw new InputError(`${flag}: expected a number or a fraction like 8/255, got '${text}'`);
  return n;
}

/** Split a comma-separated list flag. */
export function parseList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const items = Array.isArray(value) ? value : [value];
  return items.flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter(Boolean);
}

/**
 * The attack settings a command's flags override (`--eps`, `--step-size`, `--steps`, `--random-start`,
 * `--norm`, optionally with a prefix such as `eval-`); unset flags are left out so the model's own
 * attack settings apply.
 */
export function readAttackOverride(a: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (a.norm !== undefined) o.norm = a.norm;
  if (a[`${prefix}eps`] !== undefined) o.eps = parseFraction(`--${prefix}eps`, a[`${prefix}eps`]);
  if (a[`${prefix}step-size`] !== undefined) o.stepSize = parseFraction(`--${prefix}step-size`, a[`${prefix}step-size`]);
  if (a[`${prefix}steps`] !== undefined) o.steps = a[`${prefix}steps`];
  if (a[`${prefix}random-start`] !== undefined) o.randomStart = a[`${prefix}random-start`];
  return o;
}
