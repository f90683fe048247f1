import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../util/rng.js';

/**
 * Batched, seeded image augmentations on NHWC tensors in [0, 1].
 *
 * Every augmentation is split in two: drawing the per-sample parameters from a seeded `Rng` (plain
 * numbers, `sampleAugmentParams`), and applying them to a batch with tensor ops (`applyAugment`).
 * `augment(images, rng, config)` composes the two, so it is a pure function of (images, rng). The
 * split lets tests check the tensor maths against a float64 reference on the very same parameters.
 *
 * Order (as in SimCLR's torchvision pipeline): crop (random resized crop, or pad + random crop),
 * horizontal flip, colour jitter with probability p (brightness, contrast, saturation, hue, in that
 * fixed order), random grayscale. Every colour op clips to [0, 1], as torchvision's do.
 */
export interface AugmentConfig {
  /** Random resized crop (Inception-style): area fraction range and aspect-ratio range. */
  resizedCrop: { scale: [number, number]; ratio: [number, number] } | null;
  /** Zero-pad by `pad` pixels on each side, then crop back to the original size at a random offset. */
  padCrop: { pad: number } | null;
  /** Probability of a horizontal flip. */
  flip: number;
  /** Colour jitter strengths (torchvision semantics) applied with probability p. */
  jitter: { brightness: number; contrast: number; saturation: number; hue: number; p: number } | null;
  /** Probability of converting to grayscale (kept 3-channel). */
  grayscale: number;
}

/** SimCLR's CIFAR augmentations (also used by the study for CL and SCL). */
export const CONTRASTIVE_AUGMENT: AugmentConfig = {
  resizedCrop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
  padCrop: null,
  flip: 0.5,
  jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 },
  grayscale: 0.2,
};

/** The usual supervised CIFAR augmentations: pad 4 + random crop, flip. */
export const SUPERVISED_AUGMENT: AugmentConfig = {
  resizedCrop: null,
  padCrop: { pad: 4 },
  flip: 0.5,
  jitter: null,
  grayscale: 0,
};

/** Per-sample parameters; identity values mean "not applied". */
export interface AugmentParams {
  n: number;
  height: number;
  width: number;
  /** Pixel box (top, left, height, width) of the crop to resize back to height x width, per sample. */
  crop: Array<{ top: number; left: number; h: number; w: number }> | null;
  /** Padding and per-sample offsets into the padded image. */
  pad: { pad: number; dy: Int32Array; dx: Int32Array } | null;
  flip: Uint8Array;
  /** Multiplicative factors (1 = identity) and hue shift in turns (0 = identity). */
  brightness: Float64Array;
  contrast: Float64Array;
  saturation: Float64Array;
  hue: Float64Array;
  grayscale: Uint8Array;
}

function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

function randInt(rng: Rng, lo: number, hi: number): number {
  // Inclusive on both ends, like torch.randint(lo, hi + 1).
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/** torchvision's RandomResizedCrop.get_params: 10 tries, then a centre crop clamped to the ratio range. */
function resizedCropBox(rng: Rng, height: number, width: number, scale: [number, number], ratio: [number, number]) {
  const area = height * width;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * uniform(rng, scale[0], scale[1]);
    const aspect = Math.exp(uniform(rng, logRatio[0], logRatio[1]));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: randInt(rng, 0, height - h), left: randInt(rng, 0, width - w), h, w };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), h, w };
}

