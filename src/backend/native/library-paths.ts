/**
 * Where each native library is looked for: the environment variable's value first (a file name or a
 * path; several separated by ':'), then the standard sonames (found through the dynamic loader's path,
 * LD_LIBRARY_PATH included), then the multiarch paths Debian's packages install to. Pure.
 */
export const OPENBLAS_ENV = 'ROBUSTSIM_OPENBLAS';
export const DNNL_ENV = 'ROBUSTSIM_DNNL';

const MULTIARCH = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];

export function fromEnv(value: string | undefined): string[] {
  return (value ?? '').split(':').map((s) => s.trim()).filter(Boolean);
}

export function openblasCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const override = fromEnv(env[OPENBLAS_ENV]);
  if (override.length) return override;
  return [
    'libopenblas.so.0',
    ...MULTIARCH.map((d) => `${d}/openblas-pthread/libopenblas.so.0`),
    ...MULTIARCH.map((d) => `${d}/libopenblas.so.0`),
    'libopenblas.so',
  ];
}

export function dnnlCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const override = fromEnv(env[DNNL_ENV]);
  if (override.length) return override;
  return ['libdnnl.so.2', ...MULTIARCH.map((d) => `${d}/libdnnl.so.2`)];
}
