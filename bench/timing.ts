// Warm-up, then time-budgeted repetitions; the median is the number reported.

export interface Timing {
  /** median of the measured runs, ms */
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** measured runs (after warm-up) */
  runs: number;
  /** warm-up runs (not in the median) */
  warmups: number;
  /** the first call alone, ms: includes compilation for contenders that compile lazily */
  firstMs: number;
  samplesMs: number[];
}

export interface Budget {
  /** time for the measured runs of one measurement, ms; at least one run is always made */
  measureMs: number;
  /** time for warm-up, ms; at least one warm-up run is always made */
  warmupMs: number;
  /** cap on measured runs */
  maxRuns: number;
  /** runs made even past the measuring budget, unless one run is slower than slowRunMs */
  minRuns: number;
  slowRunMs: number;
  /** cap on warm-up runs */
  maxWarmups: number;
  /**
   * warm-up runs made even past the warm-up budget, unless one run is slower than slowRunMs
   * (default 1: the first call). The zoo asks for more: some kernels take several calls to reach
   * their steady speed (V8 compiling in the background of a busy machine, TorchScript specialising).
   */
  minWarmups?: number;
}

export const DEFAULT_BUDGET: Budget = {
  measureMs: 3000,
  warmupMs: 600,
  // fast kernels get enough warm-up calls for the JIT to finish with them (a 0.5 ms call is still
  // interpreted after 3), and enough runs for a steady median; slow ones stop at the time budgets
  maxRuns: 100,
  maxWarmups: 100,
  minRuns: 3,
  slowRunMs: 6000,
};

/**
 * Runs `fn` once (the first call, timed apart), warms up until the warm-up
 * budget is spent, then repeats while the next run is expected to fit in the
 * measuring budget, and in any case `minRuns` times unless a run takes more
 * than `slowRunMs`: such a slow contender is measured once, after one warm-up.
 */
export async function measure(fn: () => void | Promise<void>, budget: Budget): Promise<Timing>;
/** As above, but gives up (returning the first call's time) when the first call takes over maxFirstMs. */
export async function measure(
  fn: () => void | Promise<void>,
  budget: Budget,
  maxFirstMs: number,
): Promise<Timing | { abandonedAfterMs: number }>;
export async function measure(
  fn: () => void | Promise<void>,
  budget: Budget,
  maxFirstMs = Infinity,
): Promise<Timing | { abandonedAfterMs: number }> {
  let t0 = performance.now();
  await fn();
  const firstMs = performance.now() - t0;
  if (firstMs > maxFirstMs) return { abandonedAfterMs: firstMs };

  // The first call may be mostly compilation, so it does not count against the
  // warm-up budget; a second warm-up is skipped only when one run alone
  // overruns the measuring budget.
  let warmups = 1;
  let warmSpent = 0;
  let last = firstMs;
  while (
    warmups < budget.maxWarmups &&
    ((warmups === 1 ? firstMs <= budget.measureMs : warmSpent + last <= budget.warmupMs) ||
      (warmups < (budget.minWarmups ?? 1) && last <= budget.slowRunMs))
  ) {
    t0 = performance.now();
    await fn();
    last = performance.now() - t0;
    warmSpent += last;
    warmups++;
  }

  const samplesMs: number[] = [];
  let spent = 0;
  do {
    t0 = performance.now();
    await fn();
    last = performance.now() - t0;
    samplesMs.push(last);
    spent += last;
  } while (
    samplesMs.length < budget.maxRuns &&
    (spent + last <= budget.measureMs || (samplesMs.length < budget.minRuns && last <= budget.slowRunMs))
  );

  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    medianMs: median(sorted),
    minMs: sorted[0]!,
    maxMs: sorted[sorted.length - 1]!,
    runs: samplesMs.length,
    warmups,
    firstMs,
    samplesMs,
  };
}

function median(sorted: number[]): number {
  const n = sorted.length;
  const mid = n >> 1;
  return n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
