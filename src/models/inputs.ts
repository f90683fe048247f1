import * as tf from '@tensorflow/tfjs';

/** A batch of NHWC float images and integer labels as tensors (caller disposes). */
export function batchTensors(
  x: Float32Array,
  y: Int32Array,
  shape: [number, number, number],
): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const n = y.length;
  return { x: tf.tensor4d(x, [n, ...shape]), y: tf.tensor1d(y, 'int32') };
}
