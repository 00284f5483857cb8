// The API's part of the environment: HOST must be loopback without tokens
// (an IP literal or `localhost`, never a name that starts with 127.), the
// default bind address is loopback with tokens too, the default model obeys
// the submit rules, and AGENTQ_ALLOWED_MODELS parses as documented.
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

describe('HOST', () => {
  it.each([
    '127.attacker.example',
    '127.0.0.1.nip.io',
    '0.0.0.0',
    '::',
    '10.1.2.3',
    'example.com',
    'localhost.example',
  ])('refuses HOST=%s without tokens', (host) => {
    expect(refused({ HOST: host })).toMatch(/^invalid HOST: .* set AGENTQ_API_TOKENS$/);
  });

  it.each(['127.0.0.1', '127.9.8.7', 'localhost', '::1'])(
    'accepts HOST=%s without tokens',
    (host) => {
      expect(load({ HOST: host }).host).toBe(host);
    },
  );

  it('binds 127.0.0.1 by default, with or without tokens; 0.0.0.0 is an explicit choice that needs tokens', () => {
    expect(load({}).host).toBe('127.0.0.1');
    expect(load({ AGENTQ_API_TOKENS: 'a-long-token' }).host).toBe('127.0.0.1');
    expect(load({ AGENTQ_API_TOKENS: 'a-long-token', HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });
});

describe('models', () => {
  it('refuses an AGENTQ_DEFAULT_MODEL a submit would refuse', () => {
    expect(refused({ AGENTQ_DEFAULT_MODEL: '../../internal/admin/reset?x=' })).toMatch(
      /^invalid AGENTQ_DEFAULT_MODEL: must be a model name/,
    );
    expect(
      refused({ GOOGLE_API_KEY: 'k', AGENTQ_DEFAULT_MODEL: 'gemini:generateContent' }),
    ).toMatch(/^invalid AGENTQ_DEFAULT_MODEL: must be a Gemini model name/);
    expect(
      load({ OPENAI_API_KEY: 'k', AGENTQ_DEFAULT_MODEL: 'meta-llama/llama-3.1-8b' }).defaultModel,
    ).toBe('meta-llama/llama-3.1-8b');
  });

  it('parses AGENTQ_ALLOWED_MODELS as provider=model,model;provider=model', () => {
    const config = load({
      AGENTQ_ALLOWED_MODELS:
        'openai=gpt-4o-mini,gpt-4o; google=gemini-2.0-flash;offline=offline-demo;',
    });
    expect(config.allowedModels).toEqual({
      openai: ['gpt-4o-mini', 'gpt-4o'],
      google: ['gemini-2.0-flash'],
      offline: ['offline-demo'],
    });
    expect(load({}).allowedModels).toBeUndefined();
  });

  it.each([
    ['openai:gpt-4o', /"openai:gpt-4o" must be provider=model/],
    ['azure=gpt-4o', /"azure=gpt-4o" must be provider=model/],
    ['openai=', /provider openai lists no model/],
    ['openai=gpt-4o;openai=gpt-4o-mini', /provider openai is listed twice/],
    ['openai=../x', /openai model "\.\.\/x" must be a model name/],
    [';', /lists no provider=model entry/],
  ])('refuses AGENTQ_ALLOWED_MODELS=%s', (value, message) => {
    expect(refused({ AGENTQ_ALLOWED_MODELS: value })).toMatch(message);
  });

  it('refuses an allow-list that leaves out the default model', () => {
    expect(refused({ AGENTQ_ALLOWED_MODELS: 'openai=gpt-4o' })).toMatch(
      /^invalid AGENTQ_ALLOWED_MODELS: the default model offline-demo of provider offline/,
    );
    expect(
      refused({
        OPENAI_API_KEY: 'k',
        AGENTQ_DEFAULT_MODEL: 'gpt-4.1',
        AGENTQ_ALLOWED_MODELS: 'openai=gpt-4o',
      }),
    ).toMatch(/^invalid AGENTQ_DEFAULT_MODEL: the default model gpt-4.1/);
  });
});

describe('streams', () => {
  it('defaults AGENTQ_MAX_STREAMS to 1000 and AGENTQ_STREAM_MAX_S to 300, and refuses 0', () => {
    expect(load({})).toMatchObject({ maxStreams: 1000, streamMaxS: 300 });
    expect(refused({ AGENTQ_MAX_STREAMS: '0' })).toMatch(/^invalid AGENTQ_MAX_STREAMS/);
    expect(refused({ AGENTQ_STREAM_MAX_S: '0' })).toMatch(/^invalid AGENTQ_STREAM_MAX_S/);
  });
});
