/**
 * Worker thread for the demo: initialises its own backend instance (so the two models train on two
 * cores) and runs one model's stages, reporting progress to the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendChoice } from '../backend/index.js';
import { InputError } from '../errors.js';
import { runModelStages, type DemoSettings, type Regime, type WorkerMessage } from './demo.js';

const { settings, regime } = workerData as { settings: DemoSettings; regime: Regime };
const post = (m: WorkerMessage) => parentPort!.postMessage(m);

try {
  await initBackend(settings.backend as BackendChoice);
  const result = await runModelStages(settings, regime, {
    onTrainEvent: (label) => (event) => post({ kind: 'train', label, event }),
    onStage: (stage, detail) => post({ kind: 'stage', stage, detail }),
    onCaptureProgress: (label, done, total) => post({ kind: 'capture', label, done, total }),
  });
  post({ kind: 'result', result });
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  post({ kind: 'error', message: e.message, input: err instanceof InputError, stack: e.stack });
}
