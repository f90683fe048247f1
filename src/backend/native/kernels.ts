import * as tf from '@tensorflow/tfjs';
import { BN_TRAINING_GRAD_KERNEL, BN_TRAINING_KERNEL, batchNormTrainingGradKernel, batchNormTrainingKernel, fusedBatchNormNative } from './batchnorm-kernels.js';
import { conv2dBackpropFilterNative, conv2dBackpropInputNative, conv2dNative, fusedConv2dNative } from './conv-kernels.js';
import type { KernelArgs } from './heap.js';
import { batchMatMulNative, fusedMatMulNative, GRAM_KERNEL, gramNative } from './matmul-kernels.js';
import { nativeLibraries, type NativeLibraries } from './provider.js';
import { RELU_GRAD_KERNEL, reluGradKernel } from './relu-kernels.js';

const BACKEND = 'wasm';

type Fast = (libs: NativeLibraries, args: KernelArgs) => tf.TensorInfo | undefined;

/** Each kernel with the library it needs; it falls back to the kernel registered before it. */
const NATIVE_KERNELS: Record<string, Fast> = {
  [tf.BatchMatMul]: (l, a) => (l.openblas ? batchMatMulNative(l.openblas, a) : undefined),
  [tf._FusedMatMul]: (l, a) => (l.openblas ? fusedMatMulNative(l.openblas, a) : undefined),
  [tf.Conv2D]: (l, a) => (l.dnnl ? conv2dNative(l.dnnl, a) : undefined),
  [tf.FusedConv2D]: (l, a) => (l.dnnl ? fusedConv2dNative(l.dnnl, a) : undefined),
  [tf.Conv2DBackpropInput]: (l, a) => (l.dnnl ? conv2dBackpropInputNative(l.dnnl, a) : undefined),
  [tf.Conv2DBackpropFilter]: (l, a) => (l.dnnl ? conv2dBackpropFilterNative(l.dnnl, a) : undefined),
  [tf.FusedBatchNorm]: (l, a) => (l.dnnl ? fusedBatchNormNative(l.dnnl, a) : undefined),
};

let registered: string[] | undefined;

/**
 * Wrap the wasm backend's kernels (after registerWasmGradientKernels) so that they run natively
 * whenever the provider has the library loaded and enabled, and as before otherwise. Also registers
 * RobustsimGram (x x^T) for the CKA engines (gram.ts) and the two training-mode BatchNorm kernels
 * (batchnorm-kernels.ts) and ReLU's gradient (relu-kernels.ts). Idempotent; returns the kernels wrapped.
 */
export function registerNativeKernels(): string[] {
  if (registered) return registered;
  const names: string[] = [];
  for (const [name, fast] of Object.entries(NATIVE_KERNELS)) {
    const original = tf.getKernel(name, BACKEND);
    if (!original) continue;
    const kernelFunc = (args: KernelArgs) => {
      const libs = nativeLibraries();
      return (libs && fast(libs, args)) ?? original.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]);
    };
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel({ ...original, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
    names.push(name);
  }
  if (!tf.getKernel(GRAM_KERNEL, BACKEND)) {
    tf.registerKernel({
      kernelName: GRAM_KERNEL,
      backendName: BACKEND,
      kernelFunc: ((args: KernelArgs) => {
        const blas = nativeLibraries()?.openblas;
        if (!blas) throw new Error(`${GRAM_KERNEL} needs OpenBLAS (use gramOf, which checks)`);
        return gramNative(blas, args);
      }) as unknown as tf.KernelFunc,
    });
  }
  for (const [kernelName, fn] of [[BN_TRAINING_KERNEL, batchNormTrainingKernel], [BN_TRAINING_GRAD_KERNEL, batchNormTrainingGradKernel], [RELU_GRAD_KERNEL, reluGradKernel]] as const) {
    if (!tf.getKernel(kernelName, BACKEND)) tf.registerKernel({ kernelName, backendName: BACKEND, kernelFunc: fn as unknown as tf.KernelFunc });
  }
  registered = names;
  return names;
}
