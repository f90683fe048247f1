import type * as tf from '@tensorflow/tfjs';
import type { Norm } from './pgd.js';

/**
 * The types of the evaluation-attack family (src/attacks/suite.ts holds the ATTACKS and PRESETS
 * records). They live apart from the records so each attack's file can name them without importing
 * the registry that imports it. A new attack adds its name here and its entry in ATTACKS; the
 * compiler checks the record is complete.
 */
export type AttackName = 'clean' | 'fgsm' | 'pgd' | 'apgd-ce' | 'apgd-dlr' | 'apgd-t' | 'fab-t' | 'square' | 'contrastive';
export type PresetName = 'autoattack' | 'autoattack-rand';
export type AttackKind = AttackName | PresetName;

export interface AttackSpec {
  /** The name as the user wrote it, used as the row label (e.g. 'pgd20'). */
  name: string;
  kind: AttackKind;
  /** Gradient steps (0 for clean, 1 for FGSM), APGD/FAB iterations, or Square queries. */
  steps: number;
  /** A preset's attacks, in the order they run, each on the points the previous ones left robust. */
  components?: AttackSpec[];
  /** Settings a preset fixes for its components (e.g. one restart, EoT draws). */
  overrides?: Partial<Pick<AttackSettings, 'restarts' | 'eotIter' | 'targets'>>;
}

/** What one adversarial batch is made from. */
export interface AttackContext {
  spec: AttackSpec;
  model: tf.LayersModel;
  x: tf.Tensor4D;
  y: tf.Tensor1D;
  eps: number;
  settings: AttackSettings;
}

/** One evaluation attack: how it is named, what it needs and how it makes an adversarial batch. */
export interface AttackDefinition {
  /** Steps when the name has none; absent: the name takes no number (clean, fgsm). */
  defaultSteps?: number;
  /** Fixed steps (clean 0, fgsm 1) when the name takes no number. */
  fixedSteps?: number;
  /** No random start: restarts would repeat the same result. */
  deterministic?: boolean;
  /** Fewest classes the attack's loss is defined for. */
  minClasses?: number;
  /** Uses only the model's logits, no gradients (a check against gradient masking). */
  gradientFree?: boolean;
  /**
   * Strength rank for the consistency check: at the same eps an attack of a lower tier (or of the
   * same kind with fewer steps) should never leave fewer samples robust than a higher one.
   */
  tier: number;
  /** The adversarial version of ctx.x; the caller owns it. */
  run(ctx: AttackContext): tf.Tensor4D;
}

/** Settings shared by all attacks of one evaluation. */
export interface AttackSettings {
  norm: Norm;
  /** Restarts of PGD and APGD (per sample the strongest run is kept). */
  restarts: number;
  seed: number;
  /** PGD step size; undefined = 2.5 eps / steps (Madry et al.'s rule, reaches the boundary from anywhere). */
  stepSize?: number;
  /** Layer whose output the contrastive attack embeds with (default: 'projection' if present, else 'pool'). */
  embeddingLayer?: string;
  /** NT-Xent temperature of the contrastive attack (default: the embedder's, else 0.5 as SimCLR/RoCL). */
  temperature?: number;
  /**
   * The model's projection head (contrastive checkpoints): the contrastive attack then embeds through
   * it, as "threat model I" prescribes, instead of through `embeddingLayer`.
   */
  embedder?: { embed(x: tf.Tensor4D): tf.Tensor2D; temperature: number };
  /** Target classes of APGD-T and FAB-T (default 9, at most classes - 1). */
  targets?: number;
  /** Expectation over Transformation: APGD averages the gradient over this many draws (default 1). */
  eotIter?: number;
}
