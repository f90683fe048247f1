/**
 * One set of activations: a layer's outputs on one kind of input (e.g. `stage2.block1@adv`),
 * flattened per sample. `data` is row-major n x dim: sample i occupies data[i*dim .. (i+1)*dim).
 */
export interface ActivationSet {
  name: string;
  n: number;
  dim: number;
  data: Float32Array;
}
