import * as tf from '@tensorflow/tfjs';

/**
 * A second path through a model's layers that shares every weight except BatchNorm: each
 * BatchNormalization layer is replaced by a fresh one named `<name><suffix>`. This is the
 * "dual-stream" network of ACL (Jiang et al. 2020): clean and adversarial inputs are normalised by
 * separate statistics and affine parameters while all convolutions are shared.
 * Returns image -> `output` layer (e.g. 'pool') through the twin, and the new BatchNorm layers in order.
 */
export function twinWithOwnBatchNorm(
  model: tf.LayersModel,
  output: string,
  suffix = '.adv',
): { twin: tf.LayersModel; batchNorms: tf.layers.Layer[] } {
  const produced = new Map<string, tf.SymbolicTensor>();
  const input = tf.input({ shape: model.inputs[0].shape.slice(1) as number[], name: `image${suffix}` });
  produced.set(model.inputLayers[0].name, input);
  const batchNorms: tf.layers.Layer[] = [];
  for (const layer of model.layers) {
    if (produced.has(layer.name)) continue;
    // Node 0 is the layer's call in the model that built it; later nodes come from sub-models.
    const node = (layer as unknown as { inboundNodes: Array<{ inboundLayers: tf.layers.Layer[] }> }).inboundNodes[0];
    const args = node.inboundLayers.map((l) => {
      const t = produced.get(l.name);
      if (!t) throw new Error(`twinWithOwnBatchNorm: layer '${layer.name}' needs '${l.name}', not built yet`);
      return t;
    });
    let target: tf.layers.Layer = layer;
    if (layer.getClassName() === 'BatchNormalization') {
      const c = layer.getConfig() as { momentum: number; epsilon: number };
      target = tf.layers.batchNormalization({ name: `${layer.name}${suffix}`, momentum: c.momentum, epsilon: c.epsilon });
      batchNorms.push(target);
    }
    produced.set(layer.name, target.apply(args.length === 1 ? args[0] : args) as tf.SymbolicTensor);
    if (layer.name === output) break;
  }
  const out = produced.get(output);
  if (!out) throw new Error(`twinWithOwnBatchNorm: no layer '${output}'`);
  return { twin: tf.model({ inputs: input, outputs: out, name: `twin${suffix}` }), batchNorms };
}
