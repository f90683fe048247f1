import { parentPort } from 'node:worker_threads';
import { InputError } from '../errors.js';
import type { ReplicaReply } from './data-parallel.js';

/** Post a reply to the main thread (inside a replica worker thread). */
export function postReply(m: ReplicaReply, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(m, transfer);
}

/** Report a failure to the main thread; an InputError stays a user-facing error there. */
export function postFailure(err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  postReply({ type: 'error', message: e.message, input: err instanceof InputError, stack: e.stack });
}
