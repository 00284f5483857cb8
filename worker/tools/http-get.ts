/**
 * The `http_get` tool: fetches a text page from a host the operator allowed.
 *
 * Defences, in order, on the first request and again on every redirect hop:
 * http/https only, no credentials in the URL, the host (and port) must be in
 * the allowlist, and every address the name resolves to must pass the address
 * policy. The connection then goes to an address that was checked — the socket
 * never resolves the name again, so DNS rebinding cannot swap in 127.0.0.1.
 * Time, size, redirects and content types are bounded.
 *
 * Allowlist entries: `example.com` (that host on the scheme's default port),
 * `*.example.com` (its subdomains, not example.com itself), `example.com:8443`
 * (that port). IPv6 literals go in brackets: `[2001:db8::1]`.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import * as v from 'valibot';
import {
  isPublicAddress,
  pinnedLookup,
  type ResolvedAddress,
} from '../../shared/address-policy.ts';
import { defineTool, ToolError, type ToolContext } from './tool.ts';

export type { ResolvedAddress };

export interface HttpGetOptions {
  /** Resolves a host name to all its addresses. Default: the system resolver (`dns.lookup`). */
  lookup?: (hostname: string) => Promise<ResolvedAddress[]>;
  /** Whether connecting to an address is allowed. Default: `isPublicAddress`. */
  isAddressAllowed?: (ip: string) => boolean;
  /** Budget for the whole fetch, redirects included. Default 10 000 ms. */
  timeoutMs?: number;
  /** Bytes of body kept; the rest is dropped and `truncated` set. Default 200 KiB. */
  maxBytes?: number;
  /** Redirects followed before giving up. Default 3. */
  maxRedirects?: number;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const TEXT_TYPE =
  /^(text\/[\w.+-]+|application\/(json|xml|javascript|ecmascript|x-javascript|x-ndjson|[\w.-]+\+(json|xml))|image\/svg\+xml)$/;

const schema = v.strictObject({
  url: v.pipe(
    v.string('must be a string'),
    v.minLength(1, 'must not be empty'),
    v.maxLength(2048, 'must be at most 2048 characters'),
    v.description('Absolute http(s) URL, for example "https://example.com/page".'),
  ),
});

export function createHttpGetTool(options: HttpGetOptions = {}) {
  const resolve = options.lookup ?? ((host) => dnsLookup(host, { all: true, verbatim: true }));
  const isAddressAllowed = options.isAddressAllowed ?? isPublicAddress;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxBytes ?? 200 * 1024;
  const maxRedirects = options.maxRedirects ?? 3;

  async function vettedAddresses(url: URL, signal: AbortSignal): Promise<ResolvedAddress[]> {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    let addresses: ResolvedAddress[];
    if (isIP(host)) {
      addresses = [{ address: host, family: isIP(host) }];
    } else {
      try {
        addresses = await abortable(resolve(host), signal);
      } catch (error) {
        if (signal.aborted) throw error;
        throw new ToolError(`could not resolve host "${host}" (${errorMessage(error)})`);
      }
      if (addresses.length === 0) throw new ToolError(`host "${host}" has no addresses`);
    }
    const refused = addresses.find((a) => !isAddressAllowed(a.address));
    if (refused) {
      throw new ToolError(
        `refusing "${host}": it resolves to ${refused.address}, which is not a public address`,
      );
    }
    return addresses;
  }

  async function fetchText(start: URL, context: ToolContext) {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([context.signal, deadline]);
    let url = start;
    try {
      for (let hop = 0; ; hop++) {
        checkUrl(url, context.httpAllowlist);
        const addresses = await vettedAddresses(url, signal);
        const response = await request(url, addresses, signal);
        const status = response.statusCode ?? 0;
        const location = response.headers.location;
        if (REDIRECT_STATUSES.has(status) && location) {
          response.destroy();
          if (hop >= maxRedirects)
            throw new ToolError(`too many redirects (more than ${maxRedirects})`);
          url = parseUrl(location, url);
          continue;
        }
        const contentType = response.headers['content-type'] ?? '';
        const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
        if (!TEXT_TYPE.test(mediaType)) {
          response.destroy();
          throw new ToolError(
            `refusing content type "${mediaType || 'none'}": only text, JSON, XML and JavaScript are fetched`,
          );
        }
        const encoding = response.headers['content-encoding'];
        if (encoding && encoding !== 'identity') {
          response.destroy();
          throw new ToolError(
            `the server sent a compressed body (${encoding}) although none was asked for`,
          );
        }
        const { bytes, truncated } = await readCapped(response, maxBytes);
        return {
          url: url.href,
          status,
          content_type: contentType,
          body: decode(bytes, contentType),
          truncated,
        };
      }
    } catch (error) {
      if (context.signal.aborted) throw context.signal.reason;
      if (deadline.aborted)
        throw new ToolError(`timed out after ${timeoutMs / 1000} s fetching ${url.href}`);
      if (error instanceof ToolError) throw error;
      throw new ToolError(`fetching ${url.href} failed: ${errorMessage(error)}`);
    }
  }

  return defineTool({
    name: 'http_get',
    description:
      'Fetches a URL with HTTP GET and returns its status, content type and text body. ' +
      `Only hosts on the operator's allowlist work, only text, JSON, XML or JavaScript is returned, ` +
      `and bodies longer than ${Math.round(maxBytes / 1024)} KiB are cut off (truncated: true).`,
    schema,
    async run({ url }, context) {
      context.signal.throwIfAborted();
      if (context.httpAllowlist.length === 0) {
        throw new ToolError(
          'http_get is turned off: no hosts are allowed (AGENTQ_HTTP_ALLOWLIST is empty)',
        );
      }
      return fetchText(parseUrl(url), context);
    },
  });
}

