/**
 * Reads the `.cpuprofile` files `node --cpu-prof` writes (Chrome DevTools
 * format: a call tree of nodes, and a sample list with the time before each
 * sample) and sums the self time per function: the time a sample found that
 * function at the top of the stack. Pseudo-frames such as (idle), (program)
 * and (garbage collector) are kept; they are where the rest of the time goes.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime {
  fn: string;
  where: string;
  ms: number;
  /** Share of the busy time: every sample but (idle). */
  percent: number;
}

export interface ProfileSummary {
  /** Whether only the samples inside the asked-for window were counted. */
  windowed: boolean;
  /** Sampled time, ms, and the part of it the process was idle (waiting on I/O). */
  totalMs: number;
  idleMs: number;
  top: SelfTime[];
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function shortUrl(url: string): string {
  if (!url) return '';
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = path.relative(ROOT, file);
  return rel.startsWith('..') ? file : rel;
}

/** Now on the monotonic clock, in microseconds: the clock a profile's timestamps use on Linux. */
export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/**
 * The `top` functions by self time, (idle) left out of the list and of the
 * percentages. With `window` ([start, end] from monotonicUs() in the bench
 * process) only the samples taken inside it count: V8 stamps samples with the
 * system's monotonic clock, which every process shares, so the timed part of a
 * phase can be cut out of a profile that covers the process's whole life
 * (start-up, module loading, warm-up). When no sample falls inside (another
 * clock), the whole profile is used and `windowed` says so.
 */
export async function topSelfTime(
  file: string,
  top = 15,
  window?: [number, number],
): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const summary = summarize(profile, top, window);
  return summary.totalMs > 0 || !window ? summary : summarize(profile, top, undefined);
}

function summarize(
  profile: CpuProfile,
  top: number,
  window: [number, number] | undefined,
): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const totals = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += deltas[i] ?? 0;
    if (window && (at < window[0] || at > window[1])) continue;
    // timeDeltas[i] is the time from sample i-1 to sample i: it belongs to sample i-1.
    const us = deltas[i + 1] ?? 0;
    const node = byId.get(samples[i]!);
    if (!node || us <= 0) continue;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    const fn = functionName || '(anonymous)';
    // Positions in the code V8 ran: for .ts files that is tsx's output, not the source.
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}:${columnNumber + 1}` : '';
    const key = `${fn}\u0000${where}`;
    const entry = totals.get(key) ?? { fn, where, us: 0 };
    entry.us += us;
    totals.set(key, entry);
    total += us;
  }
  const idle = [...totals.values()].find((e) => e.fn === '(idle)' && e.where === '')?.us ?? 0;
  const busy = total - idle;
  return {
    windowed: window !== undefined,
    totalMs: total / 1000,
    idleMs: idle / 1000,
    top: [...totals.values()]
      .filter((e) => !(e.fn === '(idle)' && e.where === ''))
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ fn: e.fn, where: e.where, ms: e.us / 1000, percent: (100 * e.us) / busy })),
  };
}

export function renderSelfTime(title: string, summary: ProfileSummary): string {
  const busy = summary.totalMs - summary.idleMs;
  const lines = [
    title,
    `  ${summary.windowed ? 'timed part only' : 'whole process life (start-up included)'}: ` +
      `sampled ${(summary.totalMs / 1000).toFixed(1)} s, busy ${(busy / 1000).toFixed(1)} s ` +
      `(idle left out; % is of the busy time)`,
    `  ${'self ms'.padStart(9)} ${'%'.padStart(6)}  function  (file:line:column of the code run; tsx output for .ts)`,
  ];
  for (const r of summary.top) {
    lines.push(
      `  ${r.ms.toFixed(1).padStart(9)} ${r.percent.toFixed(1).padStart(6)}  ${r.fn}${r.where ? `  (${r.where})` : ''}`,
    );
  }
  return lines.join('\n');
}
