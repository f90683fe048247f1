import type { Activations } from '../../formats/activations.js';

/** How far outside [0, 1] a CKA value may stray (float32 rounding; debiased dips below 0) before it is flagged. */
export const FLAG_TOLERANCE = 1e-3;

export interface FlaggedValue {
  row: string;
  col: string;
  cka: number;
}

/** Values outside [-FLAG_TOLERANCE, 1 + FLAG_TOLERANCE], or NaN: reported, never clamped. */
export function flagOutOfRange(values: ArrayLike<number>, rows: string[], cols: string[]): FlaggedValue[] {
  const flagged: FlaggedValue[] = [];
  for (let k = 0; k < values.length; k++) {
    const v = values[k];
    if (!(v >= -FLAG_TOLERANCE && v <= 1 + FLAG_TOLERANCE)) flagged.push({ row: rows[Math.floor(k / cols.length)], col: cols[k % cols.length], cka: v });
  }
  return flagged;
}

/** The metadata.warning sentence of flagged values (none when nothing is flagged). */
export function flaggedWarning(flagged: FlaggedValue[], undefinedToo: boolean): string[] {
  if (flagged.length === 0) return [];
  return [`${flagged.length} CKA value(s) outside [${-FLAG_TOLERANCE}, ${1 + FLAG_TOLERANCE}]${undefinedToo ? ' or undefined' : ''}; left unclamped (see 'flagged')`];
}

export interface SharedMetadata {
  n: number;
  inputs: string[];
  rows_from: string;
  cols_from: string;
  sources: unknown[];
  flagged: FlaggedValue[];
  warning?: string;
}

/** Where a table's rows and columns came from. */
export interface TableSide {
  source: string;
  metadata?: unknown;
}

/**
 * The metadata keys every similarity.arrow has, whatever the measure: n, inputs, rows_from,
 * cols_from, sources, flagged and (when there is something to say) warning. The measure adds its own.
 */
export function sharedMetadata(n: number, rows: TableSide, cols: TableSide | null, flagged: FlaggedValue[], warnings: string[]): SharedMetadata {
  const sides = cols && cols !== rows ? [rows, cols] : [rows];
  return {
    n,
    inputs: sides.map((s) => s.source),
    rows_from: rows.source,
    cols_from: (cols ?? rows).source,
    sources: sides.map((s) => s.metadata ?? null),
    flagged,
    ...(warnings.length > 0 ? { warning: warnings.join('; ') } : {}),
  };
}

/** The two sides of a table of activation inputs. */
export function activationSides(first: Activations, second: Activations | null): [TableSide, TableSide | null] {
  return [{ source: first.source, metadata: first.metadata }, second ? { source: second.source, metadata: second.metadata } : null];
}
