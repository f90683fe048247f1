/**
 * Import an optional package by name. Returns undefined when the package itself is not installed;
 * any other failure (installed but broken: missing native library, wrong CUDA, ...) is rethrown so
 * the user sees it instead of a silent fallback.
 */
export async function importOptional<T = unknown>(pkg: string): Promise<T | undefined> {
  try {
    // A variable specifier keeps TypeScript from resolving (and requiring) the package at build time.
    const specifier: string = pkg;
    return (await import(specifier)) as T;
  } catch (err) {
    if (isNotFound(err, pkg)) return undefined;
    throw err;
  }
}

function isNotFound(err: unknown, pkg: string): boolean {
  const e = err as { code?: string; message?: string };
  const code = e?.code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  // Only the package itself missing counts, not a dependency missing inside it.
  const message = e.message ?? '';
  return message.includes(`'${pkg}'`) || message.includes(`"${pkg}"`);
}
