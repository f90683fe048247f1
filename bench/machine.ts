import { execFileSync } from 'node:child_process';
import * as os from 'node:os';

/**
 * The machine line printed beside every benchmark figure: lscpu's model name, the cores, and the
 * load average (the machine may be shared; a figure taken under load says so).
 */
export function cpuModel(): string {
  try {
    const out = execFileSync('lscpu', { encoding: 'utf8' });
    return /Model name:\s*(.+)/.exec(out)?.[1].trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
  } catch {
    return os.cpus()[0]?.model ?? 'unknown CPU';
  }
}

export function loadLine(): string {
  const [a, b, c] = os.loadavg();
  return `load average ${a.toFixed(2)}, ${b.toFixed(2)}, ${c.toFixed(2)} on ${os.availableParallelism()} cores`;
}

export function machineLine(): string {
  return `lscpu: ${cpuModel()}; ${os.availableParallelism()} cores; ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}`;
}
