import { parentPort, workerData } from 'node:worker_threads';
import { InputError } from '../errors.js';
import { initBackend } from '../backend/index.js';
import type { TaskMessage, WorkerFailure, WorkerInit } from './threads.js';

/**
 * Worker threads, worker side (started by src/parallel/threads.ts): the backend instance of the
 * thread, and the failure reply every worker sends instead of dying with an unreadable error.
 */

/** What the main thread needs to rethrow an error of this thread (see failureError). */
export function failureOf(err: unknown): WorkerFailure {
  const e = err instanceof Error ? err : new Error(String(err));
  return { message: e.message, input: err instanceof InputError, stack: e.stack };
}

/** Post a message to the main thread. */
export function post(m: unknown, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(m, transfer);
}

/** Report a failure to the main thread (`{ type: 'error', ... }`). */
export function postFailure(err: unknown): void {
  post({ type: 'error', ...failureOf(err) });
}

/** Initialise this thread's backend and return its data (once, at the top of a worker module). */
export async function startThread<D>(): Promise<D> {
  const { backend, data } = workerData as WorkerInit<D>;
  await initBackend(backend);
  return data;
}

/**
 * A one-shot worker (runTasks): `body` gets this thread's data and a progress callback; its result,
 * or its failure, is the thread's last message.
 */
export async function runTask<D, R, P = never>(body: (data: D, progress: (p: P) => void) => Promise<R> | R): Promise<void> {
  const send = (m: TaskMessage<R, P>) => post(m);
  try {
    const data = await startThread<D>();
    send({ type: 'done', result: await body(data, (progress) => send({ type: 'progress', progress })) });
  } catch (err) {
    postFailure(err);
  }
}

/**
 * A worker that answers requests (the data-parallel replicas): `setup` builds what the thread serves
 * and returns the request handler and the first reply; a failure of the setup or of any request is
 * posted as the reply.
 */
export async function serveRequests<D, Req>(setup: (data: D) => Promise<{ handle: (m: Req) => void; ready: unknown }>): Promise<void> {
  try {
    const { handle, ready } = await setup(await startThread<D>());
    parentPort!.on('message', (m: Req) => {
      try {
        handle(m);
      } catch (err) {
        postFailure(err);
      }
    });
    post(ready);
  } catch (err) {
    postFailure(err);
  }
}
