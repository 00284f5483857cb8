// Provider error text reaches clients (a task's error, the step log): no
// keys, no URLs, no internal hosts, and not too long. The full text stays on
// the failure's cause, for the worker's log.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import {
  hostsOf,
  MAX_PROVIDER_MESSAGE,
  redactProviderText,
} from '../../worker/providers/redact.ts';
import { conversation, targets } from './targets.ts';

describe('redactProviderText', () => {
  const cases: Array<[string, string[]]> = [
    ['Invalid token: Bearer sk-live-abcdef0123456789', ['sk-live', 'abcdef0123456789']],
    ['Incorrect API key provided: sk-proj-***********alid.', ['sk-proj', 'alid']],
    ['key AIzaSyD-abcdefghijklmnopqrstuvwx is invalid', ['AIzaSy']],
    ['GET /v1beta/models?key=AIzaXYZ123&alt=json failed', ['AIzaXYZ123']],
    ['sent x-goog-api-key: gm-secret-value-42 upstream', ['gm-secret-value-42']],
    ['{"Authorization": "Bearer abc.def.ghi"}', ['abc.def.ghi']],
    ['access_token=ya29.a0AfH6SMBxyz&x=1', ['ya29']],
    ['digest 0123456789abcdef0123456789abcdef0123 mismatch', ['0123456789abcdef0123456789abcdef']],
    ['token Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MGFiY2Rl here', ['Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MGFiY2Rl']],
    ['jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig rejected', ['eyJhbGci']],
    ['see https://llm-gw.example.com/v1/chat?key=1 for details', ['llm-gw', 'example.com']],
    ['upstream llm-gw.corp.internal:8443 refused', ['llm-gw', 'corp.internal', '8443']],
    ['connect to 10.2.3.4:9000 failed', ['10.2.3.4']],
    ['proxy at [fd00::17]:8080 timed out', ['fd00']],
    ['host api.vendor.example:8443 down', ['api.vendor.example']],
  ];
  it.each(cases)('cuts secrets and addresses out of %j', (text, secrets) => {
    const out = redactProviderText(text);
    for (const secret of secrets) expect(out).not.toContain(secret);
  });

  it('keeps ordinary error text readable', () => {
    const text =
      '404 The model `gpt-4o-mini-2024-07-18` does not exist or you do not have access to it.';
    expect(redactProviderText(text)).toBe(text);
    expect(redactProviderText('429 Rate limit reached for requests, limit: 0')).toBe(
      '429 Rate limit reached for requests, limit: 0',
    );
    expect(redactProviderText('see https://x.example/docs.')).toBe('see [url].');
  });

  it('hides the configured hosts wherever they appear', () => {
    const hosts = hostsOf('http://llm.acme-prod:11434/v1', undefined, 'not a url');
    expect(hosts).toEqual(['llm.acme-prod']);
    expect(
      redactProviderText('dial llm.acme-prod:11434: refused, llm.acme-prod down', { hosts }),
    ).toBe('dial [host]: refused, [host] down');
  });

  it('caps the length', () => {
    const out = redactProviderText('x '.repeat(5000));
    expect(out.length).toBeLessThanOrEqual(MAX_PROVIDER_MESSAGE);
    expect(out.endsWith('…')).toBe(true);
  });
});

describe.each(targets)('$name provider errors reach clients redacted', (target) => {
  let fake: FakeLlmServer;
  const echoed =
    'Unauthorized: got "Authorization: Bearer sk-live-0123456789abcdefABCDEF" from ' +
    'llm-gw.corp.internal:8443 (tenant acme) ' +
    'x'.repeat(600);

  beforeAll(async () => {
    fake = await target.startFake();
  });
  afterAll(() => fake.close());
  beforeEach(() => fake.reset());

  it('a 401 echoing the key and an internal host', async () => {
    fake.setHandler(() => ({ error: { status: 401, message: echoed } }));
    const failure = await target
      .provider(fake.url)
      .complete({
        model: target.model,
        messages: conversation('hi'),
        tools: [],
        signal: new AbortController().signal,
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(failure).toBeInstanceOf(TaskFailure);
    const { code, message, cause } = failure as TaskFailure;
    expect(code).toBe('provider_auth');
    expect(message).toMatch(new RegExp(`^${target.name}: `));
    expect(message).toContain('tenant acme');
    for (const leak of ['sk-live', '0123456789abcdef', 'llm-gw', 'corp.internal', '8443']) {
      expect(message).not.toContain(leak);
    }
    // The fake's own address (the configured base URL's host and port).
    const base = new URL(fake.url);
    expect(message).not.toContain(base.host);
    expect(message).not.toContain('127.0.0.1');
    expect(message.length).toBeLessThanOrEqual(MAX_PROVIDER_MESSAGE);
    // The full text stays on the cause, for the worker's log.
    expect(String((cause as Error).message)).toContain('sk-live-0123456789abcdefABCDEF');
  });
});
