import { Worker } from 'node:worker_threads';
import { InputError } from '../errors.js';
import { activeBackend, type BackendChoice } from '../backend/index.js';

/**
 * Worker threads, main-thread side: every launcher (CKA engine, minibatch, stream, training and
 * fine-tuning replicas, the demo) starts its threads, checks the backend and awaits the results here.
 * The worker side is src/parallel/in-worker.ts.
 */

/** How a worker thread reports a failure; an InputError keeps its class across the thread boundary. */
export interface WorkerFailure {
  message: string;
  input: boolean;
  stack?: string;
}

/** What every worker thread is started with: the backend to initialise, and its own data. */
export interface WorkerInit<D> {
  backend: BackendChoice;
  data: D;
}

/** Messages of a one-shot worker (runTask): progress, then its result or its failure. */
export type TaskMessage<R, P> = { type: 'progress'; progress: P } | { type: 'done'; result: R } | ({ type: 'error' } & WorkerFailure);

/** The error a reported failure becomes on the main thread. */
export function failureError(failure: WorkerFailure, label: string): Error {
  return failure.input ? new InputError(failure.message) : new Error(`${label}: ${failure.stack ?? failure.message}`);
}

/**
 * The result of a worker thread. `onMessage` handles every message and returns `{ result }` for the
 * final one, `{ failure }` for a reported error, or nothing (progress). A crash, or an exit before a
 * final message, rejects too.
 */
export function awaitWorker<M, T>(worker: Worker, label: string, onMessage: (m: M) => { result: T } | { failure: WorkerFailure } | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    let settled = false;
    worker.on('message', (m: M) => {
      const out = onMessage(m);
      if (!out) return;
      settled = true;
      if ('result' in out) resolve(out.result);
      else reject(failureError(out.failure, label));
    });
    worker.on('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.on('exit', (code) => {
      if (!settled) reject(new Error(`${label} exited with code ${code} before finishing`));
    });
  });
}

/**
 * Promise.all that waits for every promise to settle before rejecting (no reply left dangling), with
 * the first failure in time (not in index order: later ones are often its consequences). `onFailure`
 * runs once, at that first failure (e.g. to terminate the other threads).
 */
export async function settleAll<T>(ps: Promise<T>[], onFailure?: (err: unknown) => void): Promise<T[]> {
  let first: { err: unknown } | undefined;
  const watched = ps.map((p) =>
    p.catch((err: unknown) => {
      if (!first) {
        first = { err };
        onFailure?.(err);
      }
      throw err;
    }),
  );
  const settled = await Promise.allSettled(watched);
  if (first) throw first.err;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** Backends of which every worker thread can start its own instance; the others use one device from one thread. */
export const THREAD_BACKENDS: readonly BackendChoice[] = ['wasm', 'cpu'];

/**
 * The backend for `count` threads (the flag `--workers`): the active one, refused (InputError) unless
 * it runs one instance per thread or there is one thread only.
 */
export function threadBackend(count: number): BackendChoice {
  if (!Number.isInteger(count) || count < 1) throw new InputError(`--workers: expected an integer >= 1, got ${count}`);
  const backend = activeBackend() as BackendChoice;
  if (count > 1 && !THREAD_BACKENDS.includes(backend)) {
    throw new InputError(
      `--workers ${count}: worker threads need a CPU backend (${THREAD_BACKENDS.join(' or ')}: one instance per thread), the active backend is '${backend}', which uses its device from one thread (use --workers 1)`,
    );
  }
  return backend;
}

/** Start a worker thread on `script` (a module using src/parallel/in-worker.ts) with its backend and data. */
export function startWorker<D>(script: URL, init: WorkerInit<D>): Worker {
  return new Worker(script, { workerData: init });
}

export interface TaskWorkers<D, P> {
  /** The worker module; it calls runTask (src/parallel/in-worker.ts). */
  script: URL;
  count: number;
  /** Worker `index`'s data. */
  data: (index: number) => D;
  /** Default: threadBackend(count). */
  backend?: BackendChoice;
  /** Default: `worker <index>`. */
  label?: (index: number) => string;
  onProgress?: (index: number, progress: P) => void;
}

/**
 * Run `count` one-shot worker threads and return their results in index order. When one fails, the
 * others are terminated and its error is thrown; every thread has ended when this settles.
 */
export async function runTasks<D, R, P = never>(opts: TaskWorkers<D, P>): Promise<R[]> {
  const backend = opts.backend ?? threadBackend(opts.count);
  const label = opts.label ?? ((index: number) => `worker ${index}`);
  const workers: Worker[] = [];
  const terminateAll = () => Promise.all(workers.map((w) => w.terminate()));
  try {
    const results = Array.from({ length: opts.count }, (_, index) => {
      const worker = startWorker(opts.script, { backend, data: opts.data(index) });
      workers.push(worker);
      return awaitWorker<TaskMessage<R, P>, R>(worker, label(index), (m) => {
        if (m.type === 'progress') {
          opts.onProgress?.(index, m.progress);
          return undefined;
        }
        return m.type === 'done' ? { result: m.result } : { failure: m };
      });
    });
    return await settleAll(results, () => void terminateAll());
  } finally {
    await terminateAll();
  }
}
