/**
 * CPU time of processes on this machine, from /proc (Linux): a child process
 * by pid, and a whole Postgres server (the postmaster, its live backends and
 * the backends that already exited, which the kernel adds to the postmaster's
 * "children" times once it has reaped them). Off Linux every reading is NaN.
 */
import { readdir, readFile } from 'node:fs/promises';

/** Kernel clock ticks per second (USER_HZ): 100 on every Linux that runs Node. */
const TICKS_PER_SECOND = 100;

interface Stat {
  ppid: number;
  /** utime + stime, ms. */
  ownMs: number;
  /** cutime + cstime (reaped children), ms. */
  childrenMs: number;
}

async function readStat(pid: number): Promise<Stat | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); ppid is field 4, utime..cstime are fields 14–17.
  const n = (field: number) => Number(fields[field - 3]);
  const ms = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND;
  return { ppid: n(4), ownMs: ms(n(14) + n(15)), childrenMs: ms(n(16) + n(17)) };
}

/** CPU ms a process has used so far (user + system), or NaN when it cannot be read. */
export async function processCpuMs(pid: number): Promise<number> {
  return (await readStat(pid))?.ownMs ?? Number.NaN;
}

/** The parent of `pid` (for a Postgres backend: the postmaster), or undefined. */
export async function parentPid(pid: number): Promise<number | undefined> {
  return (await readStat(pid))?.ppid;
}

/**
 * CPU ms the whole Postgres server has used: the postmaster's own and its
 * reaped children's, plus every live child's (backends, WAL writer,
 * checkpointer…). The difference of two readings is the server's CPU between them.
 */
export async function postgresCpuMs(postmasterPid: number): Promise<number> {
  const postmaster = await readStat(postmasterPid);
  if (!postmaster) return Number.NaN;
  let total = postmaster.ownMs + postmaster.childrenMs;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return Number.NaN;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readStat(Number(entry));
    if (stat?.ppid === postmasterPid) total += stat.ownMs;
  }
  return total;
}
