/**
 * One webhook POST, with the same address defences as `http_get`: the URL is
 * checked as at submit, the name is resolved, every address must be public
 * (unless private targets are allowed), and the socket connects to an address
 * that was checked (the pinned lookup), so DNS rebinding cannot swap in
 * 127.0.0.1 between the check and the connection. Redirects are not followed
 * (a 3xx is a failed attempt, as the Standard Webhooks senders treat it).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import {
  isPublicAddress,
  pinnedLookup,
  type ResolvedAddress,
} from '../../shared/address-policy.ts';
import { checkWebhookUrl } from '../../shared/webhooks/webhook-url.ts';
import { retryAfterFromHeaders } from '../providers/classify-error.ts';

export type { ResolvedAddress };

export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

export interface PostWebhookOptions {
  resolve: Resolver;
  allowPrivate: boolean;
  timeoutMs: number;
  /** Aborts the attempt (the worker shutting down). */
  signal?: AbortSignal;
}

export type PostResult =
  /** The receiver answered (any status). */
  | { kind: 'response'; status: number; retryAfterMs?: number }
  /** The target is not allowed (address policy): retrying cannot help. */
  | { kind: 'refused'; message: string }
  /** No answer: DNS failure, connection error, timeout. */
  | { kind: 'error'; message: string };

// A receiver's reply body is read only to close the exchange cleanly.
const MAX_REPLY_BYTES = 64 * 1024;

export async function postWebhook(
  urlText: string,
  body: string,
  headers: Record<string, string>,
  options: PostWebhookOptions,
): Promise<PostResult> {
  const checked = checkWebhookUrl(urlText, { allowPrivate: options.allowPrivate });
  if (checked.problem !== undefined) return { kind: 'refused', message: checked.problem };
  options.signal?.throwIfAborted();
  // One budget for the lookup and the exchange, and one controller for both
  // causes of an abort (no AbortSignal.any: it leaks on Node 20).
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), options.timeoutMs);
  const onShutdown = () => timeout.abort();
  options.signal?.addEventListener('abort', onShutdown, { once: true });
  try {
    return await attempt(checked.url, body, headers, options, timeout.signal);
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason ?? err;
    if (timeout.signal.aborted)
      return { kind: 'error', message: `timed out after ${options.timeoutMs} ms` };
    return { kind: 'error', message: messageOf(err) };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onShutdown);
  }
}

async function attempt(
  url: URL,
  body: string,
  headers: Record<string, string>,
  options: PostWebhookOptions,
  signal: AbortSignal,
): Promise<PostResult> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: ResolvedAddress[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    try {
      addresses = await untilAborted(options.resolve(host), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      return { kind: 'error', message: `could not resolve ${host}: ${messageOf(err)}` };
    }
    if (addresses.length === 0) return { kind: 'error', message: `${host} has no addresses` };
  }
  const inward = options.allowPrivate
    ? undefined
    : addresses.find((a) => !isPublicAddress(a.address));
  if (inward) {
    return {
      kind: 'refused',
      message: `${host} resolves to ${inward.address}, which is not a public address`,
    };
  }
  return send(url, addresses, body, headers, signal);
}

/** A lookup cannot be cancelled; stop waiting for it when the attempt is over. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function send(
  url: URL,
  addresses: ResolvedAddress[],
  body: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<PostResult> {
  // The socket asks this instead of DNS, so it connects to an address we checked.
  const pinned = pinnedLookup(addresses);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: 'POST',
      lookup: pinned,
      signal,
      agent: false, // no pooled sockets: each attempt connects to the addresses vetted for it
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'agentq-webhooks/0.1',
      },
    });
    req.once('error', reject);
    req.once('response', (res) => {
      const status = res.statusCode ?? 0;
      const retryAfterMs = retryAfterFromHeaders(
        new Headers(
          Object.entries(res.headers).flatMap(([k, v]) =>
            typeof v === 'string' ? [[k, v] as [string, string]] : [],
          ),
        ),
      );
      let size = 0;
      const done = () => resolve({ kind: 'response', status, retryAfterMs });
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_REPLY_BYTES) {
          res.destroy();
          done();
        }
      });
      res.once('end', done);
      res.once('error', done); // the status is what counts
    });
    req.end(body);
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
