/**
 * The worker's own GET /metrics (a worker has no HTTP server otherwise): a
 * small node:http listener on HOST:AGENTQ_METRICS_PORT, started only when
 * that is set. Auth as the API's /metrics: the AGENTQ_API_TOKENS bearer
 * tokens unless AGENTQ_METRICS_PUBLIC=true. Without tokens it answers only
 * requests that name a loopback Host, as the open API does (a web page on
 * this machine could otherwise read it through DNS rebinding).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bearerTokenCheck } from '../shared/bearer-token.ts';
import type { Logger } from '../shared/logger.ts';
import { isLoopbackHost } from '../shared/loopback.ts';
import type { Registry } from '../shared/metrics/metrics-registry.ts';

export interface MetricsServerOptions {
  registry: Registry;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  tokens: readonly string[];
  public: boolean;
  logger: Logger;
}

export interface RunningMetricsServer {
  url: string;
  stop(): Promise<void>;
}

export async function startMetricsServer(
  options: MetricsServerOptions,
): Promise<RunningMetricsServer> {
  const { registry, logger } = options;
  const authorized = bearerTokenCheck(options.tokens);
  const needsToken = options.tokens.length > 0 && !options.public;

  const server = http.createServer((req, res) => {
    const reply = (status: number, code: string, message: string, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify({ error: { code, message } }));
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') return reply(404, 'not_found', `no route ${req.method} ${path}`);
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return reply(405, 'method_not_allowed', 'GET /metrics only', { allow: 'GET, HEAD' });
    if (options.tokens.length === 0 && !isLoopbackHost(hostnameOf(req.headers.host))) {
      return reply(403, 'forbidden_host', 'without tokens, /metrics answers only a loopback Host');
    }
    if (needsToken && !authorized(req.headers.authorization)) {
      return reply(401, 'unauthorized', 'a valid bearer token is required', {
        'www-authenticate': 'Bearer realm="agentq"',
      });
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        logger.error({ err }, 'metrics: collecting failed');
        reply(500, 'internal_error', 'collecting the metrics failed (see the worker log)');
      },
    );
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}/metrics`;
  logger.info({ url }, 'worker metrics listening');
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The name in a Host header, without its port; '' when absent or unparsable. */
function hostnameOf(host: string | undefined): string {
  try {
    return new URL(`http://${host ?? ''}`).hostname;
  } catch {
    return '';
  }
}
