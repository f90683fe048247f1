import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { loadDataset, batchIndices, gatherBatch, type Dataset, type DatasetName } from '../data/index.js';
import { loadCheckpoint, saveCheckpoint } from '../models/checkpoint.js';
import { tapModel, tapPoints, type TapSet } from '../models/architectures.js';
import { batchTensors } from '../models/inputs.js';
import { crossEntropyPerSample } from '../attacks/losses.js';
import { pgdAttack, validatePgd, DEFAULT_PGD, type PgdOptions } from '../attacks/pgd.js';
import { activeBackend } from '../backend/index.js';
import { provenance } from '../util/provenance.js';
import { exists, writeFileAtomic } from '../util/atomic.js';
import { makeRng, subSeed } from '../util/rng.js';
import type { CheckpointMeta } from '../models/checkpoint-meta.js';

export interface LayerProbeOptions {
  checkpoint: string;
  /** Tap points to probe (default: all of the tap set's, in network order). */
  layers?: string[];
  /** Which layers are tap points (default `blocks`). */
  tapSet?: TapSet;
  dataset?: DatasetName;
  dataDir?: string;
  limit?: number;
  evalLimit?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** Output directory (default `<checkpoint>-layer-probes`): meta.json and one head per layer. */
  out?: string;
  overwrite?: boolean;
  /**
   * Also measure each probe's adversarial accuracy: PGD against the probe itself, end to end
   * (image -> encoder up to the layer -> pooling -> head), on the first `n` test images.
   */
  adversarial?: { attack?: Partial<PgdOptions>; n?: number };
}

export interface LayerProbeResult {
  layer: string;
  /** Feature dimension after global average pooling of the tap point. */
  dim: number;
  trainAccuracy: number;
  testAccuracy: number;
  /** Accuracy under the white-box attack on this layer's probe (when asked for). */
  adversarialAccuracy?: number;
}

/** A tap's activation as probe features: conv maps are averaged over height and width. */
function poolTap(t: tf.Tensor): tf.Tensor2D {
  return (t.rank === 4 ? tf.mean(t, [1, 2]) : t.rank === 2 ? t : tf.reshape(t, [t.shape[0], -1])) as tf.Tensor2D;
}

/** Pooled features of the given taps for all of ds. */
async function pooledFeatures(taps: tf.LayersModel, ds: Dataset, batchSize: number): Promise<Float32Array[]> {
  const dims = taps.outputs.map((o) => o.shape[o.shape.length - 1] as number);
  const out = dims.map((d) => new Float32Array(ds.n * d));
  const shape: [number, number, number] = [ds.height, ds.width, ds.channels];
  for (let start = 0; start < ds.n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, ds.n - start) }, (_, i) => start + i);
    const b = gatherBatch(ds, idx);
    const { x, y } = batchTensors(b.x, b.y, shape);
    const pooled: tf.Tensor[] = tf.tidy(() => {
      const raw = taps.apply(x, { training: false }) as tf.Tensor | tf.Tensor[];
      const list = Array.isArray(raw) ? raw : [raw];
      return list.map(poolTap);
    });
    for (let k = 0; k < pooled.length; k++) out[k].set(await pooled[k].data(), start * dims[k]);
    tf.dispose([x, y, ...pooled]);
  }
  return out;
}

/** Train a softmax-regression head on fixed features; returns the head (caller disposes). */
function fitHead(features: tf.Tensor2D, labels: tf.Tensor1D, numClasses: number, opts: Required<Pick<LayerProbeOptions, 'epochs' | 'batchSize' | 'lr' | 'seed'>>): tf.Sequential {
  const n = features.shape[0];
  const head = tf.sequential({
    layers: [tf.layers.dense({ name: 'logits', units: numClasses, inputShape: [features.shape[1]], kernelInitializer: tf.initializers.glorotUniform({ seed: opts.seed }) })],
  });
  const vars = head.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = tf.train.adam(opts.lr);
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    for (const idx of batchIndices(n, opts.batchSize, makeRng(subSeed(opts.seed, 'epoch', epoch)))) {
      tf.tidy(() => {
        const i = tf.tensor1d(idx, 'int32');
        const xb = tf.gather(features, i);
        const yb = tf.gather(labels, i) as tf.Tensor1D;
        const { grads, value } = tf.variableGrads(() => tf.mean(crossEntropyPerSample(head.apply(xb) as tf.Tensor2D, yb)) as tf.Scalar, vars);
        optimizer.applyGradients(vars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
        value.dispose();
      });
    }
  }
  optimizer.dispose();
  return head;
}

function accuracyOf(head: tf.LayersModel, features: tf.Tensor2D, labels: tf.Tensor1D): number {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(head.apply(features) as tf.Tensor2D, 1), tf.cast(labels, 'int32')), 'float32')).dataSync()[0]);
}

/**
 * Accuracy of one layer's probe on the first n images of ds under PGD that maximises the probe's own
 * cross-entropy through the frozen encoder prefix: how much of the layer's linearly decodable label
 * information an attacker who knows the probe can remove.
 */
function adversarialAccuracyOf(prefix: tf.LayersModel, head: tf.LayersModel, ds: Dataset, n: number, batchSize: number, attack: PgdOptions, layer: string): number {
  const shape: [number, number, number] = [ds.height, ds.width, ds.channels];
  const logitsOf = (x: tf.Tensor4D) => head.apply(poolTap(prefix.apply(x, { training: false }) as tf.Tensor)) as tf.Tensor2D;
  let correct = 0;
  for (let start = 0; start < n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const b = gatherBatch(ds, idx);
    const { x, y } = batchTensors(b.x, b.y, shape);
    const xAdv = pgdAttack((xx) => crossEntropyPerSample(logitsOf(xx), y), x, { ...attack, seed: subSeed(attack.seed, 'probe', layer, start) });
    correct += tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logitsOf(xAdv), 1), tf.cast(y, 'int32')), 'float32')).dataSync()[0]);
    tf.dispose([x, y, xAdv]);
  }
  return correct / n;
}

