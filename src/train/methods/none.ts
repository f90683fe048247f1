import * as tf from '@tensorflow/tfjs';
import { crossEntropyPerSample } from '../../attacks/losses.js';
import type { MethodSpec } from './spec.js';

/** Standard training (regime st): cross-entropy (sl), or SimCLR's NT-Xent / SupCon over two views (cl/scl). No attack. */
export const none: MethodSpec = {
  regime: 'st',
  schemes: ['sl', 'cl', 'scl'],
  defaultFor: ['sl', 'cl', 'scl'],
  params: [],
  supervised: {
    prepare: (model, _cfg, view, y) => ({
      tensors: [],
      loss: () => {
        const logits = model.apply(view, { training: true }) as tf.Tensor2D;
        return { loss: tf.mean(crossEntropyPerSample(logits, y)) as tf.Scalar, logits };
      },
    }),
  },
  contrastive: {
    attack: null,
    parts: [
      { image: 'v1', stream: 'main' },
      { image: 'v2', stream: 'main' },
    ],
    terms: [{ parts: [0, 1], weight: () => 1 }],
  },
};
