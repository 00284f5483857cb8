/**
 * What a webhook_url may be, checked where no DNS answer is at hand (the API at
 * submit, the worker before it resolves): an absolute http(s) URL without
 * credentials whose host is not, on its face, loopback, private or link-local.
 * A name is only judged here when it is `localhost` or under `.localhost`
 * (RFC 6761: always loopback); every other name is judged by the addresses it
 * resolves to at delivery, where the worker then connects to the address it
 * checked. Submit does no DNS on purpose: an answer then proves nothing about
 * the answer at delivery time, and a batch of 1,000 must not wait on a resolver.
 */
import { isIP } from 'node:net';
import { isPublicAddress } from '../address-policy.ts';

export const MAX_WEBHOOK_URL_CHARS = 2048;

export interface WebhookUrlOptions {
  /** AGENTQ_WEBHOOK_ALLOW_PRIVATE: loopback, private and link-local hosts are fine. */
  allowPrivate: boolean;
}

/** The URL, normalised (WHATWG: `http://0x7f.1/` reads as 127.0.0.1), or why it is refused. */
export function checkWebhookUrl(
  text: string,
  options: WebhookUrlOptions,
): { url: URL; problem?: undefined } | { problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: 'must be an absolute http or https URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { problem: `must be an http or https URL, not ${url.protocol}` };
  if (url.username || url.password)
    return { problem: 'must not carry credentials (user:password@); deliveries are signed' };
  if (url.href.length > MAX_WEBHOOK_URL_CHARS)
    return { problem: `must be at most ${MAX_WEBHOOK_URL_CHARS} characters` };
  if (!options.allowPrivate && isPrivateHost(url.hostname)) {
    return {
      problem: `${url.hostname} is a loopback, private or link-local address; webhooks go to public addresses only`,
    };
  }
  return { url };
}

function isPrivateHost(hostname: string): boolean {
  const host = hostname
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
    .toLowerCase();
  if (isIP(host)) return !isPublicAddress(host);
  return host === 'localhost' || host.endsWith('.localhost');
}
