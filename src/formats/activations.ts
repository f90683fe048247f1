import * as arrow from 'apache-arrow';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { writeStreamAtomic } from '../util/atomic.js';
import { readNpyFloat32, readNpyInt32, npyToFloat32, type NpyArray } from './npy.js';
import { readNpz } from './npz.js';
import { readSafetensors } from './safetensors.js';

/**
 * The activation file written by `capture` and read by `cka`: an Arrow IPC file with
 *   sample_id: Int32, label: Int32 (optional), and one FixedSizeList<Float32> column per set,
 *   named `<layer>@<input>` (e.g. `stage2.block1@adv`), in network order.
 * Schema metadata: each key's value is a JSON string (model, attack, dataset, provenance, ...).
 * Rows are written in record batches of bounded size so files larger than memory-friendly
 * single buffers (and Node's 2 GiB single-read limit) can be written and read.
 *
 * `readActivations` also accepts a directory of `.npy` files (see readNpyDirectory).
 */
/**
 * One set of activations: a layer's outputs on one kind of input (e.g. `stage2.block1@adv`),
 * flattened per sample. `data` is row-major n x dim: sample i occupies data[i*dim .. (i+1)*dim).
 */
export interface ActivationSet {
  name: string;
  n: number;
  dim: number;
  data: Float32Array;
}

export interface Activations {
  sampleIds: Int32Array;
  labels?: Int32Array;
  sets: ActivationSet[];
  metadata: Record<string, unknown>;
  /** The path the activations were read from. */
  source: string;
}

export interface ActivationsToWrite {
  sampleIds: Int32Array;
  labels?: Int32Array;
  sets: ActivationSet[];
  metadata: Record<string, unknown>;
}

export interface ReadActivationsOptions {
  /** Read only these sets, returned in this order (default: all, in file order). */
  sets?: string[];
}

export const SAMPLE_ID_COLUMN = 'sample_id';
export const LABEL_COLUMN = 'label';
/** Files in a `.npy` directory that are not activation sets. */
const NPY_SAMPLE_IDS = 'sample_ids.npy';
const NPY_LABELS = 'labels.npy';
const NPY_ORDER = 'order.txt';
const NPY_METADATA = 'metadata.json';
/** Target size of one written record batch. */
const BATCH_BYTES = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Write activations as an Arrow IPC file, atomically (temp file, fsync, rename).
 * `rowsPerBatch` overrides the record batch size (default: about 64 MiB per batch).
 */
export async function writeActivations(file: string, acts: ActivationsToWrite, opts: { rowsPerBatch?: number } = {}): Promise<void> {
  validateForWrite(file, acts);
  const n = acts.sampleIds.length;
  const schema = activationSchema(acts);
  const totalDim = acts.sets.reduce((s, x) => s + x.dim, 0);
  const rowsPerBatch = opts.rowsPerBatch ?? Math.max(1, Math.floor(BATCH_BYTES / (4 * (totalDim + 2))));
  await writeStreamAtomic(file, async (fh) => {
    const writer = new arrow.RecordBatchFileWriter();
    writer.reset(undefined, schema);
    const drain = (async () => {
      for await (const chunk of writer) await fh.write(chunk);
    })();
    // At least one batch, so even an empty file carries its schema in a batch.
    for (let start = 0; start < Math.max(n, 1); start += rowsPerBatch) {
      writer.write(batchOf(schema, acts, start, Math.min(n, start + rowsPerBatch)));
    }
    writer.finish();
    await drain;
  });
}

function activationSchema(acts: ActivationsToWrite): arrow.Schema {
  const fields: arrow.Field[] = [new arrow.Field(SAMPLE_ID_COLUMN, new arrow.Int32(), false)];
  if (acts.labels) fields.push(new arrow.Field(LABEL_COLUMN, new arrow.Int32(), false));
  for (const s of acts.sets) fields.push(new arrow.Field(s.name, listType(s.dim), false));
  const md = new Map(Object.entries(acts.metadata).map(([k, v]) => [k, JSON.stringify(v) ?? 'null']));
  return new arrow.Schema(fields, md);
}

