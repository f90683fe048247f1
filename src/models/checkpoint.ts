import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
// Imported ONNX models use a few custom layers; registering them here lets every loader read them.
import '../import/onnx/layers.js';

export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}
import { writeDirAtomic, exists } from '../util/atomic.js';

/**
 * Checkpoints are a directory in the TensorFlow.js LayersModel format (model.json + weights.bin,
 * loadable with `tf.loadLayersModel`) plus meta.json, and optionally the optimizer state for resume.
 * The whole directory is replaced atomically, so a killed run leaves the last good checkpoint.
 */
export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const META_JSON = 'meta.json';
const OPTIMIZER_JSON = 'optimizer.json';
const OPTIMIZER_BIN = 'optimizer.bin';

export interface CheckpointContent<M> {
  model: tf.LayersModel;
  meta: M;
  /** Optimizer slots (tfjs `optimizer.getWeights()`), saved for exact resume. */
  optimizerWeights?: NamedTensor[];
  /**
   * Named groups of weights that are not part of the saved LayersModel (e.g. a contrastive projection
   * head), each stored as `<group>.weights.json` + `<group>.weights.bin` beside it.
   */
  extraWeights?: Record<string, NamedTensor[]>;
}

const extraFiles = (group: string) => [`${group}.weights.json`, `${group}.weights.bin`] as const;

async function encodeGroup(weights: NamedTensor[]): Promise<{ specs: tf.io.WeightsManifestEntry[]; data: Uint8Array }> {
  const enc = await tf.io.encodeWeights(weights);
  return { specs: enc.specs, data: new Uint8Array(toArrayBuffer(enc.data)) };
}

async function decodeGroup(jsonFile: string, binFile: string): Promise<NamedTensor[]> {
  const specs = JSON.parse(await fs.readFile(jsonFile, 'utf8')) as tf.io.WeightsManifestEntry[];
  const buf = await fs.readFile(binFile);
  const map = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer, specs);
  return specs.map((s) => ({ name: s.name, tensor: map[s.name] }));
}

function toArrayBuffer(data: ArrayBuffer | ArrayBuffer[]): ArrayBuffer {
  return Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data;
}

/**
 * An optimizer's state for a checkpoint. `getWeights()` returns its live slot variables plus a fresh
 * iteration-count tensor; `release` frees only what it created, never the slots still in use.
 */
export async function optimizerState(optimizer: tf.Optimizer): Promise<{ weights: NamedTensor[]; release: () => void }> {
  const weights = (await optimizer.getWeights()) as NamedTensor[];
  return { weights, release: () => tf.dispose(weights.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable))) };
}

/**
 * Restore an optimizer's state for an exact resume. tfjs's Adam keeps beta^t as a float32 product
 * updated once per step, but `setWeights` recomputes it as pow(beta, t), which differs in the last
 * bits; through PGD's sign steps that grows into visibly different weights within a few steps. So
 * the product is recomputed here the way the steps built it (a float32 product of float32 values is
 * exactly Math.fround of the double product).
 */
export async function restoreOptimizer(optimizer: tf.Optimizer, weights: NamedTensor[]): Promise<void> {
  await optimizer.setWeights(weights);
  const adam = optimizer as unknown as { accBeta1?: tf.Variable; accBeta2?: tf.Variable; beta1?: number; beta2?: number };
  if (!(optimizer instanceof tf.AdamOptimizer) || !adam.accBeta1 || !adam.accBeta2) return;
  const steps = optimizer.iterations;
  const product = (beta: number) => {
    const b = Math.fround(beta);
    let acc = b;
    for (let i = 0; i < steps; i++) acc = Math.fround(acc * b);
    return acc;
  };
  tf.tidy(() => {
    adam.accBeta1!.assign(tf.scalar(product(adam.beta1!)));
    adam.accBeta2!.assign(tf.scalar(product(adam.beta2!)));
  });
}

