// scripts/check-compose.ts holds docker-compose.yml to the Compose
// Specification's JSON schema and to its safety rules: the token is required
// (no default, no literal placeholder), the API is published on loopback only,
// and workers can be scaled. The shipped file passes; broken ones do not.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
let dir: string;
let shipped: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'agentq-compose-'));
  shipped = await readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function check(content: string) {
  const file = path.join(dir, `compose-${Math.random().toString(36).slice(2)}.yml`);
  await writeFile(file, content);
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/check-compose.ts', file], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

const TOKEN_LINE = /^( +AGENTQ_API_TOKENS: ).*$/m;

describe('check-compose', () => {
  it('passes the shipped docker-compose.yml, which requires a token and publishes on 127.0.0.1', async () => {
    expect(shipped).toMatch(/AGENTQ_API_TOKENS: \$\{AGENTQ_API_TOKENS:\?[^}]+\}/);
    expect(shipped).toContain('- "127.0.0.1:8080:8080"');
    const r = await check(shipped);
    expect(r.out).toContain('syntax and safety rules ok');
    expect(r.code).toBe(0);
  });

  it.each([
    [
      'a default token',
      '$1${AGENTQ_API_TOKENS:-change-me-please}',
      'AGENTQ_API_TOKENS has a default',
    ],
    [
      'a literal placeholder',
      '$1change-me-please',
      'AGENTQ_API_TOKENS is the placeholder "change-me-please"',
    ],
    ['a literal token', '$1Zq4-9fK2xw-literal', 'AGENTQ_API_TOKENS must come from the environment'],
  ])('refuses %s', async (_what, replacement, message) => {
    const r = await check(shipped.replace(TOKEN_LINE, replacement));
    expect(r.code).toBe(1);
    expect(r.out).toContain(`api: ${message}`);
  });

  it.each([['"8080:8080"'], ['"0.0.0.0:8080:8080"'], ['"8080"']])(
    'refuses the API published as %s',
    async (ports) => {
      const r = await check(shipped.replace('"127.0.0.1:8080:8080"', ports));
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/api: port .* is published on (every interface|0\.0\.0\.0)/);
    },
  );

  it('accepts [::1] as loopback, and refuses an api without AGENTQ_API_TOKENS', async () => {
    expect((await check(shipped.replace('"127.0.0.1:8080:8080"', '"[::1]:8080:8080"'))).code).toBe(
      0,
    );
    const r = await check(shipped.replace(TOKEN_LINE, ''));
    expect(r.code).toBe(1);
    expect(r.out).toContain('api: AGENTQ_API_TOKENS is not set');
  });

  it('validates against the Compose Specification: an unknown key, a wrong type or a bad duration fails', async () => {
    const cases: Array<[string, string]> = [
      [
        `${shipped}\nbogus: true\n`,
        'schema: (top level) must NOT have additional properties (bogus)',
      ],
      [
        shipped.replace('    restart: unless-stopped\n', '    restart: [always]\n'),
        'must be string',
      ],
      [shipped.replace('interval: 5s', 'interval: five seconds'), 'must match format "duration"'],
      [shipped.replace('  migrate:\n', '  migrate:\n    imagee: typo\n'), '(imagee)'],
    ];
    for (const [content, message] of cases) {
      const r = await check(content);
      expect(r.code, r.out).toBe(1);
      expect(r.out).toContain('not a valid Compose file');
      expect(r.out).toContain(message);
    }
  });

  it('runs the image the Dockerfile builds, with a one-shot migrate and workers that scale', async () => {
    const doc = parse(shipped, { merge: true }) as {
      services: Record<string, Record<string, unknown>>;
    };
    const { postgres, migrate, api, worker } = doc.services;
    expect(postgres?.healthcheck).toBeDefined();
    for (const s of [migrate, api, worker]) expect(s).toMatchObject({ build: '.' });
    expect(migrate?.command).toEqual(['node', 'dist/scripts/migrate.js']);
    expect(api?.command).toEqual(['node', 'dist/api/main.js']);
    expect(worker?.command).toEqual(['node', 'dist/worker/main.js']);
    expect(worker).not.toHaveProperty('ports');
    expect(worker).not.toHaveProperty('container_name');
    expect(JSON.stringify(worker?.healthcheck)).toContain('9464/readyz');
    expect(worker?.environment).toMatchObject({ AGENTQ_METRICS_PORT: '9464' });

    const pinned = shipped.replace('  worker:\n', '  worker:\n    container_name: agentq-worker\n');
    const r = await check(pinned);
    expect(r.code).toBe(1);
    expect(r.out).toContain('worker: container_name prevents --scale');
  });
});
