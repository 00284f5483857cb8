// The setup module: which OTEL_* settings turn tracing on and where spans go,
// and, with a fake OTLP/HTTP collector on 127.0.0.1, that startTracing really
// exports the API's request spans there (service name, span names) and that a
// stop flushes them. A bad endpoint stops `npm run api` with one line.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/config.ts';
import { startTracing, tracingSettings } from '../../shared/tracing.ts';
import { startTestApi } from '../helpers/api-harness.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('tracingSettings', () => {
  it.each([
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, 'http://127.0.0.1:4318/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, 'http://collector:4318/v1/traces'],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example/otlp' },
      'https://otel.example/otlp/v1/traces',
    ],
    [
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:9999/custom',
      },
      'http://127.0.0.1:9999/custom',
    ],
  ])('%j exports to %s', (env, url) => {
    expect(tracingSettings(env, 'agentq-api')).toEqual({ url, serviceName: 'agentq-api' });
  });

  it('OTEL_SERVICE_NAME names the service; without an endpoint tracing is off', () => {
    expect(
      tracingSettings(
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SERVICE_NAME: 'queue-eu' },
        'agentq-api',
      )?.serviceName,
    ).toBe('queue-eu');
    expect(tracingSettings({ OTEL_SERVICE_NAME: 'queue-eu' }, 'agentq-api')).toBeUndefined();
  });

  it.each([
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'collector:4318'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'grpc://127.0.0.1:4317'],
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'not a url'],
  ])('a bad %s (%j) is a ConfigError naming it', (name, value) => {
    const read = () => tracingSettings({ [name]: value }, 'agentq-api');
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(`invalid ${name}: must be an http:// or https:// URL`);
  });

  it('npm run api stops at once with one line for a bad endpoint', async () => {
    const run = promisify(execFile);
    const failed = await run(process.execPath, ['--import', 'tsx', 'api/main.ts'], {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
        LOG_LEVEL: 'silent',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
      },
      timeout: 30_000,
    }).then(
      () => undefined,
      (err: { code?: number; stderr?: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toBe(
      'agentq: invalid OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL\n',
    );
  });
});

interface Export {
  path: string;
  contentType: string | undefined;
  body: {
    resourceSpans: Array<{
      resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
      scopeSpans: Array<{ spans: Array<{ name: string; traceId: string; spanId: string }> }>;
    }>;
  };
}

describe('startTracing with a collector', () => {
  let collector: Server;
  let collectorUrl: string;
  const exports: Export[] = [];
  let tdb: TestDatabase;

  beforeAll(async () => {
    collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        exports.push({
          path: req.url ?? '',
          contentType: req.headers['content-type'],
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Export['body'],
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    collectorUrl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    tdb = await createTestDatabase();
  });

  afterAll(async () => {
    await tdb?.drop();
    await new Promise((resolve) => collector?.close(resolve));
  });

  it('exports the request spans as OTLP/HTTP to <endpoint>/v1/traces, flushed on shutdown', async () => {
    const tracing = await startTracing(
      { OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl, OTEL_SERVICE_NAME: 'agentq-under-test' },
      { serviceName: 'agentq-api', logger: pino({ level: 'silent' }) },
    );
    expect(tracing.enabled).toBe(true);
    const api = await startTestApi(tdb);
    try {
      expect((await api.get('/healthz')).status).toBe(200);
      const res = await api.post('/v1/tasks', { input: { prompt: 'traced through the SDK' } });
      expect(res.status).toBe(201);
      const { id } = (await res.json()) as { id: string };
      // The globally registered propagator wrote the submit's context on the row.
      const row = await tdb.db
        .selectFrom('agentq.tasks')
        .select('trace_context')
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(row.trace_context?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

      await tracing.shutdown();
      const spans = await waitFor(() => {
        const all = exports.flatMap((e) =>
          e.body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
        );
        return all.length >= 2 ? all : undefined;
      });
      expect(spans.map((s) => s.name).sort()).toEqual(['GET /healthz', 'POST /v1/tasks']);
      expect(exports[0]!.path).toBe('/v1/traces');
      expect(exports[0]!.contentType).toContain('application/json');
      const service = exports[0]!.body.resourceSpans[0]!.resource.attributes.find(
        (a) => a.key === 'service.name',
      );
      expect(service?.value.stringValue).toBe('agentq-under-test');
      // The stored traceparent names the exported submit span.
      const submit = spans.find((s) => s.name === 'POST /v1/tasks')!;
      expect(row.trace_context?.traceparent).toBe(`00-${submit.traceId}-${submit.spanId}-01`);
    } finally {
      await api.stop();
    }
  });
});
