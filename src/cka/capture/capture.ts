import * as tf from '@tensorflow/tfjs';
import { InputError } from '../../errors.js';
import { writeActivations } from '../../formats/activations.js';
import { activeBackend } from '../../backend/index.js';
import { provenance } from '../../util/provenance.js';
import { captureBatches, closeCaptureModel, describeAttack, describeModel, loadCaptureData, openCaptureModel, validateInputs, type CaptureModel, type CaptureSource, type InputKind } from './source.js';

export { describeModel, type CaptureSource, type InputKind, type AttackLoss } from './source.js';

export interface CaptureOptions extends CaptureSource {
  checkpoint: string;
  /** Output Arrow file. */
  out: string;
  onProgress?: (done: number, total: number) => void;
}

export interface CaptureResult {
  out: string;
  n: number;
  sets: string[];
  cleanAccuracy: number;
  advAccuracy?: number;
}

/**
 * Activations of every tap point on clean inputs and on PGD adversarial inputs, for the same
 * samples, written as one Arrow file (`<layer>@clean`, `<layer>@adv` columns).
 */
export async function captureActivations(opts: CaptureOptions): Promise<CaptureResult> {
  if (!Number.isInteger(opts.n) || opts.n < 4) throw new InputError(`--n: expected an integer >= 4 (CKA needs at least 4 samples), got ${opts.n}`);
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new InputError(`--batch-size: expected a positive integer, got ${opts.batchSize}`);
  validateInputs(opts.inputs);
  let m: CaptureModel | undefined;
  try {
    m = await openCaptureModel(opts.checkpoint, 'a', opts);
    const { ds, datasetName, split } = await loadCaptureData([m], opts);
    const logitsIndex = m.layers.indexOf('logits');
    const dims = m.taps.outputs.map((o) => o.shape.slice(1).reduce((a, b) => (a as number) * (b as number), 1) as number);
    const buffers = new Map<string, Float32Array>();
    for (const kind of opts.inputs) m.layers.forEach((l, i) => buffers.set(`${l}@${kind}`, new Float32Array(ds.n * dims[i])));
    const correct: Record<InputKind, number> = { clean: 0, adv: 0 };
    const spans = [];
    for (let start = 0; start < ds.n; start += opts.batchSize) spans.push({ start, size: Math.min(opts.batchSize, ds.n - start) });

    for await (const { span, y, views } of captureBatches([m], ds, spans, opts.inputs, opts.seed)) {
      for (const view of views) {
        for (let i = 0; i < m.layers.length; i++) {
          const values = (await view.outputs[i].data()) as Float32Array;
          buffers.get(`${m.layers[i]}@${view.kind}`)!.set(values, span.start * dims[i]);
        }
        const logits = logitsIndex >= 0 ? view.outputs[logitsIndex] : (m.model.predict(view.input) as tf.Tensor);
        const hits = tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(y, 'int32')), 'float32')));
        correct[view.kind] += (await hits.data())[0];
        hits.dispose();
        if (logitsIndex < 0) logits.dispose();
      }
      opts.onProgress?.(span.start + span.size, ds.n);
    }

    const sets = opts.inputs.flatMap((kind) => m!.layers.map((l, i) => ({ name: `${l}@${kind}`, n: ds.n, dim: dims[i], data: buffers.get(`${l}@${kind}`)! })));
    const result: CaptureResult = {
      out: opts.out,
      n: ds.n,
      sets: sets.map((s) => s.name),
      cleanAccuracy: opts.inputs.includes('clean') ? correct.clean / ds.n : NaN,
      advAccuracy: opts.inputs.includes('adv') ? correct.adv / ds.n : undefined,
    };
    await writeActivations(opts.out, {
      sampleIds: ds.ids,
      labels: ds.labels,
      sets,
      metadata: {
        model: describeModel(opts.checkpoint, m.meta, m.probe),
        attack: describeAttack(m, opts.inputs),
        dataset: { name: datasetName, split, n: ds.n, seed: opts.seed },
        accuracy: { clean: result.cleanAccuracy, adv: result.advAccuracy ?? null },
        provenance: provenance(activeBackend()),
      },
    });
    return result;
  } finally {
    if (m) closeCaptureModel(m);
  }
}
