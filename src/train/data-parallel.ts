import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { settleAll } from '../parallel/threads.js';
import { ShardedReplicas, type BaseReplicaReply, type BaseReplicaRequest } from '../parallel/replicas.js';
import type { ShardResult } from '../parallel/weights.js';
import type { ProjectionConfig } from '../models/projection.js';
import type { BatchSeeds } from './methods.js';
import type { Learner } from './learner.js';
import { workersUnsupported, type TrainConfig } from './options.js';
import { attackHasPartner, Replica, shardAttackOptions, shardSeeds } from './replica.js';

/**
 * Data-parallel training over worker threads (docs/decisions.md, "Data-parallel training"): the sharded
 * step of src/parallel/replicas.ts (one contiguous shard per thread, gradients summed on the main thread,
 * one optimizer step, BatchNorm moving statistics averaged, weights broadcast) with learner replicas
 * (src/train/replica.ts). BatchNorm normalises each shard with its own batch statistics (as PyTorch DDP
 * without SyncBatchNorm).
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

/** What a training worker builds its replica from (src/train/replica-worker.ts). */
export interface ReplicaInit {
  topology: unknown;
  cfg: TrainConfig;
  projection: ProjectionConfig | undefined;
  shape: [number, number, number];
}

/** The requests training adds to the replica protocol (src/parallel/replicas.ts): the contrastive phases. */
export type ContrastiveRequest =
  | { type: 'embed'; x: Float32Array; y: Int32Array; seeds: BatchSeeds }
  | { type: 'contrast'; gathered: Float32Array[]; own: number; labels: Int32Array; scale: number }
  | { type: 'attackStart'; x: Float32Array; y: Int32Array; seeds: BatchSeeds }
  | { type: 'attackStep'; partners: Float32Array[]; advs: Float32Array[]; own: number; labels: Int32Array }
  | { type: 'attackEnd' };
export type ContrastiveReply = { type: 'embedded'; z: Float32Array };

export type ReplicaRequest = BaseReplicaRequest<BatchSeeds> | ContrastiveRequest;
export type ReplicaReply = BaseReplicaReply | ContrastiveReply;

export interface DataParallel {
  readonly count: number;
  /** One optimizer step on the batch (x: NHWC floats, y: labels); returns the batch loss and correct count. */
  step(x: Float32Array, y: Int32Array, seeds: BatchSeeds, optimizer: tf.Optimizer): Promise<{ loss: number; correct: number }>;
  /** Stop the workers after a normal end (waits for them to acknowledge). */
  close(): Promise<void>;
  /** Stop the workers at once (after an error). */
  terminate(): Promise<void>;
}

/**
 * Start `count - 1` worker threads, each with a replica of `learner` on the active backend, and return
 * the data-parallel step. The main thread's learner stays the one that is trained and checkpointed.
 */
export async function startDataParallel(learner: Learner, count: number, shape: [number, number, number], projection: ProjectionConfig | undefined): Promise<DataParallel> {
  const cfg = learner.cfg;
  const why = workersUnsupported(cfg);
  if (why) throw new InputError(`--workers: ${why}`);
  const main = new Replica(learner);
  const data: ReplicaInit = { topology: learner.model.toJSON(null, false), cfg, projection, shape };
  const script = new URL('./replica-worker.js', import.meta.url);
  const replicas = await ShardedReplicas.start<BatchSeeds, ContrastiveRequest, ContrastiveReply>({ count, main, script, data, label: 'training worker' });
  const { threads } = replicas;
  const contrastive = cfg.scheme !== 'sl';
  // clae's FGSM is one step whatever --steps says.
  const attackSteps = shardAttackOptions(cfg, 0).steps;

  const step = async (x: Float32Array, y: Int32Array, seeds: BatchSeeds, optimizer: tf.Optimizer) => {
    const batch = replicas.shard(x, y, (k) => shardSeeds(seeds, k));
    const { own, remote } = batch;
    /** Plain contrastive phase 1: every shard's embeddings of its two views. */
    async function embedPlain(parts: typeof batch.parts): Promise<Float32Array[]> {
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
    async function embedAttacked(parts: typeof batch.parts): Promise<Float32Array[]> {
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
      ({ mine, replies } = await replicas.meanShards(batch, (p) => main.meanShard(p.x, p.y, shape, p.seeds, p.scale)));
    } else {
      const { parts } = batch;
      const gathered = cfg.method === 'none' ? await embedPlain(parts) : await embedAttacked(parts);
      const pending = remote.map((r, j) => threads[r.k - 1].request({ type: 'contrast', gathered, own: j + 1, labels: y, scale: parts[j].scale }, 'shard'));
      mine = main.contrastShard(gathered, 0, y, own.scale);
      replies = await settleAll(pending);
    }
    return replicas.apply(batch, mine, replies, optimizer);
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
      await replicas.close();
    },
    terminate: async () => {
      main.dropViews();
      await replicas.terminate();
    },
  };
}
