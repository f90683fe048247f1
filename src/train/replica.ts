import * as tf from '@tensorflow/tfjs';
import { subSeed } from '../util/rng.js';
import { ascentStep, pgdStartPoint, type PgdOptions } from '../attacks/pgd.js';
import { contrastiveGroups } from '../attacks/contrastive.js';
import { augmentView, batchGradients, withWeightDecay, type BatchGradients, type BatchSeeds } from './methods.js';
import {
  attackedImages,
  contrastiveAttackObjective,
  contrastiveObjective,
  embedStream,
  forwardParts,
  partnerImages,
  trainingParts,
  type BatchImages,
  type Widen,
} from './contrastive-objective.js';
import { learnerVariables, learnerWeights, type Learner } from './learner.js';
import { METHODS, methodSpec, type ContrastiveAttackSpec, type ContrastiveSpec, type MethodSpec } from './methods/index.js';
import type { TrainConfig } from './options.js';
import { flatten, ReplicaWeights, type ShardResult } from '../parallel/weights.js';

export type { Stream } from './methods/index.js';

/**
 * One replica of a data-parallel training step (src/train/data-parallel.ts): the learner of the main
 * thread or of a worker thread, and what it does with its shard of a batch. Weights, gradients and
 * moving statistics cross threads as flat Float32Arrays (src/parallel/weights.ts).
 */

/** Shard k's own attack and augmentation seeds, derived from the step's. */
export function shardSeeds(seeds: BatchSeeds, shard: number): BatchSeeds {
  return { attack: subSeed(seeds.attack, 'shard', shard), augment: subSeed(seeds.augment, 'shard', shard) };
}

/** The contrastive objective of a learner's method (its spec's), for the replica's phases. */
function contrastiveSpecOf(learner: Learner): ContrastiveSpec {
  const spec = learner.spec.contrastive;
  if (!spec) throw new Error(`method '${learner.cfg.method}' has no contrastive objective (a bug: options.ts should refuse it)`);
  return spec;
}

function attackSpecOf(learner: Learner): ContrastiveAttackSpec {
  const attack = contrastiveSpecOf(learner).attack;
  if (!attack) throw new Error(`method '${learner.cfg.method}' has no attack (a bug)`);
  return attack;
}

/** Whether a method's attack has a fixed partner embedding (study-at, rocl, clae, rcl-bound) or perturbs both views (acl): its spec's attack. */
export function attackHasPartner(method: string | MethodSpec): boolean {
  const spec = typeof method === 'string' ? methodSpec(method) : method;
  return spec?.contrastive?.attack?.partner !== null;
}

/**
 * The options of a method's attack as the single-thread code runs it: its spec's, from the run's attack
 * options (rocl always starts at random; clae is one FGSM step: step size eps, no random start).
 */
export function shardAttackOptions(cfg: Pick<TrainConfig, 'method' | 'attack'>, seed: number, spec: MethodSpec = METHODS[cfg.method]): PgdOptions {
  const attack = spec.contrastive?.attack;
  return attack ? attack.options(cfg.attack, seed) : { ...cfg.attack, seed };
}

/** A shard's attack in progress (adversarial contrastive methods): see Replica.startAttack. */
interface ShardAttack {
  /** The clean images attacked (the ball's centre): x (study-at), v1 (rocl, clae, rcl-bound), [v1; v2] (acl): the spec's `attacked`. */
  x0: tf.Tensor4D;
  adv: tf.Tensor4D;
  opts: PgdOptions;
  /** The shard's clean images and views, for the training forward after the attack. */
  x: tf.Tensor4D;
  v1: tf.Tensor4D;
  v2: tf.Tensor4D;
}

export class Replica extends ReplicaWeights {
  readonly decayed: tf.Variable[];
  /** Contrastive shards keep the images of their training forward between the embedding and the gradient phase. */
  private views: tf.Tensor4D[] | null = null;
  private labels: tf.Tensor1D | null = null;
  private attack: ShardAttack | null = null;

  constructor(readonly learner: Learner) {
    super(learnerWeights(learner), learnerVariables(learner));
    this.decayed = this.vars.filter((v) => /kernel/.test(v.name));
  }

  private finish(g: BatchGradients): ShardResult {
    const grads = flatten(this.vars.map((v) => g.grads[v.name]));
    const loss = g.value.dataSync()[0];
    const correct = g.correct.dataSync()[0];
    tf.dispose([g.value, g.correct, ...Object.values(g.grads)]);
    return { grads, loss, correct };
  }

  /**
   * Objectives that are means over samples (sl: cross-entropy, TRADES; attacks per sample): the
   * gradient of `scale` times the shard's objective, scale = shard size / batch size.
   */
  meanShard(x: Float32Array, y: Int32Array, shape: [number, number, number], seeds: BatchSeeds, scale: number): ShardResult {
    const xs = tf.tensor4d(x, [y.length, ...shape]);
    const ys = tf.tensor1d(y, 'int32');
    try {
      return this.finish(batchGradients(this.learner, this.vars, this.decayed, xs, ys, seeds, scale));
    } finally {
      tf.dispose([xs, ys]);
    }
  }

