/**
 * A worker thread of data-parallel training (src/train/data-parallel.ts): its own backend instance and
 * learner replica; computes its shard of each step on request. Weights arrive in a SharedArrayBuffer
 * the main thread fills before each request; gradients and moving statistics go back through buffers
 * of this worker's own.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendChoice } from '../backend/index.js';
import { makeLearner } from './learner.js';
import { Replica } from './replica.js';
import type { ReplicaInit, ReplicaRequest } from './data-parallel.js';
import { postFailure, postReply } from './replica-replies.js';

const init = workerData as ReplicaInit;
const post = postReply;
const fail = postFailure;

try {
  await initBackend(init.backend as BackendChoice);
  const model = await tf.models.modelFromJSON({ modelTopology: init.topology as tf.io.ModelJSON['modelTopology'] } as tf.io.ModelJSON);
  const replica = new Replica(makeLearner(model, init.cfg, init.projection));
  const weights = new Float32Array(init.weights);
  const grads = new Float32Array(init.grads);
  const stats = new Float32Array(init.stats);
  const result = (r: { grads: Float32Array; loss: number; correct: number }) => {
    grads.set(r.grads);
    replica.readStats(stats);
    post({ type: 'shard', loss: r.loss, correct: r.correct });
  };
  parentPort!.on('message', (m: ReplicaRequest) => {
    try {
      switch (m.type) {
        case 'mean':
          replica.writeWeights(weights);
          result(replica.meanShard(m.x, m.y, init.shape, m.seeds, m.scale));
          break;
        case 'embed': {
          replica.writeWeights(weights);
          const z = replica.embedImages(m.x, m.y, init.shape, m.seeds);
          post({ type: 'embedded', z }, [z.buffer as ArrayBuffer]);
          break;
        }
        case 'attackStart': {
          replica.writeWeights(weights);
          const z = replica.startAttack(m.x, m.y, init.shape, m.seeds);
          post({ type: 'embedded', z }, [z.buffer as ArrayBuffer]);
          break;
        }
        case 'attackStep': {
          const z = replica.attackStep(m.partners, m.advs, m.own, m.labels);
          post({ type: 'embedded', z }, [z.buffer as ArrayBuffer]);
          break;
        }
        case 'attackEnd': {
          const z = replica.finishAttack();
          post({ type: 'embedded', z }, [z.buffer as ArrayBuffer]);
          break;
        }
        case 'contrast':
          result(replica.contrastShard(m.gathered, m.own, m.labels, m.scale));
          break;
        case 'close':
          replica.dropViews();
          post({ type: 'closed' });
          break;
      }
    } catch (err) {
      fail(err);
    }
  });
  post({ type: 'ready', weightShapes: replica.weightShapes, varShapes: replica.varShapes, statShapes: replica.statShapes });
} catch (err) {
  fail(err);
}
