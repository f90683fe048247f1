import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.js';
import { makeRng } from '../src/util/rng.js';
import {
  applyAugment,
  augment,
  sampleAugmentParams,
  hueRotation,
  LUMA,
  CONTRASTIVE_AUGMENT,
  SUPERVISED_AUGMENT,
  type AugmentParams,
} from '../src/train/augment.js';

before(async () => {
  await initBackend('wasm');
});

/**
 * Float64 reference of applyAugment, written pixel by pixel from the definitions (bilinear sampling
 * at pixel centres of the crop box, blends with grey/mean, rotation about the grey axis, clips).
 */
function reference(src: Float64Array, p: AugmentParams, c: number): Float64Array {
  const { n, height: H, width: W } = p;
  const at = (img: Float64Array, h: number, w: number, i: number, y: number, x: number, k: number) => img[((i * h + y) * w + x) * c + k];
  let x = Float64Array.from(src);
  const bilinear = (img: Float64Array, h: number, w: number, i: number, fy: number, fx: number, k: number) => {
    const y0 = Math.floor(fy);
    const x0 = Math.floor(fx);
    const y1 = Math.min(y0 + 1, h - 1);
    const x1 = Math.min(x0 + 1, w - 1);
    const dy = fy - y0;
    const dx = fx - x0;
    const top = at(img, h, w, i, y0, x0, k) * (1 - dx) + at(img, h, w, i, y0, x1, k) * dx;
    const bot = at(img, h, w, i, y1, x0, k) * (1 - dx) + at(img, h, w, i, y1, x1, k) * dx;
    return top * (1 - dy) + bot * dy;
  };
  const cropResize = (img: Float64Array, h: number, w: number, boxes: Array<{ top: number; left: number; h: number; w: number }>) => {
    const out = new Float64Array(n * H * W * c);
    for (let i = 0; i < n; i++) {
      const b = boxes[i];
      for (let yy = 0; yy < H; yy++) {
        for (let xx = 0; xx < W; xx++) {
          const fy = b.top + (yy * (b.h - 1)) / (H - 1);
          const fx = b.left + (xx * (b.w - 1)) / (W - 1);
          for (let k = 0; k < c; k++) out[((i * H + yy) * W + xx) * c + k] = bilinear(img, h, w, i, fy, fx, k);
        }
      }
    }
    return out;
  };
  if (p.crop) x = cropResize(x, H, W, p.crop);
  if (p.pad) {
    const k = p.pad.pad;
    const ph = H + 2 * k;
    const pw = W + 2 * k;
    const padded = new Float64Array(n * ph * pw * c);
    for (let i = 0; i < n; i++)
      for (let yy = 0; yy < H; yy++)
        for (let xx = 0; xx < W; xx++)
          for (let ch = 0; ch < c; ch++) padded[((i * ph + yy + k) * pw + xx + k) * c + ch] = x[((i * H + yy) * W + xx) * c + ch];
    x = cropResize(padded, ph, pw, Array.from({ length: n }, (_, i) => ({ top: p.pad!.dy[i], left: p.pad!.dx[i], h: H, w: W })));
  }
  const clip = (v: number) => Math.min(1, Math.max(0, v));
  const out = new Float64Array(x.length);
  const pixels = H * W;
  for (let i = 0; i < n; i++) {
    const img = new Float64Array(pixels * c);
    for (let q = 0; q < pixels; q++) {
      const yy = Math.floor(q / W);
      const xx = p.flip[i] ? W - 1 - (q % W) : q % W;
      for (let k = 0; k < c; k++) img[q * c + k] = x[((i * H + yy) * W + xx) * c + k];
    }
    const gray = (q: number) => (c === 3 ? LUMA[0] * img[q * 3] + LUMA[1] * img[q * 3 + 1] + LUMA[2] * img[q * 3 + 2] : img[q]);
    for (let j = 0; j < img.length; j++) img[j] = clip(img[j] * p.brightness[i]);
    let mean = 0;
    for (let q = 0; q < pixels; q++) mean += gray(q) / pixels;
    for (let j = 0; j < img.length; j++) img[j] = clip(p.contrast[i] * img[j] + (1 - p.contrast[i]) * mean);
    if (c === 3) {
      for (let q = 0; q < pixels; q++) {
        const g = gray(q);
        for (let k = 0; k < 3; k++) img[q * 3 + k] = clip(p.saturation[i] * img[q * 3 + k] + (1 - p.saturation[i]) * g);
      }
      const m = hueRotation(p.hue[i]);
      for (let q = 0; q < pixels; q++) {
        const rgb = [img[q * 3], img[q * 3 + 1], img[q * 3 + 2]];
        for (let k = 0; k < 3; k++) img[q * 3 + k] = clip(m[3 * k] * rgb[0] + m[3 * k + 1] * rgb[1] + m[3 * k + 2] * rgb[2]);
      }
      if (p.grayscale[i]) {
        for (let q = 0; q < pixels; q++) {
          const g = gray(q);
          for (let k = 0; k < 3; k++) img[q * 3 + k] = g;
        }
      }
    }
    out.set(img, i * pixels * c);
  }
  return out;
}

