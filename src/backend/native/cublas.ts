import { InputError } from '../../errors.js';
import { CUBLAS_LIB_ENV, CUDART_LIB_ENV, cudaCandidates } from './cuda-paths.js';
import { loadFfi, loadFirst, type FfiFunction } from './ffi.js';

/**
 * cuBLAS for the CKA engines on NVIDIA machines: Grams (ssyrk) and products (sgemm) of float32
 * panels on the GPU, the results copied back to the host where the engines accumulate in float64.
 * Device buffers are kept and grown as needed. Training and attacks stay on tfjs (`--backend webgpu`
 * is the tfjs GPU path).
 *
 *   ROBUSTSIM_CUBLAS=auto     (default) use cuBLAS when it loads and a CUDA device is present
 *   ROBUSTSIM_CUBLAS=off      never load it
 *   ROBUSTSIM_CUBLAS=require  fail with the reason when it cannot be used
 *
 * cuBLAS is column-major: a row-major X (n x d) is the column-major X^T (d x n, ld d), so X X^T is
 * syrk with op T and a row-major A B (n x k times k x m) is the column-major B^T A^T.
 */
export const CUBLAS_ENV = 'ROBUSTSIM_CUBLAS';
export type CublasMode = 'auto' | 'off' | 'require';

const HOST_TO_DEVICE = 1;
const DEVICE_TO_HOST = 2;
const OP_N = 0;
const OP_T = 1;
const FILL_UPPER = 1;

export interface Cublas {
  cublasPath: string;
  cudartPath: string;
  devices: number;
  /** x (n x d, row-major) -> x x^T (n x n, both triangles). */
  gram(x: Float32Array, n: number, d: number): Float32Array;
  /** a (n x k) b (k x m), row-major -> n x m. */
  product(a: Float32Array, b: Float32Array, n: number, k: number, m: number): Float32Array;
}

export type CublasStatus = { cublas: Cublas } | { error: string };

let state: Promise<CublasStatus> | undefined;

export function parseCublasMode(raw: string | undefined): CublasMode {
  const v = (raw ?? 'auto').trim() || 'auto';
  if (v !== 'auto' && v !== 'off' && v !== 'require') throw new InputError(`${CUBLAS_ENV}: expected one of auto, off, require, got '${v}'`);
  return v;
}

/** Load cuBLAS once per thread; with 'require' a failure is an InputError naming the reason. */
export function initCublas(mode: CublasMode = parseCublasMode(process.env[CUBLAS_ENV])): Promise<CublasStatus> {
  state ??= (mode === 'off' ? Promise.resolve({ error: `${CUBLAS_ENV}=off` }) : loadCublas()).then((s) => {
    if (mode === 'require' && 'error' in s) {
      throw new InputError(`${CUBLAS_ENV}=require: cuBLAS cannot be used: ${s.error}. On an NVIDIA machine install the CUDA toolkit or PyTorch's CUDA wheels, or point ${CUBLAS_LIB_ENV} and ${CUDART_LIB_ENV} at libcublas.so and libcudart.so`);
    }
    return s;
  });
  return state;
}

/** The loaded provider, or undefined (not initialised, off, or unavailable). */
export async function cublasProvider(): Promise<Cublas | undefined> {
  const s = await (state ?? Promise.resolve({ error: 'not initialised' } as CublasStatus));
  return 'cublas' in s ? s.cublas : undefined;
}

let ready: Cublas | undefined;
/** Synchronous access for the engines' hooks (set once initCublas has resolved). */
export function loadedCublas(): Cublas | undefined {
  return ready;
}

