import * as tf from '@tensorflow/tfjs';
import { InputError } from '../errors.js';
import { importOptional } from './optional-import.js';

/**
 * WebGPU in Node through Dawn (npm `webgpu`), no browser and no libtensorflow needed.
 *
 * @tensorflow/tfjs-backend-webgpu registers itself only if `navigator.gpu` exists when its module is
 * first evaluated, and then asks `navigator.gpu.requestAdapter({powerPreference})` for an adapter. So
 * we create Dawn's GPU object first, find an adapter ourselves (retrying with the 'compatibility'
 * feature level, which GL-only drivers such as Mesa llvmpipe need), and install a `navigator.gpu`
 * whose requestAdapter asks Dawn again with the settings that worked.
 *
 * Dawn options come from ROBUSTSIM_WEBGPU_OPTIONS, comma separated, passed to Dawn's `create()`
 * (e.g. `backend=vulkan`, `backend=opengles`, `adapter=NVIDIA`). Two entries are ours, not Dawn's:
 * `featureLevel=compatibility|core` forces the adapter feature level, and
 * `powerPreference=low-power|high-performance`. With `backend=opengles` and no EGL_PLATFORM set we
 * set EGL_PLATFORM=surfaceless so Mesa works headless (no X11/Wayland display needed).
 * Without a GPU, `ROBUSTSIM_WEBGPU_OPTIONS=backend=opengles` runs on Mesa's llvmpipe: correct but
 * slow, useful to prove the code path.
 */

export const WEBGPU_OPTIONS_ENV = 'ROBUSTSIM_WEBGPU_OPTIONS';

const INSTALL_HINT = 'npm i webgpu @tensorflow/tfjs-backend-webgpu';

export interface WebgpuSettings {
  /** Options passed to Dawn's create(). */
  dawnOptions: string[];
  /** undefined: try the default (core) level first, then 'compatibility'. */
  featureLevel?: 'core' | 'compatibility';
  powerPreference?: 'low-power' | 'high-performance';
}

/** Parse ROBUSTSIM_WEBGPU_OPTIONS. Pure, so it is testable without a GPU. */
export function parseWebgpuOptions(raw: string | undefined): WebgpuSettings {
  const settings: WebgpuSettings = { dawnOptions: [] };
  for (const entry of (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const key = eq < 0 ? entry : entry.slice(0, eq);
    const value = eq < 0 ? '' : entry.slice(eq + 1);
    if (key === 'featureLevel') {
      if (value !== 'core' && value !== 'compatibility') {
        throw new InputError(`${WEBGPU_OPTIONS_ENV}: featureLevel must be 'core' or 'compatibility', got '${value}'`);
      }
      settings.featureLevel = value;
    } else if (key === 'powerPreference') {
      if (value !== 'low-power' && value !== 'high-performance') {
        throw new InputError(`${WEBGPU_OPTIONS_ENV}: powerPreference must be 'low-power' or 'high-performance', got '${value}'`);
      }
      settings.powerPreference = value;
    } else {
      if (eq <= 0) throw new InputError(`${WEBGPU_OPTIONS_ENV}: expected comma-separated key=value Dawn options (e.g. backend=opengles), got '${entry}'`);
      settings.dawnOptions.push(entry);
    }
  }
  return settings;
}

// Just the parts of Dawn's WebGPU objects used here (no dependency on the WebGPU type packages).
interface AdapterRequest {
  featureLevel?: string;
  powerPreference?: string;
}
interface DawnAdapter {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
}
interface DawnGpu {
  requestAdapter(options?: AdapterRequest): Promise<DawnAdapter | null>;
  getPreferredCanvasFormat(): string;
  readonly wgslLanguageFeatures: unknown;
}
interface DawnModule {
  create(options: string[]): DawnGpu;
  globals: Record<string, unknown>;
}

let prepared: { description: string } | undefined;

function describeAdapter(adapter: DawnAdapter, featureLevel: string): string {
  const info = adapter.info ?? {};
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s): s is string => !!s);
  const name = parts.length ? parts.join(', ') : 'unknown adapter';
  return featureLevel === 'compatibility' ? `${name}; compatibility mode` : name;
}

/**
 * Make the 'webgpu' tfjs backend available (does not switch to it). Returns a description of the
 * adapter. Throws InputError when the packages are missing or no adapter can be found.
 */
export async function prepareWebgpu(): Promise<string> {
  if (prepared) return prepared.description;
  const settings = parseWebgpuOptions(process.env[WEBGPU_OPTIONS_ENV]);

  if (settings.dawnOptions.includes('backend=opengles') && process.env.EGL_PLATFORM === undefined) {
    process.env.EGL_PLATFORM = 'surfaceless';
  }
  const dawn = await importOptional<DawnModule>('webgpu');
  if (!dawn) throw new InputError(`--backend webgpu: the optional package 'webgpu' (Dawn for Node) is not installed: ${INSTALL_HINT}`);

  // Dawn's GPU* classes and constants (GPUBufferUsage, GPUMapMode, ...) are globals in a browser.
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
  }
  const gpu = dawn.create(settings.dawnOptions);
  const levels = settings.featureLevel ? [settings.featureLevel] : ['core', 'compatibility'];
  let found: { adapter: DawnAdapter; featureLevel: string } | undefined;
  for (const featureLevel of levels) {
    const adapter = await gpu.requestAdapter({ featureLevel, powerPreference: settings.powerPreference });
    if (adapter) {
      found = { adapter, featureLevel };
      break;
    }
  }
  if (!found) {
    const given = settings.dawnOptions.length ? `Dawn options '${settings.dawnOptions.join(',')}'` : 'default Dawn options';
    throw new InputError(
      `--backend webgpu: no WebGPU adapter found with ${given} (feature levels tried: ${levels.join(', ')}). ` +
        `On NVIDIA, check the Vulkan driver (libvulkan1 and the NVIDIA ICD); without a GPU set ` +
        `${WEBGPU_OPTIONS_ENV}=backend=opengles to use Mesa's software renderer (slow), or use --backend wasm`,
    );
  }

  const { featureLevel } = found;
  const navigatorGpu = {
    // tfjs asks for an adapter itself (and an adapter serves one device), so hand it a fresh one
    // each time, found with the settings that worked above.
    requestAdapter: (options?: AdapterRequest) =>
      gpu.requestAdapter({ ...options, featureLevel, powerPreference: settings.powerPreference ?? options?.powerPreference }),
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
    get wgslLanguageFeatures() {
      return gpu.wgslLanguageFeatures;
    },
  };
  installNavigatorGpu(navigatorGpu);

  const webgpuBackend = await importOptional('@tensorflow/tfjs-backend-webgpu');
  if (!webgpuBackend) {
    throw new InputError(`--backend webgpu: the optional package '@tensorflow/tfjs-backend-webgpu' is not installed: ${INSTALL_HINT}`);
  }
  if (!tf.findBackendFactory('webgpu')) {
    throw new Error('@tensorflow/tfjs-backend-webgpu was loaded before navigator.gpu existed, so it did not register; call initBackend before importing it');
  }
  prepared = { description: describeAdapter(found.adapter, featureLevel) };
  return prepared.description;
}

/** Node 21+ has a global `navigator` without `gpu`; Node 20 has none. */
function installNavigatorGpu(gpu: unknown): void {
  const g = globalThis as { navigator?: object };
  if (g.navigator) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
}
