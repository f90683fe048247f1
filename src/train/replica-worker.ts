/**
 * A worker thread of data-parallel training (src/train/data-parallel.ts): its own backend instance and
 * learner replica; computes its shard of each step on request (src/parallel/replica-server.ts serves
 * 'mean' and 'close'; the contrastive phases are answered here). Weights arrive in a SharedArrayBuffer
 * the main thread fills before each request; gradients and moving statistics go back through buffers
 * of this worker's own.
 */
import * as tf from '@tensorflow/tfjs';
import { serveReplica } from '../parallel/replica-server.js';
import type { BatchSeeds } from './methods.js';
import { makeLearner } from './learner.js';
import { Replica } from './replica.js';
import type { ContrastiveRequest, ReplicaInit } from './data-parallel.js';

await serveReplica<ReplicaInit, BatchSeeds, ContrastiveRequest>(async (init) => {
  const model = await tf.models.modelFromJSON({ modelTopology: init.topology as tf.io.ModelJSON['modelTopology'] } as tf.io.ModelJSON);
  const replica = new Replica(makeLearner(model, init.cfg, init.projection));
  return {
    replica,
    mean: (m) => replica.meanShard(m.x, m.y, init.shape, m.seeds, m.scale),
    close: () => replica.dropViews(),
    handle: (m, io) => {
      const embedded = (z: Float32Array) => io.post({ type: 'embedded', z }, [z.buffer as ArrayBuffer]);
      switch (m.type) {
        case 'embed':
          io.loadWeights();
          embedded(replica.embedImages(m.x, m.y, init.shape, m.seeds));
          break;
        case 'attackStart':
          io.loadWeights();
          embedded(replica.startAttack(m.x, m.y, init.shape, m.seeds));
          break;
        case 'attackStep':
          embedded(replica.attackStep(m.partners, m.advs, m.own, m.labels));
          break;
        case 'attackEnd':
          embedded(replica.finishAttack());
          break;
        case 'contrast':
          io.sendShard(replica.contrastShard(m.gathered, m.own, m.labels, m.scale));
          break;
      }
    },
  };
});
