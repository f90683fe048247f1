import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/**
 * Server-side rendering of a Vega-Lite spec to an SVG string: no browser, no canvas, no network.
 * Without node-canvas Vega guesses every character as 0.8 em wide, which leaves wide gaps next to
 * rotated axis labels; we give it the widths of a Helvetica-like font instead (see sansSerifWidth).
 */

export interface RenderOptions {
  /** Called with each warning from Vega-Lite or Vega; by default warnings are dropped. */
  onWarning?: (message: string) => void;
}

/** A loader that refuses everything: our specs carry their data inline, and a report must not fetch. */
const offlineLoader: vega.Loader = {
  load: async (uri: string) => refuse(uri),
  sanitize: async (uri: string) => refuse(uri),
  http: async (uri: string) => refuse(uri),
  file: async (filename: string) => refuse(filename),
};

function refuse(what: string): never {
  throw new Error(`report rendering is offline: refusing to load '${what}'`);
}

/** Advance widths of Helvetica/Arial (per 1000 em) for printable ASCII, from space (32) to tilde (126). */
const ASCII_WIDTHS = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556, 556, 556,
  556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778,
  722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222,
  500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
/** Other sans-serif faces (DejaVu on Linux) run wider than Helvetica: leave a margin rather than overlap. */
const WIDTH_MARGIN = 1.08;

interface TextItem {
  text?: unknown;
  fontSize?: number;
  fontWeight?: string | number;
  limit?: number;
}

/** Estimated width in pixels of one line of text in the item's font size and weight. */
export function sansSerifWidth(item: TextItem, text?: unknown): number {
  const line = String(text ?? item.text ?? '').trim();
  const size = item.fontSize ?? 11;
  let units = 0;
  for (const ch of line) {
    const code = ch.codePointAt(0)!;
    units += code >= 32 && code <= 126 ? ASCII_WIDTHS[code - 32] : 600;
  }
  const bold = item.fontWeight === 'bold' || Number(item.fontWeight) >= 600 ? 1.07 : 1;
  const width = (units / 1000) * size * bold * WIDTH_MARGIN;
  // Vega truncates text longer than `limit` with an ellipsis, so the drawn width never exceeds it.
  return item.limit && item.limit > 0 ? Math.min(width, item.limit) : width;
}

interface TextMetrics {
  width: (item: TextItem, text?: unknown) => number;
  estimateWidth: (item: TextItem, text?: unknown) => number;
}

/** Replace Vega's crude estimate when no canvas is available; keep real canvas measurement if there is one. */
function useSansSerifWidths(): void {
  const metrics = (vega as unknown as { textMetrics?: TextMetrics }).textMetrics;
  if (metrics && metrics.width === metrics.estimateWidth) metrics.width = sansSerifWidth;
}

export async function renderSvg(spec: TopLevelSpec, opts: RenderOptions = {}): Promise<string> {
  const logger = vega.logger(vega.Warn, undefined, (_method, _level, args) => {
    opts.onWarning?.(args.map(String).join(' '));
  });
  useSansSerifWidths();
  const vgSpec = compile(spec, { logger }).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none', loader: offlineLoader, logger, logLevel: vega.Warn });
  try {
    return addSvgTitles(await view.toSVG());
  } finally {
    view.finalize();
  }
}

/**
 * Give each mark that has an aria-label a <title> child, so a static page shows the value on hover
 * without any script. Vega's SVG output writes marks as self-closing elements; aria-label values are
 * already XML-escaped, so they can be reused as text content unchanged.
 */
export function addSvgTitles(svg: string): string {
  return svg.replace(/<path(\s[^>]*?role="graphics-symbol"[^>]*?)\/>/g, (whole, attrs: string) => {
    const label = /\saria-label="([^"]*)"/.exec(attrs);
    return label ? `<path${attrs}><title>${label[1]}</title></path>` : whole;
  });
}
