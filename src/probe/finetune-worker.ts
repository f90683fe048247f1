/**
 * A worker thread of data-parallel fine-tuning (src/probe/finetune-parallel.ts): its own backend
 * instance and replica of the fine-tuning model; computes its shard's gradient on request (the base
 * replica protocol of src/parallel/replicas.ts: 'ready'; 'mean' -> 'shard'; 'close' -> 'closed').
 * Weights arrive in a SharedArrayBuffer the main thread fills before each request; gradients and moving
 * statistics go back through buffers of this worker's own.
 */
import * as tf from '@tensorflow/tfjs';
import { serveReplica } from '../parallel/replica-server.js';
import { writeFlat } from '../parallel/weights.js';
import { FineTuneReplica, type FineTuneReplicaInit, type FineTuneSeeds } from './finetune-parallel.js';

await serveReplica<FineTuneReplicaInit, FineTuneSeeds>(async (init) => {
  const model = await tf.models.modelFromJSON({ modelTopology: init.topology as tf.io.ModelJSON['modelTopology'] } as tf.io.ModelJSON);
  writeFlat(model.weights, init.initial);
  const replica = new FineTuneReplica(model, init.settings);
  return { replica, mean: (m) => replica.meanShard(m.x, m.y, init.shape, m.seeds.attack, m.scale) };
});
