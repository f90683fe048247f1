import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { InputError } from '../errors.js';
import { installBatchNormGradients } from './batchnorm-grad.js';
import { installLazyConvGradients } from './conv-lazy-grad.js';
import { initCublas, initNative, loadedCublas, registerNativeKernels, describeNative } from './native/index.js';
import { importOptional } from './optional-import.js';
import { installReluGradient } from './relu-grad.js';
import { registerWasmGradientKernels } from './wasm-kernels.js';
import { prepareWebgpu } from './webgpu.js';

export { registerWasmGradientKernels } from './wasm-kernels.js';
export { parseWebgpuOptions, WEBGPU_OPTIONS_ENV } from './webgpu.js';
export * as native from './native/index.js';

/**
 * Choosing and starting the tfjs backend. Prints nothing: the CLI reports the backend.
 *   auto        tensorflow when @tensorflow/tfjs-node(-gpu) is installed, else wasm
 *   tensorflow  libtensorflow through @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node (optional peers)
 *   wasm        XNNPACK in WebAssembly, one core, plus our gradient kernels (the default on CPU)
 *   webgpu      WebGPU through Dawn (npm `webgpu`), see webgpu.ts for ROBUSTSIM_WEBGPU_OPTIONS
 *   cpu         tfjs' pure-JS reference backend: every kernel, very slow; for tests on tiny shapes
 */
export type BackendChoice = 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'webgpu';

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'wasm', 'cpu', 'tensorflow', 'webgpu'];

const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

const require = createRequire(import.meta.url);

/** Per tfjs backend name: what it took to make it available (done once per process). */
const prepared = new Map<string, { detail: string }>();
let chosen: { choice: BackendChoice; name: string } | undefined;
let queue: Promise<unknown> = Promise.resolve();

/**
 * Select and start a backend; resolves to the tfjs backend name actually in use (tf.getBackend()).
 * Idempotent: calling again with the same choice while that backend is active does nothing.
 * Calls are serialised, so concurrent callers cannot interleave backend switches.
 */
export function initBackend(choice: BackendChoice = 'auto'): Promise<string> {
  const run = queue.then(() => switchTo(choice));
  queue = run.catch(() => undefined);
  return run;
}

async function switchTo(choice: BackendChoice): Promise<string> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new InputError(`--backend: unknown backend '${String(choice)}' (expected one of: ${BACKEND_CHOICES.join(', ')})`);
  }
  if (chosen?.choice === choice && tfBackendName() === chosen.name) return chosen.name;
  installLazyConvGradients();
  installBatchNormGradients();
  installReluGradient();

  const name = await prepare(choice);
  if (tfBackendName() !== name) {
    const ok = await tf.setBackend(name);
    if (!ok) throw new Error(`tfjs could not initialise the '${name}' backend (see the warning above)`);
  }
  await tf.ready();
  const active = tf.getBackend();
  chosen = { choice, name: active };
  return active;
}

/** tf.getBackend() without its side effect of initialising a default backend. */
function tfBackendName(): string | undefined {
  return (tf.engine() as unknown as { backendName?: string }).backendName;
}

/** Make the backend for `choice` available; returns its tfjs name. */
async function prepare(choice: BackendChoice): Promise<string> {
  switch (choice) {
    case 'auto':
      return (await prepareTensorflow()) ? 'tensorflow' : prepareWasm();
    case 'tensorflow': {
      if (await prepareTensorflow()) return 'tensorflow';
      throw new InputError(
        `--backend tensorflow: neither ${TFJS_NODE_PACKAGES.join(' nor ')} is installed. ` +
          `Install one: 'npm i @tensorflow/tfjs-node-gpu' (NVIDIA GPU, needs CUDA 11.2 + cuDNN 8) or 'npm i @tensorflow/tfjs-node' (CPU); ` +
          `or use --backend wasm`,
      );
    }
    case 'wasm':
      return prepareWasm();
    case 'webgpu': {
      if (!prepared.has('webgpu')) prepared.set('webgpu', { detail: await prepareWebgpu() });
      return 'webgpu';
    }
    case 'cpu':
      return 'cpu';
  }
}

/** Import tfjs-node-gpu or tfjs-node if installed (they register the 'tensorflow' backend). */
async function prepareTensorflow(): Promise<boolean> {
  if (prepared.has('tensorflow')) return true;
  for (const pkg of TFJS_NODE_PACKAGES) {
    let loaded: unknown;
    try {
      loaded = await importOptional(pkg);
    } catch (err) {
      // Installed but broken (libtensorflow or CUDA missing): say so rather than silently using wasm.
      const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
      throw new InputError(
        `${pkg} is installed but failed to load: ${why}. Fix its installation` +
          (pkg.endsWith('-gpu') ? ' (it needs CUDA 11.2 and cuDNN 8)' : '') +
          `, uninstall it, or use --backend wasm`,
      );
    }
    if (loaded) {
      if (!tf.findBackendFactory('tensorflow')) {
        // tfjs-node registered into its own copy of tfjs-core: versions differ from ours.
        throw new InputError(`${pkg} is installed but did not register with this @tensorflow/tfjs (${tf.version.tfjs}); install the same version: npm i ${pkg}@${tf.version.tfjs}`);
      }
      prepared.set('tensorflow', { detail: pkg });
      return true;
    }
  }
  return false;
}

async function prepareWasm(): Promise<string> {
  if (prepared.has('wasm')) return 'wasm';
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // The .wasm binaries sit next to the package's entry point (dist/), wherever node_modules is.
  const distDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  wasm.setWasmPaths(distDir + path.sep);
  registerWasmGradientKernels();
  // OpenBLAS and oneDNN kernels on the wasm heap when they load (native/provider.ts: --native, ROBUSTSIM_NATIVE).
  await initNative();
  registerNativeKernels();
  await initCublas(); // the CKA engines' Grams on an NVIDIA GPU when libcublas loads (native/cublas.ts)
  prepared.set('wasm', { detail: distDir });
  return 'wasm';
}

/** The active tfjs backend name ('wasm', 'tensorflow', 'webgpu', 'cpu'), or 'none' before initBackend. */
export function activeBackend(): string {
  return tfBackendName() ?? 'none';
}

/** A one-line description of the active backend for logs and provenance, e.g. "webgpu (llvmpipe ...)". */
export function describeBackend(): string {
  const name = activeBackend();
  const detail = prepared.get(name)?.detail;
  if (name === 'webgpu' && detail) return `webgpu (${detail})`;
  if (name === 'tensorflow' && detail) return `tensorflow (${detail})`;
  if (name === 'wasm' && prepared.has('wasm')) {
    const gpu = loadedCublas();
    return `wasm (${describeNative()}${gpu ? `; CKA Grams on cuBLAS, ${gpu.devices} GPU(s)` : ''})`;
  }
  return name;
}
