/**
 * How the dashboard talks to /v1: every request carries the bearer token this
 * browser keeps (localStorage), and streams are read with fetch() and a
 * server-sent-events parser, because EventSource cannot send that header.
 */
const TOKEN_KEY = 'agentq.token';

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY) ?? '',
  set: (value) => localStorage.setItem(TOKEN_KEY, value),
  forget: () => localStorage.removeItem(TOKEN_KEY),
};

/** An answer in the API's error shape, `{ error: { code, message, details? } }`. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let unauthorized = () => {};
/** `fn` runs on every 401: the page asks for a token again. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

function headersWith(extra) {
  const headers = new Headers(extra);
  const value = token.get();
  if (value) headers.set('authorization', `Bearer ${value}`);
  return headers;
}

async function errorOf(res) {
  let body;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const e = body?.error;
  const err = new ApiError(
    res.status,
    e?.code ?? `http_${res.status}`,
    e?.message ?? `the server answered ${res.status}`,
    e?.details,
  );
  if (res.status === 401) unauthorized(err);
  return err;
}

/** A JSON request to the API; resolves to the answer's JSON or throws ApiError. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = headersWith({ accept: 'application/json' });
  if (body !== undefined) headers.set('content-type', 'application/json');
  const res = await fetch(path, {
    method,
    headers,
    signal,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  if (!res.ok) throw await errorOf(res);
  return res.status === 204 ? undefined : res.json();
}

/** A query string of the set values of `params` (arrays joined by commas). */
export function queryOf(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) {
      if (value.length > 0) q.set(name, value.join(','));
    } else q.set(name, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * Follows a server-sent-events stream until `signal` aborts or a handler
 * returns 'stop'. When the server ends the stream (its lifetime) or the
 * connection drops, `onEnd` decides, then it reconnects after the server's
 * `retry:` hint and resumes with Last-Event-ID. A 4xx other than 429 ends it
 * with `onError`; a 401 also brings the token form back.
 */
export async function followStream(path, { signal, onEvent, onOpen, onEnd, onDrop, onError }) {
  let lastEventId;
  let retryMs = 1000;
  while (!signal.aborted) {
    try {
      const headers = headersWith({ accept: 'text/event-stream' });
      if (lastEventId !== undefined) headers.set('last-event-id', lastEventId);
      const res = await fetch(path, { headers, signal, cache: 'no-store' });
      if (!res.ok) {
        const err = await errorOf(res);
        if (res.status >= 400 && res.status < 500 && res.status !== 429) {
          onError?.(err);
          return;
        }
        throw err;
      }
      onOpen?.();
      for await (const item of sseEvents(res.body)) {
        if (item.retry !== undefined) retryMs = item.retry;
        if (item.id !== undefined) lastEventId = item.id;
        if (item.event !== undefined && onEvent(item) === 'stop') {
          await res.body.cancel().catch(() => {});
          return;
        }
      }
      if ((await onEnd?.()) === 'stop') return;
    } catch (err) {
      if (signal.aborted) return;
      onDrop?.(err);
    }
    await sleep(retryMs, signal);
  }
}

/**
 * The events of an SSE body as `{ event, data, id }` (and `{ retry }` for a
 * reconnection hint), parsed per the HTML standard: lines end in CR, LF or
 * CRLF (possibly split across chunks), `:` starts a comment, a blank line
 * dispatches, and the last `id:` seen is kept.
 */
export async function* sseEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  let event = '';
  let id;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    for (;;) {
      const end = /\r\n|\r|\n/.exec(buffer);
      // A CR at the very end may be the first half of a CRLF: wait for more.
      if (end === null || (end[0] === '\r' && end.index === buffer.length - 1)) break;
      const line = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end[0].length);
      if (line === '') {
        if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id };
        data = [];
        event = '';
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let text = colon === -1 ? '' : line.slice(colon + 1);
      if (text.startsWith(' ')) text = text.slice(1);
      if (field === 'data') data.push(text);
      else if (field === 'event') event = text;
      else if (field === 'id' && !text.includes('\0')) id = text;
      else if (field === 'retry' && /^\d+$/.test(text)) yield { retry: Number(text) };
    }
  }
}
