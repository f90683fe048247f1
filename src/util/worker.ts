import type { Worker } from 'node:worker_threads';
import { InputError } from '../errors.js';

/** How a worker thread reports a failure; an InputError keeps its class across the thread boundary. */
export interface WorkerFailure {
  message: string;
  input: boolean;
  stack?: string;
}

/**
 * The result of a worker thread. `onMessage` handles every message and returns `{ result }` for the
 * final one, `{ failure }` for a reported error, or nothing (progress). A crash, or an exit before a
 * final message, rejects too.
 */
export function awaitWorker<M, T>(
  worker: Worker,
  label: string,
  onMessage: (m: M) => { result: T } | { failure: WorkerFailure } | undefined,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let settled = false;
    worker.on('message', (m: M) => {
      const out = onMessage(m);
      if (!out) return;
      settled = true;
      if ('result' in out) resolve(out.result);
      else reject(out.failure.input ? new InputError(out.failure.message) : new Error(`${label}: ${out.failure.stack ?? out.failure.message}`));
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
