/**
 * The error table and Retry-After parsing, on SDK error objects built the way
 * the SDKs build them (the HTTP paths are covered against the fakes).
 */
import { getEventListeners } from 'node:events';
import { GoogleGenerativeAIFetchError } from '@google/generative-ai';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { describe, expect, it } from 'vitest';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import {
  classifyGoogleError,
  classifyOpenAIError,
  codeForStatus,
  guardProviderCall,
  retryAfterFromDuration,
  retryAfterFromHeaders,
} from '../../worker/providers/classify-error.ts';
import { rejectionOf } from './targets.ts';

const openaiError = (status: number, error: object = {}, headers: Record<string, string> = {}) =>
  APIError.generate(status, { error }, undefined, new Headers(headers));

describe('classify provider errors', () => {
  it.each([
    [400, 'provider_rejected'],
    [401, 'provider_auth'],
    [403, 'provider_auth'],
    [404, 'provider_rejected'],
    [408, 'provider_unavailable'],
    [409, 'provider_unavailable'],
    [413, 'provider_rejected'],
    [422, 'provider_rejected'],
    [429, 'provider_unavailable'],
    [500, 'provider_unavailable'],
    [502, 'provider_unavailable'],
    [503, 'provider_unavailable'],
    [504, 'provider_unavailable'],
  ])('HTTP %i → %s, for both providers', (status, code) => {
    expect(codeForStatus(status)).toBe(code);
    expect(classifyOpenAIError(openaiError(status)).code).toBe(code);
    expect(classifyGoogleError(new GoogleGenerativeAIFetchError('x', status, 'x')).code).toBe(code);
  });

  it('reads OpenAI quota exhaustion from the error code', () => {
    const err = classifyOpenAIError(
      openaiError(429, { type: 'insufficient_quota', code: 'insufficient_quota' }),
    );
    expect(err).toMatchObject({ code: 'provider_quota_exhausted', retryable: false });
    expect(classifyOpenAIError(openaiError(429, { code: 'rate_limit_exceeded' })).code).toBe(
      'provider_unavailable',
    );
  });

  it('classifies connection failures and SDK timeouts as unavailable', () => {
    expect(classifyOpenAIError(new APIConnectionError({ message: 'Connection error.' })).code).toBe(
      'provider_unavailable',
    );
    expect(classifyOpenAIError(new APIConnectionTimeoutError()).code).toBe('provider_unavailable');
    expect(classifyOpenAIError(new APIUserAbortError()).code).toBe('provider_unavailable');
  });

  it('keeps TaskFailures, and calls unknown errors internal', () => {
    const failure = new TaskFailure('provider_rejected', 'x');
    expect(classifyOpenAIError(failure)).toBe(failure);
    expect(classifyGoogleError(new RangeError('bug')).code).toBe('internal_error');
  });

  it('reads Gemini error details: bad key, RetryInfo, per-day quota', () => {
    const badKey = new GoogleGenerativeAIFetchError('API key not valid', 400, 'Bad Request', [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'API_KEY_INVALID',
        domain: 'googleapis.com',
      },
    ]);
    expect(classifyGoogleError(badKey).code).toBe('provider_auth');

    const perMinute = new GoogleGenerativeAIFetchError('quota', 429, 'Too Many Requests', [
      {
        '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
        violations: [{ quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier' }],
      },
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '12s' },
    ]);
    expect(classifyGoogleError(perMinute)).toMatchObject({
      code: 'provider_unavailable',
      retryAfterMs: 12_000,
    });

    const perDay = new GoogleGenerativeAIFetchError('quota', 429, 'Too Many Requests', [
      {
        '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
        violations: [{ quotaId: 'GenerateRequestsPerDayPerProjectPerModel-FreeTier' }],
      },
    ]);
    expect(classifyGoogleError(perDay).code).toBe('provider_quota_exhausted');
  });

  it('parses Retry-After in every form', () => {
    expect(retryAfterFromHeaders(new Headers({ 'retry-after-ms': '250.5' }))).toBe(251);
    expect(retryAfterFromHeaders(new Headers({ 'retry-after': '3' }))).toBe(3000);
    expect(retryAfterFromHeaders(new Headers({ 'retry-after': '1.5' }))).toBe(1500);
    expect(
      retryAfterFromHeaders(new Headers({ 'retry-after': 'Thu, 01 Jan 1970 00:00:00 GMT' })),
    ).toBe(0);
    expect(retryAfterFromHeaders(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterFromHeaders(new Headers())).toBeUndefined();
    expect(retryAfterFromHeaders(undefined)).toBeUndefined();
    expect(retryAfterFromDuration('12s')).toBe(12_000);
    expect(retryAfterFromDuration('0.5s')).toBe(500);
    expect(retryAfterFromDuration('soon')).toBeUndefined();
    expect(classifyOpenAIError(openaiError(503, {}, { 'retry-after': '2' })).retryAfterMs).toBe(
      2000,
    );
  });

  it('guardProviderCall rethrows the caller abort reason unclassified', async () => {
    const controller = new AbortController();
    const reason = new Error('shutdown');
    const pending = rejectionOf(
      guardProviderCall(
        'test',
        { signal: controller.signal, timeoutMs: undefined },
        classifyOpenAIError,
        (s) =>
          new Promise((_, reject) =>
            s.addEventListener('abort', () => reject(new APIUserAbortError())),
          ),
      ),
    );
    controller.abort(reason);
    expect(await pending).toBe(reason);
  });

  it('guardProviderCall leaves no listener on the caller signal', async () => {
    const { signal } = new AbortController();
    let during = 0;
    for (let i = 0; i < 20; i++) {
      await guardProviderCall(
        'test',
        { signal, timeoutMs: 1000 },
        classifyOpenAIError,
        async () => {
          during = getEventListeners(signal, 'abort').length;
        },
      );
    }
    expect(during).toBe(1);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });
});
