// The `agentq` CLI end to end: the real bin as a child process against real
// API and worker processes, with a scripted model behind a fake OpenAI server
// (failures, 500-then-success retries, slow and hanging answers on request).
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { startApiProcess, startWorkerProcess, type AgentqProcess } from '../helpers/processes.ts';
import { apiClient } from '../helpers/http-client.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { freePort } from '../../shared/db/embedded-postgres.ts';
import {
  canRunOnTerminal,
  ESCAPE,
  jsonLines,
  runCli,
  runCliOnTerminal,
  startCli,
} from '../helpers/run-cli.ts';

const TOKEN = 'cli-test-token-4821';

let tdb: TestDatabase;
let openai: FakeLlmServer;
let api: AgentqProcess & { url: string };
/** The same database behind an API with tokens and 1-second event streams. */
let securedApi: AgentqProcess & { url: string };
let worker: AgentqProcess;
let client: ReturnType<typeof apiClient>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  openai = await startFakeOpenAI({ apiKey: 'sk-test-valid' });
  const env = {
    DATABASE_URL: tdb.url,
    AGENTQ_DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: 'sk-test-valid',
    OPENAI_BASE_URL: openai.url,
    AGENTQ_POLL_INTERVAL_MS: '200',
    AGENTQ_RETRY_BASE_MS: '100',
  };
  // One after another: on a busy 2-core machine three cold starts at once can
  // each take longer than the harness allows.
  api = await startApiProcess(env);
  worker = await startWorkerProcess(env);
  securedApi = await startApiProcess({
    ...env,
    AGENTQ_API_TOKENS: TOKEN,
    AGENTQ_STREAM_MAX_S: '1',
  });
  client = apiClient(api.url);
}, 150_000);

afterAll(async () => {
  await Promise.all([api?.stop(), securedApi?.stop(), worker?.stop()]);
  await openai?.close();
  await tdb?.drop();
});

/** `agentq <args>` against the open API. */
const agentq = (args: string[], env: Record<string, string | undefined> = {}) =>
  runCli(args, { env: { AGENTQ_URL: api.url, ...env } });

/** The task id in "submitted <id> · …". */
const submittedId = (stdout: string) => /submitted ([0-9a-f-]{36})/.exec(stdout)?.[1] ?? '';

/** The stdout lines that match any of the patterns, in order. */
const linesMatching = (stdout: string, ...patterns: RegExp[]) =>
  stdout.split('\n').filter((l) => patterns.some((p) => p.test(l)));

