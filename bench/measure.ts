/**
 * Measuring tools for the benchmark: a fixed number of operations run by a
 * fixed number of concurrent lanes, percentiles, a memory sampler, and a
 * poll-until helper. Nothing here knows about agentq or graphile-worker.
 */
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';

/**
 * Runs `fn(0) … fn(total - 1)` on `lanes` concurrent lanes (each lane awaits
 * its previous call), so at most `lanes` operations are in flight. The first
 * failure stops every lane from starting more work and is rethrown.
 */
export async function runConcurrently(
  total: number,
  lanes: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < total) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, total) }, lane));
}

/** Seconds since `start` (a performance.now() reading). */
export const secondsSince = (start: number) => (performance.now() - start) / 1000;

/** Nearest-rank percentile of an ascending array (p in 0–100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface LatencySummary {
  samples: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `check` every `intervalMs` until it returns true; throws after
 * `timeoutMs` naming `what`, so a stuck phase fails instead of hanging.
 */
export async function pollUntil(
  check: () => Promise<boolean>,
  options: { intervalMs: number; timeoutMs: number; what: string },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    await sleep(options.intervalMs);
  }
}

// Both systems run in this one process, one after the other, so garbage left
// by one phase would be billed to the next. Collecting before each phase gives
// both the same starting point. `--expose-gc` can be turned on at run time;
// the `gc` function then only exists in contexts created afterwards.
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export function collectGarbage(): void {
  gc();
  gc(); // a second pass frees what the first one's finalizers released
}

export interface MemoryReport {
  /** At the start of the phase, after a full GC. */
  baselineRssBytes: number;
  baselineHeapUsedBytes: number;
  peakRssBytes: number;
  peakHeapUsedBytes: number;
  samples: number;
}

/**
 * Samples process.memoryUsage() every `intervalMs` from start() to stop().
 * RSS is the whole process (Node, both systems' code, pg clients); heapUsed is
 * the JS heap, which moves with what the phase allocates.
 */
export function startMemorySampler(intervalMs = 50): { stop(): MemoryReport } {
  const first = process.memoryUsage();
  const report: MemoryReport = {
    baselineRssBytes: first.rss,
    baselineHeapUsedBytes: first.heapUsed,
    peakRssBytes: first.rss,
    peakHeapUsedBytes: first.heapUsed,
    samples: 1,
  };
  const sample = () => {
    const m = process.memoryUsage();
    report.peakRssBytes = Math.max(report.peakRssBytes, m.rss);
    report.peakHeapUsedBytes = Math.max(report.peakHeapUsedBytes, m.heapUsed);
    report.samples += 1;
  };
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { ...report };
    },
  };
}