export async function saveCheckpoint<M>(dir: string, content: CheckpointContent<M>): Promise<void> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await content.model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!artifacts?.weightData || !artifacts.weightSpecs) throw new Error('model.save produced no weights');
  const weights = new Uint8Array(toArrayBuffer(artifacts.weightData));
  const modelJson = {
    format: 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: 'robustsim',
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs }],
  };
  let optimizer: { specs: tf.io.WeightsManifestEntry[]; data: Uint8Array } | undefined;
  if (content.optimizerWeights?.length) {
    const enc = await tf.io.encodeWeights(content.optimizerWeights);
    optimizer = { specs: enc.specs, data: new Uint8Array(toArrayBuffer(enc.data)) };
  }
  const extras: Array<[string, { specs: tf.io.WeightsManifestEntry[]; data: Uint8Array }]> = [];
  for (const [group, weights] of Object.entries(content.extraWeights ?? {})) {
    if (!/^[a-z][a-z0-9-]*$/.test(group)) throw new Error(`extra weight group name '${group}' must be lower-case letters, digits, '-'`);
    extras.push([group, await encodeGroup(weights)]);
  }
  await writeDirAtomic(dir, async (tmp) => {
    for (const [group, enc] of extras) {
      const [json, bin] = extraFiles(group);
      await fs.writeFile(path.join(tmp, json), JSON.stringify(enc.specs));
      await fs.writeFile(path.join(tmp, bin), enc.data);
    }
    await fs.writeFile(path.join(tmp, MODEL_JSON), JSON.stringify(modelJson));
    await fs.writeFile(path.join(tmp, WEIGHTS_BIN), weights);
    if (optimizer) {
      await fs.writeFile(path.join(tmp, OPTIMIZER_JSON), JSON.stringify(optimizer.specs));
      await fs.writeFile(path.join(tmp, OPTIMIZER_BIN), optimizer.data);
    }
    // meta.json last: its presence marks a complete checkpoint.
    await fs.writeFile(path.join(tmp, META_JSON), JSON.stringify(content.meta, null, 2));
  });
}

/** The directory holding the last complete checkpoint, tolerating a crash mid-swap. */
export async function resolveCheckpointDir(dir: string): Promise<string | undefined> {
  if (await exists(path.join(dir, META_JSON))) return dir;
  const old = `${dir}.old`;
  if (await exists(path.join(old, META_JSON))) return old;
  return undefined;
}

export async function readMeta<M>(dir: string): Promise<M> {
  const resolved = await resolveCheckpointDir(dir);
  if (!resolved) {
    throw new InputError(`${path.join(dir, META_JSON)}: not found (is '${dir}' a robustsim checkpoint directory?)`);
  }
  const file = path.join(resolved, META_JSON);
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as M;
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${(err as Error).message})`);
  }
}

export async function loadCheckpoint<M>(
  dir: string,
  opts: { withOptimizer?: boolean; extraWeights?: string[] } = {},
): Promise<CheckpointContent<M>> {
  const meta = await readMeta<M>(dir);
  const resolved = (await resolveCheckpointDir(dir))!;
  const modelFile = path.join(resolved, MODEL_JSON);
  let modelJson: tf.io.ModelJSON;
  try {
    modelJson = JSON.parse(await fs.readFile(modelFile, 'utf8')) as tf.io.ModelJSON;
  } catch (err) {
    throw new InputError(`${modelFile}: cannot read model topology (${(err as Error).message})`);
  }
  if (!modelJson.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
    throw new InputError(`${modelFile}: expected fields 'modelTopology' and 'weightsManifest'`);
  }
  const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const specs = manifest.flatMap((g) => g.weights);
    const buffers: ArrayBuffer[] = [];
    for (const group of manifest) {
      for (const p of group.paths) {
        const file = path.join(resolved, p);
        let buf: Buffer;
        try {
          buf = await fs.readFile(file);
        } catch {
          throw new InputError(`${file}: weight file listed in ${MODEL_JSON} is missing`);
        }
        buffers.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
      }
    }
    const data = tf.io.CompositeArrayBuffer.join(buffers);
    const expected = specs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1) * 4, 0);
    if (data.byteLength !== expected) {
      throw new InputError(`${path.join(resolved, WEIGHTS_BIN)}: ${data.byteLength} bytes, expected ${expected} (truncated or from another model)`);
    }
    return [specs, data];
  });
  const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  let optimizerWeights: NamedTensor[] | undefined;
  if (opts.withOptimizer && (await exists(path.join(resolved, OPTIMIZER_JSON)))) {
    const specs = JSON.parse(await fs.readFile(path.join(resolved, OPTIMIZER_JSON), 'utf8')) as tf.io.WeightsManifestEntry[];
    const buf = await fs.readFile(path.join(resolved, OPTIMIZER_BIN));
    const map = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer, specs);
    optimizerWeights = specs.map((s) => ({ name: s.name, tensor: map[s.name] }));
  }
  let extraWeights: Record<string, NamedTensor[]> | undefined;
  for (const group of opts.extraWeights ?? []) {
    const [json, bin] = extraFiles(group).map((f) => path.join(resolved, f));
    if (!(await exists(json)) || !(await exists(bin))) {
      model.dispose();
      throw new InputError(`${json}: missing (the checkpoint in '${dir}' has no '${group}' weights)`);
    }
    (extraWeights ??= {})[group] = await decodeGroup(json, bin);
  }
  return { model, meta, optimizerWeights, extraWeights };
}
