import * as tf from '@tensorflow/tfjs';
import { l2Normalize } from '../models/projection.js';
import { crossEntropyPerSample } from '../attacks/losses.js';
import { subSeed } from '../util/rng.js';
import { ascentStep, pgdStartPoint, type PerSampleLoss, type PgdOptions } from '../attacks/pgd.js';
import { augmentView, batchGradients, embed, embedAdv, type BatchGradients, type BatchSeeds } from './methods.js';
import { contrastiveGroups, contrastivePerImage } from './contrastive.js';
import { reverseGradient, stopGradient } from './gradients.js';
import { learnerVariables, learnerWeights, type Learner } from './learner.js';
import type { TrainConfig } from './options.js';
import { flatten, ReplicaWeights, type ShardResult } from '../parallel/weights.js';

/**
 * One replica of a data-parallel training step (src/train/data-parallel.ts): the learner of the main
 * thread or of a worker thread, and what it does with its shard of a batch. Weights, gradients and
 * moving statistics cross threads as flat Float32Arrays (src/parallel/weights.ts).
 */

/** Shard k's own attack and augmentation seeds, derived from the step's. */
export function shardSeeds(seeds: BatchSeeds, shard: number): BatchSeeds {
  return { attack: subSeed(seeds.attack, 'shard', shard), augment: subSeed(seeds.augment, 'shard', shard) };
}

/** Which BatchNorm stream embeds a part: the model's, or ACL's adversarial stream (learner.advFeatures). */
export type Stream = 'main' | 'adv';

/** A method's training loss over a shard's parts: see shardedLoss. */
export interface ShardedLoss {
  streams: Stream[];
  /** Full-batch contrastive terms: weight * mean contrastivePerImage(the parts, all shards' embeddings). */
  terms: Array<{ parts: number[]; weight: number }>;
  /**
   * rcl-bound: weight * the discriminator's cross-entropy (benign part `real`, adversarial part `fake`),
   * read through a gradient-reversal layer. A mean over samples, so each shard adds its share of it.
   */
  divergence?: { real: number; fake: number; weight: number };
}

/**
 * A method's training loss over the images ("parts") a shard embeds in its training forward, mirroring
 * prepareContrastive in src/train/methods.ts: the parts' streams (the parts of one stream go through one
 * forward, one BatchNorm batch, as there) and the contrastive terms, each weight * mean
 * contrastivePerImage(those parts). The probe (online linear head) reads part 0's features.
 *   'none' [v1, v2]; 'study-at' [x, x_adv, v1, v2]; 'rocl' [v1, v2, adv]; 'acl' [v1, v2, adv1, adv2];
 *   'clae' [v1, v2, adv] (adv through the auxiliary BatchNorm stream); 'rcl-bound' [v1, v2, adv].
 */
export function shardedLoss(cfg: Pick<TrainConfig, 'method' | 'roclLambda' | 'claeAlpha' | 'rclBenignWeight' | 'rclDivergenceWeight'>): ShardedLoss {
  switch (cfg.method) {
    case 'none':
      return { streams: ['main', 'main'], terms: [{ parts: [0, 1], weight: 1 }] };
    case 'study-at':
      return {
        streams: ['main', 'main', 'main', 'main'],
        terms: [
          { parts: [0, 1], weight: 1 },
          { parts: [2, 3], weight: 1 },
        ],
      };
    case 'rocl':
      return {
        streams: ['main', 'main', 'main'],
        terms: [
          { parts: [0, 1, 2], weight: 1 },
          { parts: [2, 1], weight: 1 / cfg.roclLambda },
        ],
      };
    case 'clae':
      // NT-Xent(z1, z2) + alpha NT-Xent(z1, z_adv); the clean pair is one forward, the adversarial batch another.
      return {
        streams: ['main', 'main', 'adv'],
        terms: [
          { parts: [0, 1], weight: 1 },
          { parts: [0, 2], weight: cfg.claeAlpha },
        ],
      };
    case 'rcl-bound':
      // C(adv, v2) + w_b C(v1, v2) + w_d divergence(features of v1 "real", of adv "fake"), one forward as one thread.
      return {
        streams: ['main', 'main', 'main'],
        terms: [
          { parts: [2, 1], weight: 1 },
          { parts: [0, 1], weight: cfg.rclBenignWeight },
        ],
        divergence: { real: 0, fake: 2, weight: cfg.rclDivergenceWeight },
      };
    case 'acl':
      return {
        streams: ['main', 'main', 'adv', 'adv'],
        terms: [
          { parts: [0, 1], weight: 0.5 },
          { parts: [2, 3], weight: 0.5 },
        ],
      };
    default:
      throw new Error(`method '${cfg.method}' has no data-parallel contrastive loss (a bug: options.ts should refuse it)`);
  }
}

