import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as arrow from 'apache-arrow';

/** A study small enough for tests: 4 cells (SL/CL x ST/AT) of a width-4 convnet on the CIFAR fixture. */
export const CLI = path.resolve('dist/src/cli/main.js');

export function tinyStudy(name = 'tiny'): Record<string, unknown> {
  return {
    name,
    dataset: { name: 'cifar10', dataDir: path.resolve('fixtures/cifar10') },
    arch: { name: 'convnet', width: 4 },
    grid: { schemes: ['sl', 'cl'], regimes: ['st', 'at'], trainEps: [0.03] },
    training: { all: { epochs: 1, limit: 64, batchSize: 32, attack: { steps: 1 } }, sl: { augment: 'none' } },
    eval: { n: 32, batchSize: 32, threatSteps: 2, eps: [0.03] },
    probes: { epochs: 1, limit: 64, evalLimit: 32 },
    cka: { n: 64, batchSize: 16, bootstrap: 20, attack: { steps: 2 } },
  };
}

export async function writeConfig(dir: string, config: unknown): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  await fs.writeFile(file, JSON.stringify(config, null, 1));
  return file;
}

export function runCli(args: string[], timeout = 600_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, '--backend', 'wasm', ...args], { encoding: 'utf8', timeout, env: { ...process.env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function spawnCli(args: string[]) {
  return spawn(process.execPath, [CLI, '--backend', 'wasm', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Every column of an Arrow file as plain arrays (metadata aside), for equality checks. */
export async function arrowColumns(file: string): Promise<Record<string, unknown[]>> {
  const t = arrow.tableFromIPC(await fs.readFile(file));
  const out: Record<string, unknown[]> = {};
  for (const f of t.schema.fields) out[f.name] = [...t.getChild(f.name)!].map((v) => (typeof v === 'number' && Number.isNaN(v) ? 'NaN' : v));
  return out;
}
