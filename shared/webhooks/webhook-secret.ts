/**
 * AGENTQ_WEBHOOK_SECRET: one or more Standard Webhooks secrets, space-separated
 * (`whsec_<base64>`), newest first. Deliveries are signed with the first; the
 * others stay listed while receivers switch over (rotation). The HMAC key is
 * the base64-decoded bytes after the prefix; the spec asks for 24 to 64 bytes.
 */
const PREFIX = 'whsec_';
const MIN_BYTES = 24;
const MAX_BYTES = 64;

/** The secrets in order, or an Error saying what is wrong with the first bad one. */
export function parseWebhookSecrets(text: string): string[] {
  const secrets = text.split(/\s+/).filter((s) => s.length > 0);
  for (const [i, secret] of secrets.entries()) {
    const problem = secretProblem(secret);
    if (problem) throw new Error(`secret ${i + 1}: ${problem}`);
  }
  return secrets;
}

function secretProblem(secret: string): string | undefined {
  if (!secret.startsWith(PREFIX)) return `must start with ${PREFIX} (a Standard Webhooks secret)`;
  const b64 = secret.slice(PREFIX.length);
  // Canonical base64 only: Buffer.from skips characters it does not know.
  const bytes = Buffer.from(b64, 'base64');
  if (
    !/^[A-Za-z0-9+/]+={0,2}$/.test(b64) ||
    bytes.toString('base64').replace(/=+$/, '') !== b64.replace(/=+$/, '')
  )
    return `the part after ${PREFIX} must be base64`;
  if (bytes.length < MIN_BYTES || bytes.length > MAX_BYTES)
    return `must hold ${MIN_BYTES} to ${MAX_BYTES} bytes, not ${bytes.length} (e.g. ${PREFIX}$(openssl rand -base64 32))`;
  return undefined;
}

/** The HMAC key of a secret that parseWebhookSecrets accepted. */
export function webhookKey(secret: string): Buffer {
  return Buffer.from(secret.slice(PREFIX.length), 'base64');
}
