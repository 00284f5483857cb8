/**
 * Runs the real `agentq` bin (bin/agentq.mjs) as a child process, the way a
 * user's shell does, and collects what it printed and its exit code. The
 * environment starts clean of the CLI's own variables and of colour settings.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/agentq.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  /** What it printed on stdout so far. */
  stdout(): string;
  done: Promise<CliResult>;
}

function cliEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['AGENTQ_URL', 'AGENTQ_TOKEN', 'NO_COLOR', 'FORCE_COLOR', 'NODE_OPTIONS'])
    delete env[key];
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Starts `agentq <args>`; kills it after `timeoutMs` (the result then has code null). */
export function startCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {},
): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: cliEnv(options.env ?? {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 45_000);
  const done = new Promise<CliResult>((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { stdout: () => stdout, done };
}

/** Runs `agentq <args>` to its end. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Parses JSON lines (one object per line). */
export function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** ANSI escape sequences (colours and cursor control). */
export const ESCAPE = '\u001b[';

/** Whether util-linux `script` is here to give the CLI a terminal. */
export const canRunOnTerminal = spawnSync('script', ['--version']).status === 0;

/**
 * Runs `agentq <args>` on a pseudo-terminal (util-linux `script`), as in a
 * user's terminal: stdout and stderr are the terminal, so both arrive in `stdout`.
 */
export function runCliOnTerminal(
  args: string[],
  options: { env?: Record<string, string | undefined> } = {},
): Promise<CliResult> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    cwd: ROOT,
    // Not CI: the spinner (like yocto-spinner itself) stays still under CI.
    env: cliEnv({ CI: undefined, TERM: 'xterm-256color', ...options.env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}
