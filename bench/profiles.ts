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
  callFrame: { functionName: string; url: string; lineNumber: number };
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

/** The `top` functions by self time, (idle) left out of the list and of the percentages. */
export async function topSelfTime(file: string, top = 15): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const totals = new Map<string, { fn: string; where: string; us: number }>();
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time from sample i-1 to sample i: it belongs to sample i-1.
    const us = deltas[i + 1] ?? 0;
    const node = byId.get(samples[i]!);
    if (!node || us <= 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = functionName || '(anonymous)';
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${fn}\u0000${where}`;
    const entry = totals.get(key) ?? { fn, where, us: 0 };
    entry.us += us;
    totals.set(key, entry);
    total += us;
  }
  const idle = [...totals.values()].find((e) => e.fn === '(idle)' && e.where === '')?.us ?? 0;
  const busy = total - idle;
  return {
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
    `  sampled ${(summary.totalMs / 1000).toFixed(1)} s, busy ${(busy / 1000).toFixed(1)} s ` +
      `(idle left out; % is of the busy time)`,
    `  ${'self ms'.padStart(9)} ${'%'.padStart(6)}  function  (file:line)`,
  ];
  for (const r of summary.top) {
    lines.push(
      `  ${r.ms.toFixed(1).padStart(9)} ${r.percent.toFixed(1).padStart(6)}  ${r.fn}${r.where ? `  (${r.where})` : ''}`,
    );
  }
  return lines.join('\n');
}