/** Draw every random choice of a batch's augmentation from `rng`, in a fixed order. */
export function sampleAugmentParams(n: number, height: number, width: number, rng: Rng, cfg: AugmentConfig): AugmentParams {
  const p: AugmentParams = {
    n,
    height,
    width,
    crop: cfg.resizedCrop ? [] : null,
    pad: cfg.padCrop ? { pad: cfg.padCrop.pad, dy: new Int32Array(n), dx: new Int32Array(n) } : null,
    flip: new Uint8Array(n),
    brightness: new Float64Array(n).fill(1),
    contrast: new Float64Array(n).fill(1),
    saturation: new Float64Array(n).fill(1),
    hue: new Float64Array(n),
    grayscale: new Uint8Array(n),
  };
  for (let i = 0; i < n; i++) {
    if (cfg.resizedCrop) p.crop!.push(resizedCropBox(rng, height, width, cfg.resizedCrop.scale, cfg.resizedCrop.ratio));
    if (p.pad) {
      p.pad.dy[i] = randInt(rng, 0, 2 * p.pad.pad);
      p.pad.dx[i] = randInt(rng, 0, 2 * p.pad.pad);
    }
    p.flip[i] = rng() < cfg.flip ? 1 : 0;
    if (cfg.jitter && rng() < cfg.jitter.p) {
      const j = cfg.jitter;
      p.brightness[i] = uniform(rng, Math.max(0, 1 - j.brightness), 1 + j.brightness);
      p.contrast[i] = uniform(rng, Math.max(0, 1 - j.contrast), 1 + j.contrast);
      p.saturation[i] = uniform(rng, Math.max(0, 1 - j.saturation), 1 + j.saturation);
      p.hue[i] = uniform(rng, -j.hue, j.hue);
    }
    p.grayscale[i] = rng() < cfg.grayscale ? 1 : 0;
  }
  return p;
}

/** ITU-R 601 luma weights, as torchvision's rgb_to_grayscale. */
export const LUMA = [0.299, 0.587, 0.114] as const;

/**
 * Hue shift by `turns` of a full circle, as a rotation of RGB space about the grey axis: a linear map
 * that keeps grey levels fixed (a close, differentiable stand-in for the HSV hue shift).
 * Row-major 3x3: out[c] = sum_k m[3c + k] * in[k].
 */
export function hueRotation(turns: number): number[] {
  const t = 2 * Math.PI * turns;
  const cos = Math.cos(t);
  const sin = Math.sin(t);
  const a = cos + (1 - cos) / 3;
  const b = (1 - cos) / 3 - sin / Math.sqrt(3);
  const c = (1 - cos) / 3 + sin / Math.sqrt(3);
  return [a, b, c, c, a, b, b, c, a];
}

function perSample(values: ArrayLike<number>): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from(values), [values.length, 1, 1, 1]);
}

/**
 * Luma of an RGB batch as one product [n*H*W, 3] x [3, k]: k = 1 gives the grey channel, k = 3 the grey
 * image in all three channels. A GEMM (OpenBLAS when native kernels are on) instead of splitting the
 * channel axis and tiling, which are slow strided passes on wasm.
 */
function grayOf(x: tf.Tensor4D, outChannels: 1 | 3 = 1): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const weights = tf.tensor2d(Array.from({ length: 3 * outChannels }, (_, i) => LUMA[Math.floor(i / outChannels)]), [3, outChannels]);
  return tf.reshape(tf.matMul(tf.reshape(x, [n * h * w, 3]), weights), [n, h, w, outChannels]) as tf.Tensor4D;
}

/**
 * Pixel boxes -> tf.image.cropAndResize's normalised [y1, x1, y2, x2] (pixel centres on the grid). A
 * flipped box swaps x1 and x2: cropAndResize then samples the mirrored positions, so a horizontal flip
 * after the crop costs nothing (instead of a reverse pass and a select).
 */
function normalisedBoxes(boxes: Array<{ top: number; left: number; h: number; w: number }>, srcH: number, srcW: number, flip?: ArrayLike<number>): tf.Tensor2D {
  const out = new Float32Array(boxes.length * 4);
  boxes.forEach((b, i) => {
    const x1 = b.left / (srcW - 1);
    const x2 = (b.left + b.w - 1) / (srcW - 1);
    out.set([b.top / (srcH - 1), flip?.[i] ? x2 : x1, (b.top + b.h - 1) / (srcH - 1), flip?.[i] ? x1 : x2], i * 4);
  });
  return tf.tensor2d(out, [boxes.length, 4]);
}

