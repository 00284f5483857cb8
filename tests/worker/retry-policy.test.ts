// The retry delay on its own: backoff, jitter, the cap and Retry-After,
// without a 40-second end-to-end run to see each of them.
import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../worker/retry-policy.ts';

const settings = { baseMs: 1000, maxMs: 60_000 };
const low = () => 0; // the bottom of the jitter band (×0.8)
const mid = () => 0.5; // no jitter (×1.0)
const high = () => 0.999_999; // the top of the jitter band (just under ×1.2)

describe('retryDelayMs', () => {
  it('doubles from the base with each attempt', () => {
    expect([1, 2, 3, 4, 5].map((a) => retryDelayMs(a, undefined, settings, mid))).toEqual([
      1000, 2000, 4000, 8000, 16_000,
    ]);
  });

  it('jitters by ±20% and no more', () => {
    expect(retryDelayMs(3, undefined, settings, low)).toBe(3200);
    expect(retryDelayMs(3, undefined, settings, high)).toBe(4800);
    for (let i = 0; i < 200; i++) {
      const d = retryDelayMs(2, undefined, settings);
      expect(d).toBeGreaterThanOrEqual(1600);
      expect(d).toBeLessThanOrEqual(2400);
    }
  });

  it('treats attempt 0 (or less) like attempt 1', () => {
    expect(retryDelayMs(0, undefined, settings, mid)).toBe(1000);
    expect(retryDelayMs(-3, undefined, settings, mid)).toBe(1000);
  });

  it('never waits longer than the maximum, even at the top of the jitter band', () => {
    expect(retryDelayMs(30, undefined, settings, high)).toBe(60_000);
    expect(retryDelayMs(30, undefined, settings, low)).toBe(48_000);
    expect(Number.isFinite(retryDelayMs(5000, undefined, settings, mid))).toBe(true);
  });

  it('never retries sooner than Retry-After', () => {
    expect(retryDelayMs(1, 5000, settings, high)).toBe(5000);
    expect(retryDelayMs(5, 5000, settings, mid)).toBe(16_000); // backoff already longer
  });

  it('honours a Retry-After longer than the maximum', () => {
    expect(retryDelayMs(1, 120_000, settings, mid)).toBe(120_000);
  });

  it('returns whole milliseconds, and 0 with a zero base', () => {
    expect(Number.isInteger(retryDelayMs(1, undefined, { baseMs: 333, maxMs: 10_000 }))).toBe(true);
    expect(retryDelayMs(4, undefined, { baseMs: 0, maxMs: 0 }, mid)).toBe(0);
  });
});
