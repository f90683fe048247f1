import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { activeBackend } from '../backend/index.js';
import { awaitWorker, type WorkerFailure } from '../util/worker.js';
import type { ProjectionConfig } from '../models/projection.js';
import type { BatchSeeds } from './methods.js';
import type { Learner } from './learner.js';
import { workersUnsupported, type TrainConfig } from './options.js';
import { attackHasPartner, flatSize, Replica, type ReplicaWeights, shardAttackOptions, shardRanges, shardSeeds, unflatten, weightedSum, type ShardRange, type ShardResult } from './replica.js';

/**
 * Data-parallel training over worker threads (docs/decisions.md, "Data-parallel training"): each step
 * the batch is cut into `count` contiguous shards; the main thread computes shard 0 and each worker
 * thread (its own backend instance and learner replica) one other. The shards' gradients sum to the
 * batch gradient (each shard's objective is scaled by its share of the batch); the main thread applies
 * the optimizer once and averages the replicas' BatchNorm moving statistics (sample-weighted); the
 * replicas load the main thread's weights before their next shard. BatchNorm normalises each shard with
 * its own batch statistics (as PyTorch DDP without SyncBatchNorm).
 *
 * Objectives that are means over samples with per-sample attacks (sl: cross-entropy with PGD, TRADES)
 * split exactly; the plain contrastive objectives (cl/scl, method 'none') need every in-batch negative,
 * so they all-gather the shards' embeddings first and each replica back-propagates the full-batch loss
 * through its own embeddings only. The adversarial contrastive methods (study-at, rocl, clae, acl,
 * rcl-bound) attack with a batch loss whose negatives move at every attack step: each PGD step (clae: its one FGSM step)
 * all-gathers the shards' adversarial embeddings and each replica steps its own shard's images on the
 * full-batch loss (others' embeddings constant), then their training loss is all-gathered as for plain
 * contrastive learning. What remains unsupported is refused by workersUnsupported.
 */

export interface ReplicaInit {
  backend: string;
  topology: unknown;
  cfg: TrainConfig;
  projection: ProjectionConfig | undefined;
  shape: [number, number, number];
  weights: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  stats: SharedArrayBuffer;
}

export type ReplicaRequest =
  | { type: 'mean'; x: Float32Array; y: Int32Array; seeds: BatchSeeds; scale: number }
  | { type: 'embed'; x: Float32Array; y: Int32Array; seeds: BatchSeeds }
  | { type: 'contrast'; gathered: Float32Array[]; own: number; labels: Int32Array; scale: number }
  | { type: 'attackStart'; x: Float32Array; y: Int32Array; seeds: BatchSeeds }
  | { type: 'attackStep'; partners: Float32Array[]; advs: Float32Array[]; own: number; labels: Int32Array }
  | { type: 'attackEnd' }
  | { type: 'close' };

export type ReplicaReply =
  | { type: 'ready'; weightShapes: number[][]; varShapes: number[][]; statShapes: number[][] }
  | { type: 'shard'; loss: number; correct: number }
  | { type: 'embedded'; z: Float32Array }
  | { type: 'closed' }
  | ({ type: 'error' } & WorkerFailure);

export const DATA_PARALLEL_BACKENDS = ['wasm', 'cpu'];

/**
 * One worker thread with at most one request in flight. `script` is the worker module (default the
 * training replica's; fine-tuning has its own, src/probe/finetune-worker.ts, speaking the same
 * 'ready' / 'mean' -> 'shard' / 'close' protocol).
 */
export class ReplicaThread {
  readonly worker: Worker;
  readonly gradBuffer: Float32Array;
  readonly statBuffer: Float32Array;
  private readonly lifetime: Promise<void>;
  private waiting: ((m: ReplicaReply) => void) | null = null;