/** Apply drawn parameters to a batch [n, H, W, C] (C = 1 or 3). Returns a new tensor. */
export function applyAugment(images: tf.Tensor4D, p: AugmentParams): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, height, width, channels] = images.shape;
    if (n !== p.n || height !== p.height || width !== p.width) {
      throw new Error(`augment: parameters drawn for ${p.n}x${p.height}x${p.width}, images are ${n}x${height}x${width}`);
    }
    const boxInd = tf.range(0, n, 1, 'int32') as tf.Tensor1D;
    let x: tf.Tensor4D = images;
    // The flip rides on the last crop when there is one.
    const flipInCrop = p.crop !== undefined || p.pad !== undefined;
    if (p.crop) {
      x = tf.image.cropAndResize(x, normalisedBoxes(p.crop, height, width, p.pad ? undefined : p.flip), boxInd, [height, width], 'bilinear');
    }
    if (p.pad) {
      const k = p.pad.pad;
      const padded = tf.pad(x, [[0, 0], [k, k], [k, k], [0, 0]]);
      const boxes = Array.from({ length: n }, (_, i) => ({ top: p.pad!.dy[i], left: p.pad!.dx[i], h: height, w: width }));
      x = tf.image.cropAndResize(padded, normalisedBoxes(boxes, height + 2 * k, width + 2 * k, p.flip), boxInd, [height, width], 'bilinear');
    }
    if (!flipInCrop && p.flip.some((v) => v)) {
      x = tf.where(tf.broadcastTo(perSample(p.flip).cast('bool'), x.shape), tf.reverse(x, 2), x) as tf.Tensor4D;
    }
    const jittered = p.brightness.some((v) => v !== 1) || p.contrast.some((v) => v !== 1) || p.saturation.some((v) => v !== 1) || p.hue.some((v) => v !== 0);
    if (jittered) {
      x = tf.clipByValue(tf.mul(x, perSample(p.brightness)), 0, 1) as tf.Tensor4D;
      const gray = channels === 3 ? grayOf(x) : x;
      const mean = tf.mean(gray, [1, 2, 3], true);
      const c = perSample(p.contrast);
      x = tf.clipByValue(tf.add(tf.mul(x, c), tf.mul(mean, tf.sub(1, c))), 0, 1) as tf.Tensor4D;
      if (channels === 3) {
        const s = perSample(p.saturation);
        x = tf.clipByValue(tf.add(tf.mul(x, s), tf.mul(grayOf(x), tf.sub(1, s))), 0, 1) as tf.Tensor4D;
        // out[n, pix, c] = sum_k in[n, pix, k] * M_n[c, k]  ->  batched matmul with M_n transposed.
        const m = tf.tensor3d(Float32Array.from(Array.from(p.hue).flatMap((h) => hueRotation(h))), [n, 3, 3]);
        const flat = tf.reshape(x, [n, height * width, 3]) as tf.Tensor3D;
        x = tf.clipByValue(tf.reshape(tf.matMul(flat, m, false, true), [n, height, width, 3]), 0, 1) as tf.Tensor4D;
      }
    }
    if (channels === 3 && p.grayscale.some((v) => v)) {
      x = tf.where(tf.broadcastTo(perSample(p.grayscale).cast('bool'), x.shape), grayOf(x, 3), x) as tf.Tensor4D;
    }
    return x === images ? tf.clone(images) : x;
  });
}

/** Augment a batch: a pure function of (images, rng). */
export function augment(images: tf.Tensor4D, rng: Rng, cfg: AugmentConfig): tf.Tensor4D {
  const [n, height, width] = images.shape;
  return applyAugment(images, sampleAugmentParams(n, height, width, rng, cfg));
}