function randomImages(n: number, h: number, w: number, c: number, seed: number): Float64Array {
  const rng = makeRng(seed);
  return Float64Array.from({ length: n * h * w * c }, () => rng());
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

for (const [label, cfg, c] of [
  ['contrastive (resized crop, flip, jitter, grayscale), RGB', CONTRASTIVE_AUGMENT, 3],
  ['contrastive, one channel', CONTRASTIVE_AUGMENT, 1],
  ['supervised (pad + crop, flip), RGB', SUPERVISED_AUGMENT, 3],
  ['every op forced on', { ...CONTRASTIVE_AUGMENT, padCrop: { pad: 2 }, flip: 1, grayscale: 1, jitter: { ...CONTRASTIVE_AUGMENT.jitter!, p: 1 } }, 3],
] as const) {
  test(`augmentation matches the float64 reference: ${label}`, () => {
    const n = 6;
    const h = 7;
    const w = 5;
    const src = randomImages(n, h, w, c, 11);
    const params = sampleAugmentParams(n, h, w, makeRng('aug'), cfg);
    const images = tf.tensor4d(Float32Array.from(src), [n, h, w, c]);
    const before = tf.memory().numTensors;
    const out = applyAugment(images, params);
    assert.equal(tf.memory().numTensors, before + 1, 'only the output tensor survives');
    assert.deepEqual(out.shape, [n, h, w, c]);
    const got = out.dataSync();
    const want = reference(src, params, c);
    assert.ok(maxAbsDiff(got, want) < 1e-5, `max diff ${maxAbsDiff(got, want)}`);
    // The augmentation did something (so agreement is not vacuous).
    assert.ok(maxAbsDiff(got, src) > 0.05);
    tf.dispose([images, out]);
  });
}

test('augment is a pure function of (images, rng): same seed same output, other seed other output', () => {
  const images = tf.tensor4d(Float32Array.from(randomImages(4, 8, 8, 3, 3)), [4, 8, 8, 3]);
  const a = augment(images, makeRng(1), CONTRASTIVE_AUGMENT);
  const b = augment(images, makeRng(1), CONTRASTIVE_AUGMENT);
  const c = augment(images, makeRng(2), CONTRASTIVE_AUGMENT);
  assert.equal(maxAbsDiff(a.dataSync(), b.dataSync()), 0);
  assert.ok(maxAbsDiff(a.dataSync(), c.dataSync()) > 0.01);
  tf.dispose([images, a, b, c]);
});

test('random resized crop draws areas and ratios in range; the hue rotation fixes grey', () => {
  const rng = makeRng(9);
  const p = sampleAugmentParams(200, 32, 32, rng, CONTRASTIVE_AUGMENT);
  for (const b of p.crop!) {
    assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.h <= 32 && b.left + b.w <= 32);
    assert.ok(b.h * b.w <= 32 * 32 && b.h * b.w >= 1);
  }
  const flips = p.flip.reduce((s, v) => s + v, 0);
  assert.ok(flips > 60 && flips < 140, `${flips} flips of 200`);
  const m = hueRotation(0.07);
  for (let r = 0; r < 3; r++) assert.ok(Math.abs(m[3 * r] + m[3 * r + 1] + m[3 * r + 2] - 1) < 1e-12);
});
