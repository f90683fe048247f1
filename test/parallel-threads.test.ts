import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../src/errors.js';
import { runTasks, settleAll, threadBackend } from '../src/parallel/threads.js';
import type { ToyTask } from './parallel-task-worker.js';

const script = new URL('./parallel-task-worker.js', import.meta.url);
const run = (acts: ToyTask['act'][], onProgress?: (index: number, p: number) => void) =>
  runTasks<ToyTask, number, number>({ script, count: acts.length, backend: 'cpu', data: (index) => ({ index, act: acts[index] }), onProgress });

test('runTasks: results in index order, every progress message relayed with its thread', async () => {
  const seen: Array<[number, number]> = [];
  assert.deepEqual(await run(['ok', 'ok'], (i, p) => seen.push([i, p])), [0, 10]);
  assert.deepEqual(seen.sort((a, b) => a[0] - b[0]), [[0, 0], [1, 1]]);
});

test('runTasks: one failing thread terminates the others (which would never end) and its error is thrown', async () => {
  await assert.rejects(run(['hang', 'input']), (e: unknown) => e instanceof InputError && e.message === '--toy: task 1 refused its input');
  await assert.rejects(run(['crash', 'hang']), (e: unknown) => !(e instanceof InputError) && /^worker 0: Error: task 0 broke/.test((e as Error).message));
});

test('settleAll waits for every promise and throws the first failure in time, not in index order', async () => {
  const late = new Promise<number>((_, reject) => setTimeout(() => reject(new Error('late')), 30));
  const early = Promise.reject(new Error('early'));
  let failures = 0;
  await assert.rejects(settleAll([late, early, Promise.resolve(1)], () => failures++), /early/);
  assert.equal(failures, 1);
  assert.deepEqual(await settleAll([Promise.resolve(1), Promise.resolve(2)]), [1, 2]);
});

test('threadBackend: --workers must be an integer >= 1 (InputError)', () => {
  for (const n of [0, -1, 1.5]) assert.throws(() => threadBackend(n), (e: unknown) => e instanceof InputError && /--workers: expected an integer >= 1/.test((e as Error).message));
});
