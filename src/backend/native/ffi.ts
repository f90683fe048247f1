import { importOptional } from '../optional-import.js';

/**
 * The part of koffi (npm FFI; its prebuilt binary is the optional dependency
 * @koromix/koffi-linux-x64) that the native providers use. Declared here rather than imported from
 * koffi's own types so the project still builds when optional dependencies are omitted.
 *
 * Conventions of the bindings: handles and out-pointers are `uintptr_t` (pointer-sized integers, the
 * same ABI as `void *` on the 64-bit targets koffi supports), written by the library into a
 * BigUint64Array; data pointers are `void *`/`float *` parameters given a typed array, which koffi
 * passes without copying (a view of the wasm heap is computed on in place).
 */
export interface FfiFunction {
  (...args: unknown[]): unknown;
}

export interface FfiLibrary {
  func(definition: string): FfiFunction;
  unload?(): void;
}

export interface Ffi {
  load(path: string): FfiLibrary;
  version?: string;
}

let cached: Promise<Ffi | undefined> | undefined;

/** koffi, or undefined when it is not installed (npm install --omit=optional). */
export function loadFfi(): Promise<Ffi | undefined> {
  cached ??= importOptional<{ default?: Ffi } & Ffi>('koffi').then((mod) => (mod ? (mod.default ?? mod) : undefined));
  return cached;
}

/** A BigUint64Array(1) out-cell's value as a number handle (0 = null). */
export function handleOf(cell: BigUint64Array): bigint {
  return cell[0];
}

/**
 * Try each candidate file name or path in turn; returns the first library that loads and the name
 * that worked, or the last error message.
 */
export function loadFirst(ffi: Ffi, candidates: readonly string[]): { lib: FfiLibrary; path: string } | { error: string } {
  let error = 'no candidate paths';
  for (const path of candidates) {
    try {
      const lib = ffi.load(path);
      pin(ffi, path);
      return { lib, path };
    } catch (err) {
      error = err instanceof Error ? err.message.split('\n')[0] : String(err);
    }
  }
  return { error };
}

const RTLD_NOW = 0x2;
const RTLD_NODELETE = 0x1000;
let dlopen: FfiFunction | undefined;

/**
 * Keep a loaded library mapped until the process ends. koffi unloads a library when its last
 * reference is collected, which Node's environment teardown does at a natural exit: unloading
 * oneDNN while its OpenMP worker threads still exist crashed the process (SIGSEGV after main
 * returned). A second dlopen with RTLD_NODELETE makes the unload a no-op.
 */
function pin(ffi: Ffi, path: string): void {
  try {
    dlopen ??= ffi.load('libc.so.6').func('uintptr_t dlopen(const char *file, int mode)');
    dlopen(path, RTLD_NOW | RTLD_NODELETE);
  } catch {
    // Not glibc: nothing to pin with; unloading then behaves as the platform does.
  }
}
