import type * as tf from '@tensorflow/tfjs';
import type { PgdOptions } from '../../attacks/pgd.js';
import type { Regime, Scheme, TrainConfig } from '../config.js';

/**
 * What defines a training method, as data: one `MethodSpec` per method (a file each in this folder),
 * collected in the registry METHODS (index.ts). Everything else reads the spec: the config's defaults,
 * validation and resume keys (options.ts), the train command's flags, the learner's extra parts
 * (learner.ts), the single-thread step (methods.ts) and the data-parallel replica (replica.ts), both of
 * which run a contrastive spec through the one objective of contrastive-objective.ts.
 */

/** Which BatchNorm stream embeds an image: the model's, or the adversarial twin (ACL's dual BN, CLAE's auxiliary BN). */
export type Stream = 'main' | 'adv';

/**
 * The images of a contrastive batch, by name: x (un-augmented), its two augmented views v1 and v2, the
 * attack's output adv, and, when the attack perturbs the pair [v1; v2], its halves adv1 and adv2.
 */
export type PartImage = 'x' | 'v1' | 'v2' | 'adv' | 'adv1' | 'adv2';

/** A numeric field of TrainConfig (what a method parameter may be). */
export type NumericConfigKey = { [K in keyof TrainConfig]-?: TrainConfig[K] extends number ? K : never }[keyof TrainConfig];

/** A method's hyper-parameter: its TrainConfig field (a meta.json key), CLI flag, default, valid range and help. */
export interface MethodParam {
  key: NumericConfigKey;
  /** The train command's flag, without the leading dashes. */
  flag: string;
  default: number;
  /** Valid values: >= min (> min when `strict`), whole numbers when `integer`. */
  range: { min: number; strict?: boolean; integer?: boolean };
  help: string;
}

/** The tensors a batch's preparation made (the caller disposes them after the step) and its loss closure. */
export interface PreparedBatch {
  tensors: tf.Tensor[];
  /** The forward pass in training mode and the scalar to minimise (run inside tf.variableGrads), with the logits of the batch accuracy. */
  loss: () => { loss: tf.Scalar; logits: tf.Tensor2D };
}

/**
 * A supervised (sl) objective: from the batch's (augmented) view, its attack (model in inference mode)
 * and the loss closure. A mean over samples with per-sample attacks, so data-parallel shards split it
 * exactly (each shard runs it on its own samples).
 */
export interface SupervisedObjective {
  prepare(model: tf.LayersModel, cfg: TrainConfig, view: tf.Tensor4D, y: tf.Tensor1D, attackSeed: number): PreparedBatch;
}

/**
 * The attack of a contrastive method: PGD (options from the run's attack settings) maximising the
 * symmetric contrastive attack objective (src/attacks/contrastive.ts) of the attacked images, embedded
 * through `stream` in inference mode, against a fixed partner embedding (the partner's images through
 * the same stream), or, for the pair [v1; v2], of the pair's own two views.
 */
export type ContrastiveAttackSpec = {
  stream: Stream;
  /** The PGD options of the attack from the run's (`attack`), with the batch's attack seed. */
  options(attack: PgdOptions, seed: number): PgdOptions;
} & ({ attacked: 'x' | 'v1'; partner: 'x' | 'v2' } | { attacked: 'pair'; partner: null });

/** weight(cfg) * mean over the batch's images of the contrastive loss of these parts (indices into `parts`). */
export interface LossTerm {
  parts: readonly number[];
  weight: (cfg: TrainConfig) => number;
}

/**
 * A contrastive (cl/scl) objective: the attack (or none), the images of the training forward and the
 * loss terms over their embeddings. The parts of one stream go through one forward (one BatchNorm batch,
 * concatenated in order); the online linear head reads part 0's pooled features.
 */
export interface ContrastiveSpec {
  attack: ContrastiveAttackSpec | null;
  parts: ReadonlyArray<{ image: PartImage; stream: Stream }>;
  /** Full-batch contrastive terms (data-parallel: all-gathered embeddings). */
  terms: readonly LossTerm[];
  /**
   * rcl-bound's divergence: weight * the binary cross-entropy of a discriminator on pooled features,
   * part `real` benign, part `fake` adversarial, read through a gradient-reversal layer. A mean over
   * samples (shards add their share). A spec with one gets a discriminator (learner.ts).
   */
  divergence?: { real: number; fake: number; weight: (cfg: TrainConfig) => number };
}

export interface MethodSpec {
  /** 'st': the method of standard training (no attack, regime st); 'at': offered by --regime at. */
  regime: Regime;
  /** The schemes it trains. */
  schemes: readonly Scheme[];
  /** The schemes whose runs of its regime use it when no --method is given (such runs are named `<scheme>-<regime>`). */
  defaultFor: readonly Scheme[];
  /** Its hyper-parameters (TrainConfig fields; every one is validated and a resume key, whatever the method). */
  params: readonly MethodParam[];
  /** The objective for scheme sl, if it trains sl. */
  supervised?: SupervisedObjective;
  /** The objective for schemes cl and scl, if it trains them. */
  contrastive?: ContrastiveSpec;
  /** The fine-tuning loss the full fine-tuning scenarios (fat, st-fat) default to after this method (the probe stage's objective name); absent: CE(clean) + CE(adv). */
  fullFineTuneObjective?: 'trades';
}
