import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fromEnv } from './library-paths.js';

/**
 * Where libcublas and libcudart are looked for on an NVIDIA machine: ROBUSTSIM_CUBLAS_LIB /
 * ROBUSTSIM_CUDART_LIB first (files), then the directories of LD_LIBRARY_PATH, CUDA_HOME/CUDA_PATH,
 * /usr/local/cuda*, the distribution's library directories, and a PyTorch install's pip CUDA
 * libraries (site-packages/nvidia/{cublas,cuda_runtime}/lib of the active venv or conda env, the
 * user's and the system's Pythons). Each candidate is a full path that exists; sonames of CUDA 13, 12
 * and 11 are tried last through the dynamic loader's own path.
 */
export const CUBLAS_LIB_ENV = 'ROBUSTSIM_CUBLAS_LIB';
export const CUDART_LIB_ENV = 'ROBUSTSIM_CUDART_LIB';

const SONAMES = { cublas: ['libcublas.so.13', 'libcublas.so.12', 'libcublas.so.11', 'libcublas.so'], cudart: ['libcudart.so.13', 'libcudart.so.12', 'libcudart.so.11.0', 'libcudart.so'] } as const;
const PIP_DIRS = { cublas: 'nvidia/cublas/lib', cudart: 'nvidia/cuda_runtime/lib' } as const;

export type CudaLibrary = keyof typeof SONAMES;

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** site-packages / dist-packages directories that may hold pip's nvidia-* wheels. */
export function pythonSitePackages(env: NodeJS.ProcessEnv = process.env): string[] {
  const roots = [env.VIRTUAL_ENV, env.CONDA_PREFIX, path.join(os.homedir(), '.local'), '/usr/local', '/usr', '/opt/conda'].filter((r): r is string => Boolean(r));
  const dirs: string[] = [];
  for (const root of roots) {
    const lib = path.join(root, 'lib');
    for (const py of listDir(lib).filter((d) => /^python3(\.\d+)?$/.test(d))) {
      for (const sub of ['site-packages', 'dist-packages']) dirs.push(path.join(lib, py, sub));
    }
  }
  return dirs;
}

export function cudaCandidates(which: CudaLibrary, env: NodeJS.ProcessEnv = process.env): string[] {
  const override = fromEnv(env[which === 'cublas' ? CUBLAS_LIB_ENV : CUDART_LIB_ENV]);
  if (override.length) return override;
  const dirs = [
    ...fromEnv(env.LD_LIBRARY_PATH),
    ...[env.CUDA_HOME, env.CUDA_PATH].filter((d): d is string => Boolean(d)).map((d) => path.join(d, 'lib64')),
    '/usr/local/cuda/lib64',
    ...listDir('/usr/local').filter((d) => d.startsWith('cuda-')).map((d) => `/usr/local/${d}/lib64`),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib64',
    ...pythonSitePackages(env).map((d) => path.join(d, PIP_DIRS[which])),
  ];
  const found: string[] = [];
  for (const dir of dirs) {
    for (const name of SONAMES[which]) {
      const file = path.join(dir, name);
      if (!found.includes(file) && fs.existsSync(file)) found.push(file);
    }
  }
  return [...found, ...SONAMES[which]];
}
