// Standard Webhooks signing against the reference receiver library
// (`standardwebhooks`), and AGENTQ_WEBHOOK_SECRET validation at start.
import { randomBytes } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../shared/config.ts';
import { signWebhook } from '../../worker/webhooks/sign-webhook.ts';

const secret = `whsec_${randomBytes(32).toString('base64')}`;
const body = JSON.stringify({ type: 'task.completed', timestamp: 'x', data: { id: 'é ✓' } });

describe('signWebhook', () => {
  it('gives the signature the reference library computes, and it verifies', () => {
    const now = Math.floor(Date.now() / 1000);
    const headers = signWebhook(secret, 'msg_1', now, body);
    expect(headers['webhook-id']).toBe('msg_1');
    expect(headers['webhook-timestamp']).toBe(String(now));
    expect(headers['webhook-signature']).toBe(
      new Webhook(secret).sign('msg_1', new Date(now * 1000), body),
    );
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('fails verification with another secret, a changed body, or a stale timestamp', () => {
    const now = Math.floor(Date.now() / 1000);
    const headers = signWebhook(secret, 'msg_1', now, body);
    const other = `whsec_${randomBytes(32).toString('base64')}`;
    expect(() => new Webhook(other).verify(body, headers)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(secret).verify(`${body} `, headers)).toThrow(WebhookVerificationError);
    const stale = signWebhook(secret, 'msg_1', now - 10 * 60, body);
    expect(() => new Webhook(secret).verify(body, stale)).toThrow(/too old/i);
  });
});

describe('AGENTQ_WEBHOOK_SECRET', () => {
  const load = (value: string) =>
    loadConfig({ AGENTQ_DEFAULT_PROVIDER: 'offline', AGENTQ_WEBHOOK_SECRET: value });

  it('takes several secrets, space-separated, in order', () => {
    const second = `whsec_${randomBytes(24).toString('base64')}`;
    expect(load(`  ${secret}   ${second} `).webhookSecrets).toEqual([secret, second]);
    expect(loadConfig({}).webhookSecrets).toEqual([]);
  });

  it.each([
    [randomBytes(32).toString('base64'), /secret 1: must start with whsec_/],
    ['whsec_not*base64!', /secret 1: the part after whsec_ must be base64/],
    [`whsec_${randomBytes(8).toString('base64')}`, /secret 1: must hold 24 to 64 bytes, not 8/],
    [`${secret} whsec_${randomBytes(100).toString('base64')}`, /secret 2: .* not 100/],
  ])('refuses %s', (value, message) => {
    expect(() => load(value)).toThrow(ConfigError);
    expect(() => load(value)).toThrow(message);
    expect(() => load(value)).toThrow(/^invalid AGENTQ_WEBHOOK_SECRET: /);
  });

  it('validates the other webhook settings', () => {
    expect(() => loadConfig({ AGENTQ_WEBHOOK_ALLOW_PRIVATE: 'yes' })).toThrow(
      'invalid AGENTQ_WEBHOOK_ALLOW_PRIVATE: must be true or false',
    );
    expect(() => loadConfig({ AGENTQ_WEBHOOK_MAX_ATTEMPTS: '0' })).toThrow(
      /invalid AGENTQ_WEBHOOK_MAX_ATTEMPTS/,
    );
    const c = loadConfig({});
    expect(c).toMatchObject({
      webhookAllowPrivate: false,
      webhookMaxAttempts: 12,
      webhookRetryBaseMs: 5000,
      webhookRetryMaxMs: 3_600_000,
      webhookTimeoutMs: 10_000,
    });
  });
});
