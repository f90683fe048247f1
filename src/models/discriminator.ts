import * as tf from '@tensorflow/tfjs';

/**
 * A small MLP discriminator on representations (one logit: benign "real" vs adversarial "fake"), used by
 * the rcl-bound method to estimate the divergence between benign and adversarial feature distributions.
 */
export function buildDiscriminator(inDim: number, hidden: number, seed: number): tf.LayersModel {
  const input = tf.input({ shape: [inDim], name: 'representation' });
  const h = tf.layers
    .dense({ name: 'disc.fc1', units: hidden, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed }) })
    .apply(input) as tf.SymbolicTensor;
  const out = tf.layers
    .dense({ name: 'disc.fc2', units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) })
    .apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'discriminator' });
}