describe('submit', () => {
  it('--wait prints the finished task with its answer and exits 0', async () => {
    const r = await agentq(['submit', 'What is 17 * 23? Use the calculator.', '--wait']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^status\s+completed · attempt 1 of 3$/m);
    expect(r.stdout).toMatch(/^answer\s+The answer is 391\.$/m);
    const task = await client.get(submittedId(r.stdout));
    expect(task.status).toBe('completed');
  });

  it('--follow prints the tool call, its result and the answer in order, then exits 0', async () => {
    const r = await agentq([
      'submit',
      'What is 6 * 7? (follow)',
      '--follow',
      '--tool',
      'calculator',
    ]);
    expect(r.code).toBe(0);
    const steps = linesMatching(r.stdout, /^→ /, /^← /, /^answer:/, /^✔ /);
    expect(steps).toEqual([
      '→ calculator {"expression":"6 * 7"}',
      expect.stringMatching(/^← calculator \{"result":42,"expression":"6 \* 7"\} · \d+ ms$/),
      'answer: The answer is 42.',
      '✔ completed',
    ]);
    expect(r.stdout).toMatch(/^· running · attempt 1 of 3$/m);
    expect(r.stdout).toMatch(/^ {2}step 1 · .* ms · \d+→\d+ tokens$/m);
    expect(r.stdout).toMatch(/2 LLM calls · 1 tool call/);
  });

  it('sends the flags as the task config, metadata, priority and idempotency key', async () => {
    const args = ['submit', 'Flags check', '--provider', 'offline', '--max-steps', '3'];
    args.push('--tool', 'calculator', '--tool', 'current_time', '--metadata', 'team=search');
    args.push('--metadata', 'run=7', '--priority', '5', '--idempotency-key', 'cli-flags-1');
    const first = await agentq([...args, '--json']);
    expect(first.code).toBe(0);
    const [task] = jsonLines(first.stdout);
    expect(task).toMatchObject({
      config: { provider: 'offline', max_steps: 3, tools: ['calculator', 'current_time'] },
      metadata: { team: 'search', run: '7' },
      priority: 5,
      idempotency_key: 'cli-flags-1',
    });
    const replay = await agentq(args);
    expect(replay.code).toBe(0);
    expect(submittedId(replay.stdout)).toBe(task!.id);
    expect(replay.stdout).toContain('a replay');
  });

  it('reads the prompt from standard input with "-"', async () => {
    const r = await runCli(['submit', '-', '--wait', '--json'], {
      env: { AGENTQ_URL: api.url },
      input: 'What is 2 + 2? (stdin)',
    });
    expect(r.code).toBe(0);
    expect(jsonLines(r.stdout)).toMatchObject([
      { status: 'completed', input: { prompt: 'What is 2 + 2? (stdin)' } },
    ]);
  });

  it("a failed task exits 1 and prints the error's code", async () => {
    const r = await agentq(['submit', '[fail=401] hello (cli failed)', '--follow']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^✖ failed: provider_auth: /m);
    expect(r.stdout).not.toContain('answer:');
    const waited = await agentq(['submit', '[fail=401] hello (cli failed 2)', '--wait']);
    expect(waited.code).toBe(1);
    expect(waited.stdout).toMatch(/^error\s+provider_auth: /m);
  });

  it('--follow on a task that retries prints the retry with its reason and ends completed', async () => {
    const r = await agentq(['submit', '[fail=500x1] What is 8 * 9? (cli retry)', '--follow']);
    expect(r.code).toBe(0);
    const steps = linesMatching(r.stdout, /^· running/, /^↻ /, /^→ /, /^answer:/, /^✔ /);
    expect(steps).toEqual([
      '· running · attempt 1 of 3',
      expect.stringMatching(
        /^↻ retry: attempt 1 failed \(provider_unavailable: .+\); next try in \d+\.\d s$/,
      ),
      '· running · attempt 2 of 3',
      '→ calculator {"expression":"8 * 9"}',
      'answer: The answer is 72.',
      '✔ completed',
    ]);
    expect(r.stdout).toMatch(/the model call failed: provider_unavailable/);
  });

  it('--timeout gives up waiting with exit 4 and says how to look again', async () => {
    const r = await agentq([
      'submit',
      '[hang] never answers (cli timeout)',
      '--wait',
      '--timeout',
      '1',
    ]);
    expect(r.code).toBe(4);
    const id = submittedId(r.stdout);
    expect(r.stderr).toContain(`task ${id} is still`);
    expect(r.stderr).toContain(`agentq get ${id} --wait 60`);
    await client.cancel(id);
  });
});

describe('get, list, events, cancel', () => {
  let doneId = '';
  let failedId = '';

  beforeAll(async () => {
    const done = await client.submit({ input: { prompt: 'What is 3 * 5? (cli read)' } });
    const failed = await client.submit({ input: { prompt: '[fail=401] (cli read)' } });
    doneId = done.body.id;
    failedId = failed.body.id;
    await Promise.all([client.waitDone(doneId), client.waitDone(failedId)]);
  });

  it('get prints the task and exits with its status', async () => {
    const done = await agentq(['get', doneId]);
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(new RegExp(`^id\\s+${doneId}$`, 'm'));
    expect(done.stdout).toMatch(/^answer\s+The answer is 15\.$/m);
    expect(done.stdout).toMatch(/^usage\s+ran [\d.]+ s · 2 LLM calls · 1 tool call/m);
    expect((await agentq(['get', failedId])).code).toBe(1);
    const json = await agentq(['get', doneId, '--json']);
    expect(jsonLines(json.stdout)).toEqual([await client.get(doneId)]);
  });

  it('get --wait N exits 4 when the task is still running after N seconds', async () => {
    const { body } = await client.submit({ input: { prompt: '[hang] (cli get wait)' } });
    const r = await agentq(['get', body.id, '--wait', '1']);
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/^status\s+(queued|running)/m);
    await client.cancel(body.id);
  });

  it('list --status shows only tasks in those statuses', async () => {
    const failed = await agentq(['list', '--status', 'failed', '--json', '--limit', '200']);
    expect(failed.code).toBe(0);
    const tasks = jsonLines(failed.stdout);
    expect(tasks.map((t) => t.id)).toContain(failedId);
    expect(tasks.every((t) => t.status === 'failed')).toBe(true);
    const table = await agentq(['list', '--status', 'completed,failed']);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+STATUS\s+CREATED\s+PROMPT$/);
    expect(table.stdout).toMatch(new RegExp(`^${doneId}  completed  .*What is 3 \\* 5\\?`, 'm'));
    expect(table.stdout).toMatch(new RegExp(`^${failedId}  failed `, 'm'));
    const oneByOne = await agentq(['list', '--limit', '1']);
    expect(oneByOne.stdout.trim().split('\n')).toHaveLength(2);
    expect(oneByOne.stderr).toMatch(/more: agentq list --cursor \S+/);
  });

  it("events prints the step log; --json gives the API's events, one per line", async () => {
    const r = await agentq(['events', doneId]);
    expect(r.code).toBe(0);
    expect(linesMatching(r.stdout, /^→ /, /^← /, /^answer:/, /^✔ /)).toEqual([
      '→ calculator {"expression":"3 * 5"}',
      expect.stringMatching(/^← calculator /),
      'answer: The answer is 15.',
      '✔ completed',
    ]);
    const json = await agentq(['events', doneId, '--json']);
    expect(jsonLines(json.stdout)).toEqual(await client.events(doneId));
  });

  it('events --follow streams a running task to its end; --json lines parse, without duplicates', async () => {
    const { body } = await client.submit({
      input: { prompt: '[delay=400] What is 4 * 4? (cli events)' },
    });
    const r = await agentq(['events', body.id, '--follow', '--json']);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    const final = lines.at(-1)!;
    expect(final).toMatchObject({ id: body.id, status: 'completed' });
    const events = lines.slice(0, -1);
    expect(events).toEqual(await client.events(body.id));
  });

  it('cancel stops a running task; following it exits 3', async () => {
    const follow = startCli(['submit', '[hang] (cli cancel)', '--follow'], {
      env: { AGENTQ_URL: api.url },
    });
    const id = await waitFor(
      () => /· running/.test(follow.stdout()) && submittedId(follow.stdout()),
      { what: 'the followed task to run' },
    );
    const cancel = await agentq(['cancel', id]);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toMatch(/^cancel requested: .* is running/m);
    const r = await follow.done;
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^■ cancelled$/m);
    const again = await agentq(['cancel', id]);
    expect(again.code).toBe(0); // already cancelled: 200
    expect(again.stdout).toBe(`cancelled ${id}\n`);
    const done = await agentq(['cancel', doneId]);
    expect(done.code).toBe(5);
    expect(done.stderr).toContain('already_finished');
  });
});

