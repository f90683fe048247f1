import { loadFirst, type Ffi, type FfiFunction } from './ffi.js';
import { openblasCandidates } from './library-paths.js';

/** CBLAS enum values (cblas.h). */
export const CBLAS = { rowMajor: 101, noTrans: 111, trans: 112, upper: 121, lower: 122 } as const;

/**
 * OpenBLAS through koffi: single-precision GEMM and SYRK on float32 arrays (typed-array arguments are
 * passed without copying, so views of the wasm heap work in place), and its thread control.
 * blasint is 32-bit in Debian's build (no INTERFACE64).
 */
export interface OpenBlas {
  path: string;
  version: string;
  /** openblas_get_corename(): the kernel set chosen for this CPU, e.g. 'Zen', 'Haswell', 'SkylakeX'. */
  core: string;
  config: string;
  /** C[M x N] = alpha op(A) op(B) + beta C, row-major; A, B, C are views (their byteOffset is honoured). */
  sgemm(transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number, a: Float32Array, lda: number, b: Float32Array, ldb: number, beta: number, c: Float32Array, ldc: number): void;
  /** The upper triangle of C[N x N] = alpha A A^T + beta C (A is N x K, row-major). */
  ssyrkUpper(n: number, k: number, alpha: number, a: Float32Array, lda: number, beta: number, c: Float32Array, ldc: number): void;
  setThreads(n: number): void;
  threads(): number;
}

export function bindOpenBlas(ffi: Ffi): OpenBlas | { error: string } {
  const found = loadFirst(ffi, openblasCandidates());
  if ('error' in found) return found;
  const { lib, path } = found;
  let f: Record<string, FfiFunction>;
  try {
    f = {
      sgemm: lib.func('void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)'),
      ssyrk: lib.func('void cblas_ssyrk(int order, int uplo, int trans, int n, int k, float alpha, const float *a, int lda, float beta, float *c, int ldc)'),
      setThreads: lib.func('void openblas_set_num_threads(int n)'),
      threads: lib.func('int openblas_get_num_threads()'),
      core: lib.func('const char *openblas_get_corename()'),
      config: lib.func('const char *openblas_get_config()'),
    };
  } catch (err) {
    return { error: `${path} is not OpenBLAS (${err instanceof Error ? err.message : String(err)})` };
  }
  const config = String(f.config());
  return {
    path,
    version: /OpenBLAS\s+([\d.]+)/.exec(config)?.[1] ?? 'unknown',
    core: String(f.core()),
    config,
    sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
      f.sgemm(CBLAS.rowMajor, transA ? CBLAS.trans : CBLAS.noTrans, transB ? CBLAS.trans : CBLAS.noTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    },
    ssyrkUpper(n, k, alpha, a, lda, beta, c, ldc) {
      f.ssyrk(CBLAS.rowMajor, CBLAS.upper, CBLAS.noTrans, n, k, alpha, a, lda, beta, c, ldc);
    },
    setThreads: (n) => void f.setThreads(n),
    threads: () => Number(f.threads()),
  };
}
