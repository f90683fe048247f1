import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { awaitWorker, settleAll, startWorker, threadBackend, type WorkerFailure } from './threads.js';
import { flatSize, shardRanges, unflatten, weightedSum, type ReplicaWeights, type ShardRange, type ShardResult } from './weights.js';

/**
 * The sharded step of data-parallel training and fine-tuning (docs/decisions.md, "Data-parallel
 * training"): each step the batch is cut into contiguous shards, one per thread; the main thread
 * computes shard 0 and worker thread k - 1 (its own backend instance and replica) shard k. The shards'
 * gradients (each scaled by its share of the batch) are summed here, the optimizer is applied once and
 * the BatchNorm moving statistics are set to the replicas' sample-weighted mean; the workers load the
 * main thread's weights, broadcast through a SharedArrayBuffer, before their next shard.
 *
 * The protocol every replica worker speaks ('ready'; 'mean' -> 'shard'; 'close' -> 'closed'; errors as
 * 'error') is below; a stage adds its own requests (training's contrastive phases).
 */

/** A mean objective's shard: the gradient of `scale` times its objective (scale = shard size / batch size). */
export type MeanRequest<S> = { type: 'mean'; x: Float32Array; y: Int32Array; seeds: S; scale: number };
export type BaseReplicaRequest<S> = MeanRequest<S> | { type: 'close' };
export type BaseReplicaReply =
  | { type: 'ready'; weightShapes: number[][]; varShapes: number[][]; statShapes: number[][] }
  | { type: 'shard'; loss: number; correct: number }
  | { type: 'closed' }
  | ({ type: 'error' } & WorkerFailure);

/** What the main thread shares with a replica worker: the broadcast weights, and the thread's own gradient and statistic buffers. */
export interface ReplicaBuffers {
  weights: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  stats: SharedArrayBuffer;
}

type Typed = { type: string };

/** One replica worker thread with at most one request in flight. */
export class ReplicaThread<Req extends Typed, Rep extends Typed> {
  readonly gradBuffer: Float32Array;
  readonly statBuffer: Float32Array;
  private readonly lifetime: Promise<void>;
  private waiting: ((m: Rep) => void) | null = null;

  constructor(
    readonly worker: Worker,
    readonly label: string,
    buffers: ReplicaBuffers,
  ) {
    this.gradBuffer = new Float32Array(buffers.grads);
    this.statBuffer = new Float32Array(buffers.stats);
    this.lifetime = awaitWorker<Rep, void>(worker, label, (m) => {
      if (m.type === 'error') return { failure: m as unknown as WorkerFailure };
      if (m.type === 'closed') return { result: undefined };
      const w = this.waiting;
      this.waiting = null;
      w?.(m);
      return undefined;
    });
    // Failures surface through the request that is waiting; never as an unhandled rejection.
    this.lifetime.catch(() => {});
  }

  /** The next reply (the first is 'ready'); rejects if the worker fails or exits first. */
  reply<T extends Rep['type']>(type: T): Promise<Extract<Rep, { type: T }>> {
    const next = new Promise<Rep>((resolve) => (this.waiting = resolve));
    const ended = this.lifetime.then(() => {
      throw new Error(`${this.label} closed while a reply was awaited (a bug)`);
    });
    const r = Promise.race([next, ended]).then((m) => {
      if (m.type !== type) throw new Error(`${this.label} answered '${m.type}' where '${type}' was expected (a bug)`);
      return m as Extract<Rep, { type: T }>;
    });
    // A reply abandoned because the step failed elsewhere must not become an unhandled rejection.
    r.catch(() => {});
    return r;
  }

  request<T extends Rep['type']>(m: Req, type: T, transfer: ArrayBuffer[] = []): Promise<Extract<Rep, { type: T }>> {
    const r = this.reply(type);
    this.worker.postMessage(m, transfer);
    return r;
  }

