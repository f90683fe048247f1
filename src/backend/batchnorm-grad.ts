import * as tf from '@tensorflow/tfjs';
import { BN_TRAINING_GRAD_KERNEL, BN_TRAINING_KERNEL, nativeBatchNormSupports } from './native/index.js';

/**
 * Cheaper BatchNorm backward passes, on every backend (they matter most on wasm, where each op is a
 * pass over the activation):
 *
 * 1. Training mode. tfjs-layers normalises with tf.moments + tf.batchNorm, so backprop runs the
 *    generic gradients of FusedBatchNorm (x, mean, variance, scale, offset: a dozen full-size ops)
 *    and then of moments (another ten). The closed form of the same derivative, with
 *    xhat = (x - mean) / sqrt(var + eps) and sums over every axis but the channel axis,
 *      dbeta = sum(dy),  dgamma = sum(dy * xhat),  dx = gamma / sqrt(var + eps) * (dy - dbeta/N - xhat * dgamma/N),
 *    takes seven. BatchNormalization layers in training mode (channels last, centred and scaled: every
 *    one robustsim builds) therefore run a customGrad op with this backward pass; the forward pass and
 *    the moving-average updates are tfjs-layers' own ops, so outputs and statistics are unchanged.
 *
 * 2. Inference mode (attacks differentiate through the model with frozen statistics). The registered
 *    FusedBatchNorm gradient computed x - mean and dy * scale over the whole activation eagerly, even
 *    when only dx is wanted, and dx itself as dy * tile(rsqrt) * scale. The replacement computes each
 *    input's gradient only when the tape asks for it, and dx as one multiply by a per-channel vector.
 *
 *    With the native kernels on (wasm backend, oneDNN loaded), the same op runs oneDNN's
 *    batch-normalization primitive instead: one forward primitive for the statistics and the output,
 *    one backward for dx, dgamma, dbeta (native/batchnorm-kernels.ts); otherwise the tfjs ops above.
 *
 * Gradients agree with tfjs' own to float rounding (test/backend-batchnorm-grad.test.ts, and
 * test/backend-native.test.ts for the oneDNN path).
 */

interface BatchNormLayerLike {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable | null;
  beta: tf.LayerVariable | null;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

type Call = (this: BatchNormLayerLike, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

/** Axes 0 .. rank-2: every axis but the (last) channel axis. */
function leadingAxes(rank: number): number[] {
  return Array.from({ length: rank - 1 }, (_, i) => i);
}

/** The closed-form backward pass of y = gamma * (x - mean) / sqrt(var + eps) + beta with batch statistics. */
export function batchNormTrainingGradient(dy: tf.Tensor, x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, gamma: tf.Tensor, epsilon: number): { dx: tf.Tensor; dgamma: tf.Tensor; dbeta: tf.Tensor } {
  return tf.tidy(() => {
    const axes = leadingAxes(x.rank);
    const n = x.size / x.shape[x.rank - 1];
    const invStd = tf.rsqrt(tf.add(variance, epsilon));
    const xhat = tf.mul(tf.sub(x, mean), invStd);
    const dbeta = tf.sum(dy, axes);
    const dgamma = tf.sum(tf.mul(dy, xhat), axes);
    const centred = tf.sub(tf.sub(dy, tf.mul(xhat, tf.div(dgamma, n))), tf.div(dbeta, n));
    const dx = tf.mul(centred, tf.mul(gamma, invStd));
    return { dx, dgamma, dbeta };
  });
}

/**
 * Training-mode batch normalisation over all axes but the last: returns the output (differentiable
 * in x, gamma, beta through the closed-form gradient) and the batch mean and variance (not
 * differentiable; the caller owns them).
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const native = nativeBatchNormSupports(x, gamma, beta, epsilon);
  let stats: { mean: tf.Tensor; variance: tf.Tensor } | undefined;
  const op = tf.customGrad(((xIn: tf.Tensor, gammaIn: tf.Tensor, betaIn: tf.Tensor, save: tf.GradSaveFunc) => {
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    let value: tf.Tensor;
    if (native) {
      [value, mean, variance] = tf.engine().runKernel(BN_TRAINING_KERNEL, { x: xIn, scale: gammaIn, offset: betaIn }, { epsilon }) as tf.Tensor[];
    } else {
      ({ mean, variance } = tf.moments(xIn, leadingAxes(xIn.rank)));
      value = tf.batchNorm(xIn, mean, variance, betaIn as tf.Tensor1D, gammaIn as tf.Tensor1D, epsilon);
    }
    save([xIn, mean, variance, gammaIn]);
    // The forward pass runs inside a tidy: keep the statistics for the moving averages.
    stats = { mean: tf.keep(mean), variance: tf.keep(variance) };
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, m, v, g] = saved;
      // Checked again: the native kernels may have been switched off between the passes (tests).
      if (native && nativeBatchNormSupports(xs, g, g, epsilon)) {
        return tf.engine().runKernel(BN_TRAINING_GRAD_KERNEL, { dy, x: xs, mean: m, variance: v, scale: g }, { epsilon }) as tf.Tensor[];
      }
      const { dx, dgamma, dbeta } = batchNormTrainingGradient(dy, xs, m, v, g, epsilon);
      return [dx, dgamma, dbeta];
    };
    return { value, gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = (op as unknown as (...t: tf.Tensor[]) => tf.Tensor)(x, gamma, beta);
  return { y, mean: stats!.mean, variance: stats!.variance };
}

function isChannelsLastAffine(layer: BatchNormLayerLike, x: tf.Tensor): boolean {
  return (layer.axis === -1 || layer.axis === x.rank - 1) && x.rank >= 2 && layer.center && layer.scale && layer.gamma != null && layer.beta != null;
}

/** tfjs-layers' moving-average update: v <- v - (v - value) * (1 - momentum). */
function movingAverage(variable: tf.LayerVariable, value: tf.Tensor, momentum: number): void {
  tf.tidy(() => {
    const orig = variable.read();
    variable.write(tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - momentum)));
  });
}