  /** Contrastive phase 1 on a shard's images: its two augmented views, then embedShard. */
  embedImages(x: Float32Array, y: Int32Array, shape: [number, number, number], seeds: BatchSeeds): Float32Array {
    const xs = tf.tensor4d(x, [y.length, ...shape]);
    const cfg = this.learner.cfg;
    const images = { x: xs, v1: augmentView(xs, cfg, seeds.augment, 1), v2: augmentView(xs, cfg, seeds.augment, 2) };
    return this.embedShard(this.takeParts(images), y);
  }

  /** The spec's training images of a shard (see trainingParts); disposes the images no part uses. */
  private takeParts(images: BatchImages & { x0?: tf.Tensor4D }): tf.Tensor4D[] {
    const { parts } = trainingParts(contrastiveSpecOf(this.learner), images);
    const used = new Set<tf.Tensor>(parts);
    tf.dispose([...new Set([images.x, images.v1, images.v2, images.adv, images.x0])].filter((t): t is tf.Tensor4D => !!t && !used.has(t)));
    return parts;
  }

  /**
   * Adversarial contrastive methods, attack phase 0 on a shard's images: its views, the attacked images
   * and the PGD start point (the shard's own random start, as the single-thread attack seeds it).
   * Returns [z_partner; z_adv] ([2n, d]): the inference-mode embeddings of the partner images
   * (study-at: x itself; rocl, clae, rcl-bound: view 2) and of the start point, for the all-gather
   * (acl: [z_adv1; z_adv2] only, no partner).
   */
  startAttack(x: Float32Array, y: Int32Array, shape: [number, number, number], seeds: BatchSeeds): Float32Array {
    this.dropViews();
    const { learner } = this;
    const cfg = learner.cfg;
    const xs = tf.tensor4d(x, [y.length, ...shape]);
    const images = { x: xs, v1: augmentView(xs, cfg, seeds.augment, 1), v2: augmentView(xs, cfg, seeds.augment, 2) };
    const attack = attackSpecOf(learner);
    // As the single-thread attack (runContrastiveAttack); pgdAttack's first run seeds its start with subSeed(seed, 'restart', 0).
    const opts = attack.options(cfg.attack, seeds.attack);
    const x0 = attackedImages(attack, images);
    const adv = pgdStartPoint(x0, opts, subSeed(opts.seed, 'restart', 0));
    this.attack = { x0, adv, opts, ...images };
    this.labels = tf.tensor1d(y, 'int32');
    const partner = partnerImages(attack, images);
    const z = tf.tidy(() => {
      const advZ = this.attackEmbedding(adv);
      return partner ? tf.concat([embedStream(learner, attack.stream, partner, false), advZ], 0) : advZ;
    });
    const out = (z.dataSync() as Float32Array).slice();
    z.dispose();
    return out;
  }

  /** Inference-mode embeddings of adversarial images in the stream the method attacks through. */
  private attackEmbedding(adv: tf.Tensor4D): tf.Tensor2D {
    return embedStream(this.learner, attackSpecOf(this.learner).stream, adv, false);
  }

  /**
   * One PGD step of this shard's attack on the full-batch attack loss (contrastiveAttackObjective, as
   * on one thread: per image, the contrastive loss of (x', partner) with in-batch negatives):
   * the other shards' adversarial embeddings are constants and this shard's are recomputed live, so
   * the gradient with respect to this shard's images is the full-batch one (the loss depends on them
   * only through their own embeddings). Returns the new adversarial images' embeddings.
   *   partners[j], advs[j]: shard j's partner and adversarial embeddings; labels: the whole batch's.
   */
  attackStep(partners: Float32Array[], advs: Float32Array[], own: number, labels: Int32Array): Float32Array {
    const a = this.attack;
    if (!a) throw new Error('attackStep before startAttack (a bug)');
    const { learner } = this;
    const cfg = learner.cfg;
    const d = advs[own].length / a.adv.shape[0];
    const attack = attackSpecOf(learner);
    // A pair attack (acl) perturbs [v1; v2] of each shard: its embeddings are two halves, the batch's two views.
    const halves = attack.partner ? 1 : 2;
    const allLabels = tf.tensor1d(labels, 'int32');
    const groups = contrastiveGroups(cfg.scheme as 'cl' | 'scl', allLabels);
    const partner = halves === 1 ? tf.tensor2d(concatFloats(partners), [labels.length, d]) : null;
    const constants = advs.map((z, j) => {
      if (j === own) return null;
      const rows = z.length / (halves * d);
      return Array.from({ length: halves }, (_, h) => tf.tensor2d(z.subarray(h * rows * d, (h + 1) * rows * d), [rows, d]));
    });
    const widen: Widen = (h, live) => tf.concat(constants.map((c) => (c ? c[h] : live)), 0) as tf.Tensor2D;
    const next = ascentStep(contrastiveAttackObjective(learner, attack, partner, groups, widen), a.adv, a.x0, a.opts);
    tf.dispose([allLabels, groups, ...(partner ? [partner] : []), ...constants.flatMap((c) => c ?? []), a.adv]);
    a.adv = next;
    const z = this.attackEmbedding(next);
    const out = (z.dataSync() as Float32Array).slice();
    z.dispose();
    return out;
  }

