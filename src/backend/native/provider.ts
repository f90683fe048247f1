import os from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { InputError } from '../../errors.js';
import { bindDnnl, type Dnnl } from './dnnl.js';
import { loadFfi } from './ffi.js';
import { DNNL_ENV, OPENBLAS_ENV } from './library-paths.js';
import { bindOpenBlas, type OpenBlas } from './openblas.js';

/**
 * The native kernel provider: OpenBLAS (GEMM, SYRK) and oneDNN (convolutions) loaded at start-up
 * through koffi, used by the wasm backend's kernels (kernels.ts) and the CKA engines (gram.ts).
 *
 *   auto     use what loads; otherwise today's wasm kernels, with a one-line hint of what to install
 *   off      never load them (wasm kernels only)
 *   require  fail with an InputError naming what is missing
 *
 * Mode: --native, else ROBUSTSIM_NATIVE, else auto. Worker threads inherit the environment, so the
 * CLI writes its flag there and every thread of a run agrees.
 *
 * Threads: each compute thread (the main thread and every worker of --workers N) gets
 * ROBUSTSIM_NATIVE_THREADS native threads, default os.availableParallelism() on the main thread and 1
 * on a worker thread; the CLI sets it to max(1, floor(cores / N)) for --workers N, so native threads x
 * workers never exceed the cores. OpenBLAS' count is per process, oneDNN's (OpenMP) per calling thread.
 */
export type NativeMode = 'auto' | 'off' | 'require';
export const NATIVE_MODES: readonly NativeMode[] = ['auto', 'off', 'require'];
export const NATIVE_ENV = 'ROBUSTSIM_NATIVE';
export const NATIVE_THREADS_ENV = 'ROBUSTSIM_NATIVE_THREADS';

export const INSTALL_HINT = "apt-get install libopenblas0-pthread libdnnl2 (Debian/Ubuntu), and koffi must be installed (npm's optional dependencies)";

export interface NativeLibraries {
  openblas?: OpenBlas;
  dnnl?: Dnnl;
}

/** What was found, for the backend line and every artefact's provenance. */
export interface NativeSummary {
  mode: NativeMode;
  /** Threads per compute thread. */
  threads: number;
  openblas?: { library: string; version: string; core: string; threads: number };
  onednn?: { library: string; version: string; runtime: string; threads: number | null };
  /** Why a library is not in use, one entry each. */
  missing: string[];
}

let state: { libs: NativeLibraries; summary: NativeSummary } | undefined;
let loading: Promise<NativeLibraries> | undefined;
/** Set by tests to compare native and wasm kernels in one process; the libraries stay loaded. */
let enabled = true;

export function parseNativeMode(raw: string | undefined, where = `${NATIVE_ENV}`): NativeMode {
  const v = (raw ?? 'auto').trim() || 'auto';
  if (!(NATIVE_MODES as readonly string[]).includes(v)) throw new InputError(`${where}: expected one of ${NATIVE_MODES.join(', ')}, got '${v}'`);
  return v as NativeMode;
}

/** Native threads per compute thread (see the module comment). */
export function nativeThreads(env: NodeJS.ProcessEnv = process.env, mainThread = isMainThread): number {
  const raw = env[NATIVE_THREADS_ENV];
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new InputError(`${NATIVE_THREADS_ENV}: expected a positive integer, got '${raw}'`);
    return n;
  }
  return mainThread ? os.availableParallelism() : 1;
}

/** Threads per compute thread for `workers` compute threads on `cores` cores. */
export function threadsPerWorker(workers: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / Math.max(1, workers)));
}

/**
 * Load the libraries once per thread (idempotent). With mode 'off' nothing is loaded; with 'require'
 * a missing library is an InputError.
 */
export function initNative(mode: NativeMode = parseNativeMode(process.env[NATIVE_ENV])): Promise<NativeLibraries> {
  loading ??= load(mode);
  return loading;
}

async function load(mode: NativeMode): Promise<NativeLibraries> {
  const threads = nativeThreads();
  const summary: NativeSummary = { mode, threads, missing: [] };
  const libs: NativeLibraries = {};
  if (mode !== 'off') {
    const ffi = await loadFfi().catch((err: unknown) => {
      summary.missing.push(`koffi failed to load: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      return undefined;
    });
    if (!ffi) {
      if (!summary.missing.length) summary.missing.push('koffi is not installed (npm install without --omit=optional)');
    } else {
      const blas = bindOpenBlas(ffi);
      if ('error' in blas) summary.missing.push(`OpenBLAS (${OPENBLAS_ENV}): ${blas.error}`);
      else {
        blas.setThreads(threads);
        libs.openblas = blas;
        summary.openblas = { library: blas.path, version: blas.version, core: blas.core, threads: blas.threads() };
      }
      let dnnl: Dnnl | { error: string };
      try {
        dnnl = bindDnnl(ffi);
      } catch (err) {
        dnnl = { error: err instanceof Error ? err.message : String(err) };
      }
      if ('error' in dnnl) summary.missing.push(`oneDNN (${DNNL_ENV}): ${dnnl.error}`);
      else {
        dnnl.setThreads(threads);
        libs.dnnl = dnnl;
        summary.onednn = { library: dnnl.path, version: dnnl.version, runtime: dnnl.runtime, threads: dnnl.threads() ?? null };
      }
    }
  }
  if (mode === 'require' && summary.missing.length) {
    throw new InputError(`--native require: ${summary.missing.join('; ')}. Install: ${INSTALL_HINT}; or use --native auto|off`);
  }
  state = { libs, summary };
  return libs;
}

/** The loaded libraries, or undefined before initNative, with mode off, or while disabled. */
export function nativeLibraries(): NativeLibraries | undefined {
  return enabled ? state?.libs : undefined;
}

export function nativeSummary(): NativeSummary | undefined {
  return state?.summary;
}

/**
 * Change the native threads of this compute thread (OpenBLAS: the whole process; oneDNN: the calling
 * thread). For a driver that starts N compute threads after the backend (benches, data-parallel runs).
 */
export function setNativeThreads(n: number): void {
  if (!state) return;
  state.libs.openblas?.setThreads(n);
  state.libs.dnnl?.setThreads(n);
  state.summary.threads = n;
  if (state.summary.openblas && state.libs.openblas) state.summary.openblas.threads = state.libs.openblas.threads();
  if (state.summary.onednn && state.libs.dnnl) state.summary.onednn.threads = state.libs.dnnl.threads() ?? null;
}

/** For tests and benches: run the same process with and without the native kernels. */
export function setNativeEnabled(on: boolean): void {
  enabled = on;
}

export function nativeEnabled(): boolean {
  return enabled && Boolean(state && (state.libs.openblas || state.libs.dnnl));
}

/** e.g. "native OpenBLAS 0.3.21 (Zen, 2 threads) + oneDNN 2.6.3 (OpenMP, 2 threads)", or the hint. */
export function describeNative(): string {
  const s = state?.summary;
  if (!s) return 'native not initialised';
  if (s.mode === 'off') return 'native off';
  const parts: string[] = [];
  if (s.openblas) parts.push(`OpenBLAS ${s.openblas.version} (${s.openblas.core}, ${s.openblas.threads} threads)`);
  if (s.onednn) parts.push(`oneDNN ${s.onednn.version} (${s.onednn.runtime}, ${s.onednn.threads ?? '?'} threads)`);
  const found = parts.length ? `native ${parts.join(' + ')}` : 'no native kernels';
  return s.missing.length ? `${found}; missing: ${s.missing.join('; ')} (hint: ${INSTALL_HINT})` : found;
}
