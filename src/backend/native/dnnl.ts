import { loadFirst, type Ffi, type FfiFunction } from './ffi.js';
import { dnnlCandidates } from './library-paths.js';

/**
 * oneDNN 2.x (Debian libdnnl2) through its C API (dnnl.h of v2.x: operation descriptors, then
 * primitive descriptors, then primitives). Memory descriptors are built from explicit strides, so the
 * primitives read and write tfjs' own layouts in place: activations NHWC, filters HWIO. The v2
 * descriptor structs are filled in by the library; we only hand it zeroed buffers larger than them.
 */

const STATUS = ['success', 'out_of_memory', 'invalid_arguments', 'unimplemented', 'iterator_ends', 'runtime_error', 'not_required'];
const F32 = 3;
const CPU_ENGINE = 1;
const STREAM_IN_ORDER = 1;
const DIMS = 12; // DNNL_MAX_NDIMS
const MD_BYTES = 4096; // > sizeof(dnnl_memory_desc_t) (about 1 KiB in v2)
const OP_DESC_BYTES = 65536; // > sizeof(dnnl_convolution_desc_t) (8 memory descriptors and the geometry)
const QUERY_IMPL_INFO_STR = 8;
const QUERY_MD: Record<number, number> = { 33: 131, 161: 132 }; // weights_md, diff_weights_md by argument id
const FORMAT_ANY = 1;
const MEMORY_ALLOCATE = 0xffffffffffffffffn; // DNNL_MEMORY_ALLOCATE: the library allocates the buffer

export const PROP = { forwardTraining: 64, forwardInference: 96, backward: 128, backwardData: 160, backwardWeights: 192 } as const;
/** dnnl_normalization_flags_t of v2.3+ (use_scale and use_shift: separate [C] vectors, not v2.0's packed scale_shift). */
export const BN_FLAGS = { useGlobalStats: 0x1, useScale: 0x8, useShift: 0x10 } as const;
export const ALG = { convolutionDirect: 1, eltwiseRelu: 31 } as const;
/** DNNL_ARG_* execution argument ids. */
export const ARG = { src: 1, dst: 17, weights: 33, bias: 41, mean: 49, variance: 50, scale: 51, shift: 52, diffSrc: 129, diffDst: 145, diffWeights: 161, diffBias: 169, diffScale: 255, diffShift: 256 } as const;

export class DnnlError extends Error {
  constructor(call: string, status: number) {
    super(`oneDNN ${call} failed: ${STATUS[status] ?? `status ${status}`}`);
    this.name = 'DnnlError';
  }
}

/** A tensor's logical dims and strides in elements (oneDNN's canonical order: N C H W, or O I H W). */
export interface Layout {
  dims: number[];
  strides: number[];
}

/** NHWC activations described in oneDNN's logical order (N, C, H, W). */
export function nhwc(n: number, h: number, w: number, c: number): Layout {
  return { dims: [n, c, h, w], strides: [h * w * c, 1, w * c, c] };
}

/** HWIO filters (tfjs' [KH, KW, Cin, Cout]) described in oneDNN's logical order (O, I, KH, KW). */
export function hwio(kh: number, kw: number, ci: number, co: number): Layout {
  return { dims: [co, ci, kh, kw], strides: [1, co, kw * ci * co, ci * co] };
}

export interface ConvGeometry {
  strides: [number, number];
  /** oneDNN dilation: 0 means none (tfjs' dilation minus one). */
  dilates: [number, number];
  padL: [number, number];
  padR: [number, number];
}

/** A created primitive with one memory object per argument; run() points them at the arrays and executes. */
export interface DnnlPrimitive {
  /** The implementation oneDNN chose (e.g. 'jit:avx2'), for the profile and the tests. */
  impl: string;
  run(buffers: Float32Array[]): void;
}

