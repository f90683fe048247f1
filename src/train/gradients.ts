import * as tf from '@tensorflow/tfjs';

// tfjs has no public stop_gradient; customGrad gives identity forward passes with chosen backward passes.
type Unary = (x: tf.Tensor) => tf.Tensor;
const custom = (backward: (dy: tf.Tensor) => tf.Tensor): Unary =>
  tf.customGrad(((x: tf.Tensor) => ({ value: tf.clone(x), gradFunc: backward })) as unknown as Parameters<typeof tf.customGrad>[0]) as Unary;

/** Identity forward, zero gradient: keeps the online linear head from training the encoder. */
export const stopGradient: Unary = custom((dy) => tf.zerosLike(dy));

/**
 * Identity forward, negated gradient (gradient reversal, Ganin & Lempitsky 2015): what follows it
 * descends a loss while what precedes it ascends the same loss, in one optimizer step.
 */
export const reverseGradient: Unary = custom((dy) => tf.neg(dy));
