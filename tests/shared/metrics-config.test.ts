// AGENTQ_METRICS_PORT and AGENTQ_METRICS_PUBLIC: defaults, and one clear line
// for each bad value.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../shared/config.ts';

const load = (env: Record<string, string>) => loadConfig({ LOG_LEVEL: 'silent', ...env });
const refused = (env: Record<string, string>) => {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
};

describe('metrics config', () => {
  it('has no worker listener and a guarded /metrics by default', () => {
    expect(load({})).toMatchObject({ metricsPort: undefined, metricsPublic: false });
    expect(load({ AGENTQ_METRICS_PORT: '9464', AGENTQ_METRICS_PUBLIC: 'true' })).toMatchObject({
      metricsPort: 9464,
      metricsPublic: true,
    });
    expect(load({ AGENTQ_METRICS_PORT: '0' }).metricsPort).toBe(0);
  });

  it.each([
    [{ AGENTQ_METRICS_PORT: 'http' }, /^invalid AGENTQ_METRICS_PORT: must be a port number/],
    [{ AGENTQ_METRICS_PORT: '70000' }, /^invalid AGENTQ_METRICS_PORT: must be at most 65535/],
    [{ AGENTQ_METRICS_PORT: '8080' }, /^invalid AGENTQ_METRICS_PORT: 8080 is PORT too/],
    [{ PORT: '9000', AGENTQ_METRICS_PORT: '9000' }, /is PORT too/],
    [{ AGENTQ_METRICS_PUBLIC: 'yes' }, /^invalid AGENTQ_METRICS_PUBLIC: must be true or false$/],
  ])('refuses %o', (env, message) => {
    expect(refused(env)).toMatch(message);
  });
});
