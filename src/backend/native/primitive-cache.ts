/**
 * oneDNN primitives by shape key, built once. A key oneDNN rejected (no implementation for that shape
 * or geometry) is remembered as declined, so the fallback (wasm kernel or tfjs ops) runs without
 * asking oneDNN again.
 */
export class PrimitiveCache<P> {
  private readonly entries = new Map<string, P | null>();

  get(key: string, build: () => P): P | undefined {
    let p = this.entries.get(key);
    if (p === undefined) {
      try {
        p = build();
      } catch {
        p = null;
      }
      this.entries.set(key, p);
    }
    return p ?? undefined;
  }

  /** The primitives built so far. */
  built(): P[] {
    return [...this.entries.values()].filter((p): p is P => p !== null);
  }

  /** How many keys oneDNN declined. */
  declined(): number {
    return [...this.entries.values()].filter((p) => p === null).length;
  }
}