/**
 * One linear probe per tap point on globally average-pooled features of a frozen encoder: how
 * linearly decodable the labels are at each depth, on clean test images and, when asked, under a
 * white-box attack on each probe. Heads and a meta.json with the accuracies are written beside the
 * encoder.
 */
export async function layerProbes(opts: LayerProbeOptions): Promise<{ out: string; results: LayerProbeResult[] }> {
  const { model, meta } = await loadCheckpoint<CheckpointMeta>(opts.checkpoint);
  try {
    const available = tapPoints(model, meta.taps, opts.tapSet);
    const layers = opts.layers?.length ? available.filter((t) => opts.layers!.includes(t)) : available;
    const unknown = (opts.layers ?? []).filter((l) => !available.includes(l));
    if (unknown.length) throw new InputError(`--layers: unknown layer name(s) ${unknown.join(', ')} (tap points${opts.tapSet === 'all' ? ' with --taps all' : ''}: ${available.join(', ')})`);
    const cfg = { epochs: opts.epochs ?? 10, batchSize: opts.batchSize ?? 128, lr: opts.lr ?? 1e-2, seed: opts.seed ?? 0 };
    const datasetName = opts.dataset ?? meta.config.dataset;
    const dataDir = opts.dataDir ?? (datasetName === meta.config.dataset ? meta.config.dataDir : undefined);
    const out = opts.out ?? `${opts.checkpoint.replace(/[\\/]+$/, '')}-layer-probes${datasetName !== meta.config.dataset ? `-${datasetName}` : ''}`;
    if (!opts.overwrite && (await exists(path.join(out, 'meta.json')))) throw new InputError(`${out}: already exists (pass --overwrite, or choose another --out)`);
    const train = await loadDataset({ name: datasetName, split: 'train', dataDir, seed: cfg.seed, limit: opts.limit });
    const test = await loadDataset({ name: datasetName, split: 'test', dataDir, seed: cfg.seed, limit: opts.evalLimit ?? 1000 });
    const [h, w, c] = meta.inputShape;
    if (train.height !== h || train.width !== w || train.channels !== c) {
      throw new InputError(`--probe-dataset: ${datasetName} images are ${train.height}x${train.width}x${train.channels} but ${opts.checkpoint} takes ${h}x${w}x${c}`);
    }
    const attack: PgdOptions | undefined = opts.adversarial ? { ...DEFAULT_PGD, ...opts.adversarial.attack } : undefined;
    if (attack) validatePgd(attack);
    const advN = Math.min(opts.adversarial?.n ?? test.n, test.n);
    const taps = tapModel(model, layers);
    const trainFeatures = await pooledFeatures(taps, train, cfg.batchSize);
    const testFeatures = await pooledFeatures(taps, test, cfg.batchSize);
    const results: LayerProbeResult[] = [];
    const yTrain = tf.tensor1d(train.labels, 'int32');
    const yTest = tf.tensor1d(test.labels, 'int32');
    const heads: tf.Sequential[] = [];
    for (let k = 0; k < layers.length; k++) {
      const dim = trainFeatures[k].length / train.n;
      const fTrain = tf.tensor2d(trainFeatures[k], [train.n, dim]);
      const fTest = tf.tensor2d(testFeatures[k], [test.n, dim]);
      const head = fitHead(fTrain, yTrain, train.numClasses, { ...cfg, seed: subSeed(cfg.seed, 'head', layers[k]) });
      const result: LayerProbeResult = { layer: layers[k], dim, trainAccuracy: accuracyOf(head, fTrain, yTrain), testAccuracy: accuracyOf(head, fTest, yTest) };
      if (attack) {
        const prefix = tapModel(model, [layers[k]]);
        result.adversarialAccuracy = adversarialAccuracyOf(prefix, head, test, advN, cfg.batchSize, attack, layers[k]);
      }
      results.push(result);
      heads.push(head);
      tf.dispose([fTrain, fTest]);
    }
    tf.dispose([yTrain, yTest]);
    const about = {
      format: 'robustsim-layer-probes/1',
      encoder: path.relative(out, opts.checkpoint),
      encoderName: meta.name,
      dataset: datasetName,
      trainSamples: train.n,
      testSamples: test.n,
      config: cfg,
      tapSet: opts.tapSet ?? 'blocks',
      pooling: 'global average over height and width',
      adversarial: attack ? { samples: advN, threat: 'white-box PGD on each probe end to end (encoder prefix, pooling, head), cross-entropy', attack } : null,
      results,
      backend: activeBackend(),
      provenance: provenance(activeBackend()),
    };
    // One directory per layer head (LayersModel format), then the summary meta.json of the whole set.
    for (let k = 0; k < layers.length; k++) await saveCheckpoint(path.join(out, 'heads', layers[k]), { model: heads[k], meta: { format: 'robustsim-layer-probe-head/1', ...results[k] } });
    await writeFileAtomic(path.join(out, 'meta.json'), JSON.stringify(about, null, 2) + '\n');
    heads.forEach((m) => m.dispose());
    return { out, results };
  } finally {
    model.dispose();
  }
}
