import cliProgress from 'cli-progress';

/**
 * Progress bars on stderr (stdout stays clean for results). When stderr is not a terminal
 * (CI, logs) cli-progress stays silent, so we print a line at most every few seconds instead.
 */
export interface Progress {
  start(total: number, label: string): void;
  update(value: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

export function makeProgress(format: string): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `{label} [{bar}] {value}/{total} ${format} eta {eta_formatted}`, hideCursor: true, stream: process.stderr, etaBuffer: 20 },
      cliProgress.Presets.shades_classic,
    );
    let running = false;
    return {
      start(total, label) {
        if (running) bar.stop();
        // Until the first update, show '-' for the caller's fields rather than raw {placeholders}.
        const blanks = Object.fromEntries([...format.matchAll(/\{(\w+)\}/g)].map((m) => [m[1], '-']));
        bar.start(total, 0, { ...blanks, label });
        running = true;
      },
      update(value, fields) {
        bar.update(value, fields);
      },
      stop() {
        if (running) bar.stop();
        running = false;
      },
    };
  }
  let total = 0;
  let label = '';
  let last = 0;
  return {
    start(t, l) {
      total = t;
      label = l;
      last = 0;
    },
    update(value, fields) {
      const now = Date.now();
      if (now - last < 5000 && value < total) return;
      last = now;
      let text = format;
      for (const [k, v] of Object.entries(fields ?? {})) text = text.replaceAll(`{${k}}`, String(v));
      process.stderr.write(`${label} ${value}/${total} ${text.replace(/\{\w+\}/g, '-')}\n`);
    },
    stop() {},
  };
}

/**
 * A bar driven only by (label, done, total) ticks, as the library's progress callbacks report them:
 * it (re)starts when the label changes or the count goes back, and stops when done reaches total.
 */
export function makeTicker(format: string): (label: string, done: number, total: number, fields?: Record<string, string | number>) => void {
  const bar = makeProgress(format);
  let current = '';
  let last = -1;
  return (label, done, total, fields) => {
    if (label !== current || done <= last) {
      bar.start(total, label);
      current = label;
    }
    last = done;
    bar.update(done, fields);
    if (done >= total) {
      bar.stop();
      current = '';
      last = -1;
    }
  };
}
