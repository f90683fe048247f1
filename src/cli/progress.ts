import cliProgress from 'cli-progress';

/**
 * Progress display on stderr (stdout stays clean for results). On a terminal every bar lives in one
 * shared cli-progress MultiBar, so work running side by side (the demo's two models) shows one bar
 * each, and lines printed meanwhile go above the bars. When stderr is not a terminal (CI, logs),
 * each bar prints a line at most every few seconds instead.
 */
type Fields = Record<string, string | number>;

const tty = Boolean(process.stderr.isTTY);
let multi: cliProgress.MultiBar | undefined;
let liveBars = 0;

function multiBar(): cliProgress.MultiBar {
  multi ??= new cliProgress.MultiBar(
    {
      format: '{label} [{bar}] {value}/{total} {rest} eta {eta_formatted}',
      hideCursor: true,
      stream: process.stderr,
      etaBuffer: 20,
      clearOnComplete: true,
      stopOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  return multi;
}

function releaseBar(bar: cliProgress.SingleBar): void {
  multi?.remove(bar);
  liveBars -= 1;
  if (liveBars === 0 && multi) {
    multi.stop();
    multi = undefined;
  }
}

/** Print a line without breaking the bars on screen. */
export function logLine(text: string): void {
  if (multi && liveBars > 0) multi.log(`${text}\n`);
  else process.stderr.write(`${text}\n`);
}

function fill(format: string, fields: Fields | undefined): string {
  return format.replace(/\{(\w+)\}/g, (_, k: string) => (fields && k in fields ? String(fields[k]) : '-'));
}

export type Ticker = (label: string, done: number, total: number, fields?: Fields) => void;

/**
 * A bar driven only by (label, done, total) ticks, as the library's progress callbacks report them:
 * it (re)starts when the label changes or the count goes back, and ends when done reaches total.
 * `format` may hold `{field}` placeholders filled from each tick's fields.
 */
export function makeTicker(format = ''): Ticker {
  let current = '';
  let last = -1;
  let bar: cliProgress.SingleBar | undefined;
  let printedAt = 0;
  return (label, done, total, fields) => {
    const restart = label !== current || done <= last;
    current = label;
    last = done;
    if (tty) {
      if (restart) {
        if (bar) releaseBar(bar);
        bar = multiBar().create(total, 0, { label, rest: fill(format, undefined) });
        liveBars += 1;
      }
      bar!.update(done, { label, rest: fill(format, fields) });
      if (done >= total) {
        releaseBar(bar!);
        bar = undefined;
        current = '';
        last = -1;
      }
      return;
    }
    const now = Date.now();
    if (!restart && done < total && now - printedAt < 5000) return;
    printedAt = now;
    process.stderr.write(`${label} ${done}/${total} ${fill(format, fields)}\n`);
    if (done >= total) {
      current = '';
      last = -1;
    }
  };
}
