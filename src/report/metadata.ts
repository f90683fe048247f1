/**
 * Turning a similarity table's metadata (nested JSON) into readable key/value tables.
 * Keys become dotted paths (`model.metrics.clean_acc`); values become short strings.
 */

export interface MetaTable {
  caption: string;
  rows: [key: string, value: string][];
  /** Long, rarely read tables (provenance) start folded. */
  folded?: boolean;
}

/** Numbers as a person would write them; perturbation sizes also as k/255 when they are exactly that. */
export function formatValue(key: string, value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  const text = abs < 1e-3 || abs >= 1e6 ? value.toExponential(3) : String(Number(value.toPrecision(4)));
  const last = key.split('.').pop() ?? key;
  if (/^(eps|epsilon|step|stepsize|step_size|train_eps)$/i.test(last) && abs < 1) {
    const k = value * 255;
    if (Math.abs(k - Math.round(k)) < 1e-6) return `${text} (${Math.round(k)}/255)`;
  }
  return text;
}

/** Flatten nested JSON into [dotted key, display value] pairs, in the object's own key order. */
export function flattenMetadata(value: unknown, prefix = ''): [string, string][] {
  if (value === null || value === undefined) return [[prefix, '—']];
  if (typeof value === 'number') return [[prefix, formatValue(prefix, value)]];
  if (typeof value !== 'object') return [[prefix, String(value)]];
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) {
      return [[prefix, value.map((v) => (typeof v === 'number' ? formatValue(prefix, v) : String(v))).join(', ')]];
    }
    return value.flatMap((v, i) => flattenMetadata(v, `${prefix}[${i}]`));
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return [[prefix, '—']];
  return entries.flatMap(([k, v]) => flattenMetadata(v, prefix ? `${prefix}.${k}` : k));
}

function sourceCaption(source: unknown, index: number, file: string | undefined): string {
  const model = (source as { model?: { name?: unknown } } | null)?.model?.name;
  const name = typeof model === 'string' ? model : `input ${index + 1}`;
  return file ? `${name} — ${file}` : name;
}

/**
 * The tables for one similarity file: the similarity computation itself, each activation source
 * (model, attack, dataset, ...) and the provenance records, which start folded.
 */
export function metadataTables(md: Record<string, unknown>): MetaTable[] {
  const { sources, provenance, ...rest } = md;
  const tables: MetaTable[] = [{ caption: 'similarity', rows: flattenMetadata(rest) }];
  const inputs = Array.isArray(md.inputs) ? md.inputs.map(String) : [];
  const list = Array.isArray(sources) ? sources : sources === undefined ? [] : [sources];
  list.forEach((source, k) => {
    if (source !== null && typeof source === 'object' && !Array.isArray(source)) {
      const { provenance: sourceProvenance, ...info } = source as Record<string, unknown>;
      tables.push({ caption: `source: ${sourceCaption(source, k, inputs[k])}`, rows: flattenMetadata(info) });
      if (sourceProvenance !== undefined) {
        tables.push({ caption: `provenance of source: ${sourceCaption(source, k, inputs[k])}`, rows: flattenMetadata(sourceProvenance), folded: true });
      }
    } else {
      tables.push({ caption: `source: ${sourceCaption(source, k, inputs[k])}`, rows: flattenMetadata(source) });
    }
  });
  if (provenance !== undefined) tables.push({ caption: 'provenance', rows: flattenMetadata(provenance), folded: true });
  return tables;
}