  async close(): Promise<void> {
    this.worker.postMessage({ type: 'close' } satisfies BaseReplicaRequest<unknown>);
    await this.lifetime;
    await this.worker.terminate();
  }
}

/** Shard k of a batch: its samples (copies, transferable), seeds and share of the batch. */
export interface ShardPart<S> extends ShardRange {
  k: number;
  x: Float32Array;
  y: Int32Array;
  seeds: S;
  scale: number;
}

/** A batch cut into its non-empty shards (a last batch smaller than the thread count leaves some out). */
export interface ShardedBatch<S> {
  /** Every non-empty shard; ranges[0] is the main thread's. */
  ranges: Array<ShardRange & { k: number }>;
  /** Shard 0's part, computed on this thread. */
  own: ShardPart<S>;
  /** The other non-empty shards (shard k on threads[k - 1]), and their parts in the same order. */
  remote: Array<ShardRange & { k: number }>;
  parts: ShardPart<S>[];
}

export interface ReplicaSetup<D> {
  count: number;
  /** The main thread's replica: trained, checkpointed, and the layout every worker's replica must match. */
  main: ReplicaWeights;
  /** The worker module (it calls serveReplica, src/parallel/replica-server.ts). */
  script: URL;
  /** What every worker builds its replica from (the buffers are added). */
  data: D;
  /** Threads are named `<label> <k>` in errors. */
  label: string;
}

/** A thread seen through the base protocol only (what the driver itself sends and expects). */
function asBase<S>(t: object): ReplicaThread<BaseReplicaRequest<S>, BaseReplicaReply> {
  return t as unknown as ReplicaThread<BaseReplicaRequest<S>, BaseReplicaReply>;
}

