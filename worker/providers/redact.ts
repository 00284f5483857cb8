/**
 * Provider error text made fit for a task's `error` and the step log, which
 * clients read. Providers and proxies echo what they were sent (a 401 body
 * quoting `Bearer sk-…`), name internal hosts, and paste whole URLs; all of
 * that is cut here, and the text is capped. The full text goes to the
 * worker's log only (agent-task.ts logs the failure's cause).
 *
 * It errs on the side of cutting: a long mixed-case token or an address is
 * replaced even when it was harmless, since the reader loses little and the
 * operator's log keeps the original.
 */

/** Longest provider message kept in a task's error. */
export const MAX_PROVIDER_MESSAGE = 300;

/** Only this much is examined: the rules stay cheap on a huge error body, and the rest is cut anyway. */
const MAX_EXAMINED = 4096;

export interface RedactOptions {
  /** Hosts to hide wherever they appear (the configured base URLs' hosts). */
  hosts?: readonly string[];
}

const SECRET = '[redacted]';

/** Each rule: a pattern and what replaces a match; applied in order. */
const RULES: Array<[RegExp, string | ((match: string, ...groups: string[]) => string)]> = [
  // Any URL (its host, path and query may all be internal or carry a key).
  // Sentence punctuation right after it stays outside.
  [
    /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>`]+/gi,
    (url) => `[url]${/[.,;:!?)\]]+$/.exec(url)?.[0] ?? ''}`,
  ],
  // Credential headers, quoted or not: `x-goog-api-key: …`, `"Authorization": "Bearer …"`.
  [
    /\b(x-goog-api-key|x-api-key|api-key|proxy-authorization|authorization)(["']?\s*[:=]\s*["']?)(?:(?:bearer|basic)\s+)?[^\s"',;}]+/gi,
    (_m, name = '', sep = '') => `${name}${sep}${SECRET}`,
  ],
  [/\b(bearer|basic)\s+[^\s"',;]+/gi, (_m, scheme = '') => `${scheme} ${SECRET}`],
  // key=…, api_key=…, access_token=…, secret=…, password=…
  [
    /\b([a-z_-]*(?:key|token|secret|password|passwd|signature|credential)s?)=([^&\s"',;]+)/gi,
    (_m, name = '') => `${name}=${SECRET}`,
  ],
  // Known key shapes: OpenAI (also its masked echo sk-…***…abcd), Google, JWTs.
  [/\bsk-[A-Za-z0-9_*.-]{4,}/g, SECRET],
  [/\bAIza[0-9A-Za-z_-]{10,}/g, SECRET],
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?/g, SECRET],
  // Long hex (API keys, digests) and long base64-like tokens mixing cases and digits.
  [/\b[0-9a-f]{32,}\b/gi, SECRET],
  [
    /[A-Za-z0-9+/_=-]{24,}/g,
    (m) => (/[a-z]/.test(m) && /[A-Z]/.test(m) && /\d/.test(m) ? SECRET : m),
  ],
  // Addresses: IPv4 and bracketed IPv6 (with a port), internal names, any name with a port.
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b/g, '[host]'],
  [/\[[0-9a-f]*:[0-9a-f:.]*\](?::\d{1,5})?/gi, '[host]'],
  [
    /\b(?:[a-z0-9-]+\.)+(?:internal|local|localdomain|corp|lan|intranet|private|svc|cluster|home\.arpa)\b(?::\d{1,5})?/gi,
    '[host]',
  ],
  [/\b(?:[a-z0-9-]+\.)+[a-z]{2,}:\d{1,5}\b/gi, '[host]'],
];

/** Provider text with secrets, URLs and hosts cut out, at most MAX_PROVIDER_MESSAGE characters. */
export function redactProviderText(text: string, options: RedactOptions = {}): string {
  let out = text.slice(0, MAX_EXAMINED);
  for (const [pattern, replacement] of RULES) {
    out =
      typeof replacement === 'string'
        ? out.replace(pattern, replacement)
        : out.replace(pattern, replacement as (m: string, ...g: string[]) => string);
  }
  for (const host of options.hosts ?? []) {
    if (host === '') continue;
    const escaped = host.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out.replace(new RegExp(`${escaped}(?::\\d{1,5})?`, 'gi'), '[host]');
  }
  return cap(out);
}

function cap(text: string): string {
  if (text.length <= MAX_PROVIDER_MESSAGE) return text;
  let end = MAX_PROVIDER_MESSAGE - 1;
  // Do not split a surrogate pair.
  if (/[\ud800-\udbff]/.test(text.charAt(end - 1))) end -= 1;
  return `${text.slice(0, end)}…`;
}

/** The hosts of the configured base URLs (what redaction hides beyond generic URLs). */
export function hostsOf(...urls: Array<string | undefined>): string[] {
  return urls.flatMap((url) => {
    if (!url) return [];
    try {
      const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
      return host ? [host] : [];
    } catch {
      return [];
    }
  });
}