export interface Dnnl {
  path: string;
  version: string;
  /** 'OpenMP', 'TBB', 'sequential', 'threadpool' (from dnnl_version()'s cpu_runtime). */
  runtime: string;
  convForward(src: Layout, weights: Layout, bias: Layout | null, dst: Layout, geom: ConvGeometry, relu: boolean): DnnlPrimitive;
  convBackwardData(diffSrc: Layout, weights: Layout, diffDst: Layout, geom: ConvGeometry): DnnlPrimitive;
  convBackwardWeights(src: Layout, diffWeights: Layout, diffDst: Layout, geom: ConvGeometry): DnnlPrimitive;
  /**
   * Training-mode batch normalisation over every dim but C of `data` (src and dst share the layout):
   * buffers src, scale [C], shift [C] -> dst, mean [C], variance [C] (biased, as tf.moments).
   */
  batchNormForwardTraining(data: Layout, epsilon: number): DnnlPrimitive;
  /**
   * Inference-mode batch normalisation with given statistics (tfjs' FusedBatchNorm): buffers src,
   * mean [C], variance [C], scale [C], shift [C] -> dst.
   */
  batchNormForwardInference(data: Layout, epsilon: number): DnnlPrimitive;
  /**
   * Its full derivative (through the batch statistics): buffers src, mean, variance, diff_dst, scale,
   * shift -> diff_src, diff_scale, diff_shift. oneDNN 2.x counts shift among the inputs of the
   * backward pass with use_shift although its value does not enter the derivative.
   */
  batchNormBackward(data: Layout, epsilon: number): DnnlPrimitive;
  /** ReLU's derivative from its input: buffers src, diff_dst -> diff_src (dense, `n` elements). */
  reluBackward(n: number): DnnlPrimitive;
  /** The OpenMP team size of the calling thread's next parallel regions (libgomp), when available. */
  setThreads(n: number): boolean;
  threads(): number | undefined;
}

/**
 * Run `fn` with one OpenMP thread on the calling thread (oneDNN fixes a primitive's thread count when
 * it is created, so wrap both creation and execution). For the memory-bound primitives (batch norm,
 * eltwise): they take 0.2-2 ms per call at batch 128 on one thread, while their thread barriers cost
 * 10-25 ms per call with 2 threads on a loaded 2-core machine (a barrier waits for a descheduled
 * thread; DNNL_VERBOSE exec times at load average 4-5).
 */
export function onOneThread<T>(dnnl: Pick<Dnnl, 'threads' | 'setThreads'>, fn: () => T): T {
  const threads = dnnl.threads();
  if (threads === undefined || threads === 1) return fn();
  dnnl.setThreads(1);
  try {
    return fn();
  } finally {
    dnnl.setThreads(threads);
  }
}

const RUNTIMES: Record<number, string> = { 0: 'none', 1: 'sequential', 2: 'OpenMP', 4: 'TBB', 8: 'threadpool', 16: 'DPC++' };