/** Whether a method's attack has a fixed partner embedding (study-at, rocl, clae, rcl-bound) or perturbs both views (acl). */
export function attackHasPartner(method: string): boolean {
  return method !== 'acl';
}

/**
 * The options of a method's attack as the single-thread code runs it (contrastiveAttack, aclAttack in
 * src/train/methods.ts): rocl always starts at random; clae is one FGSM step (fgsmAttack: step size eps,
 * no random start); the others take the run's attack options.
 */
export function shardAttackOptions(cfg: Pick<TrainConfig, 'method' | 'attack'>, seed: number): PgdOptions {
  const { attack } = cfg;
  if (cfg.method === 'clae') return { norm: attack.norm, eps: attack.eps, stepSize: attack.eps, steps: 1, randomStart: false, restarts: 1, seed: 0 };
  return { ...attack, randomStart: cfg.method === 'rocl' ? true : attack.randomStart, seed };
}

/**
 * Training-mode forward of the parts by stream (one forward per stream, the parts concatenated in order):
 * per part its L2-normalised projection and its pooled features.
 */
function forwardParts(learner: Learner, parts: tf.Tensor4D[], streams: Stream[]): { z: tf.Tensor2D[]; feats: tf.Tensor2D[] } {
  const z: tf.Tensor2D[] = new Array(parts.length);
  const featsOf: tf.Tensor2D[] = new Array(parts.length);
  for (const stream of ['main', 'adv'] as const) {
    const idx = parts.map((_, i) => i).filter((i) => streams[i] === stream);
    if (idx.length === 0) continue;
    const net = stream === 'main' ? learner.features : learner.advFeatures!;
    const feats = net.apply(idx.length === 1 ? parts[idx[0]] : tf.concat(idx.map((i) => parts[i]), 0), { training: true }) as tf.Tensor2D;
    const emb = l2Normalize(learner.head!.apply(feats, { training: true }) as tf.Tensor2D);
    // (Backprop through a one-way tf.split fails in tfjs 4.22, so one part is not split.)
    const sizes = idx.map((i) => parts[i].shape[0]);
    const zs = idx.length === 1 ? [emb] : (tf.split(emb, sizes, 0) as tf.Tensor2D[]);
    const fs = idx.length === 1 ? [feats] : (tf.split(feats, sizes, 0) as tf.Tensor2D[]);
    idx.forEach((i, j) => {
      z[i] = zs[j];
      featsOf[i] = fs[j];
    });
  }
  return { z, feats: featsOf };
}