async function loadCublas(): Promise<CublasStatus> {
  const ffi = await loadFfi().catch(() => undefined);
  if (!ffi) return { error: 'koffi is not installed' };
  const tried = (c: string[]) => c.join(', ');
  const rtNames = cudaCandidates('cudart');
  const rt = loadFirst(ffi, rtNames);
  if ('error' in rt) return { error: `libcudart not found (tried ${tried(rtNames)})` };
  let r: Record<string, FfiFunction>;
  try {
    r = {
      deviceCount: rt.lib.func('int cudaGetDeviceCount(_Out_ int *count)'),
      errorString: rt.lib.func('const char *cudaGetErrorString(int error)'),
      malloc: rt.lib.func('int cudaMalloc(_Out_ uint64_t *ptr, size_t size)'),
      free: rt.lib.func('int cudaFree(uintptr_t ptr)'),
      toDevice: rt.lib.func('int cudaMemcpy(uintptr_t dst, const void *src, size_t count, int kind)'),
      toHost: rt.lib.func('int cudaMemcpy(void *dst, uintptr_t src, size_t count, int kind)'),
    };
  } catch (err) {
    return { error: `${rt.path} lacks an expected CUDA runtime function (${err instanceof Error ? err.message : String(err)})` };
  }
  // The device first: on a machine without a GPU that is the reason worth reporting.
  const count = new Int32Array(1);
  const status = Number(r.deviceCount(count));
  if (status !== 0) return { error: `no NVIDIA GPU usable through ${rt.path}: cudaGetDeviceCount: ${String(r.errorString(status))}` };
  if (count[0] < 1) return { error: `no NVIDIA GPU (cudaGetDeviceCount = 0 through ${rt.path})` };
  const blNames = cudaCandidates('cublas');
  const bl = loadFirst(ffi, blNames);
  if ('error' in bl) return { error: `libcublas not found (tried ${tried(blNames)})` };
  let f: Record<string, FfiFunction>;
  try {
    f = {
      ...r,
      create: bl.lib.func('int cublasCreate_v2(_Out_ uint64_t *handle)'),
      syrk: bl.lib.func('int cublasSsyrk_v2(uintptr_t handle, int uplo, int trans, int n, int k, const float *alpha, uintptr_t a, int lda, const float *beta, uintptr_t c, int ldc)'),
      gemm: bl.lib.func('int cublasSgemm_v2(uintptr_t handle, int transa, int transb, int m, int n, int k, const float *alpha, uintptr_t a, int lda, uintptr_t b, int ldb, const float *beta, uintptr_t c, int ldc)'),
    };
  } catch (err) {
    return { error: `${bl.path} lacks an expected cuBLAS function (${err instanceof Error ? err.message : String(err)})` };
  }
  const cuda = (call: string, s: unknown) => {
    if (s !== 0) throw new Error(`CUDA ${call} failed: ${String(f.errorString(Number(s)))}`);
  };
  const blas = (call: string, s: unknown) => {
    if (s !== 0) throw new Error(`cuBLAS ${call} failed with status ${String(s)}`);
  };
  const cell = new BigUint64Array(1);
  blas('cublasCreate', f.create(cell));
  const handle = cell[0];
  const one = new Float32Array([1]);
  const zero = new Float32Array([0]);
  // Device buffers by role, grown to the largest request so far.
  const buffers: { ptr: bigint; bytes: number }[] = [];
  const buffer = (slot: number, bytes: number): bigint => {
    const b = buffers[slot];
    if (b && b.bytes >= bytes) return b.ptr;
    if (b) cuda('cudaFree', f.free(b.ptr));
    cuda('cudaMalloc', f.malloc(cell, Math.max(bytes, 4)));
    buffers[slot] = { ptr: cell[0], bytes };
    return cell[0];
  };
  const cublas: Cublas = {
    cublasPath: bl.path,
    cudartPath: rt.path,
    devices: count[0],
    gram(x, n, d) {
      const dx = buffer(0, 4 * n * d);
      const dc = buffer(2, 4 * n * n);
      cuda('cudaMemcpy', f.toDevice(dx, x.subarray(0, n * d), 4 * n * d, HOST_TO_DEVICE));
      blas('cublasSsyrk', f.syrk(handle, FILL_UPPER, OP_T, n, d, one, dx, d, zero, dc, n));
      const g = new Float32Array(n * n);
      cuda('cudaMemcpy', f.toHost(g, dc, 4 * n * n, DEVICE_TO_HOST));
      // Column-major upper = row-major lower: mirror it into the other triangle.
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) g[i * n + j] = g[j * n + i];
      return g;
    },
    product(a, b, n, k, m) {
      const da = buffer(0, 4 * n * k);
      const db = buffer(1, 4 * k * m);
      const dc = buffer(2, 4 * n * m);
      cuda('cudaMemcpy', f.toDevice(da, a.subarray(0, n * k), 4 * n * k, HOST_TO_DEVICE));
      cuda('cudaMemcpy', f.toDevice(db, b.subarray(0, k * m), 4 * k * m, HOST_TO_DEVICE));
      // Row-major C = A B is column-major C^T = B^T A^T: gemm(N, N, m, n, k, B, ld m, A, ld k).
      blas('cublasSgemm', f.gemm(handle, OP_N, OP_N, m, n, k, one, db, m, da, k, zero, dc, m));
      const c = new Float32Array(n * m);
      cuda('cudaMemcpy', f.toHost(c, dc, 4 * n * m, DEVICE_TO_HOST));
      return c;
    },
  };
  ready = cublas;
  return { cublas };
}