export function bindDnnl(ffi: Ffi): Dnnl | { error: string } {
  const found = loadFirst(ffi, dnnlCandidates());
  if ('error' in found) return found;
  const { lib, path } = found;
  let f: Record<string, FfiFunction>;
  try {
    f = {
      version: lib.func('const void *dnnl_version()'),
      engineCreate: lib.func('int dnnl_engine_create(_Out_ uint64_t *engine, int kind, size_t index)'),
      streamCreate: lib.func('int dnnl_stream_create(_Out_ uint64_t *stream, uintptr_t engine, unsigned int flags)'),
      mdByStrides: lib.func('int dnnl_memory_desc_init_by_strides(void *md, int ndims, const int64_t *dims, int dataType, const int64_t *strides)'),
      convFwd: lib.func('int dnnl_dilated_convolution_forward_desc_init(void *desc, int prop, int alg, const void *src, const void *weights, const void *bias, const void *dst, const int64_t *strides, const int64_t *dilates, const int64_t *padL, const int64_t *padR)'),
      convBwdData: lib.func('int dnnl_dilated_convolution_backward_data_desc_init(void *desc, int alg, const void *diffSrc, const void *weights, const void *diffDst, const int64_t *strides, const int64_t *dilates, const int64_t *padL, const int64_t *padR)'),
      bnFwd: lib.func('int dnnl_batch_normalization_forward_desc_init(void *desc, int prop, const void *dataDesc, float epsilon, unsigned int flags)'),
      bnBwd: lib.func('int dnnl_batch_normalization_backward_desc_init(void *desc, int prop, const void *diffDataDesc, const void *dataDesc, float epsilon, unsigned int flags)'),
      eltwiseFwd: lib.func('int dnnl_eltwise_forward_desc_init(void *desc, int prop, int alg, const void *dataDesc, float alpha, float beta)'),
      eltwiseBwd: lib.func('int dnnl_eltwise_backward_desc_init(void *desc, int alg, const void *diffDataDesc, const void *dataDesc, float alpha, float beta)'),
      convBwdWeights: lib.func('int dnnl_dilated_convolution_backward_weights_desc_init(void *desc, int alg, const void *src, const void *diffWeights, const void *diffBias, const void *diffDst, const int64_t *strides, const int64_t *dilates, const int64_t *padL, const int64_t *padR)'),
      pdCreate: lib.func('int dnnl_primitive_desc_create(_Out_ uint64_t *pd, const void *opDesc, uintptr_t attr, uintptr_t engine, uintptr_t hint)'),
      pdQueryStr: lib.func('int dnnl_primitive_desc_query(uintptr_t pd, int what, int index, _Out_ const char **result)'),
      primitiveCreate: lib.func('int dnnl_primitive_create(_Out_ uint64_t *primitive, uintptr_t pd)'),
      memoryCreate: lib.func('int dnnl_memory_create(_Out_ uint64_t *memory, const void *md, uintptr_t engine, uintptr_t handle)'),
      setHandle: lib.func('int dnnl_memory_set_data_handle(uintptr_t memory, void *handle)'),
      execute: lib.func('int dnnl_primitive_execute(uintptr_t primitive, uintptr_t stream, int nargs, const void *args)'),
      streamWait: lib.func('int dnnl_stream_wait(uintptr_t stream)'),
      attrCreate: lib.func('int dnnl_primitive_attr_create(_Out_ uint64_t *attr)'),
      postOpsCreate: lib.func('int dnnl_post_ops_create(_Out_ uint64_t *postOps)'),
      appendEltwise: lib.func('int dnnl_post_ops_append_eltwise(uintptr_t postOps, float scale, int alg, float alpha, float beta)'),
      attrSetPostOps: lib.func('int dnnl_primitive_attr_set_post_ops(uintptr_t attr, uintptr_t postOps)'),
      mdByTag: lib.func('int dnnl_memory_desc_init_by_tag(void *md, int ndims, const int64_t *dims, int dataType, int tag)'),
      queryMd: lib.func('uintptr_t dnnl_primitive_desc_query_md(uintptr_t pd, int what, int index)'),
      reorderPd: lib.func('int dnnl_reorder_primitive_desc_create(_Out_ uint64_t *pd, uintptr_t srcMd, uintptr_t srcEngine, uintptr_t dstMd, uintptr_t dstEngine, uintptr_t attr)'),
      memoryCreateAt: lib.func('int dnnl_memory_create(_Out_ uint64_t *memory, uintptr_t md, uintptr_t engine, uintptr_t handle)'),
    };
  } catch (err) {
    return { error: `${path} does not have the oneDNN 2.x C API (${err instanceof Error ? err.message : String(err)})` };
  }
  const ok = (call: string, status: unknown) => {
    if (status !== 0) throw new DnnlError(call, Number(status));
  };
  const out = () => new BigUint64Array(1);

  // dnnl_version_t: int major, minor, patch; const char *hash; unsigned cpu_runtime, gpu_runtime.
  const versionBytes = new DataView(koffiView(ffi, f.version(), 32));
  const version = `${versionBytes.getInt32(0, true)}.${versionBytes.getInt32(4, true)}.${versionBytes.getInt32(8, true)}`;
  const runtime = RUNTIMES[versionBytes.getUint32(24, true)] ?? `runtime ${versionBytes.getUint32(24, true)}`;
  if (!version.startsWith('2.')) return { error: `${path} is oneDNN ${version}; robustsim binds the 2.x C API (Debian libdnnl2)` };

  const cell = out();
  ok('dnnl_engine_create', f.engineCreate(cell, CPU_ENGINE, 0));
  const engine = cell[0];
  ok('dnnl_stream_create', f.streamCreate(cell, engine, STREAM_IN_ORDER));
  const stream = cell[0];

  const dims = (v: readonly number[]) => {
    const a = new BigInt64Array(DIMS);
    v.forEach((x, i) => (a[i] = BigInt(x)));
    return a;
  };
  const addressOf = (buf: Uint8Array) => (ffi as unknown as { address(v: unknown): bigint }).address(buf);
  /** Filters in whatever blocked layout oneDNN prefers for the primitive (format_tag_any). */
  const anyMd = (layout: Layout) => {
    const buf = new Uint8Array(MD_BYTES);
    ok('dnnl_memory_desc_init_by_tag', f.mdByTag(buf, layout.dims.length, dims(layout.dims), F32, FORMAT_ANY));
    return buf;
  };
  const md = (layout: Layout) => {
    const buf = new Uint8Array(MD_BYTES);
    ok('dnnl_memory_desc_init_by_strides', f.mdByStrides(buf, layout.dims.length, dims(layout.dims), F32, dims(layout.strides)));
    return buf;
  };
  const pd = (opDesc: Uint8Array, attr: bigint, hint: bigint) => {
    const c = out();
    ok('dnnl_primitive_desc_create', f.pdCreate(c, opDesc, attr, engine, hint));
    return c[0];
  };
  const implOf = (p: bigint) => {
    const c: unknown[] = [null];
    if (f.pdQueryStr(p, QUERY_IMPL_INFO_STR, 0, c) !== 0 || typeof c[0] !== 'string') return 'unknown';
    return c[0];
  };
  /**
   * Build the primitive and one memory object per argument. A staged argument (the filters) was
   * described with format_tag_any: the primitive then works on its own blocked copy, reordered from
   * (inputs) or to (outputs) the caller's layout around each execution; the filters are small, and
   * the blocked layout lets oneDNN pick its direct JIT kernels instead of im2col + GEMM.
   */
  type Arg = { id: number; user: Uint8Array; staged?: 'in' | 'out' };
  const primitive = (p: bigint, args: Arg[]): DnnlPrimitive => {
    const c = out();
    ok('dnnl_primitive_create', f.primitiveCreate(c, p));
    const prim = c[0];
    const memories = args.map(({ user }) => {
      const m = out();
      ok('dnnl_memory_create', f.memoryCreate(m, user, engine, 0));
      return m[0];
    });
    const before: (() => void)[] = [];
    const after: (() => void)[] = [];
    const bound = args.map(({ id, staged }, i) => {
      if (!staged) return memories[i];
      const internalMd = f.queryMd(p, QUERY_MD[id], 0) as bigint;
      const m = out();
      ok('dnnl_memory_create', f.memoryCreateAt(m, internalMd, engine, MEMORY_ALLOCATE));
      const internal = m[0];
      const userMd = addressOf(args[i].user);
      const [from, to, fromMd, toMd] = staged === 'in' ? [memories[i], internal, userMd, internalMd] : [internal, memories[i], internalMd, userMd];
      const r = out();
      ok('dnnl_reorder_primitive_desc_create', f.reorderPd(r, fromMd, engine, toMd, engine, 0));
      const rp = out();
      ok('dnnl_primitive_create', f.primitiveCreate(rp, r[0]));
      const reorderArgs = execArgs([[ARG.src, from], [ARG.dst, to]]);
      const step = () => ok('dnnl_primitive_execute', f.execute(rp[0], stream, 2, reorderArgs));
      (staged === 'in' ? before : after).push(step);
      return internal;
    });
    const primArgs = execArgs(args.map(({ id }, i) => [id, bound[i]]));
    return {
      impl: implOf(p),
      run(buffers) {
        if (buffers.length !== memories.length) throw new Error(`oneDNN primitive expects ${memories.length} buffers, got ${buffers.length}`);
        // Handles are set and used in one synchronous block: no wasm allocation can move the heap in between.
        for (let i = 0; i < memories.length; i++) ok('dnnl_memory_set_data_handle', f.setHandle(memories[i], buffers[i]));
        for (const step of before) step();
        ok('dnnl_primitive_execute', f.execute(prim, stream, memories.length, primArgs));
        for (const step of after) step();
        ok('dnnl_stream_wait', f.streamWait(stream));
      },
    };
  };
  /** dnnl_exec_arg_t { int arg; dnnl_memory_t memory; }: 16 bytes each on 64-bit targets. */
  const execArgs = (pairs: [number, bigint][]) => {
    const bytes = new Uint8Array(16 * pairs.length);
    const view = new DataView(bytes.buffer);
    pairs.forEach(([id, memory], i) => {
      view.setInt32(16 * i, id, true);
      view.setBigUint64(16 * i + 8, memory, true);
    });
    return bytes;
  };
  const geometry = (g: ConvGeometry) => [dims(g.strides), dims(g.dilates), dims(g.padL), dims(g.padR)] as const;

  const fwdDesc = (src: Uint8Array, w: Uint8Array, bias: Uint8Array | null, dst: Uint8Array, g: ConvGeometry) => {
    const desc = new Uint8Array(OP_DESC_BYTES);
    ok('dnnl_dilated_convolution_forward_desc_init', f.convFwd(desc, PROP.forwardTraining, ALG.convolutionDirect, src, w, bias, dst, ...geometry(g)));
    return desc;
  };

  const bnDesc = (prop: number, data: Uint8Array, epsilon: number, extraFlags = 0) => {
    const desc = new Uint8Array(OP_DESC_BYTES);
    ok('dnnl_batch_normalization_forward_desc_init', f.bnFwd(desc, prop, data, epsilon, BN_FLAGS.useScale | BN_FLAGS.useShift | extraFlags));
    return desc;
  };
  /** The per-channel vectors (scale, shift, statistics) of a normalisation over `data`. */
  const channels = (data: Layout): Layout => ({ dims: [data.dims[1]], strides: [1] });

  let omp: { set: FfiFunction; get: FfiFunction } | undefined;
  if (runtime === 'OpenMP') {
    const gomp = loadFirst(ffi, ['libgomp.so.1', 'libiomp5.so']);
    if (!('error' in gomp)) {
      try {
        omp = { set: gomp.lib.func('void omp_set_num_threads(int n)'), get: gomp.lib.func('int omp_get_max_threads()') };
      } catch {
        omp = undefined;
      }
    }
  }

  return {
    path,
    version,
    runtime,
    convForward(src, weights, bias, dst, g, relu) {
      const [s, w, wAny, b, d] = [md(src), md(weights), anyMd(weights), bias ? md(bias) : null, md(dst)];
      let attr = 0n;
      if (relu) {
        const a = out();
        ok('dnnl_primitive_attr_create', f.attrCreate(a));
        const po = out();
        ok('dnnl_post_ops_create', f.postOpsCreate(po));
        ok('dnnl_post_ops_append_eltwise', f.appendEltwise(po[0], 1, ALG.eltwiseRelu, 0, 0));
        ok('dnnl_primitive_attr_set_post_ops', f.attrSetPostOps(a[0], po[0]));
        attr = a[0];
      }
      const p = pd(fwdDesc(s, wAny, b, d, g), attr, 0n);
      const args: Arg[] = [{ id: ARG.src, user: s }, { id: ARG.weights, user: w, staged: 'in' }, { id: ARG.dst, user: d }];
      if (b) args.splice(2, 0, { id: ARG.bias, user: b });
      return primitive(p, args);
    },
    convBackwardData(diffSrc, weights, diffDst, g) {
      const [s, w, wAny, d] = [md(diffSrc), md(weights), anyMd(weights), md(diffDst)];
      const hint = pd(fwdDesc(s, wAny, null, d, g), 0n, 0n);
      const desc = new Uint8Array(OP_DESC_BYTES);
      ok('dnnl_dilated_convolution_backward_data_desc_init', f.convBwdData(desc, ALG.convolutionDirect, s, wAny, d, ...geometry(g)));
      return primitive(pd(desc, 0n, hint), [{ id: ARG.diffDst, user: d }, { id: ARG.weights, user: w, staged: 'in' }, { id: ARG.diffSrc, user: s }]);
    },
    convBackwardWeights(src, diffWeights, diffDst, g) {
      const [s, w, wAny, d] = [md(src), md(diffWeights), anyMd(diffWeights), md(diffDst)];
      const hint = pd(fwdDesc(s, wAny, null, d, g), 0n, 0n);
      const desc = new Uint8Array(OP_DESC_BYTES);
      ok('dnnl_dilated_convolution_backward_weights_desc_init', f.convBwdWeights(desc, ALG.convolutionDirect, s, wAny, null, d, ...geometry(g)));
      return primitive(pd(desc, 0n, hint), [{ id: ARG.src, user: s }, { id: ARG.diffDst, user: d }, { id: ARG.diffWeights, user: w, staged: 'out' }]);
    },
    batchNormForwardTraining(data, epsilon) {
      const [x, c] = [md(data), md(channels(data))];
      const p = pd(bnDesc(PROP.forwardTraining, x, epsilon), 0n, 0n);
      return primitive(p, [{ id: ARG.src, user: x }, { id: ARG.scale, user: c }, { id: ARG.shift, user: c }, { id: ARG.dst, user: x }, { id: ARG.mean, user: c }, { id: ARG.variance, user: c }]);
    },
    batchNormForwardInference(data, epsilon) {
      const [x, c] = [md(data), md(channels(data))];
      const p = pd(bnDesc(PROP.forwardInference, x, epsilon, BN_FLAGS.useGlobalStats), 0n, 0n);
      return primitive(p, [{ id: ARG.src, user: x }, { id: ARG.mean, user: c }, { id: ARG.variance, user: c }, { id: ARG.scale, user: c }, { id: ARG.shift, user: c }, { id: ARG.dst, user: x }]);
    },
    batchNormBackward(data, epsilon) {
      const [x, c] = [md(data), md(channels(data))];
      const hint = pd(bnDesc(PROP.forwardTraining, x, epsilon), 0n, 0n);
      const desc = new Uint8Array(OP_DESC_BYTES);
      ok('dnnl_batch_normalization_backward_desc_init', f.bnBwd(desc, PROP.backward, x, x, epsilon, BN_FLAGS.useScale | BN_FLAGS.useShift));
      return primitive(pd(desc, 0n, hint), [
        { id: ARG.src, user: x },
        { id: ARG.mean, user: c },
        { id: ARG.variance, user: c },
        { id: ARG.diffDst, user: x },
        { id: ARG.scale, user: c },
        { id: ARG.shift, user: c },
        { id: ARG.diffSrc, user: x },
        { id: ARG.diffScale, user: c },
        { id: ARG.diffShift, user: c },
      ]);
    },
    reluBackward(n) {
      const x = md({ dims: [n], strides: [1] });
      const fwd = new Uint8Array(OP_DESC_BYTES);
      ok('dnnl_eltwise_forward_desc_init', f.eltwiseFwd(fwd, PROP.forwardTraining, ALG.eltwiseRelu, x, 0, 0));
      const hint = pd(fwd, 0n, 0n);
      const desc = new Uint8Array(OP_DESC_BYTES);
      ok('dnnl_eltwise_backward_desc_init', f.eltwiseBwd(desc, ALG.eltwiseRelu, x, x, 0, 0));
      return primitive(pd(desc, 0n, hint), [{ id: ARG.src, user: x }, { id: ARG.diffDst, user: x }, { id: ARG.diffSrc, user: x }]);
    },
    setThreads(n) {
      if (!omp) return false;
      omp.set(n);
      return true;
    },
    threads: () => (omp ? Number(omp.get()) : undefined),
  };
}

interface KoffiViews {
  view(ptr: unknown, len: number): ArrayBuffer;
}

/** `len` bytes at a pointer returned by the library, copied out. */
function koffiView(ffi: Ffi, ptr: unknown, len: number): ArrayBuffer {
  return (ffi as unknown as KoffiViews).view(ptr, len).slice(0);
}
