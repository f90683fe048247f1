import { initBackend, WEBGPU_OPTIONS_ENV } from '../src/backend/index.js';
import { InputError } from '../src/errors.js';

/**
 * Start webgpu with the configured Dawn options, else with Mesa's software GL (llvmpipe), which is
 * how CI machines without a GPU prove the path. Returns why not when no adapter can be had.
 */
export async function startWebgpu(): Promise<string | undefined> {
  try {
    await initBackend('webgpu');
    return undefined;
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    if (process.env[WEBGPU_OPTIONS_ENV] !== undefined) return err.message;
  }
  process.env[WEBGPU_OPTIONS_ENV] = 'backend=opengles';
  try {
    await initBackend('webgpu');
    return undefined;
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    return `${err.message} (Mesa llvmpipe needs the Debian packages libegl1 libegl-mesa0 libgl1-mesa-dri libgles2)`;
  }
}
