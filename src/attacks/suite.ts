import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { apgdAttack, classifierObjective } from './apgd.js';
import { crossEntropyLoss } from './losses.js';
import { contrastiveLoss } from './contrastive.js';
import { pgdAttack, type Norm, type PgdOptions } from './pgd.js';

/**
 * Named evaluation attacks, as written on the command line:
 *   clean            no attack
 *   fgsm             one signed-gradient step of size eps on CE
 *   pgd, pgd<N>      PGD on CE, N steps (default 20), random start, step size --step-size or 2.5 eps / N
 *   apgd-ce[<N>]     APGD on cross-entropy, N iterations (default 100)
 *   apgd-dlr[<N>]    APGD on the DLR loss (>= 3 classes), N iterations (default 100)
 *   contrastive[<N>] PGD (N steps, default 20) on NT-Xent between the embedding of x + delta and that of
 *                    clean x, in-batch negatives, through the embedding layer (default: 'projection' if
 *                    the model has one, else 'pool'): label-free, "threat model I" of the reference study
 */
export type AttackKind = 'clean' | 'fgsm' | 'pgd' | 'apgd-ce' | 'apgd-dlr' | 'contrastive';

export interface AttackSpec {
  /** The name as the user wrote it, used as the row label (e.g. 'pgd20'). */
  name: string;
  kind: AttackKind;
  /** Gradient steps (0 for clean, 1 for FGSM). */
  steps: number;
}

export const DEFAULT_PGD_STEPS = 20;
export const DEFAULT_APGD_STEPS = 100;

export function parseAttackSpec(text: string): AttackSpec {
  const name = text.trim().toLowerCase();
  if (name === 'clean') return { name, kind: 'clean', steps: 0 };
  if (name === 'fgsm') return { name, kind: 'fgsm', steps: 1 };
  const m = /^(pgd|apgd-ce|apgd-dlr|contrastive)(\d+)?$/.exec(name);
  if (!m) throw new InputError(`--attacks: unknown attack '${text}' (expected clean, fgsm, pgd<N>, apgd-ce[<N>], apgd-dlr[<N>], contrastive[<N>])`);
  const kind = m[1] as AttackKind;
  const steps = m[2] !== undefined ? Number(m[2]) : kind === 'pgd' || kind === 'contrastive' ? DEFAULT_PGD_STEPS : DEFAULT_APGD_STEPS;
  if (!Number.isInteger(steps) || steps < 1) throw new InputError(`--attacks: '${text}' needs at least 1 step`);
  return { name, kind, steps };
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
}

export const DEFAULT_ATTACK_SETTINGS: AttackSettings = { norm: 'linf', restarts: 1, seed: 0 };

/** The layer the contrastive attack embeds with: the projection head's output when there is one. */
export function embeddingLayerOf(model: tf.LayersModel, wanted?: string): string {
  const names = new Set(model.layers.map((l) => l.name));
  const name = wanted ?? (names.has('projection') ? 'projection' : 'pool');
  if (!names.has(name)) throw new InputError(`--embedding-layer: the model has no layer '${name}'`);
  return name;
}

/** PGD with random start; step 2.5 eps / steps unless set (Madry et al.'s rule: reaches the boundary from anywhere). */
function pgdSettings(spec: AttackSpec, eps: number, s: AttackSettings): PgdOptions {
  return { norm: s.norm, eps, stepSize: s.stepSize ?? (2.5 * eps) / spec.steps, steps: spec.steps, randomStart: true, restarts: s.restarts, seed: s.seed };
}

/** Adversarial version of the batch x (labels y) against `model` (inference mode); caller owns it. */
export function runAttack(spec: AttackSpec, model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor1D, eps: number, s: AttackSettings): tf.Tensor4D {
  switch (spec.kind) {
    case 'clean':
      return tf.clone(x);
    case 'fgsm':
      return pgdAttack(crossEntropyLoss(model, y), x, { norm: s.norm, eps, stepSize: eps, steps: 1, randomStart: false, restarts: 1, seed: s.seed });
    case 'pgd':
      return pgdAttack(crossEntropyLoss(model, y), x, pgdSettings(spec, eps, s));
    case 'contrastive': {
      let embed: (xi: tf.Tensor4D) => tf.Tensor2D;
      if (s.embedder) {
        embed = s.embedder.embed;
      } else {
        const layer = embeddingLayerOf(model, s.embeddingLayer);
        const embedModel = tf.model({ inputs: model.inputs, outputs: model.getLayer(layer).output as tf.SymbolicTensor });
        embed = (xi) => tf.reshape(embedModel.apply(xi, { training: false }) as tf.Tensor, [xi.shape[0], -1]) as tf.Tensor2D;
      }
      const positives = tf.tidy(() => embed(x));
      const adv = pgdAttack(contrastiveLoss(embed, positives, s.temperature ?? s.embedder?.temperature ?? 0.5), x, pgdSettings(spec, eps, s));
      positives.dispose();
      return adv;
    }
    case 'apgd-ce':
    case 'apgd-dlr': {
      const objective = classifierObjective(model, y, spec.kind === 'apgd-ce' ? 'ce' : 'dlr');
      return apgdAttack(objective, x, { norm: s.norm, eps, steps: spec.steps, restarts: s.restarts, seed: s.seed });
    }
  }
}
