/**
 * Worker thread for the demo: its own backend instance (so the two models train on two cores) runs
 * one model's stages, reporting progress to the main thread.
 */
import { runTask } from '../parallel/in-worker.js';
import { runModelStages, type DemoProgress, type DemoModelResult, type DemoWorkerData } from './demo.js';

await runTask<DemoWorkerData, DemoModelResult & { acts: string }, DemoProgress>(({ settings, regime }, progress) =>
  runModelStages(settings, regime, {
    onTrainEvent: (label) => (event) => progress({ kind: 'train', label, event }),
    onStage: (stage, detail) => progress({ kind: 'stage', stage, detail }),
    onCaptureProgress: (label, done, total) => progress({ kind: 'capture', label, done, total }),
  }),
);
