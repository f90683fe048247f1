import * as tf from '@tensorflow/tfjs';
import { f32, size, type KernelArgs, type WasmHeap } from './heap.js';
import type { OpenBlas } from './openblas.js';

/**
 * BatchMatMul and _FusedMatMul on the wasm heap through OpenBLAS sgemm: one call per batch entry,
 * on views of the inputs and the output (no copy). Declines (returns undefined, so the wasm kernel
 * runs) for other dtypes, empty shapes, batch broadcasting other than "equal" or "one side 1", and
 * fused activations other than linear and relu or PReLU weights.
 */
interface Product {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  batchA: number;
  batchB: number;
  outShape: number[];
}

function plan(a: tf.TensorInfo, b: tf.TensorInfo, transA: boolean, transB: boolean): Product | undefined {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return undefined;
  const m = transA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb || m === 0 || n === 0 || k === 0) return undefined;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = size(outerA);
  const batchB = size(outerB);
  // Batch broadcasting: equal outer shapes, or one side a single matrix (outer dims all 1).
  let outer: number[];
  if (outerA.join() === outerB.join()) outer = outerA;
  else if (batchA === 1 && outerA.length <= outerB.length) outer = outerB;
  else if (batchB === 1 && outerB.length <= outerA.length) outer = outerA;
  else return undefined;
  return { transA, transB, m, n, k, batchA, batchB, outShape: [...outer, m, n] };
}

function multiply(blas: OpenBlas, heap: WasmHeap, a: tf.TensorInfo, b: tf.TensorInfo, p: Product): tf.TensorInfo {
  const out = heap.makeOutput(p.outShape, 'float32');
  const [A, B, C] = [f32(heap, a), f32(heap, b), f32(heap, out)];
  const { m, n, k } = p;
  const batches = Math.max(p.batchA, p.batchB);
  for (let i = 0; i < batches; i++) {
    const ia = p.batchA === 1 ? 0 : i;
    const ib = p.batchB === 1 ? 0 : i;
    blas.sgemm(p.transA, p.transB, m, n, k, 1, A.subarray(ia * m * k, (ia + 1) * m * k), p.transA ? m : k, B.subarray(ib * k * n, (ib + 1) * k * n), p.transB ? k : n, 0, C.subarray(i * m * n, (i + 1) * m * n), n);
  }
  return out;
}

export function batchMatMulNative(blas: OpenBlas, { inputs, backend, attrs }: KernelArgs): tf.TensorInfo | undefined {
  const { a, b } = inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const p = plan(a, b, transposeA, transposeB);
  return p && multiply(blas, backend as unknown as WasmHeap, a, b, p);
}

export function fusedMatMulNative(blas: OpenBlas, { inputs, backend, attrs }: KernelArgs): tf.TensorInfo | undefined {
  const { a, b, bias, preluActivationWeights } = inputs as unknown as { a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo; preluActivationWeights?: tf.TensorInfo };
  const { transposeA, transposeB, activation } = attrs as unknown as tf._FusedMatMulAttrs;
  if (preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) return undefined;
  const p = plan(a, b, transposeA, transposeB);
  if (!p) return undefined;
  const biasSize = bias ? size(bias.shape) : 0;
  if (bias && (bias.dtype !== 'float32' || (biasSize !== p.n && biasSize !== 1) || bias.shape.length > 1)) return undefined;
  const heap = backend as unknown as WasmHeap;
  const out = multiply(blas, heap, a, b, p);
  const C = f32(heap, out);
  if (bias) {
    const v = f32(heap, bias);
    for (let r = 0; r < C.length; r += p.n) for (let j = 0; j < p.n; j++) C[r + j] += v[biasSize === 1 ? 0 : j];
  }
  if (activation === 'relu') for (let i = 0; i < C.length; i++) if (C[i] < 0) C[i] = 0;
  return out;
}

/** RobustsimGram: x (n x d, or batches b x n x d) -> x x^T through ssyrk, upper triangle mirrored. */
export const GRAM_KERNEL = 'RobustsimGram';

export function gramNative(blas: OpenBlas, { inputs, backend }: KernelArgs): tf.TensorInfo {
  const { x } = inputs as unknown as { x: tf.TensorInfo };
  const rank = x.shape.length;
  const [n, d] = x.shape.slice(-2);
  const batches = rank === 3 ? x.shape[0] : 1;
  const heap = backend as unknown as WasmHeap;
  const out = heap.makeOutput(rank === 3 ? [batches, n, n] : [n, n], 'float32');
  const [X, G] = [f32(heap, x), f32(heap, out)];
  for (let q = 0; q < batches; q++) {
    const g = G.subarray(q * n * n, (q + 1) * n * n);
    if (d === 0) {
      g.fill(0);
      continue;
    }
    blas.ssyrkUpper(n, d, 1, X.subarray(q * n * d, (q + 1) * n * d), d, 0, g, n);
    for (let i = 1; i < n; i++) for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i];
  }
  return out;
}
