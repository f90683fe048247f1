/**
 * The one error class for failures the user can fix (bad file, bad flag, bad data).
 * The CLI prints its message as a single line and exits with code 2; any other
 * error is a bug and is shown with its stack.
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** Throw an InputError naming `where` (a file, flag or field) when `cond` is false. */
export function check(cond: unknown, where: string, what: string): asserts cond {
  if (!cond) throw new InputError(`${where}: ${what}`);
}
