/**
 * Standard Webhooks signing: `webhook-signature` is `v1,` + the base64
 * HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the
 * decoded bytes of the `whsec_` secret. Only the first configured secret signs
 * (the rule); receivers keep accepting the old one during a rotation.
 */
import { createHmac } from 'node:crypto';
import { webhookKey } from '../../shared/webhooks/webhook-secret.ts';

export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
  [name: string]: string;
}

/** The three headers of one attempt; `timestamp` is Unix seconds, fresh on every attempt. */
export function signWebhook(
  secret: string,
  id: string,
  timestamp: number,
  body: string,
): WebhookHeaders {
  const mac = createHmac('sha256', webhookKey(secret))
    .update(`${id}.${timestamp}.${body}`)
    .digest('base64');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `v1,${mac}`,
  };
}
