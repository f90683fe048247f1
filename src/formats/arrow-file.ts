import * as arrow from 'apache-arrow';
import { promises as fs } from 'node:fs';
import { InputError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';

/** Attach string metadata to a table's schema (apache-arrow keeps schemas immutable). */
export function withMetadata(table: arrow.Table, metadata: Record<string, string>): arrow.Table {
  const schema = new arrow.Schema(table.schema.fields, new Map(Object.entries(metadata)));
  return new arrow.Table(schema, table.batches.map((b) => new arrow.RecordBatch(schema, b.data)));
}

/** Write a table as an Arrow IPC file (Feather v2), atomically. */
export async function writeArrowFile(file: string, table: arrow.Table): Promise<void> {
  await writeFileAtomic(file, arrow.tableToIPC(table, 'file'));
}

/** Read an Arrow IPC file (file or stream format); errors name the file. */
export async function readArrowFile(file: string): Promise<arrow.Table> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw new InputError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  try {
    return arrow.tableFromIPC(bytes);
  } catch (err) {
    throw new InputError(`${file}: not a readable Arrow IPC file (${(err as Error).message})`);
  }
}

/** The schema metadata of a table as a plain object. */
export function metadataOf(table: arrow.Table): Record<string, string> {
  return Object.fromEntries(table.schema.metadata);
}

/** The schema metadata with each value JSON-decoded where it is JSON (writers store objects that way), else kept as text. */
export function decodedMetadataOf(table: arrow.Table): Record<string, unknown> {
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadataOf(table))) {
    try {
      metadata[k] = JSON.parse(v);
    } catch {
      metadata[k] = v;
    }
  }
  return metadata;
}

/** Fetch a required column or fail naming the file and the column. */
export function requireColumn(table: arrow.Table, file: string, name: string): arrow.Vector {
  const col = table.getChild(name);
  if (!col) throw new InputError(`${file}: missing column '${name}'`);
  return col;
}
