/**
 * A webhook receiver on 127.0.0.1 for tests: records every request (path,
 * headers, raw body) and answers what the test's responder says.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  path: string;
  headers: Record<string, string>;
  body: string;
}

export type Responder = (
  request: ReceivedWebhook,
  /** How many requests this path had before this one. */
  earlier: number,
) => { status: number; headers?: Record<string, string> } | 'hang';

export async function startWebhookReceiver(responder: Responder) {
  const received: ReceivedWebhook[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = Object.fromEntries(
        Object.entries(req.headers).flatMap(([k, v]) => (typeof v === 'string' ? [[k, v]] : [])),
      );
      const request = { path: req.url ?? '/', headers, body: Buffer.concat(chunks).toString() };
      const earlier = received.filter((r) => r.path === request.path).length;
      received.push(request);
      const answer = responder(request, earlier);
      if (answer === 'hang') return; // never answers (closed with the server)
      res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
      res.end(String(answer.status));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    received,
    /** The requests made to one path, in arrival order. */
    at: (path: string) => received.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