export const httpGetTool = createHttpGetTool();

function parseUrl(text: string, base?: URL): URL {
  try {
    return new URL(text, base);
  } catch {
    throw new ToolError(`"${text}" is not a valid absolute URL`);
  }
}

function checkUrl(url: URL, allowlist: readonly string[]): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ToolError(`only http and https URLs are fetched, not ${url.protocol}`);
  }
  if (url.username || url.password)
    throw new ToolError('URLs with credentials (user:password@) are refused');
  if (!allowlist.some((entry) => matchesEntry(url, entry))) {
    throw new ToolError(
      `host "${url.host}" is not allowed; the allowlist has: ${allowlist.join(', ')}`,
    );
  }
}

/** See the module comment for the entry forms. An entry that does not parse matches nothing. */
function matchesEntry(url: URL, entry: string): boolean {
  let text = entry.trim().toLowerCase();
  const wildcard = text.startsWith('*.');
  if (wildcard) text = text.slice(2);
  const portMatch = /:(\d+)$/.exec(text);
  const port = portMatch?.[1];
  if (portMatch) text = text.slice(0, portMatch.index);
  let host: string;
  try {
    // Normalises the entry as URLs are normalised: punycode, IPv6 brackets, case.
    host = new URL(`http://${text}/`).hostname;
  } catch {
    return false;
  }
  const hostname = url.hostname.replace(/\.$/, '');
  const hostOk = wildcard ? hostname.endsWith(`.${host}`) : hostname === host;
  const effectivePort = url.port || (url.protocol === 'https:' ? '443' : '80');
  return hostOk && (port === undefined ? url.port === '' : effectivePort === port);
}

function request(
  url: URL,
  addresses: ResolvedAddress[],
  signal: AbortSignal,
): Promise<http.IncomingMessage> {
  // The socket asks this instead of DNS, so it connects to an address we checked.
  const pinned = pinnedLookup(addresses);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: 'GET',
      lookup: pinned,
      signal,
      // No pooled sockets: each hop connects to the addresses vetted for it.
      agent: false,
      headers: {
        'user-agent': 'agentq-http-get/0.1',
        accept: 'text/*, application/json, application/xml;q=0.9, */*;q=0.1',
        'accept-encoding': 'identity',
      },
    });
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
}

async function readCapped(response: http.IncomingMessage, maxBytes: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    if (size + chunk.length > maxBytes) {
      chunks.push(chunk.subarray(0, maxBytes - size));
      // Leaving the loop destroys the stream: the rest is never downloaded.
      return { bytes: Buffer.concat(chunks), truncated: true };
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { bytes: Buffer.concat(chunks), truncated: false };
}

function decode(bytes: Buffer, contentType: string): string {
  const charset = /charset="?([\w.:-]+)"?/i.exec(contentType)?.[1];
  try {
    return new TextDecoder(charset ?? 'utf-8').decode(bytes);
  } catch {
    return new TextDecoder('utf-8').decode(bytes);
  }
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    signal.throwIfAborted();
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