  /** This shard's adversarial images while its attack runs (tests), else null. */
  get adversarial(): tf.Tensor4D | null {
    return this.attack?.adv ?? null;
  }

  /** After the attack: contrastive phase 1 (embedShard) on the method's training images. */
  finishAttack(): Float32Array {
    const a = this.attack;
    if (!a || !this.labels) throw new Error('finishAttack before startAttack (a bug)');
    const y = this.labels.dataSync() as Int32Array;
    const parts = this.takeParts(a);
    this.attack = null;
    // embedShard takes the parts over (and disposes them with the views).
    this.labels.dispose();
    this.labels = null;
    return this.embedShard(parts, Int32Array.from(y));
  }

  /**
   * Contrastive phase 1: the embeddings [z_part0; z_part1; ...] ([P n, d]) of the shard's training
   * images (kept, and disposed, by the replica), by a training-mode forward as in the step. BatchNorm
   * moving statistics are restored afterwards, so only phase 2's forward moves them, once per step as
   * without workers.
   */
  embedShard(views: tf.Tensor4D[], y: Int32Array): Float32Array {
    this.dropViews();
    const { learner } = this;
    this.views = views;
    this.labels = tf.tensor1d(y, 'int32');
    const saved = this.stats.map((w) => w.read().clone());
    const streams = contrastiveSpecOf(learner).parts.map((p) => p.stream);
    const z = tf.tidy(() => tf.concat(forwardParts(learner, views, streams).z, 0));
    this.stats.forEach((w, i) => w.write(saved[i]));
    tf.dispose(saved);
    const out = (z.dataSync() as Float32Array).slice();
    z.dispose();
    return out;
  }

  /**
   * Contrastive phase 2: the method's contrastiveObjective, its full-batch contrastive terms over every
   * shard's embeddings, with the other shards' as constants and this shard's recomputed live,
   * plus `scale` times this shard's online-probe cross-entropy and weight decay. Summed over shards,
   * these gradients are the gradient of the full-batch objective: the contrastive term depends on this
   * replica's weights only through its own shard's embeddings.
   *   gathered[j]: shard j's embedShard output; own: this shard's index in it; labels: the whole batch's.
   */
  contrastShard(gathered: Float32Array[], own: number, labels: Int32Array, scale: number): ShardResult {
    const { learner, views, decayed } = this;
    if (!views || !this.labels) throw new Error('contrastShard before embedShard (a bug)');
    const y = this.labels;
    const cfg = learner.cfg;
    const parts = views.length;
    const d = gathered[own].length / (parts * y.shape[0]);
    const allLabels = tf.tensor1d(labels, 'int32');
    const groups = contrastiveGroups(cfg.scheme as 'cl' | 'scl', allLabels);
    const spec = contrastiveSpecOf(learner);
    const constants = gathered.map((z, j) => {
      if (j === own) return null;
      const n = z.length / (parts * d);
      return Array.from({ length: parts }, (_, p) => tf.tensor2d(z.subarray(p * n * d, (p + 1) * n * d), [n, d]));
    });
    const widen: Widen = (part, live) => tf.concat(constants.map((c) => (c ? c[part] : live)), 0) as tf.Tensor2D;
    let correct: tf.Scalar | undefined;
    let reported: tf.Scalar | undefined;
    const wd = cfg.weightDecay;
    const { grads, value } = tf.variableGrads(() => {
      // The method's one objective (as on one thread): full-batch contrast, and this shard's means (probe, divergence)
      // which `scale` of sums to the batch's means over the shards.
      const { contrast, local, logits } = contrastiveObjective(learner, spec, views, y, groups, widen);
      correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(y, 'int32')), 'float32'))) as tf.Scalar;
      const shardTerm = withWeightDecay(local, decayed, wd);
      // Every shard computes the same full-batch contrastive value; report `scale` of it so the shares sum to it.
      reported = tf.keep(tf.mul(scale, tf.add(contrast, shardTerm))) as tf.Scalar;
      return tf.add(contrast, tf.mul(scale, shardTerm)) as tf.Scalar;
    }, this.vars);
    value.dispose();
    tf.dispose([allLabels, groups, ...constants.flatMap((c) => c ?? [])]);
    this.dropViews();
    return this.finish({ value: reported!, correct: correct!, grads });
  }

  /** Dispose what a step left behind (views, labels, an attack in progress); idempotent. */
  dropViews(): void {
    const a = this.attack;
    // x0 is x or v1 (listed), or acl's own [v1; v2].
    if (a) tf.dispose([a.x, a.v1, a.v2, a.adv, ...(a.x0 !== a.x && a.x0 !== a.v1 ? [a.x0] : [])]);
    if (this.views) tf.dispose(this.views);
    if (this.labels) this.labels.dispose();
    this.attack = null;
    this.views = null;
    this.labels = null;
  }
}

/** The arrays one after another. */
function concatFloats(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
