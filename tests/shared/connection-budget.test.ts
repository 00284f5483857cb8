// The connection settings and the budget line each process logs at start
// (README "Connection budget" works its numbers out from these defaults).
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../shared/config.ts';
import { apiBudget, formatBudget, workerBudget } from '../../shared/db/connection-budget.ts';

const BASE = { AGENTQ_DEFAULT_PROVIDER: 'offline', DATABASE_URL: 'postgres://a@pooler:6432/q' };

describe('connection settings', () => {
  it('the direct URL defaults to DATABASE_URL; the read URL to none', () => {
    const config = loadConfig(BASE);
    expect(config.directDatabaseUrl).toBe(BASE.DATABASE_URL);
    expect(config.readDatabaseUrl).toBeUndefined();
    expect(config).toMatchObject({ dbPoolMax: 10, recoveryPoolMax: 2, readPoolMax: 5 });
  });

  it('refuses a direct or read URL that is not postgres://, naming the variable', () => {
    expect(() => loadConfig({ ...BASE, AGENTQ_DIRECT_DATABASE_URL: 'mysql://x' })).toThrow(
      new ConfigError('invalid AGENTQ_DIRECT_DATABASE_URL: must start with postgres://'),
    );
    expect(() => loadConfig({ ...BASE, AGENTQ_READ_DATABASE_URL: 'db:5432' })).toThrow(
      /invalid AGENTQ_READ_DATABASE_URL/,
    );
    expect(() => loadConfig({ ...BASE, AGENTQ_RECOVERY_POOL_MAX: '0' })).toThrow(
      /invalid AGENTQ_RECOVERY_POOL_MAX: must be at least 1/,
    );
  });
});

describe('the budget line', () => {
  it('with the defaults: an API holds 11, a worker 14, all on DATABASE_URL', () => {
    const config = loadConfig(BASE);
    expect(formatBudget(apiBudget(config))).toBe('pool 10 + listener 1 = 11 (all on DATABASE_URL)');
    expect(formatBudget(workerBudget(config))).toBe(
      'pool (tasks and graphile-worker) 10 + recovery 2 + heartbeat 1 + listener 1 = 14 (all on DATABASE_URL)',
    );
  });

  it('behind a pooler it says which connections take the direct and the read URL', () => {
    const config = loadConfig({
      ...BASE,
      AGENTQ_DIRECT_DATABASE_URL: 'postgres://a@db:5432/q',
      AGENTQ_READ_DATABASE_URL: 'postgres://a@replica:5432/q',
      AGENTQ_DB_POOL_MAX: '4',
      AGENTQ_READ_POOL_MAX: '3',
      AGENTQ_RECOVERY_POOL_MAX: '1',
    });
    expect(formatBudget(apiBudget(config))).toBe(
      'pool 4 + read pool 3 + listener 1 = 8 (4 on DATABASE_URL, 1 on AGENTQ_DIRECT_DATABASE_URL, 3 on AGENTQ_READ_DATABASE_URL)',
    );
    expect(workerBudget(config)).toMatchObject({ total: 7, direct: 1, read: 0 });
  });
});
