import { post, serveRequests } from './in-worker.js';
import type { BaseReplicaReply, BaseReplicaRequest, MeanRequest, ReplicaBuffers } from './replicas.js';
import type { ReplicaWeights, ShardResult } from './weights.js';

/** The worker side of a data-parallel replica (src/parallel/replicas.ts), inside its worker thread. */

/** What a service may do with the main thread while it answers a request of its own. */
export interface ReplicaIo {
  /** Load the weights the main thread broadcast for this step into the replica. */
  loadWeights(): void;
  /** Hand back a shard's gradient and moving statistics (through this thread's buffers) and reply 'shard'. */
  sendShard(r: ShardResult): void;
  /** Any other reply (transfer: buffers handed over rather than copied). */
  post(m: unknown, transfer?: ArrayBuffer[]): void;
}

export interface ReplicaService<S, XReq> {
  replica: ReplicaWeights;
  /** A 'mean' request's shard, the step's weights loaded. */
  mean(m: MeanRequest<S>): ShardResult;
  /** Requests beyond the base protocol (training's contrastive phases). */
  handle?(m: XReq, io: ReplicaIo): void;
  /** Before the thread acknowledges 'close'. */
  close?(): void;
}

/**
 * Serve the replica `build` makes from the thread's data (after the thread's backend is initialised):
 * 'ready' with its layout, then 'mean' -> 'shard' and 'close' -> 'closed', the rest through `handle`.
 */
export function serveReplica<D, S, XReq extends { type: string } = never>(build: (data: D & ReplicaBuffers) => Promise<ReplicaService<S, XReq>>): Promise<void> {
  return serveRequests<D & ReplicaBuffers, BaseReplicaRequest<S> | XReq>(async (data) => {
    const service = await build(data);
    const { replica } = service;
    const weights = new Float32Array(data.weights);
    const grads = new Float32Array(data.grads);
    const stats = new Float32Array(data.stats);
    const io: ReplicaIo = {
      loadWeights: () => replica.writeWeights(weights),
      sendShard: (r) => {
        grads.set(r.grads);
        replica.readStats(stats);
        post({ type: 'shard', loss: r.loss, correct: r.correct } satisfies BaseReplicaReply);
      },
      post,
    };
    const handle = (m: BaseReplicaRequest<S> | XReq) => {
      if (m.type === 'mean') {
        io.loadWeights();
        io.sendShard(service.mean(m as MeanRequest<S>));
      } else if (m.type === 'close') {
        service.close?.();
        post({ type: 'closed' } satisfies BaseReplicaReply);
      } else if (service.handle) service.handle(m as XReq, io);
      else throw new Error(`replica worker: no '${m.type}' request here (a bug)`);
    };
    const ready: BaseReplicaReply = { type: 'ready', weightShapes: replica.weightShapes, varShapes: replica.varShapes, statShapes: replica.statShapes };
    return { handle, ready };
  });
}