function sameShapes(a: number[][], b: number[][]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The step's update on the main thread: the sum of the shards' gradients (each already scaled by its
 * share) through the optimizer, and the moving statistics set to the sample-weighted mean of the
 * replicas' (each moved once, by its own shard). `ranges[0]` is the main thread's shard, `workers[j]`
 * holds `ranges[j + 1]`.
 */
export function applyShards(main: ReplicaWeights, ownGrads: Float32Array, workers: Array<{ gradBuffer: Float32Array; statBuffer: Float32Array }>, ranges: ShardRange[], optimizer: tf.Optimizer): void {
  const n = ranges.reduce((s, r) => s + r.end - r.start, 0);
  const grads = weightedSum([ownGrads, ...workers.map((t) => t.gradBuffer)], new Array(ranges.length).fill(1));
  const shares = ranges.map((r) => (r.end - r.start) / n);
  if (main.stats.length > 0) main.writeStats(weightedSum([main.readStats(), ...workers.map((t) => t.statBuffer)], shares));
  const tensors = unflatten(grads, main.varShapes);
  optimizer.applyGradients(main.vars.map((v, i) => ({ name: v.name, tensor: tensors[i] })));
  tf.dispose(tensors);
}

/**
 * The main thread's replica and `count - 1` worker replicas, stepping together. S: a shard's seeds;
 * XReq, XRep: the requests and replies a stage adds to the base protocol.
 */
export class ShardedReplicas<S, XReq extends Typed = never, XRep extends Typed = never> {
  private constructor(
    readonly main: ReplicaWeights,
    readonly threads: ReplicaThread<BaseReplicaRequest<S> | XReq, BaseReplicaReply | XRep>[],
    private readonly weights: Float32Array,
  ) {}

  get count(): number {
    return this.threads.length + 1;
  }

  /**
   * Start worker threads 1..count-1 on the active backend (refused unless it is one of THREAD_BACKENDS)
   * and wait until each has built its replica with the main replica's weight, gradient and statistic
   * layout; on any failure every started thread is terminated before the error propagates.
   */
  static async start<S, XReq extends Typed = never, XRep extends Typed = never, D = unknown>(setup: ReplicaSetup<D>): Promise<ShardedReplicas<S, XReq, XRep>> {
    const { count, main } = setup;
    const backend = threadBackend(count);
    const weights = new Float32Array(new SharedArrayBuffer(4 * flatSize(main.weightShapes)));
    const threads: ReplicaThread<BaseReplicaRequest<S> | XReq, BaseReplicaReply | XRep>[] = [];
    try {
      for (let k = 1; k < count; k++) {
        const buffers: ReplicaBuffers = {
          weights: weights.buffer as SharedArrayBuffer,
          grads: new SharedArrayBuffer(4 * flatSize(main.varShapes)),
          stats: new SharedArrayBuffer(4 * flatSize(main.statShapes)),
        };
        threads.push(new ReplicaThread(startWorker(setup.script, { backend, data: { ...setup.data, ...buffers } }), `${setup.label} ${k}`, buffers));
      }
      const ready = await Promise.all(threads.map((t) => asBase<S>(t).reply('ready')));
      for (const r of ready) {
        if (!sameShapes(r.weightShapes, main.weightShapes) || !sameShapes(r.varShapes, main.varShapes) || !sameShapes(r.statShapes, main.statShapes)) {
          throw new Error('a worker thread built a replica with other weights than the main thread (a bug)');
        }
      }
    } catch (err) {
      await Promise.all(threads.map((t) => t.worker.terminate()));
      throw err;
    }
    return new ShardedReplicas<S, XReq, XRep>(main, threads, weights);
  }

  /**
   * Cut a batch (x: the samples' floats one after another, y: labels) into the threads' shards, with
   * shard k's seeds `seedsOf(k)`, and broadcast the main replica's weights for the step.
   */
  shard(x: Float32Array, y: Int32Array, seedsOf: (k: number) => S): ShardedBatch<S> {
    const n = y.length;
    const size = x.length / n;
    // Shards with no sample (a last batch smaller than the worker count) sit the step out.
    const ranges = shardRanges(n, this.count)
      .map((r, k) => ({ ...r, k }))
      .filter((r) => r.end > r.start);
    const part = (r: ShardRange & { k: number }): ShardPart<S> => ({
      ...r,
      x: x.slice(r.start * size, r.end * size),
      y: y.slice(r.start, r.end),
      seeds: seedsOf(r.k),
      scale: (r.end - r.start) / n,
    });
    this.main.readWeights(this.weights);
    const remote = ranges.filter((r) => r.k > 0);
    return { ranges, own: part(ranges[0]), remote, parts: remote.map(part) };
  }

  /** Mean objectives: shard 0 by `local` on this thread while every other shard is computed by a 'mean' request. */
  async meanShards(batch: ShardedBatch<S>, local: (own: ShardPart<S>) => ShardResult): Promise<{ mine: ShardResult; replies: Array<{ loss: number; correct: number }> }> {
    const pending = batch.parts.map((p) => {
      const m: MeanRequest<S> = { type: 'mean', x: p.x, y: p.y, seeds: p.seeds, scale: p.scale };
      return asBase<S>(this.threads[p.k - 1]).request(m, 'shard', [p.x.buffer as ArrayBuffer]);
    });
    const mine = local(batch.own);
    return { mine, replies: await settleAll(pending) };
  }

  /** The step's update (applyShards) once every shard is done; returns the batch loss and correct count. */
  apply(batch: ShardedBatch<S>, mine: ShardResult, replies: Array<{ loss: number; correct: number }>, optimizer: tf.Optimizer): { loss: number; correct: number } {
    const results = [mine, ...replies];
    applyShards(this.main, mine.grads, batch.remote.map((r) => this.threads[r.k - 1]), batch.ranges, optimizer);
    return { loss: results.reduce((s, r) => s + r.loss, 0), correct: results.reduce((s, r) => s + r.correct, 0) };
  }

  /** Stop the workers after a normal end (waits for them to acknowledge). */
  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }

  /** Stop the workers at once (after an error). */
  async terminate(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
