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
