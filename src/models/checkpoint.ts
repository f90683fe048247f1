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
import { readInside } from '../util/safe-path.js';

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

/** No checkpoint file may declare more than this many bytes of weights (16 GiB of float32). */
const MAX_WEIGHT_BYTES = 2 ** 34;
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/**
 * Weight specs read from an untrusted file: names, shapes and dtypes checked, and the total size
 * they declare computed before any buffer is read or allocated.
 */
function checkSpecs(specs: unknown, where: string): { specs: tf.io.WeightsManifestEntry[]; bytes: number } {
  if (!Array.isArray(specs)) throw new InputError(`${where}: expected a list of weight specs`);
  let bytes = 0;
  for (const [i, s] of specs.entries()) {
    const spec = s as Partial<tf.io.WeightsManifestEntry>;
    const at = `${where}: weight ${i} ('${String(spec?.name)}')`;
    if (!spec || typeof spec.name !== 'string') throw new InputError(`${at}: expected a 'name' string`);
    if (!Array.isArray(spec.shape) || spec.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new InputError(`${at}: 'shape' must be a list of non-negative integers`);
    const width = DTYPE_BYTES[spec.dtype ?? ''];
    if (width === undefined || spec.quantization) throw new InputError(`${at}: dtype '${spec.dtype}'${spec.quantization ? ' (quantized)' : ''} not supported (float32, int32, bool)`);
    const count = spec.shape.reduce((a, b) => a * b, 1);
    bytes += count * width;
    if (!Number.isSafeInteger(bytes) || bytes > MAX_WEIGHT_BYTES) throw new InputError(`${at}: declared shapes need more than ${MAX_WEIGHT_BYTES} bytes`);
  }
  return { specs: specs as tf.io.WeightsManifestEntry[], bytes };
}

async function readJson(file: string, what: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new InputError(`${file}: cannot read ${what} (${(err as Error).message})`);
  }
}

/** A specs file and its binary, both inside `dir`, with the binary's size checked against the specs first. */
async function decodeWeightFiles(dir: string, jsonName: string, binName: string): Promise<NamedTensor[]> {
  const jsonFile = path.join(dir, jsonName);
  const { specs, bytes } = checkSpecs(await readJson(jsonFile, 'weight specs'), jsonFile);
  const buf = await readInside(dir, binName, `${jsonFile}: weights file`, bytes);
  if (buf.byteLength !== bytes) throw new InputError(`${path.join(dir, binName)}: ${buf.byteLength} bytes, ${jsonName} declares ${bytes} (truncated or from another model)`);
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
    const specs = manifest.flatMap((g, gi) => {
      if (!g || !Array.isArray(g.paths) || !Array.isArray(g.weights)) throw new InputError(`${modelFile}: weightsManifest[${gi}] needs 'paths' and 'weights' lists`);
      return g.weights;
    });
    const { bytes: expected } = checkSpecs(specs, `${modelFile}: weightsManifest`);
    const buffers: ArrayBuffer[] = [];
    let read = 0;
    for (const [gi, group] of manifest.entries()) {
      for (const [pi, p] of group.paths.entries()) {
        const where = `${modelFile}: weightsManifest[${gi}].paths[${pi}]`;
        const buf = await readInside(resolved, p, where, expected - read);
        read += buf.byteLength;
        buffers.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
      }
    }
    if (read !== expected) {
      const files = manifest.flatMap((g) => g.paths).join(', ');
      throw new InputError(`${modelFile}: weight file(s) ${files}: ${read} bytes, expected ${expected} as the manifest declares (truncated or from another model)`);
    }
    return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
  });
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (err) {
    throw new InputError(`${modelFile}: not a loadable model (${(err as Error).message.split('\n')[0]})`);
  }
  let optimizerWeights: NamedTensor[] | undefined;
  if (opts.withOptimizer && (await exists(path.join(resolved, OPTIMIZER_JSON)))) {
    try {
      optimizerWeights = await decodeWeightFiles(resolved, OPTIMIZER_JSON, OPTIMIZER_BIN);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
  let extraWeights: Record<string, NamedTensor[]> | undefined;
  for (const group of opts.extraWeights ?? []) {
    const [json, bin] = extraFiles(group).map((f) => path.join(resolved, f));
    if (!(await exists(json)) || !(await exists(bin))) {
      model.dispose();
      throw new InputError(`${json}: missing (the checkpoint in '${dir}' has no '${group}' weights)`);
    }
    try {
      (extraWeights ??= {})[group] = await decodeWeightFiles(resolved, path.basename(json), path.basename(bin));
    } catch (err) {
      model.dispose();
      throw err;
    }
  }
  return { model, meta, optimizerWeights, extraWeights };
}
