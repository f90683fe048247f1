import type { ActivationSet } from '../formats/activations.js';

/**
 * The set with its data in a SharedArrayBuffer (the same object if it already is), so worker
 * threads read it without a copy each.
 */
export function shareSet(set: ActivationSet): ActivationSet {
  if (set.data.buffer instanceof SharedArrayBuffer) return set;
  const data = new Float32Array(new SharedArrayBuffer(set.data.byteLength));
  data.set(set.data);
  return { ...set, data };
}
