/**
 * A worker thread of data-parallel fine-tuning (src/probe/finetune-parallel.ts): its own backend
 * instance and replica of the fine-tuning model; computes its shard's gradient on request, speaking the
 * training replica's protocol ('ready'; 'mean' -> 'shard'; 'close' -> 'closed'). Weights arrive in a
 * SharedArrayBuffer the main thread fills before each request; gradients and moving statistics go back
 * through buffers of this worker's own.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendChoice } from '../backend/index.js';
import type { ReplicaRequest } from '../train/data-parallel.js';
import { FineTuneReplica, type FineTuneReplicaInit } from './finetune-parallel.js';
import { writeFlat } from '../train/replica.js';
import { postFailure, postReply } from '../train/replica-replies.js';

const init = workerData as FineTuneReplicaInit;
const post = postReply;
const fail = postFailure;

try {
  await initBackend(init.backend as BackendChoice);
  const model = await tf.models.modelFromJSON({ modelTopology: init.topology as tf.io.ModelJSON['modelTopology'] } as tf.io.ModelJSON);
  writeFlat(model.weights, init.initial);
  const replica = new FineTuneReplica(model, init.settings);
  const weights = new Float32Array(init.weights);
  const grads = new Float32Array(init.grads);
  const stats = new Float32Array(init.stats);
  parentPort!.on('message', (m: ReplicaRequest) => {
    try {
      switch (m.type) {
        case 'mean': {
          replica.writeWeights(weights);
          const r = replica.meanShard(m.x, m.y, init.shape, m.seeds.attack, m.scale);
          grads.set(r.grads);
          replica.readStats(stats);
          post({ type: 'shard', loss: r.loss, correct: r.correct });
          break;
        }
        case 'close':
          post({ type: 'closed' });
          break;
        default:
          throw new Error(`fine-tuning worker: no '${m.type}' request here (a bug)`);
      }
    } catch (err) {
      fail(err);
    }
  });
  post({ type: 'ready', weightShapes: replica.weightShapes, varShapes: replica.varShapes, statShapes: replica.statShapes });
} catch (err) {
  fail(err);
}
