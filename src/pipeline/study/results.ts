import type { Matrix, Interval } from '../../cka/scores/scores.js';
import type { Cell } from './grid.js';
import type { Comparison } from './plan.js';

/**
 * The report stage: reads every eval, probe and CKA stage's output, computes the scores with their
 * intervals, and writes study.arrow (one row per cell, matrix, row, col), summary.arrow (one row per
 * cell and per comparison) and report.html into its work directory.
 */
export interface MatrixResult {
  /** clean | adv | clean-vs-adv (within a cell); cross-clean | cross-adv (across cells). */
  name: string;
  rows: string[];
  cols: string[];
  point: Matrix;
  low: Float64Array;
  high: Float64Array;
}

export interface CellResult {
  cell: Cell;
  layers: string[];
  matrices: MatrixResult[];
  /** Tap index -> the earlier tap it duplicates (identical activations). */
  duplicates: Map<number, number>;
  scores: Record<string, Interval>;
  /** Best block of the clean matrix (layer names), for the report. */
  block?: { start: string; end: string };
  diagonal: Array<{ layer: string } & Interval>;
  accuracy: Record<string, number>;
  evalRows: Array<{ attack: string; eps: number; accuracy: number; n: number }>;
  /** Per tap point: clean train/test accuracy of its linear probe and, when measured, its accuracy under a white-box attack on the probe. */
  probes: Array<{ layer: string; dim: number; testAccuracy: number; trainAccuracy: number; adversarialAccuracy?: number }>;
}

export interface ComparisonResult {
  comparison: Comparison;
  layers: string[];
  matrices: MatrixResult[];
  scores: Record<string, Interval>;
  bestMatch: Record<string, Array<{ layer: string; match: string } & Interval>>;
}

export interface StudyResults {
  name: string;
  description?: string;
  cells: CellResult[];
  comparisons: ComparisonResult[];
  level: number;
}
