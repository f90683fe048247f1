import * as tf from '@tensorflow/tfjs';
import { nativeReluGradSupports, RELU_GRAD_KERNEL } from './native/index.js';

/**
 * ReLU's gradient in one native pass when the native kernels can take it (wasm backend, oneDNN
 * loaded: native/relu-kernels.ts), tfjs' own (dy * step(x)) otherwise. Same values: both pass dy
 * where x > 0 and 0 elsewhere. Installed once per process.
 */
let installed = false;

export function installReluGradient(): void {
  if (installed) return;
  const original = tf.getGradient(tf.Relu);
  if (!original) return;
  // unregister first: re-registering would print tfjs' "Overriding the gradient" warning.
  tf.unregisterGradient(tf.Relu);
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      if (Array.isArray(dy) || !nativeReluGradSupports(dy, x)) return original.gradFunc(dy, saved, attrs);
      return { x: () => tf.engine().runKernel(RELU_GRAD_KERNEL, { dy, x }, {}) as tf.Tensor };
    },
  });
  installed = true;
}