describe('output for scripts and terminals', () => {
  it('submit --follow --json prints one JSON object per event, then the task', async () => {
    const r = await agentq(['submit', 'What is 9 * 9? (cli json)', '--follow', '--json']);
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    const task = lines.at(-1)!;
    expect(task).toMatchObject({ status: 'completed', result: { answer: 'The answer is 81.' } });
    const seqs = lines.slice(0, -1).map((e) => e.seq as number);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(lines.map((e) => e.type)).toContain('tool_result');
  });

  it('no escape codes on a pipe or with NO_COLOR; FORCE_COLOR colours a pipe', async () => {
    const args = ['submit', 'What is 5 * 5? (cli colour)', '--follow'];
    const piped = await agentq(args);
    expect(piped.code).toBe(0);
    expect(piped.stdout + piped.stderr).not.toMatch(ESCAPE);
    const forced = await agentq(args, { FORCE_COLOR: '1' });
    expect(forced.stdout).toMatch(ESCAPE);
    const both = await agentq(args, { FORCE_COLOR: '1', NO_COLOR: '1' });
    expect(both.code).toBe(0);
    expect(both.stdout + both.stderr).not.toMatch(ESCAPE);
  });

  it.skipIf(!canRunOnTerminal)(
    'on a terminal: colours and a spinner while the model thinks; NO_COLOR drops the colours',
    async () => {
      // The colour escape sequences (SGR), and the spinner's first frames.
      // eslint-disable-next-line no-control-regex -- escape sequences are what it looks for
      const SGR = /\u001b\[[0-9;]*m/;
      // A frame (coloured or not), then what the task waits on.
      // eslint-disable-next-line no-control-regex -- escape sequences are what it looks for
      const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏](\u001b\[39m)? the model is thinking…/;
      const args = ['submit', '[delay=600] What is 7 * 7? (cli tty)', '--follow'];
      const tty = await runCliOnTerminal(args, { env: { AGENTQ_URL: api.url } });
      expect(tty.code).toBe(0);
      expect(tty.stdout).toMatch(SGR);
      expect(tty.stdout).toMatch(SPINNER);
      expect(tty.stdout).toContain('The answer is 49.');
      const plain = await runCliOnTerminal(args, { env: { AGENTQ_URL: api.url, NO_COLOR: '1' } });
      expect(plain.code).toBe(0);
      expect(plain.stdout).not.toMatch(SGR);
      expect(plain.stdout).toMatch(SPINNER);
    },
  );
});

describe('errors say what to fix', () => {
  it('an unreachable API exits 6 naming the URL and AGENTQ_URL', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await runCli(['list'], { env: { AGENTQ_URL: url } });
    expect(r.code).toBe(6);
    expect(r.stderr).toContain(`cannot reach the agentq API at ${url}`);
    expect(r.stderr).toContain('AGENTQ_URL');
    expect(r.stdout).toBe('');
  });

  it('a bad flag or value exits 2 naming it', async () => {
    const unknown = await agentq(['submit', 'x', '--max-step', '3']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--max-step'/);
    const value = await agentq(['submit', 'x', '--max-steps', 'many']);
    expect(value.code).toBe(2);
    expect(value.stderr).toMatch(/--max-steps <n>.*'many' is invalid/);
    const status = await agentq(['list', '--status', 'done']);
    expect(status.code).toBe(2);
    expect(status.stderr).toContain('queued, running, completed, failed, cancelled');
    const url = await runCli(['list'], { env: { AGENTQ_URL: 'localhost:8080' } });
    expect(url.code).toBe(2);
    expect(url.stderr).toContain('AGENTQ_URL must be an http:// or https:// URL');
    const both = await agentq(['submit', 'x', '--wait', '--follow']);
    expect(both.code).toBe(2);
    expect((await agentq(['--help'])).code).toBe(0);
  });

  it('an API error exits 5 with its code and message', async () => {
    const r = await agentq(['submit', 'x', '--provider', 'nope']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/invalid_request: config\.provider: .* \(HTTP 400\)/);
  });

  it('401 without a token says to set AGENTQ_TOKEN; with it the command works', async () => {
    const r = await runCli(['list'], { env: { AGENTQ_URL: securedApi.url } });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(`the API at ${securedApi.url} needs a token (401 unauthorized)`);
    expect(r.stderr).toContain('set AGENTQ_TOKEN');
    const wrong = await runCli(['list', '--token', 'not-the-token'], {
      env: { AGENTQ_URL: securedApi.url },
    });
    expect(wrong.stderr).toContain('refused the token');
    const ok = await runCli(['list'], { env: { AGENTQ_URL: securedApi.url, AGENTQ_TOKEN: TOKEN } });
    expect(ok.code).toBe(0);
  });
});

describe('--follow across broken streams', () => {
  it('resumes with Last-Event-ID when the API ends the stream (its lifetime), printing each step once', async () => {
    // securedApi ends every stream after 1 s; the task takes about 2 s.
    const r = await runCli(
      ['submit', '[delay=700] What is 12 * 12? (cli lifetime)', '--follow', '--json'],
      { env: { AGENTQ_URL: securedApi.url, AGENTQ_TOKEN: TOKEN } },
    );
    expect(r.code).toBe(0);
    const lines = jsonLines(r.stdout);
    const events = lines.slice(0, -1);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events).toEqual(await client.events(lines.at(-1)!.id as string));
  });

  it('resumes after the connection drops mid-stream, printing each step once', async () => {
    const proxy = await startDroppingProxy(new URL(api.url).port);
    try {
      const r = await runCli(['submit', '[delay=700] What is 11 * 11? (cli drop)', '--follow'], {
        env: { AGENTQ_URL: proxy.url },
      });
      expect(r.code, r.stderr).toBe(0);
      expect(proxy.dropped()).toBeGreaterThan(0);
      expect(r.stderr).toMatch(/the event stream broke off: .*; resuming/);
      expect(linesMatching(r.stdout, /^· /, /^→ /, /^← /, /^answer:/, /^✔ /)).toEqual([
        '· queued',
        '· running · attempt 1 of 3',
        '→ calculator {"expression":"11 * 11"}',
        expect.stringMatching(/^← calculator /),
        'answer: The answer is 121.',
        '✔ completed',
      ]);
    } finally {
      await proxy.close();
    }
  });
});

/**
 * A TCP proxy to the API that cuts every event-stream connection 500 ms after
 * it starts (the socket destroyed, no clean end); other requests pass. It
 * rewrites Host to the API's own address, which an API without tokens insists on.
 */
async function startDroppingProxy(targetPort: string) {
  let dropped = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(targetPort), '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (/\r\naccept: text\/event-stream\r\n/i.test(text)) {
        setTimeout(() => {
          dropped += 1;
          client.destroy();
          upstream.destroy();
        }, 500);
      }
      const host = `\r\nhost: 127.0.0.1:${targetPort}\r\n`;
      upstream.write(Buffer.from(text.replace(/\r\nhost: [^\r]*\r\n/i, host), 'latin1'));
    });
    upstream.pipe(client);
    const forget = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    dropped: () => dropped,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
