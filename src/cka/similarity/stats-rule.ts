import { InputError } from '../../errors.js';

/**
 * The bootstrap interval resamples whole minibatches, so its width comes only from how much the
 * per-batch HSIC terms vary between batches. With one batch every replicate is that batch scaled
 * by its Poisson weight, and the ratio of HSICs does not change: ci_low = ci_high = cka, an
 * interval of zero width that says nothing. It is refused.
 */
export const MIN_STATS_BATCHES = 2;

/**
 * Below this many batches the percentile interval is too narrow: it under-covers the population
 * CKA (measured by `npm run bench:cka-coverage`, docs/cka.md: below 90% of runs for 8 batches and
 * fewer, as a bootstrap of a mean of B terms ignores the t-quantile's spread and the (B-1)/B
 * variance factor). Allowed, with a warning in the table and on stderr.
 */
export const WARN_STATS_BATCHES = 16;

/** Refuse a bootstrap over one batch; warn below WARN_STATS_BATCHES. `batches` counts the whole run (every shard). */
export function statsBatchWarnings(batches: number, bootstrap: number): string[] {
  if (!(bootstrap > 0)) return [];
  if (batches < MIN_STATS_BATCHES) {
    throw new InputError(
      `--stats/--bootstrap: the run has ${batches} minibatch; the bootstrap resamples whole minibatches, so with one its interval has zero width (ci_low = ci_high = cka). Use at least ${MIN_STATS_BATCHES} batches (smaller --batch-size or larger --n), ${WARN_STATS_BATCHES} or more for an interval that covers 95%`,
    );
  }
  if (batches < WARN_STATS_BATCHES) {
    return [`bootstrap over only ${batches} minibatches: the 95% interval is too narrow below ${WARN_STATS_BATCHES} batches (measured coverage in docs/cka.md); use a smaller --batch-size or a larger --n`];
  }
  return [];
}
