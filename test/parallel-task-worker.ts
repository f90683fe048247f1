/** A worker for test/parallel-threads.test.ts: reports progress, then returns, fails, or never ends. */
import { isMainThread } from 'node:worker_threads';
import { InputError } from '../src/errors.js';
import { runTask } from '../src/parallel/in-worker.js';

export interface ToyTask {
  index: number;
  /** 'ok': return index * 10; 'input': throw an InputError; 'crash': throw a plain Error; 'hang': never finish. */
  act: 'ok' | 'input' | 'crash' | 'hang';
}

// `node --test dist/test/` loads every module of the folder: on the main thread this one does nothing.
if (!isMainThread) {
  await runTask<ToyTask, number, number>(async ({ index, act }, progress) => {
    progress(index);
    if (act === 'input') throw new InputError(`--toy: task ${index} refused its input`);
    if (act === 'crash') throw new Error(`task ${index} broke`);
    if (act === 'hang') await new Promise(() => setInterval(() => {}, 1000));
    return index * 10;
  });
}