function listType(dim: number): arrow.FixedSizeList<arrow.Float32> {
  return new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), false));
}

function batchOf(schema: arrow.Schema, acts: ActivationsToWrite, start: number, end: number): arrow.RecordBatch {
  const len = end - start;
  const children: arrow.Data[] = [int32Data(acts.sampleIds.subarray(start, end))];
  if (acts.labels) children.push(int32Data(acts.labels.subarray(start, end)));
  for (const s of acts.sets) {
    const child = arrow.makeData({ type: new arrow.Float32(), length: len * s.dim, data: s.data.subarray(start * s.dim, end * s.dim) });
    children.push(arrow.makeData({ type: listType(s.dim), length: len, nullCount: 0, child }));
  }
  const struct = arrow.makeData({ type: new arrow.Struct(schema.fields), length: len, nullCount: 0, children });
  return new arrow.RecordBatch(schema, struct);
}

function int32Data(values: Int32Array): arrow.Data<arrow.Int32> {
  return arrow.makeData({ type: new arrow.Int32(), length: values.length, data: values });
}

function validateForWrite(file: string, acts: ActivationsToWrite): void {
  const n = acts.sampleIds.length;
  if (acts.labels && acts.labels.length !== n) throw new InputError(`${file}: ${acts.labels.length} labels for ${n} sample ids`);
  const seen = new Set<string>([SAMPLE_ID_COLUMN, LABEL_COLUMN]);
  for (const s of acts.sets) {
    if (!s.name) throw new InputError(`${file}: an activation set has an empty name`);
    if (seen.has(s.name)) throw new InputError(`${file}: set name '${s.name}' is used twice or is reserved`);
    seen.add(s.name);
    if (s.n !== n) throw new InputError(`${file}: set '${s.name}' has ${s.n} samples, expected ${n} (one per sample id)`);
    if (!(s.dim >= 1) || !Number.isInteger(s.dim)) throw new InputError(`${file}: set '${s.name}' has dim ${s.dim}, expected a positive integer`);
    if (s.data.length !== s.n * s.dim) throw new InputError(`${file}: set '${s.name}' has ${s.data.length} values, expected n*dim = ${s.n * s.dim}`);
  }
}


// ---------------------------------------------------------------------------------------------
// Reading

