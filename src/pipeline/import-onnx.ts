import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { saveCheckpoint } from '../models/checkpoint.js';
import { DEFAULT_TRAIN, type TrainConfig } from '../train/options.js';
import type { CheckpointMeta, ImportRecord } from '../models/checkpoint-meta.js';
import { DEFAULT_PGD } from '../attacks/pgd.js';
import { provenance } from '../util/provenance.js';
import { datasetNames, type DatasetName } from '../data/index.js';
import { CIFAR10_CLASSES, CIFAR100_FINE_CLASSES, FASHION_MNIST_CLASSES, MNIST_CLASSES } from '../data/class-names.js';
import { decodeModel, opsetOf } from '../import/onnx/proto.js';
import { buildGraph, type InputScale } from '../import/onnx/build.js';

/** ONNX files larger than this are refused before they are read (weights of a ResNet-152 are 240 MB). */
export const MAX_ONNX_BYTES = 2 * 1024 ** 3 - 1;
export const OPSETS = { min: 13, max: 17 };

export interface ImportOptions {
  /** Input as PyTorch sees it, [C, H, W]; required when the file's input has dynamic sizes. */
  inputShape?: [number, number, number];
  /** Value range the PyTorch model expects its pixels in (default [0, 1]). */
  range?: [number, number];
  /** Per-channel normalisation applied after the range, (x - mean) / std (default: none). */
  mean?: number[];
  std?: number[];
  /** Glob(s) over node names selecting the tap points (default: every PyTorch module's output). */
  taps?: string[];
  dataset?: DatasetName;
  name?: string;
}

const CLASS_NAMES: Record<DatasetName, string[]> = { cifar10: CIFAR10_CLASSES, cifar100: CIFAR100_FINE_CLASSES, mnist: MNIST_CLASSES, 'fashion-mnist': FASHION_MNIST_CLASSES };

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** Tap points: module outputs by default, or the node names matching any of `patterns`. */
export function selectTaps(taps: Array<{ name: string; module: boolean }>, patterns?: string[]): string[] {
  if (!patterns?.length) return taps.filter((t) => t.module).map((t) => t.name);
  const res = patterns.map(globToRegExp);
  const chosen = taps.filter((t) => res.some((r) => r.test(t.name))).map((t) => t.name);
  if (!chosen.length) throw new InputError(`--taps: ${patterns.join(', ')} matches no node output (names: ${taps.map((t) => t.name).slice(0, 20).join(', ')}${taps.length > 20 ? ', ...' : ''})`);
  return chosen;
}

/** Read and convert an ONNX file, without writing anything (the caller owns the model). */
export async function convertOnnx(file: string, opts: ImportOptions = {}): Promise<{ model: tf.LayersModel; meta: CheckpointMeta }> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch {
    throw new InputError(`${file}: not found`);
  }
  if (!stat.isFile()) throw new InputError(`${file}: not a file`);
  if (stat.size > MAX_ONNX_BYTES) throw new InputError(`${file}: ${stat.size} bytes, more than the ${MAX_ONNX_BYTES} a single ONNX protobuf may hold`);
  const proto = decodeModel(file, await fs.readFile(file));
  const opset = opsetOf(proto);
  if (opset < OPSETS.min || opset > OPSETS.max) throw new InputError(`${file}: opset ${opset}; the importer reads opsets ${OPSETS.min}-${OPSETS.max} (torch.onnx.export(..., opset_version=13..17))`);
  const dataset = opts.dataset ?? 'cifar10';
  if (!datasetNames.includes(dataset)) throw new InputError(`--dataset: unknown dataset '${dataset}' (expected one of: ${datasetNames.join(', ')})`);
  const range = opts.range ?? [0, 1];
  if (range.length !== 2 || !(range[1] > range[0])) throw new InputError(`--range: expected LOW,HIGH with LOW < HIGH, got ${range.join(',')}`);
  const scaleFor = (channels: number): InputScale => ({
    range,
    mean: opts.mean ?? Array(channels).fill(0),
    std: opts.std ?? Array(channels).fill(1),
  });
  if (opts.std?.some((s) => !(s > 0))) throw new InputError(`--std: every value must be > 0, got ${opts.std.join(',')}`);
  const channels = opts.inputShape?.[0] ?? opts.mean?.length ?? opts.std?.length ?? 3;
  const built = await buildGraph(proto, file, { inputShape: opts.inputShape, scale: scaleFor(opts.mean?.length ?? opts.std?.length ?? channels) });
  try {
    const taps = selectTaps(built.taps, opts.taps);
    const [c, h, w] = built.inputShapeNchw;
    const classes = CLASS_NAMES[dataset];
    const name = opts.name ?? path.basename(file).replace(/\.onnx$/i, '');
    const config: TrainConfig = {
      ...DEFAULT_TRAIN,
      name,
      dataset,
      arch: 'onnx',
      scheme: 'sl',
      regime: 'st',
      method: 'none',
      epochs: 0,
      evalAttack: { ...DEFAULT_PGD, eps: 8 / 255, stepSize: 2 / 255, steps: 20, randomStart: true },
    };
    const record: ImportRecord = {
      source: path.basename(file),
      format: 'onnx',
      opset,
      producer: [proto.producerName, proto.producerVersion].filter(Boolean).join(' '),
      inputLayout: 'NCHW in the ONNX file; the imported model takes NHWC images (transposed once, at the input); NHWC activations',
      inputShapeNchw: [c, h, w],
      range,
      mean: opts.mean ?? null,
      std: opts.std ?? null,
      tapPattern: opts.taps ?? null,
    };
    const meta: CheckpointMeta = {
      format: 'robustsim-checkpoint/1',
      name,
      config,
      archConfig: { family: 'onnx', source: record.source, opset },
      inputShape: [h, w, c],
      numClasses: built.numClasses,
      classNames: built.numClasses === classes.length ? classes : Array.from({ length: built.numClasses }, (_, i) => String(i)),
      taps,
      trainSamples: 0,
      progress: { epochsDone: 0, stepInEpoch: 0, globalStep: 0, complete: true },
      history: [],
      backend: tf.getBackend(),
      provenance: provenance(tf.getBackend()),
      imported: record,
    };
    return { model: built.model, meta };
  } catch (err) {
    built.model.dispose();
    throw err;
  }
}

/** `robustsim import`: an ONNX file -> a robustsim checkpoint directory (written atomically). */
export async function importOnnx(file: string, out: string, opts: ImportOptions = {}): Promise<CheckpointMeta> {
  const { model, meta } = await convertOnnx(file, opts);
  try {
    await saveCheckpoint(out, { model, meta });
  } finally {
    model.dispose();
  }
  return meta;
}
