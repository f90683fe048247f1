/** Any numeric typed array (the dtypes the wasm heap holds: float32, int32, bool as uint8). */
export type NumericArray = Float32Array | Int32Array | Uint8Array;

/**
 * tf.tile on flat row-major arrays: dst (shape[i] * reps[i] per axis) gets src repeated. Works by
 * block copies (set / copyWithin), so its cost is the output size with few calls per element; tfjs-wasm's
 * own Tile does index arithmetic per element and dominated BatchNorm backprop (which tiles a
 * per-channel vector over a whole activation).
 */
export function tileInto(src: NumericArray, dst: NumericArray, shape: readonly number[], reps: readonly number[]): void {
  const rank = shape.length;
  if (reps.length !== rank) throw new Error(`tile: reps has ${reps.length} entries for a rank-${rank} tensor`);
  const inBlock = new Array<number>(rank + 1);
  const outBlock = new Array<number>(rank + 1);
  inBlock[rank] = 1;
  outBlock[rank] = 1;
  for (let d = rank - 1; d >= 0; d--) {
    inBlock[d] = inBlock[d + 1] * shape[d];
    outBlock[d] = outBlock[d + 1] * shape[d] * reps[d];
  }
  if (dst.length !== outBlock[0]) throw new Error(`tile: output has ${dst.length} elements, expected ${outBlock[0]}`);
  if (outBlock[0] === 0) return;

  // Trailing axes that are not repeated are contiguous in both arrays: copy them as one chunk.
  let chunkAxis = rank;
  while (chunkAxis > 0 && reps[chunkAxis - 1] === 1) chunkAxis--;
  const chunk = inBlock[chunkAxis];

  const fill = (axis: number, from: number, to: number): void => {
    if (axis === chunkAxis) {
      dst.set(src.subarray(from, from + chunk), to);
      return;
    }
    const sub = outBlock[axis + 1];
    for (let i = 0; i < shape[axis]; i++) fill(axis + 1, from + i * inBlock[axis + 1], to + i * sub);
    // The first copy of this axis is complete: repeat it.
    const filled = shape[axis] * sub;
    for (let r = 1; r < reps[axis]; r++) dst.copyWithin(to + r * filled, to, to + filled);
  };
  fill(0, 0, 0);
}
