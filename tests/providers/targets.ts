/**
 * The network providers under test, each paired with the fake server that
 * speaks its wire format, so one behaviour suite runs against both.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createGoogleProvider } from '../../worker/providers/google.ts';
import { createOpenAIProvider } from '../../worker/providers/openai.ts';
import type { ChatMessage, Provider, ToolDefinition } from '../../worker/providers/provider.ts';
import type { FakeLlmServer, FakeLlmServerOptions } from '../helpers/fake-llm-server.ts';
import { startFakeGemini } from '../helpers/fake-gemini.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';

export const API_KEY = 'test-key-1234';

export interface Target {
  name: 'openai' | 'google';
  model: string;
  startFake(options?: FakeLlmServerOptions): Promise<FakeLlmServer>;
  provider(url: string, options?: { apiKey?: string; requestTimeoutMs?: number }): Provider;
}

export const targets: Target[] = [
  {
    name: 'openai',
    model: 'gpt-4o-mini',
    startFake: (options) => startFakeOpenAI({ apiKey: API_KEY, ...options }),
    provider: (url, options = {}) =>
      createOpenAIProvider({
        apiKey: options.apiKey ?? API_KEY,
        baseURL: url,
        requestTimeoutMs: options.requestTimeoutMs,
      }),
  },
  {
    name: 'google',
    model: 'gemini-2.0-flash',
    startFake: (options) => startFakeGemini({ apiKey: API_KEY, ...options }),
    provider: (url, options = {}) =>
      createGoogleProvider({
        apiKey: options.apiKey ?? API_KEY,
        baseUrl: url,
        requestTimeoutMs: options.requestTimeoutMs,
      }),
  },
];

/** The calculator's definition as the tools registry sends it: valibot's JSON Schema, `$schema` and all. */
export const calculatorTool: ToolDefinition = {
  name: 'calculator',
  description: 'Evaluates an arithmetic expression.',
  parameters: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    properties: { expression: { type: 'string', description: 'e.g. 17 * 23' } },
    required: ['expression'],
    additionalProperties: false,
  },
};

export function conversation(prompt: string): ChatMessage[] {
  return [
    { role: 'system', content: 'You are a careful assistant.' },
    { role: 'user', content: prompt },
  ];
}

/** A URL where nothing listens: a port we bound and released. */
export async function closedPortUrl(path = ''): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}${path}`;
}

/** The rejection of `promise`, failing the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}
