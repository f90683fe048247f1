import type * as tf from '@tensorflow/tfjs';

/** The heap access of tfjs-wasm's BackendWasm that the native kernels use. */
export interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

/**
 * A float32 view of a tensor's bytes on the wasm heap. Take views only after the last makeOutput of
 * a kernel: an allocation can grow the heap, which detaches every view taken before it.
 */
export function f32(heap: WasmHeap, info: tf.TensorInfo): Float32Array {
  return heap.typedArrayFromHeap(info) as Float32Array;
}

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
