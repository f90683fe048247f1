import * as tf from '@tensorflow/tfjs';

/**
 * tfjs-layers' Conv2D runs every 2-D convolution through tf.fused.conv2d, whose gradient is a
 * customGrad that computes BOTH the input and the filter gradient whenever anything is backpropagated
 * through it. An attack only needs the input gradient, so every PGD step paid for nine filter gradients
 * it threw away (a third of a PGD-AT step on wasm). The plain tf.conv2d op registers lazy per-input
 * gradients, and the tape prunes those not on the path to what is differentiated: the filter gradient
 * is then computed only in the training step that needs it.
 *
 * So Conv2D layers without bias and with a linear activation (every conv that robustsim builds) run
 * tf.conv2d; any other Conv2D keeps tfjs-layers' own call. Same function, same kernel (XNNPACK conv),
 * identical values; only the set of gradients the tape evaluates changes. Installed once per process
 * (the patch is on the Conv2D class, so it covers models built, loaded and cloned alike).
 */

interface Conv2DLayerLike {
  rank: number;
  bias: tf.LayerVariable | null;
  kernel: tf.LayerVariable;
  strides: [number, number];
  padding: 'same' | 'valid' | 'causal';
  dataFormat: 'channelsFirst' | 'channelsLast';
  dilationRate: [number, number];
  activation: { getClassName(): string } | null;
}

type Call = (this: Conv2DLayerLike, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

let installed = false;

/** Does this layer compute exactly tf.conv2d(x, kernel) (no bias, linear activation, NHWC)? */
export function isPlainConv2D(layer: Conv2DLayerLike): boolean {
  return (
    layer.rank === 2 &&
    layer.bias == null &&
    layer.dataFormat === 'channelsLast' &&
    layer.padding !== 'causal' &&
    (layer.activation == null || layer.activation.getClassName() === 'linear')
  );
}

export function installLazyConvGradients(): void {
  if (installed) return;
  const probe = tf.layers.conv2d({ filters: 1, kernelSize: 1 });
  const proto = Object.getPrototypeOf(probe) as { call: Call };
  const original = proto.call;
  proto.call = function call(this: Conv2DLayerLike, inputs, kwargs) {
    if (!isPlainConv2D(this)) return original.call(this, inputs, kwargs);
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    if (Array.isArray(inputs) && inputs.length !== 1) return original.call(this, inputs, kwargs);
    return tf.conv2d(x, this.kernel.read() as tf.Tensor4D, this.strides, this.padding as 'same' | 'valid', 'NHWC', this.dilationRate);
  };
  installed = true;
}