/** The lazy FusedBatchNorm gradient (inference-mode backprop); falls back to tfjs' own for non-vector statistics. */
function lazyFusedBatchNormGradient(original: tf.GradConfig): tf.GradConfig {
  return {
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved as (tf.Tensor | undefined)[] as tf.Tensor[];
      if (mean.rank !== 1 || Array.isArray(dy)) return original.gradFunc(dy, saved, attrs);
      const epsilon = (attrs as unknown as tf.FusedBatchNormAttrs).varianceEpsilon;
      const axes = leadingAxes(x.rank);
      const invStd = () => tf.rsqrt(tf.add(variance, epsilon));
      const scaled = () => (scale == null ? invStd() : tf.mul(invStd(), scale));
      const sumDyCentred = () => tf.sum(tf.mul(dy, tf.sub(x, mean)), axes);
      return {
        x: () => tf.mul(dy, scaled()),
        mean: () => tf.neg(tf.mul(tf.sum(dy, axes), scaled())),
        variance: () => {
          const s = invStd();
          const minusHalfCube = tf.mul(tf.mul(tf.mul(s, s), s), -0.5);
          return tf.mul(tf.mul(sumDyCentred(), minusHalfCube), scale ?? 1);
        },
        scale: () => tf.mul(sumDyCentred(), invStd()),
        offset: () => tf.sum(dy, axes),
      };
    },
  };
}

let installed = false;

export function installBatchNormGradients(): void {
  if (installed) return;
  const original = tf.getGradient(tf.FusedBatchNorm);
  if (original) {
    // unregister first: re-registering would print tfjs' "Overriding the gradient" warning.
    tf.unregisterGradient(tf.FusedBatchNorm);
    tf.registerGradient(lazyFusedBatchNormGradient(original));
  }
  const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: Call };
  const originalCall = proto.call;
  proto.call = function call(this: BatchNormLayerLike, inputs, kwargs) {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const training = Boolean(kwargs?.['training'] ?? false);
    if (!training || (Array.isArray(inputs) && inputs.length !== 1) || !isChannelsLastAffine(this, x)) return originalCall.call(this, inputs, kwargs);
    return tf.tidy(() => {
      const { y, mean, variance } = batchNormTraining(x, this.gamma!.read(), this.beta!.read(), this.epsilon);
      movingAverage(this.movingMean, mean, this.momentum);
      movingAverage(this.movingVariance, variance, this.momentum);
      tf.dispose([mean, variance]);
      return y;
    });
  };
  installed = true;
}
