/** A Config for tests: the real loader over a small environment plus overrides. */
import { loadConfig, type Config } from '../../shared/config.ts';

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ LOG_LEVEL: 'silent', AGENTQ_DEFAULT_PROVIDER: 'offline', ...env });
}
