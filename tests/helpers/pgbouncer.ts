/**
 * A real PgBouncer in transaction mode in front of a test database, started
 * per test file on a free port with a generated ini and auth file, and stopped
 * after. PgBouncer refuses to run as root; as root it runs as the `postgres`
 * user (as the embedded Postgres does), through `runuser`.
 *
 * `pgbouncerBinary()` is undefined where PgBouncer is not installed: tests
 * skip with a printed reason then, except under CI=true, where it must run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../shared/db/embedded-postgres.ts';
import { waitFor } from './wait-for.ts';

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

export function pgbouncerBinary(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

/** The installed version, e.g. "1.18.0". */
export function pgbouncerVersion(binary: string): string {
  const out = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout ?? '';
  return /PgBouncer (\S+)/.exec(out)?.[1] ?? 'unknown';
}

/** Whether the pgbouncer tests must run (CI) or may skip; prints why they skip. */
export function pgbouncerOrSkip(): string | undefined {
  const binary = pgbouncerBinary();
  if (binary) return binary;
  if (process.env.CI === 'true') {
    throw new Error('pgbouncer is not installed, and CI=true requires these tests to run');
  }
  console.log('[agentq tests] skipping the PgBouncer tests: pgbouncer is not installed');
  return undefined;
}

export interface RunningPgBouncer {
  /** `databaseUrl` rewritten to go through PgBouncer. */
  url: string;
  port: number;
  /** Everything PgBouncer logged. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts PgBouncer in transaction mode in front of `databaseUrl`'s server
 * (every database name passes through). `poolSize` is its default_pool_size:
 * server connections per database and user.
 */
export async function startPgBouncer(
  databaseUrl: string,
  options: { poolSize?: number; binary?: string } = {},
): Promise<RunningPgBouncer> {
  const binary = options.binary ?? pgbouncerBinary();
  if (!binary) throw new Error('pgbouncer is not installed');
  const target = new URL(databaseUrl);
  const user = decodeURIComponent(target.username || 'postgres');
  const password = decodeURIComponent(target.password);
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'agentq-pgbouncer-'));
  const ini = path.join(dir, 'pgbouncer.ini');
  const auth = path.join(dir, 'users.txt');
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  // The server password (if any) sits in the auth file, which PgBouncer uses
  // both for its clients (trust here) and to log in to Postgres (md5/SCRAM).
  await writeFile(auth, `${quote(user)} ${quote(password)}\n`, { mode: 0o600 });
  await writeFile(
    ini,
    [
      '[databases]',
      `* = host=${target.hostname} port=${target.port || '5432'}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      // No unix socket: nothing outside this test should find it.
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${auth}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize ?? 5}`,
      'max_client_conn = 200',
      // Tests start and stop databases often; do not keep server connections
      // to a dropped database around.
      'server_lifetime = 60',
      'server_idle_timeout = 10',
      // agentq's clients send these startup parameters; transaction mode
      // cannot keep them, and PgBouncer would refuse the login otherwise.
      'ignore_startup_parameters = extra_float_digits,options',
      `admin_users = ${user}`, // SHOW STATS, for tests that check traffic went through it
      '',
    ].join('\n'),
  );
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    // PgBouncer refuses to run as root: run it as postgres, which must read its files.
    const ids = idsOf('postgres');
    await chown(dir, ids.uid, ids.gid);
    await chown(ini, ids.uid, ids.gid);
    await chown(auth, ids.uid, ids.gid);
    await chmod(dir, 0o700);
  }
  const command = asRoot ? 'runuser' : binary;
  const args = asRoot ? ['-u', 'postgres', '--', binary, ini] : [ini];
  const proc: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', (code) => {
      exitCode = code;
      resolve();
    }),
  );
  try {
    await waitFor(
      async () => {
        if (exitCode !== undefined) throw new Error(`pgbouncer exited ${exitCode}`);
        return canConnect(port);
      },
      { timeoutMs: 15_000, what: 'pgbouncer to listen' },
    );
  } catch (err) {
    proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n--- pgbouncer output ---\n${out}`);
  }
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    port,
    output: () => out,
    async stop() {
      if (exitCode === undefined) {
        proc.kill('SIGTERM'); // runuser passes it on; pgbouncer stops at once
        const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function idsOf(user: string): { uid: number; gid: number } {
  const id = (flag: string) =>
    Number.parseInt(spawnSync('id', [flag, user], { encoding: 'utf8' }).stdout, 10);
  return { uid: id('-u'), gid: id('-g') };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
