import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';

/**
 * Architectures. Every model maps NHWC images in [0, 1] to logits, and names the layers whose
 * outputs are tap points (stem, every residual block, pooled features, logits) in network order.
 * Tap layer names are stable across widths and schemes so models can be compared layer by layer.
 */
export interface ArchConfig {
  /** 'resnet' (CIFAR-style, basic blocks) or 'convnet'. */
  family: 'resnet' | 'convnet';
  /** Blocks per stage (resnet) or conv layers (convnet, one per entry). */
  stages: number[];
  /** Channels of the first stage; doubled at every later stage. */
  width: number;
  /**
   * Residual block type (resnet only): 'basic' (two 3x3 convs, the default) or 'bottleneck'
   * (1x1 reduce, 3x3, 1x1 expand to 4x the stage width, as ResNet-50).
   */
  block?: 'basic' | 'bottleneck';
}

export const ARCH_PRESETS: Record<string, ArchConfig> = {
  resnet18: { family: 'resnet', stages: [2, 2, 2, 2], width: 64 },
  resnet50: { family: 'resnet', stages: [3, 4, 6, 3], width: 64, block: 'bottleneck' },
  resnet10: { family: 'resnet', stages: [1, 1, 1, 1], width: 64 },
  'resnet-small': { family: 'resnet', stages: [1, 1, 1], width: 16 },
  convnet: { family: 'convnet', stages: [1, 1, 1], width: 32 },
};

export const archNames = Object.keys(ARCH_PRESETS);

/** A preset, optionally with another width and another number of blocks per stage (the depth). */
export function resolveArch(name: string, width?: number, blocks?: number[]): ArchConfig {
  const preset = ARCH_PRESETS[name];
  if (!preset) throw new InputError(`--arch: unknown architecture '${name}' (expected one of: ${archNames.join(', ')})`);
  if (width !== undefined && (!Number.isInteger(width) || width < 1)) {
    throw new InputError(`--width: expected a positive integer, got ${width}`);
  }
  if (blocks !== undefined && (blocks.length === 0 || blocks.some((b) => !Number.isInteger(b) || b < 1))) {
    throw new InputError(`--blocks: expected positive integers per stage like 2,2,2,2, got ${blocks.join(',')}`);
  }
  return { ...preset, width: width ?? preset.width, stages: blocks ?? preset.stages };
}

export interface BuiltModel {
  model: tf.LayersModel;
  /** Names of the tap-point layers, in network order. */
  taps: string[];
}

export interface BuildOptions {
  arch: ArchConfig;
  inputShape: [number, number, number];
  numClasses: number;
  seed: number;
}

/** A seeded He-normal initialiser: every weight is reproducible from the run's seed. */
function heInit(seedRef: { next: number }) {
  return tf.initializers.heNormal({ seed: seedRef.next++ });
}

function convBnRelu(
  x: tf.SymbolicTensor,
  name: string,
  filters: number,
  strides: number,
  seed: { next: number },
  relu: false | { outName?: string } = {},
): tf.SymbolicTensor {
  let y = tf.layers
    .conv2d({ name: `${name}.conv`, filters, kernelSize: 3, strides, padding: 'same', useBias: false, kernelInitializer: heInit(seed) })
    .apply(x) as tf.SymbolicTensor;
  y = tf.layers.batchNormalization({ name: `${name}.bn`, momentum: 0.9, epsilon: 1e-5 }).apply(y) as tf.SymbolicTensor;
  if (relu) y = tf.layers.reLU({ name: relu.outName ?? `${name}.relu` }).apply(y) as tf.SymbolicTensor;
  return y;
}

/** Basic residual block (two 3x3 convs); a 1x1 projection shortcut when the shape changes. */
function basicBlock(x: tf.SymbolicTensor, name: string, filters: number, strides: number, seed: { next: number }): tf.SymbolicTensor {
  const inChannels = x.shape[x.shape.length - 1];
  let y = convBnRelu(x, `${name}.a`, filters, strides, seed);
  y = convBnRelu(y, `${name}.b`, filters, 1, seed, false);
  let shortcut = x;
  if (strides !== 1 || inChannels !== filters) {
    shortcut = tf.layers
      .conv2d({ name: `${name}.proj`, filters, kernelSize: 1, strides, padding: 'same', useBias: false, kernelInitializer: heInit(seed) })
      .apply(x) as tf.SymbolicTensor;
    shortcut = tf.layers.batchNormalization({ name: `${name}.proj_bn`, momentum: 0.9, epsilon: 1e-5 }).apply(shortcut) as tf.SymbolicTensor;
  }
  const sum = tf.layers.add({ name: `${name}.add` }).apply([y, shortcut]) as tf.SymbolicTensor;
  // The block's output (after the final ReLU) is its tap point, so it carries the block's name.
  return tf.layers.reLU({ name }).apply(sum) as tf.SymbolicTensor;
}

/**
 * Bottleneck block (1x1 -> 3x3 -> 1x1 with 4x expansion; stride on the 3x3, as torchvision's
 * ResNet v1.5); a 1x1 projection shortcut when the shape changes.
 */
