/**
 * agentq's real entry points (api/main.ts, worker/main.ts) and a raw
 * graphile-worker runner (raw-runner-main.ts) as child processes, for the
 * phases that need each side in its own process: an honest worker RSS, CPU
 * that is not shared with the load generator's event loop, and `--cpu-prof`.
 *
 * The children get a small, explicit environment (never this process's, so a
 * provider key there cannot turn a run into a paid one) and log at `warn`:
 * graphile-worker logs one line per completed job at `info`, which would be
 * billed to the worker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../shared/db/embedded-postgres.ts';
import { pollUntil } from './measure.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where `--cpu-prof` writes, when BENCH_CPU_PROF=1: a directory per process
 * name, replaced each run. Not one fixed file name: node writes a profile for
 * every thread, and the tsx loader's hooks run on a thread of their own, so
 * with one name the loader's profile would overwrite the main thread's.
 */
export const PROFILE_DIR = path.join(ROOT, 'bench', 'profiles');

/** The main thread's profile of process `name`: node's default file name ends `.<pid>.<tid>.<seq>.cpuprofile`, tid 0. */
export async function profilePath(name: string): Promise<string> {
  const dir = path.join(PROFILE_DIR, name);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const main = files.find((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f)) ?? files[0];
  if (!main) throw new Error(`no CPU profile in ${dir}`);
  return path.join(dir, main);
}

export interface ChildOptions {
  /** Added to the base environment (PATH, HOME, TMPDIR, LOG_LEVEL=warn). */
  env: Record<string, string>;
  /** Start node with --cpu-prof, writing into PROFILE_DIR/<name>/ when it exits (see profilePath). */
  cpuProfile?: boolean;
}

export interface BenchChild {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM, wait for a graceful exit (the CPU profile is written then); SIGKILL after 30 s. */
  stop(): Promise<number | null>;
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { LOG_LEVEL: 'warn' };
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'TZ', 'LANG']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

export function launch(name: string, entry: string, options: ChildOptions): BenchChild {
  const args = ['--import', 'tsx'];
  if (options.cpuProfile) {
    args.push('--cpu-prof', `--cpu-prof-dir=${path.join(PROFILE_DIR, name)}`);
  }
  args.push(entry);
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...baseEnv(), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  return {
    name,
    proc,
    pid: proc.pid ?? -1,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Waits for `ready`, failing early (with the child's output) if the child exits first. */
export async function waitReady(
  child: BenchChild,
  ready: () => Promise<boolean>,
  what: string,
): Promise<void> {
  try {
    await pollUntil(
      async () => {
        if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
          throw new Error(`${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode})`);
        }
        return ready();
      },
      { intervalMs: 50, timeoutMs: 60_000, what },
    );
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}\n--- ${child.name} output ---\n${child.output()}`, {
      cause: err,
    });
  }
}

export async function startApiChild(
  env: Record<string, string>,
  cpuProfile = false,
): Promise<BenchChild & { url: string }> {
  const port = await freePort();
  const child = launch('api', 'api/main.ts', {
    env: { HOST: '127.0.0.1', PORT: String(port), ...env },
    cpuProfile,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(
    child,
    async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
    'the API process to become ready',
  );
  return { ...child, url };
}

/**
 * A worker process; ready once it has registered in agentq.workers (its
 * heartbeat's first write, after graphile-worker has started), which
 * `registered` is asked about with the child's pid.
 */
export async function startWorkerChild(
  env: Record<string, string>,
  registered: (pid: number) => Promise<boolean>,
  cpuProfile = false,
): Promise<BenchChild> {
  const child = launch('worker', 'worker/main.ts', { env, cpuProfile });
  await waitReady(child, () => registered(child.pid), 'the worker process to start');
  return child;
}

/** raw-runner-main.ts: graphile-worker's run() with no-op jobs; prints "ready" once started. */
export async function startRawRunnerChild(
  env: Record<string, string>,
  cpuProfile = false,
): Promise<BenchChild> {
  const child = launch('raw-runner', 'bench/raw-runner-main.ts', { env, cpuProfile });
  await waitReady(
    child,
    async () => child.output().includes('ready\n'),
    'the raw runner process to start',
  );
  return child;
}

export interface ProcessMemory {
  /** Highest VmRSS seen by the sampler, bytes. */
  peakRssBytes: number;
  /** The kernel's own high-water mark (VmHWM) at the last sample, bytes. */
  hwmBytes: number;
  samples: number;
}

async function readStatus(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]);
    return { rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024 };
  } catch {
    return undefined; // not Linux, or the process is gone
  }
}

/**
 * Samples another process's RSS from /proc every `intervalMs`. VmHWM is the
 * peak the kernel saw, between samples too; off Linux both read NaN.
 */
export function sampleProcessMemory(pid: number, intervalMs = 50) {
  const report: ProcessMemory = { peakRssBytes: Number.NaN, hwmBytes: Number.NaN, samples: 0 };
  const sample = async () => {
    const s = await readStatus(pid);
    if (!s) return;
    report.peakRssBytes = Number.isNaN(report.peakRssBytes)
      ? s.rss
      : Math.max(report.peakRssBytes, s.rss);
    report.hwmBytes = s.hwm;
    report.samples += 1;
  };
  const timer = setInterval(() => void sample(), intervalMs);
  return {
    /** Call before the process exits: takes a last sample. */
    async stop(): Promise<ProcessMemory> {
      clearInterval(timer);
      await sample();
      return { ...report };
    },
  };
}
