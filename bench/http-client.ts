/**
 * A lean JSON-over-HTTP client on node:http with keep-alive. The load
 * generator shares this process (and its CPUs) with the API it measures, so
 * it should cost as little as it can: node:http with a keep-alive agent does
 * less per request than the fetch implementation.
 */
import http from 'node:http';

export interface JsonResponse {
  status: number;
  body: unknown;
}

export interface HttpClient {
  request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<JsonResponse>;
  close(): void;
}

export function httpClient(baseUrl: string, maxSockets: number): HttpClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const base = new URL(baseUrl);
  return {
    request(method, path, body) {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      return new Promise<JsonResponse>((resolve, reject) => {
        const req = http.request(
          {
            agent,
            host: base.hostname,
            port: base.port,
            method,
            path,
            headers:
              payload === undefined
                ? { accept: 'application/json' }
                : {
                    accept: 'application/json',
                    'content-type': 'application/json',
                    'content-length': Buffer.byteLength(payload),
                  },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('error', reject);
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              try {
                resolve({
                  status: res.statusCode ?? 0,
                  body: text ? (JSON.parse(text) as unknown) : null,
                });
              } catch {
                reject(
                  new Error(
                    `${method} ${path}: ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`,
                  ),
                );
              }
            });
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    },
    close() {
      agent.destroy();
    },
  };
}
