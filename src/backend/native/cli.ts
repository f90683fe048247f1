import { NATIVE_ENV, NATIVE_THREADS_ENV, parseNativeMode, threadsPerWorker } from './provider.js';

/**
 * The CLI's --native flag and --workers N, written to the environment that the provider and every
 * worker thread read (worker threads inherit process.env): native threads per compute thread
 * become floor(cores / N), so native threads x workers never exceed the cores. An explicit
 * ROBUSTSIM_NATIVE_THREADS wins.
 */
export function applyNativeFlags(native: string | undefined, workers: unknown): void {
  if (native !== undefined) process.env[NATIVE_ENV] = parseNativeMode(native, '--native');
  const n = Number(workers);
  if (Number.isInteger(n) && n > 1 && !process.env[NATIVE_THREADS_ENV]) process.env[NATIVE_THREADS_ENV] = String(threadsPerWorker(n));
}
