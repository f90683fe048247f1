import { createRequire } from 'node:module';
import { nativeSummary, type NativeSummary } from '../backend/native/provider.js';

const require = createRequire(import.meta.url);

function versionOf(pkg: string): string | undefined {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** What made an artefact: recorded in every meta.json and Arrow schema metadata. */
export interface Provenance {
  tool: string;
  version: string;
  created: string;
  command: string;
  node: string;
  backend?: string;
  /** The native libraries behind the wasm backend's kernels (library, version, OpenBLAS core, threads). */
  native?: NativeSummary;
  packages: Record<string, string>;
}

export function provenance(backend?: string): Provenance {
  const packages: Record<string, string> = {};
  for (const p of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-backend-wasm', 'apache-arrow']) {
    const v = versionOf(p);
    if (v) packages[p] = v;
  }
  return {
    tool: 'robustsim',
    version: versionOf('robustsim') ?? ownVersion(),
    created: new Date().toISOString(),
    command: process.argv.slice(1).join(' '),
    node: process.version,
    backend,
    ...(backend === 'wasm' && nativeSummary() ? { native: nativeSummary() } : {}),
    packages,
  };
}

function ownVersion(): string {
  try {
    return (require('../../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