/** Read an activation Arrow file, or a directory of `.npy` files. */
export async function readActivations(source: string, opts: ReadActivationsOptions = {}): Promise<Activations> {
  let stat;
  try {
    stat = await fs.stat(source);
  } catch (err) {
    throw new InputError(`${source}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (stat.isDirectory()) return readNpyDirectory(source, opts);
  const archive = ARRAY_ARCHIVES.find((a) => source.toLowerCase().endsWith(a.ext));
  return archive ? activationsFromArrays(source, await archive.read(source), opts) : readArrowActivations(source, opts);
}

/** Pick the requested names out of the available ones, failing with the list of what exists. */
export function selectSets(source: string, available: string[], requested?: string[]): string[] {
  if (!requested) return available;
  const have = new Set(available);
  const unknown = requested.filter((r) => !have.has(r));
  if (unknown.length > 0) {
    throw new InputError(`${source}: unknown set${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `'${u}'`).join(', ')}; available: ${available.join(', ')}`);
  }
  const dup = requested.find((r, i) => requested.indexOf(r) !== i);
  if (dup !== undefined) throw new InputError(`${source}: set '${dup}' requested twice`);
  if (requested.length === 0) throw new InputError(`${source}: no sets requested`);
  return requested;
}

async function readArrowActivations(file: string, opts: ReadActivationsOptions): Promise<Activations> {
  const fh = await fs.open(file, 'r');
  try {
    let reader: arrow.AsyncRecordBatchFileReader | arrow.AsyncRecordBatchStreamReader;
    try {
      reader = (await arrow.RecordBatchReader.from(fh)) as typeof reader;
      await reader.open();
    } catch (err) {
      throw new InputError(`${file}: not a readable Arrow IPC file (${(err as Error).message})`);
    }
    const schema = reader.schema;
    if (!schema) throw new InputError(`${file}: not a readable Arrow IPC file (no schema: empty or truncated?)`);
    const layout = describeColumns(file, schema);
    const wanted = selectSets(file, layout.sets.map((s) => s.name), opts.sets);
    const dims = new Map(layout.sets.map((s) => [s.name, s.dim]));
    const ids: Int32Array[] = [];
    const labels: Int32Array[] = [];
    const chunks = new Map<string, Float32Array[]>(wanted.map((w) => [w, []]));
    try {
      for await (const batch of reader) {
        ids.push(int32Column(file, batch, SAMPLE_ID_COLUMN));
        if (layout.hasLabels) labels.push(int32Column(file, batch, LABEL_COLUMN));
        for (const name of wanted) chunks.get(name)!.push(float32ListColumn(file, batch, name, dims.get(name)!));
      }
    } catch (err) {
      if (err instanceof InputError) throw err;
      throw new InputError(`${file}: cannot read record batches (${(err as Error).message}); is the file complete?`);
    }
    const sampleIds = concatInt32(ids);
    const n = sampleIds.length;
    const sets = wanted.map((name) => {
      const data = concatFloat32(chunks.get(name)!);
      chunks.delete(name); // let the per-batch copies go before the next set is joined
      return { name, n, dim: dims.get(name)!, data };
    });
    return {
      sampleIds,
      labels: layout.hasLabels ? concatInt32(labels) : undefined,
      sets,
      metadata: parseMetadata(schema.metadata),
      source: file,
    };
  } finally {
    await fh.close();
  }
}

interface ColumnLayout {
  hasLabels: boolean;
  sets: Array<{ name: string; dim: number }>;
}

function describeColumns(file: string, schema: arrow.Schema): ColumnLayout {
  const names = schema.fields.map((f) => f.name);
  if (!names.includes(SAMPLE_ID_COLUMN)) throw new InputError(`${file}: missing column '${SAMPLE_ID_COLUMN}'`);
  const sets: ColumnLayout['sets'] = [];
  for (const f of schema.fields) {
    if (f.name === SAMPLE_ID_COLUMN || f.name === LABEL_COLUMN) {
      if (!arrow.DataType.isInt(f.type)) throw new InputError(`${file}: column '${f.name}' has type ${f.type}, expected Int32`);
      continue;
    }
    const t = f.type;
    if (!arrow.DataType.isFixedSizeList(t) || !arrow.DataType.isFloat(t.children[0].type) || t.children[0].type.precision !== arrow.Precision.SINGLE) {
      throw new InputError(`${file}: column '${f.name}' has type ${t}, expected FixedSizeList<Float32> (one column per activation set)`);
    }
    sets.push({ name: f.name, dim: t.listSize });
  }
  return { hasLabels: names.includes(LABEL_COLUMN), sets };
}

function int32Column(file: string, batch: arrow.RecordBatch, name: string): Int32Array {
  const col = batch.getChild(name)!;
  if (col.nullCount > 0) throw new InputError(`${file}: column '${name}' has null values`);
  if (col.type.typeId === arrow.Type.Int && (col.type as arrow.Int).bitWidth === 32 && (col.type as arrow.Int).isSigned) {
    return Int32Array.from(col.toArray() as Int32Array);
  }
  const out = new Int32Array(col.length);
  let i = 0;
  for (const v of col) {
    const num = Number(v);
    if (!Number.isInteger(num) || num > 2147483647 || num < -2147483648) throw new InputError(`${file}: column '${name}' value ${v} does not fit in int32`);
    out[i++] = num;
  }
  return out;
}

/** Copy one FixedSizeList<Float32> column of a batch out of the batch's buffers. */
function float32ListColumn(file: string, batch: arrow.RecordBatch, name: string, dim: number): Float32Array {
  const col = batch.getChild(name)!;
  if (col.nullCount > 0) throw new InputError(`${file}: set '${name}' has null rows`);
  const out = new Float32Array(col.length * dim);
  let at = 0;
  for (const data of col.data) {
    const child = data.children[0];
    if (child.nullCount > 0) throw new InputError(`${file}: set '${name}' has null values`);
    // Slicing a FixedSizeList slices its child's value buffer too, so values start at this chunk's first row.
    const values = child.values as Float32Array;
    if (values.length < data.length * dim) throw new InputError(`${file}: set '${name}' holds fewer values than its rows need`);
    out.set(values.subarray(0, data.length * dim), at);
    at += data.length * dim;
  }
  return out;
}

function parseMetadata(md: Map<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of md) {
    try {
      out[k] = JSON.parse(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

function concatFloat32(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function concatInt32(parts: Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Directory of .npy files

/**
 * A directory with one `<set>.npy` per activation set (first axis = samples, the rest flattened),
 * optional `sample_ids.npy` (int32/int64; default 0..n-1), optional `labels.npy`, optional
 * `metadata.json` (an object, becomes the metadata) and optional `order.txt`.
 * Set order: the lines of `order.txt` (one set name per line; blank lines and `#` comments
 * ignored; it must name every `.npy` set exactly once), otherwise natural sort of the file names
 * (`layer2` before `layer10`).
 */
export async function readNpyDirectory(dir: string, opts: ReadActivationsOptions = {}): Promise<Activations> {
  const entries = await fs.readdir(dir);
  const setFiles = entries.filter((e) => e.endsWith('.npy') && e !== NPY_SAMPLE_IDS && e !== NPY_LABELS);
  const available = await orderOfSets(dir, entries, setFiles.map((f) => f.slice(0, -'.npy'.length)));
  if (available.length === 0) throw new InputError(`${dir}: no activation .npy files in the directory`);
  const wanted = selectSets(dir, available, opts.sets);
  const sets: ActivationSet[] = [];
  for (const name of wanted) {
    const file = path.join(dir, `${name}.npy`);
    const { shape, data } = await readNpyFloat32(file);
    if (shape.length === 0) throw new InputError(`${file}: a scalar; expected an array whose first axis is samples`);
    const n = shape[0];
    const dim = shape.slice(1).reduce((a, b) => a * b, 1);
    if (sets.length > 0 && n !== sets[0].n) throw new InputError(`${file}: ${n} samples, but ${sets[0].name}.npy has ${sets[0].n}`);
    if (dim === 0) throw new InputError(`${file}: shape (${shape.join(', ')}) has no features`);
    sets.push({ name, n, dim, data });
  }
  const n = sets[0].n;
  const sampleIds = entries.includes(NPY_SAMPLE_IDS) ? await readIntVector(path.join(dir, NPY_SAMPLE_IDS), n) : Int32Array.from({ length: n }, (_, i) => i);
  const labels = entries.includes(NPY_LABELS) ? await readIntVector(path.join(dir, NPY_LABELS), n) : undefined;
  const metadata = entries.includes(NPY_METADATA) ? await readMetadataJson(path.join(dir, NPY_METADATA)) : {};
  return { sampleIds, labels, sets, metadata, source: dir };
}

async function orderOfSets(dir: string, entries: string[], names: string[]): Promise<string[]> {
  if (!entries.includes(NPY_ORDER)) return [...names].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const file = path.join(dir, NPY_ORDER);
  const listed = (await fs.readFile(file, 'utf8'))
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
  const have = new Set(names);
  const missing = listed.filter((l) => !have.has(l));
  if (missing.length > 0) throw new InputError(`${file}: lists ${missing.map((m) => `'${m}'`).join(', ')} but there is no such .npy file`);
  const dup = listed.find((l, i) => listed.indexOf(l) !== i);
  if (dup !== undefined) throw new InputError(`${file}: lists '${dup}' twice`);
  const unlisted = names.filter((x) => !listed.includes(x));
  if (unlisted.length > 0) throw new InputError(`${file}: does not list ${unlisted.map((m) => `'${m}.npy'`).join(', ')}; list every set (or remove the file)`);
  return listed;
}

async function readIntVector(file: string, n: number): Promise<Int32Array> {
  const { shape, data } = await readNpyInt32(file);
  if (shape.length !== 1 || shape[0] !== n) throw new InputError(`${file}: shape (${shape.join(', ')}), expected (${n},) to match the activation files`);
  return data;
}

async function readMetadataJson(file: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new InputError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError(`${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Single-file array archives saved by PyTorch/NumPy users: .safetensors and .npz

/** Archives of named arrays, by file extension: name -> array, plus the file's own metadata. */
const ARRAY_ARCHIVES: Array<{ ext: string; read: (file: string) => Promise<{ arrays: Map<string, NpyArray>; metadata: Record<string, unknown> }> }> = [
  { ext: '.npz', read: async (f) => ({ arrays: await readNpz(f), metadata: {} }) },
  { ext: '.safetensors', read: async (f) => { const { tensors, metadata } = await readSafetensors(f); return { arrays: tensors, metadata: { ...metadata } }; } },
];

/**
 * Named arrays -> activation sets, as a `.npy` directory is read: one set per array (first axis =
 * samples, the rest flattened), the same sample count for all, `sample_ids` and `labels` arrays
 * as the sample ids and labels; sets in natural order of their names.
 */
export function activationsFromArrays(source: string, archive: { arrays: Map<string, NpyArray>; metadata: Record<string, unknown> }, opts: ReadActivationsOptions = {}): Activations {
  const reserved = new Set(['sample_ids', 'labels']);
  const available = [...archive.arrays.keys()].filter((k) => !reserved.has(k)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (available.length === 0) throw new InputError(`${source}: no activation arrays (only ${[...archive.arrays.keys()].join(', ')})`);
  const sets: ActivationSet[] = [];
  for (const name of selectSets(source, available, opts.sets)) {
    const arr = archive.arrays.get(name)!;
    const where = `${source}: '${name}'`;
    if (arr.shape.length === 0) throw new InputError(`${where}: a scalar; expected an array whose first axis is samples`);
    const n = arr.shape[0];
    const dim = arr.shape.slice(1).reduce((a, b) => a * b, 1);
    if (sets.length > 0 && n !== sets[0].n) throw new InputError(`${where}: ${n} samples, but '${sets[0].name}' has ${sets[0].n}`);
    if (dim === 0) throw new InputError(`${where}: shape (${arr.shape.join(', ')}) has no features`);
    sets.push({ name, n, dim, data: npyToFloat32(arr) });
  }
  const n = sets[0].n;
  const ints = (key: string): Int32Array | undefined => {
    const arr = archive.arrays.get(key);
    if (!arr) return undefined;
    if (arr.shape.length !== 1 || arr.shape[0] !== n) throw new InputError(`${source}: '${key}' has shape (${arr.shape.join(', ')}), expected (${n},) to match the activations`);
    const f = npyToFloat32(arr);
    if (f.some((v) => !Number.isInteger(v))) throw new InputError(`${source}: '${key}' must hold integers`);
    return Int32Array.from(f);
  };
  return { sampleIds: ints('sample_ids') ?? Int32Array.from({ length: n }, (_, i) => i), labels: ints('labels'), sets, metadata: archive.metadata, source };
}
