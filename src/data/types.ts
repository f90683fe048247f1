/** A whole split of an image-classification dataset, held as flat typed arrays (no tensors). */
export interface Dataset {
  name: string;
  split: 'train' | 'test';
  /** Number of samples. */
  n: number;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  /** classNames[label] is the human-readable name of that label. */
  classNames: string[];
  /** NHWC, values in [0, 1], length n * height * width * channels. */
  images: Float32Array;
  /** labels[i] in [0, numClasses). */
  labels: Int32Array;
  /** Stable sample id = index in the source split (before any shuffling or subsetting). */
  ids: Int32Array;
  /** Where the data was read from (package and version, or directory), for provenance. */
  source: string;
}

export type Split = Dataset['split'];