function bottleneckBlock(x: tf.SymbolicTensor, name: string, filters: number, strides: number, seed: { next: number }): tf.SymbolicTensor {
  const inChannels = x.shape[x.shape.length - 1];
  const outChannels = filters * 4;
  const conv1x1 = (t: tf.SymbolicTensor, layer: string, f: number, s: number) =>
    tf.layers
      .conv2d({ name: layer, filters: f, kernelSize: 1, strides: s, padding: 'same', useBias: false, kernelInitializer: heInit(seed) })
      .apply(t) as tf.SymbolicTensor;
  let y = conv1x1(x, `${name}.a.conv`, filters, 1);
  y = tf.layers.batchNormalization({ name: `${name}.a.bn`, momentum: 0.9, epsilon: 1e-5 }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.reLU({ name: `${name}.a.relu` }).apply(y) as tf.SymbolicTensor;
  y = convBnRelu(y, `${name}.b`, filters, strides, seed);
  y = conv1x1(y, `${name}.c.conv`, outChannels, 1);
  y = tf.layers.batchNormalization({ name: `${name}.c.bn`, momentum: 0.9, epsilon: 1e-5 }).apply(y) as tf.SymbolicTensor;
  let shortcut = x;
  if (strides !== 1 || inChannels !== outChannels) {
    shortcut = conv1x1(x, `${name}.proj`, outChannels, strides);
    shortcut = tf.layers.batchNormalization({ name: `${name}.proj_bn`, momentum: 0.9, epsilon: 1e-5 }).apply(shortcut) as tf.SymbolicTensor;
  }
  const sum = tf.layers.add({ name: `${name}.add` }).apply([y, shortcut]) as tf.SymbolicTensor;
  return tf.layers.reLU({ name }).apply(sum) as tf.SymbolicTensor;
}

function head(x: tf.SymbolicTensor, numClasses: number, seed: { next: number }): tf.SymbolicTensor {
  const pooled = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tf.SymbolicTensor;
  return tf.layers
    .dense({ name: 'logits', units: numClasses, kernelInitializer: tf.initializers.glorotUniform({ seed: seed.next++ }) })
    .apply(pooled) as tf.SymbolicTensor;
}

export function buildModel(opts: BuildOptions): BuiltModel {
  const { arch, inputShape, numClasses } = opts;
  const seed = { next: opts.seed };
  const input = tf.input({ shape: inputShape, name: 'image' });
  const taps: string[] = [];
  let x: tf.SymbolicTensor;
  if (arch.family === 'resnet') {
    // CIFAR-style stem: one 3x3 conv, no max-pool, so 28x28 and 32x32 inputs keep their resolution.
    x = convBnRelu(input, 'stem', arch.width, 1, seed, { outName: 'stem' });
    taps.push('stem');
    arch.stages.forEach((blocks, s) => {
      const filters = arch.width * 2 ** s;
      for (let b = 0; b < blocks; b++) {
        const name = `stage${s + 1}.block${b + 1}`;
        const block = arch.block === 'bottleneck' ? bottleneckBlock : basicBlock;
        x = block(x, name, filters, s > 0 && b === 0 ? 2 : 1, seed);
        taps.push(name);
      }
    });
  } else {
    x = input;
    arch.stages.forEach((_, s) => {
      const name = `conv${s + 1}`;
      x = convBnRelu(x, name, arch.width * 2 ** Math.min(s, 2), 1, seed);
      x = tf.layers.maxPooling2d({ name, poolSize: 2, strides: 2, padding: 'same' }).apply(x) as tf.SymbolicTensor;
      taps.push(name);
    });
  }
  const logits = head(x, numClasses, seed);
  taps.push('pool', 'logits');
  const model = tf.model({ inputs: input, outputs: logits, name: 'robustsim' });
  return { model, taps };
}

/**
 * Which layers analysis hooks: `blocks` are the model's tap points (stem, every residual block's
 * output, pool, logits); `all` is every layer after the input (each conv, BatchNorm, ReLU, add,
 * pooling), as the reference study hooked every named module.
 */
export type TapSet = 'blocks' | 'all';
export const TAP_SETS = ['blocks', 'all'] as const satisfies readonly TapSet[];

/** The tap points of a model under a tap set, in network order. */
export function tapPoints(model: tf.LayersModel, blockTaps: readonly string[], set: TapSet = 'blocks'): string[] {
  if (set === 'blocks') return [...blockTaps];
  return model.layers.filter((l) => l.getClassName() !== 'InputLayer').map((l) => l.name);
}

/** A model whose outputs are the given tap layers (the tfjs way to hook layers). */
export function tapModel(model: tf.LayersModel, taps: string[]): tf.LayersModel {
  const known = new Set(model.layers.map((l) => l.name));
  const unknown = taps.filter((t) => !known.has(t));
  if (unknown.length) {
    throw new InputError(`unknown layer name(s): ${unknown.join(', ')} (this model has tap points: see 'robustsim layers <checkpoint>')`);
  }
  const outputs = taps.map((t) => model.getLayer(t).output as tf.SymbolicTensor);
  return tf.model({ inputs: model.inputs, outputs });
}
