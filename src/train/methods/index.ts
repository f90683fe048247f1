import type { Method, Regime, Scheme } from '../config.js';
import type { MethodParam, MethodSpec } from './spec.js';
import { none } from './none.js';
import { pgd } from './pgd.js';
import { trades } from './trades.js';
import { studyAt } from './study-at.js';
import { rocl } from './rocl.js';
import { clae } from './clae.js';
import { acl } from './acl.js';
import { rclBound } from './rcl-bound.js';

export type * from './spec.js';

/**
 * Every training method's spec (a file each in this folder). The Record type makes the compiler refuse
 * a `Method` without one; the order here is the order of the CLI's choices, flags and resume keys.
 */
export const METHODS: Record<Method, MethodSpec> = {
  none,
  pgd,
  trades,
  'study-at': studyAt,
  rocl,
  clae,
  acl,
  'rcl-bound': rclBound,
};

export const METHOD_NAMES = Object.keys(METHODS) as Method[];

/** The spec of a method name, or undefined for a name that is none (user input). */
export function methodSpec(name: string): MethodSpec | undefined {
  return Object.prototype.hasOwnProperty.call(METHODS, name) ? METHODS[name as Method] : undefined;
}

/** The methods --regime `regime` offers for `scheme`, in registry order. */
export function methodsFor(scheme: Scheme, regime: Regime): Method[] {
  return METHOD_NAMES.filter((m) => METHODS[m].regime === regime && METHODS[m].schemes.includes(scheme));
}

/** The method a run of (scheme, regime) uses when none is named. */
export function defaultMethod(scheme: Scheme, regime: Regime): Method {
  const found = METHOD_NAMES.find((m) => METHODS[m].regime === regime && METHODS[m].defaultFor.includes(scheme));
  if (!found) throw new Error(`no default method for --scheme ${scheme} --regime ${regime} (a bug in src/train/methods/)`);
  return found;
}

/** Every method's hyper-parameters, in registry order. */
export const METHOD_PARAMS: MethodParam[] = METHOD_NAMES.flatMap((m) => [...METHODS[m].params]);
