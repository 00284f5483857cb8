/**
 * Starts the real `api` and `worker` entry points as child processes, the way
 * `npm run api` / `npm run worker` do (node with the tsx loader), and waits
 * for them to be ready. Their output is kept for failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../shared/db/embedded-postgres.ts';
import { waitFor } from './wait-for.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface AgentqProcess {
  proc: ChildProcess;
  /** Everything it printed so far (JSON log lines). */
  output(): string;
  /** Parsed log lines. */
  logs(): Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  /** SIGTERM (default) and wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function launch(entry: string, env: Record<string, string>): AgentqProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: ROOT,
    // Small pools: several test files each run an API and workers against one
    // Postgres (100 connections on a stock server).
    env: { ...process.env, LOG_LEVEL: 'info', AGENTQ_DB_POOL_MAX: '4', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  return {
    proc,
    output: () => out,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return {};
          }
        }),
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
}

async function readyOrExplain(p: AgentqProcess, check: () => Promise<boolean>, what: string) {
  let exitCode: number | null | undefined;
  void p.exited.then((c) => (exitCode = c));
  try {
    await waitFor(
      async () =>
        exitCode !== undefined ? Promise.reject(new Error(`exited ${exitCode}`)) : check(),
      {
        // Generous: five processes starting at once on a shared 2-core machine can take a minute or more.
        timeoutMs: 120_000,
        what,
      },
    );
  } catch (err) {
    await p.stop('SIGKILL');
    throw new Error(`${what} failed: ${(err as Error).message}\n--- output ---\n${p.output()}`);
  }
}

/** Starts api/main.ts on a free port, or on `env.PORT` when given (a restart on the same address). */
export async function startApiProcess(
  env: Record<string, string>,
): Promise<AgentqProcess & { url: string }> {
  const port = env.PORT !== undefined ? Number(env.PORT) : await freePort();
  const p = launch('api/main.ts', { ...env, PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  await readyOrExplain(
    p,
    async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200,
    'api process to become ready',
  );
  return { ...p, url };
}

export async function startWorkerProcess(
  env: Record<string, string>,
): Promise<AgentqProcess & { id: string }> {
  const p = launch('worker/main.ts', env);
  let id = '';
  await readyOrExplain(
    p,
    async () => {
      const started = p.logs().find((l) => l.msg === 'worker started');
      id = String(started?.workerId ?? '');
      return started !== undefined;
    },
    'worker process to start',
  );
  return { ...p, id };
}
