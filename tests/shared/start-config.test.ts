// What `npm start` decides from the environment and tells the user: the
// default provider (OPENAI_BASE_URL alone means a local OpenAI-compatible
// server), placeholder tokens refused, and the banner's provider, model, base
// URL and database URL (password masked).
import { describe, expect, it } from 'vitest';
import { maskUrlPassword, providerSummary, startBanner } from '../../shared/banner.ts';
import { ConfigError, loadConfig } from '../../shared/config.ts';

const BASE = { LOG_LEVEL: 'silent' };

describe('default provider', () => {
  it.each([
    [{}, 'offline'],
    [{ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' }, 'openai'],
    [{ OPENAI_API_KEY: 'sk-x' }, 'openai'],
    [{ GOOGLE_API_KEY: 'g-x' }, 'google'],
    [{ GEMINI_API_KEY: 'g-x' }, 'google'],
    [{ GOOGLE_API_KEY: 'g-x', OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' }, 'openai'],
    [
      { OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', AGENTQ_DEFAULT_PROVIDER: 'offline' },
      'offline',
    ],
    [{ OPENAI_API_KEY: 'sk-x', AGENTQ_DEFAULT_PROVIDER: 'google' }, 'google'],
  ])('%j → %s', (env, provider) => {
    expect(loadConfig({ ...BASE, ...env }).defaultProvider).toBe(provider);
  });

  it('the Ollama one-liner from the README runs llama3.1 on openai at that URL', () => {
    const config = loadConfig({
      ...BASE,
      OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
      AGENTQ_DEFAULT_MODEL: 'llama3.1',
    });
    expect(providerSummary(config)).toEqual({
      provider: 'openai',
      model: 'llama3.1',
      baseUrl: 'http://127.0.0.1:11434/v1',
      reason: 'OPENAI_BASE_URL is set',
      problem: undefined,
    });
  });
});

describe('AGENTQ_API_TOKENS', () => {
  it.each([
    'change-me-please',
    'changeme',
    'CHANGE_ME',
    'secret',
    'token',
    'password',
    '<token>',
    'your-token-here',
    '12345678',
    'aaaaaaaaaaaaaaaa',
  ])('refuses the placeholder %j with one line naming the variable', (token) => {
    const load = () => loadConfig({ ...BASE, AGENTQ_API_TOKENS: `k8s-real-token-1,${token}` });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(
      `invalid AGENTQ_API_TOKENS: "${token}" is a placeholder, not a secret; set a random token (e.g. openssl rand -hex 32)`,
    );
  });

  it('accepts real tokens, and still refuses short ones', () => {
    expect(loadConfig({ ...BASE, AGENTQ_API_TOKENS: 'Zq4-9fK2xw' }).apiTokens).toEqual([
      'Zq4-9fK2xw',
    ]);
    expect(() => loadConfig({ ...BASE, AGENTQ_API_TOKENS: 'Zq4-9f' })).toThrow(
      'invalid AGENTQ_API_TOKENS: each token must be at least 8 characters',
    );
  });
});

describe('the start banner', () => {
  const banner = (env: Record<string, string>, databaseUrl: string, embeddedDataDir?: string) =>
    startBanner({
      config: loadConfig({ ...BASE, ...env }),
      apiUrl: 'http://127.0.0.1:8080',
      databaseUrl,
      embeddedDataDir,
    });

  it('with only OPENAI_BASE_URL: names provider, model and URL, and gives no API-key advice', () => {
    const text = banner(
      { OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1', AGENTQ_DEFAULT_MODEL: 'llama3.1' },
      'postgres://postgres:postgres@127.0.0.1:54329/postgres',
      '/home/me/agentq/.agentq/pg',
    );
    expect(text).toContain(
      'provider  openai, model llama3.1, at http://127.0.0.1:11434/v1 (OPENAI_BASE_URL is set)',
    );
    expect(text).not.toMatch(/API_KEY|offline/);
    expect(text).toContain(
      'database  postgres://postgres:***@127.0.0.1:54329/postgres  (embedded; data in /home/me/agentq/.agentq/pg)',
    );
    expect(text).not.toContain(':postgres@');
  });

  it('offline: says it is the demo and how to get a real model', () => {
    const text = banner({}, 'postgres://me@db.internal/agentq');
    expect(text).toContain('provider  offline demo (no LLM)');
    expect(text).toContain('OPENAI_BASE_URL');
    expect(text).toContain('database  postgres://me@db.internal/agentq\n');
  });

  it('openai chosen explicitly without key or URL: warns that its tasks will fail', () => {
    const text = banner({ AGENTQ_DEFAULT_PROVIDER: 'openai' }, 'postgres://x/y');
    expect(text).toContain('provider  openai, model gpt-4o-mini, at https://api.openai.com/v1');
    expect(text).toContain('warning: neither OPENAI_API_KEY nor OPENAI_BASE_URL is set');
  });

  it('masks passwords in any URL it prints', () => {
    expect(maskUrlPassword('postgres://agentq:s3cr%40t@db:5432/agentq?sslmode=require')).toBe(
      'postgres://agentq:***@db:5432/agentq?sslmode=require',
    );
    expect(maskUrlPassword('postgres://agentq@db/agentq')).toBe('postgres://agentq@db/agentq');
    const text = banner(
      { OPENAI_BASE_URL: 'https://user:hunter22@llm.internal/v1' },
      'postgres://a:b@c/d',
    );
    expect(text).not.toContain('hunter22');
    expect(text).toContain('at https://user:***@llm.internal/v1');
  });
});

describe('AGENTQ_RETENTION_DAYS', () => {
  it('defaults to 30 days, takes 0 (keep everything), and refuses what is not a day count', () => {
    expect(loadConfig(BASE).retentionDays).toBe(30);
    expect(loadConfig({ ...BASE, AGENTQ_RETENTION_DAYS: '0' }).retentionDays).toBe(0);
    expect(loadConfig({ ...BASE, AGENTQ_RETENTION_DAYS: '7' }).retentionDays).toBe(7);
    for (const bad of ['-1', '1.5', 'thirty', '36501']) {
      const load = () => loadConfig({ ...BASE, AGENTQ_RETENTION_DAYS: bad });
      expect(load).toThrow(ConfigError);
      expect(load).toThrow(/AGENTQ_RETENTION_DAYS/);
    }
  });
});