  constructor(index: number, init: Pick<ReplicaInit, 'grads' | 'stats'>, script: URL = new URL('./replica-worker.js', import.meta.url)) {
    this.worker = new Worker(script, { workerData: init });
    this.gradBuffer = new Float32Array(init.grads);
    this.statBuffer = new Float32Array(init.stats);
    this.lifetime = awaitWorker<ReplicaReply, void>(this.worker, `training worker ${index}`, (m) => {
      if (m.type === 'error') return { failure: m };
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
  reply<T extends ReplicaReply['type']>(type: T): Promise<Extract<ReplicaReply, { type: T }>> {
    const next = new Promise<ReplicaReply>((resolve) => (this.waiting = resolve));
    const ended = this.lifetime.then(() => {
      throw new Error('training worker closed while a reply was awaited (a bug)');
    });
    const r = Promise.race([next, ended]).then((m) => {
      if (m.type !== type) throw new Error(`training worker answered '${m.type}' where '${type}' was expected (a bug)`);
      return m as Extract<ReplicaReply, { type: T }>;
    });
    // A reply abandoned because the step failed elsewhere must not become an unhandled rejection.
    r.catch(() => {});
    return r;
  }

  request<T extends ReplicaReply['type']>(m: ReplicaRequest, type: T, transfer: ArrayBuffer[] = []): Promise<Extract<ReplicaReply, { type: T }>> {
    const r = this.reply(type);
    this.worker.postMessage(m, transfer);
    return r;
  }

  async close(): Promise<void> {
    this.worker.postMessage({ type: 'close' } satisfies ReplicaRequest);
    await this.lifetime;
    await this.worker.terminate();
  }
}

export interface DataParallel {
  readonly count: number;
  /** One optimizer step on the batch (x: NHWC floats, y: labels); returns the batch loss and correct count. */
  step(x: Float32Array, y: Int32Array, seeds: BatchSeeds, optimizer: tf.Optimizer): Promise<{ loss: number; correct: number }>;
  /** Stop the workers after a normal end (waits for them to acknowledge). */
  close(): Promise<void>;
  /** Stop the workers at once (after an error). */
  terminate(): Promise<void>;
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
export function applyShards(main: ReplicaWeights, ownGrads: Float32Array, workers: ReplicaThread[], ranges: ShardRange[], optimizer: tf.Optimizer): void {
  const n = ranges.reduce((s, r) => s + r.end - r.start, 0);
  const grads = weightedSum([ownGrads, ...workers.map((t) => t.gradBuffer)], new Array(ranges.length).fill(1));
  const shares = ranges.map((r) => (r.end - r.start) / n);
  if (main.stats.length > 0) main.writeStats(weightedSum([main.readStats(), ...workers.map((t) => t.statBuffer)], shares));
  const tensors = unflatten(grads, main.varShapes);
  optimizer.applyGradients(main.vars.map((v, i) => ({ name: v.name, tensor: tensors[i] })));
  tf.dispose(tensors);
}

/**
 * Start worker threads 1..count-1 (`init(k)` is thread k's workerData, `script` its module) and wait until
 * each has built its replica with the main replica's weight, gradient and statistic layout; on any
 * failure every started thread is terminated before the error propagates.
 */
export async function startReplicaThreads(
  count: number,
  main: ReplicaWeights,
  init: (k: number) => Pick<ReplicaInit, 'grads' | 'stats'>,
  script?: URL,
): Promise<ReplicaThread[]> {
  const threads: ReplicaThread[] = [];
  try {
    for (let k = 1; k < count; k++) threads.push(new ReplicaThread(k, init(k), script));
    const ready = await Promise.all(threads.map((t) => t.reply('ready')));
    for (const r of ready) {
      if (!sameShapes(r.weightShapes, main.weightShapes) || !sameShapes(r.varShapes, main.varShapes) || !sameShapes(r.statShapes, main.statShapes)) {
        throw new Error('a worker thread built a replica with other weights than the main thread (a bug)');
      }
    }
  } catch (err) {
    await Promise.all(threads.map((t) => t.worker.terminate()));
    throw err;
  }
  return threads;
}

/**
 * Start `count - 1` worker threads, each with a replica of `learner` on the active backend, and return
 * the data-parallel step. The main thread's learner stays the one that is trained and checkpointed.
 */
export async function startDataParallel(learner: Learner, count: number, shape: [number, number, number], projection: ProjectionConfig | undefined): Promise<DataParallel> {
  const cfg = learner.cfg;
  const why = workersUnsupported(cfg);
  if (why) throw new InputError(`--workers: ${why}`);
  const backend = activeBackend();
  if (!DATA_PARALLEL_BACKENDS.includes(backend)) {
    throw new InputError(`--workers: ${count} worker threads need a CPU backend (${DATA_PARALLEL_BACKENDS.join(' or ')}), the active backend is '${backend}' (use --workers 1)`);
  }
  const main = new Replica(learner);
  const weights = new Float32Array(new SharedArrayBuffer(4 * flatSize(main.weightShapes)));
  const init = (): ReplicaInit => ({
    backend,
    topology: learner.model.toJSON(null, false),
    cfg,
    projection,
    shape,
    weights: weights.buffer as SharedArrayBuffer,
    grads: new SharedArrayBuffer(4 * flatSize(main.varShapes)),
    stats: new SharedArrayBuffer(4 * flatSize(main.statShapes)),
  });
  const threads = await startReplicaThreads(count, main, init);
  const terminate = async () => {
    await Promise.all(threads.map((t) => t.worker.terminate()));
  };
  const contrastive = cfg.scheme !== 'sl';
  // clae's FGSM is one step whatever --steps says.
  const attackSteps = shardAttackOptions(cfg, 0).steps;
  const size = shape[0] * shape[1] * shape[2];

  const step = async (x: Float32Array, y: Int32Array, seeds: BatchSeeds, optimizer: tf.Optimizer) => {
    const n = y.length;
    // Shards with no sample (a last batch smaller than the worker count) sit the step out.
    const ranges = shardRanges(n, count).map((r, k) => ({ ...r, k })).filter((r) => r.end > r.start);
    const remote = ranges.filter((r) => r.k > 0);
    const part = (r: { start: number; end: number; k: number }) => ({
      x: x.slice(r.start * size, r.end * size),
      y: y.slice(r.start, r.end),
      seeds: shardSeeds(seeds, r.k),
      scale: (r.end - r.start) / n,
    });
    main.readWeights(weights);
    const own = part(ranges[0]);
    /** Plain contrastive phase 1: every shard's embeddings of its two views. */
    async function embedPlain(parts: Array<ReturnType<typeof part>>): Promise<Float32Array[]> {
      const embedded = remote.map((r, j) => {
        const { x: xs, y: ys, seeds: ss } = parts[j];
        return threads[r.k - 1].request({ type: 'embed', x: xs, y: ys, seeds: ss }, 'embedded', [xs.buffer as ArrayBuffer]);
      });
      return [main.embedImages(own.x, own.y, shape, own.seeds), ...(await settleAll(embedded)).map((m) => m.z)];
    }

    /**
     * Adversarial contrastive phase 1: the sharded attack (one all-gather of the adversarial
     * embeddings per PGD step), then every shard's embeddings of its training images.
     */
    async function embedAttacked(parts: Array<ReturnType<typeof part>>): Promise<Float32Array[]> {
      const started = remote.map((r, j) => {
        const { x: xs, y: ys, seeds: ss } = parts[j];
        return threads[r.k - 1].request({ type: 'attackStart', x: xs, y: ys, seeds: ss }, 'embedded', [xs.buffer as ArrayBuffer]);
      });
      const first = [main.startAttack(own.x, own.y, shape, own.seeds), ...(await settleAll(started)).map((m) => m.z)];
      // Each start reply is [z_partner; z_adv], two halves of equal size (acl: z_adv only, no fixed partner).
      const partnered = attackHasPartner(cfg.method);
      const partners = first.map((z) => (partnered ? z.slice(0, z.length / 2) : new Float32Array(0)));
      let advs: Float32Array[] = first.map((z) => (partnered ? z.slice(z.length / 2) : z));
      for (let s = 0; s < attackSteps; s++) {
        const stepped = remote.map((r, j) => threads[r.k - 1].request({ type: 'attackStep', partners, advs, own: j + 1, labels: y }, 'embedded'));
        advs = [main.attackStep(partners, advs, 0, y), ...(await settleAll(stepped)).map((m) => m.z)];
      }
      const ended = remote.map((r) => threads[r.k - 1].request({ type: 'attackEnd' }, 'embedded'));
      return [main.finishAttack(), ...(await settleAll(ended)).map((m) => m.z)];
    }

    let mine: ShardResult;
    let replies: Array<{ loss: number; correct: number }>;
    if (!contrastive) {
      const pending = remote.map((r) => {
        const p = part(r);
        return threads[r.k - 1].request({ type: 'mean', ...p }, 'shard', [p.x.buffer as ArrayBuffer]);
      });
      mine = main.meanShard(own.x, own.y, shape, own.seeds, own.scale);
      replies = await settleAll(pending);
    } else {
      const parts = remote.map(part);
      const gathered = cfg.method === 'none' ? await embedPlain(parts) : await embedAttacked(parts);
      const pending = remote.map((r, j) => threads[r.k - 1].request({ type: 'contrast', gathered, own: j + 1, labels: y, scale: parts[j].scale }, 'shard'));
      mine = main.contrastShard(gathered, 0, y, own.scale);
      replies = await settleAll(pending);
    }
    const results = [mine, ...replies];
    applyShards(main, mine.grads, remote.map((r) => threads[r.k - 1]), ranges, optimizer);
    return { loss: results.reduce((s, r) => s + r.loss, 0), correct: results.reduce((s, r) => s + r.correct, 0) };
  };

  return {
    count,
    step: async (x, y, seeds, optimizer) => {
      try {
        return await step(x, y, seeds, optimizer);
      } catch (err) {
        main.dropViews();
        throw err;
      }
    },
    close: async () => {
      main.dropViews();
      await Promise.all(threads.map((t) => t.close()));
    },
    terminate: async () => {
      main.dropViews();
      await terminate();
    },
  };
}

/** Promise.all that waits for every promise to settle before rejecting (no reply left dangling). */
export async function settleAll<T>(ps: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(ps);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}