/** A shard's attack in progress (adversarial contrastive methods): see Replica.startAttack. */
interface ShardAttack {
  /** The clean images attacked (the ball's centre): x (study-at), v1 (rocl, clae), [v1; v2] (acl). */
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
    const views: [tf.Tensor4D, tf.Tensor4D] = [augmentView(xs, cfg, seeds.augment, 1), augmentView(xs, cfg, seeds.augment, 2)];
    xs.dispose();
    return this.embedShard(views, y);
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
    const v1 = augmentView(xs, cfg, seeds.augment, 1);
    const v2 = augmentView(xs, cfg, seeds.augment, 2);
    const method = cfg.method;
    // As contrastiveAttack / aclAttack; pgdAttack's first run seeds its start with subSeed(seed, 'restart', 0).
    const opts = shardAttackOptions(cfg, seeds.attack);
    // study-at attacks x against x; acl the pair [v1; v2]; the others view 1 against view 2.
    const x0 = method === 'study-at' ? xs : method === 'acl' ? (tf.concat([v1, v2], 0) as tf.Tensor4D) : v1;
    const adv = pgdStartPoint(x0, opts, subSeed(opts.seed, 'restart', 0));
    this.attack = { x0, adv, opts, x: xs, v1, v2 };
    this.labels = tf.tensor1d(y, 'int32');
    const z = tf.tidy(() => {
      const advZ = this.attackEmbedding(adv);
      return attackHasPartner(method) ? tf.concat([embed(learner, method === 'study-at' ? xs : v2, false), advZ], 0) : advZ;
    });
    const out = (z.dataSync() as Float32Array).slice();
    z.dispose();
    return out;
  }

  /** Inference-mode embeddings of adversarial images in the stream the method attacks through. */
  private attackEmbedding(adv: tf.Tensor4D): tf.Tensor2D {
    return this.learner.cfg.method === 'acl' ? embedAdv(this.learner, adv, false) : embed(this.learner, adv, false);
  }

  /**
   * One PGD step of this shard's attack on the full-batch attack loss (contrastiveAttackLoss of
   * src/train/methods.ts: per image, the contrastive loss of (x', partner) with in-batch negatives):
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
    // acl attacks [v1; v2] of each shard: its embeddings are two halves, the batch's two views.
    const halves = attackHasPartner(cfg.method) ? 1 : 2;
    const allLabels = tf.tensor1d(labels, 'int32');
    const groups = contrastiveGroups(cfg.scheme as 'cl' | 'scl', allLabels);
    const partner = halves === 1 ? tf.tensor2d(concatFloats(partners), [labels.length, d]) : null;
    const constants = advs.map((z, j) => {
      if (j === own) return null;
      const rows = z.length / (halves * d);
      return Array.from({ length: halves }, (_, h) => tf.tensor2d(z.subarray(h * rows * d, (h + 1) * rows * d), [rows, d]));
    });
    const objective: PerSampleLoss = (xa) =>
      tf.tidy(() => {
        const emb = this.attackEmbedding(xa);
        const live = halves === 1 ? [emb] : (tf.split(emb, 2, 0) as tf.Tensor2D[]);
        const view = (h: number) => tf.concat(constants.map((c) => (c ? c[h] : live[h])), 0) as tf.Tensor2D;
        // acl: aclAttack's per-sample loss is [perImage, perImage] / 2; its sum (what PGD ascends) is perImage's.
        return contrastivePerImage(halves === 1 ? [view(0), partner!] : [view(0), view(1)], groups, cfg.temperature);
      });
    const next = ascentStep(objective, a.adv, a.x0, a.opts);
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
    const method = this.learner.cfg.method;
    let parts: tf.Tensor4D[];
    if (method === 'study-at') parts = [a.x, a.adv, a.v1, a.v2];
    else {
      a.x.dispose();
      if (method !== 'acl') parts = [a.v1, a.v2, a.adv];
      else {
        parts = [a.v1, a.v2, ...(tf.split(a.adv, 2, 0) as tf.Tensor4D[])];
        tf.dispose([a.adv, a.x0]);
      }
    }
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
    const { streams } = shardedLoss(learner.cfg);
    const z = tf.tidy(() => tf.concat(forwardParts(learner, views, streams).z, 0));
    this.stats.forEach((w, i) => w.write(saved[i]));
    tf.dispose(saved);
    const out = (z.dataSync() as Float32Array).slice();
    z.dispose();
    return out;
  }

  /**
   * Contrastive phase 2: the full-batch contrastive terms of the method (shardedTerms) over every
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
    const { streams, terms, divergence } = shardedLoss(cfg);
    const constants = gathered.map((z, j) => {
      if (j === own) return null;
      const n = z.length / (parts * d);
      return Array.from({ length: parts }, (_, p) => tf.tensor2d(z.subarray(p * n * d, (p + 1) * n * d), [n, d]));
    });
    let correct: tf.Scalar | undefined;
    let reported: tf.Scalar | undefined;
    const wd = cfg.weightDecay;
    const { grads, value } = tf.variableGrads(() => {
      const { z: zs, feats } = forwardParts(learner, views, streams);
      const f1 = feats[0];
      const all = (part: number) => tf.concat(constants.map((c) => (c ? c[part] : zs[part])), 0) as tf.Tensor2D;
      const contrast = tf.addN(
        terms.map((t) => {
          const c = tf.mean(contrastivePerImage(t.parts.map(all), groups, cfg.temperature));
          return t.weight === 1 ? c : tf.mul(t.weight, c);
        }),
      ) as tf.Scalar;
      const logits = learner.model.getLayer('logits').apply(stopGradient(f1)) as tf.Tensor2D;
      correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(y, 'int32')), 'float32'))) as tf.Scalar;
      let shardTerm = tf.mean(crossEntropyPerSample(logits, y)) as tf.Scalar;
      if (divergence) {
        // As prepareContrastive's rcl-bound: the discriminator minimises its binary cross-entropy with logits,
        // -log sigmoid(real) - log(1 - sigmoid(fake)), and the encoder, behind reverseGradient, maximises it.
        // Means over this shard's samples: `scale` of them sums to the batch's means, and the discriminator's
        // gradient to the batch's with the rest.
        const d = learner.discriminator!;
        const real = d.apply(reverseGradient(feats[divergence.real])) as tf.Tensor2D;
        const fake = d.apply(reverseGradient(feats[divergence.fake])) as tf.Tensor2D;
        const div = tf.add(tf.mean(tf.softplus(tf.neg(real))), tf.mean(tf.softplus(fake)));
        shardTerm = tf.add(shardTerm, tf.mul(divergence.weight, div)) as tf.Scalar;
      }
      if (wd !== 0 && decayed.length > 0) shardTerm = tf.add(shardTerm, tf.mul(0.5 * wd, tf.addN(decayed.map((v) => tf.sum(tf.square(v)))))) as tf.Scalar;
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
