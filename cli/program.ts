/**
 * The `agentq` command line: its commands and flags (commander), the shared
 * --url/--token/--json flags, and the help text with the exit codes.
 * Each command returns the exit code it ends with.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { TASK_STATUSES } from '../shared/db/schema.ts';
import { createApiClient, type ApiClient, type Task } from './api-client.ts';
import { CliError, EXIT, EXIT_CODE_TABLE, exitCodeForStatus } from './exit-codes.ts';
import { LIST_HEADER, modelLine, taskDetail, taskRow } from './render-task.ts';
import { StepPrinter } from './step-printer.ts';
import { createTerminal, type Terminal } from './terminal.ts';
import { followTask, stillUnfinished, waitForTask } from './wait-for-task.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

interface GlobalOptions {
  url?: string;
  token?: string;
  json?: boolean;
}

interface Context {
  client: ApiClient;
  term: Terminal;
}

function wholeNumber(min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError('must be a whole number.');
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be from ${min} to ${max}.`);
    return n;
  };
}

function decimal(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new InvalidArgumentError('must be a number.');
  return n;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function keyValue(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError('must be key=value (e.g. --metadata team=search).');
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}

function statuses(value: string, previous: string[] = []): string[] {
  const given = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = given.filter((s) => !(TASK_STATUSES as readonly string[]).includes(s));
  if (unknown.length > 0 || given.length === 0) {
    throw new InvalidArgumentError(
      `must be one or more of ${TASK_STATUSES.join(', ')} (comma-separated).`,
    );
  }
  return [...previous, ...given];
}

/** The API's base URL from --url, AGENTQ_URL or the default; a usage error when it is not http(s). */
export function apiUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const raw = flag ?? (env.AGENTQ_URL || DEFAULT_URL);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    url = new URL('invalid:');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    const from = flag !== undefined ? '--url' : 'AGENTQ_URL';
    throw new CliError(
      `${from} must be an http:// or https:// URL such as ${DEFAULT_URL}, got "${raw}".`,
      EXIT.usage,
    );
  }
  return url.toString().replace(/\/+$/, '');
}

function packageVersion(): string {
  // cli/ when run from source, dist/cli/ when built.
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'agentq' && pkg.version) return pkg.version;
    } catch {
      // try the next place
    }
  }
  return 'unknown';
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text;
}

function helpFooter(): string {
  const codes = EXIT_CODE_TABLE.map(
    ([code, meaning]) => `  ${String(code).padStart(2)}  ${meaning}`,
  );
  return [
    '',
    'Environment:',
    `  AGENTQ_URL    the API's URL (default ${DEFAULT_URL}); --url overrides it`,
    '  AGENTQ_TOKEN  a bearer token, when the API has AGENTQ_API_TOKENS; --token overrides it',
    '  NO_COLOR      no colours (they are only used on a terminal anyway); FORCE_COLOR forces them',
    '',
    'Exit codes:',
    ...codes,
    '',
    'Examples:',
    '  agentq submit "What is 17 * 23? Use the calculator." --follow',
    '  agentq submit "Summarise this" --provider openai --model gpt-4o-mini --wait',
    '  agentq list --status running,queued',
    '  agentq events <id> --follow --json',
  ].join('\n');
}

function printTask(term: Terminal, task: Task): void {
  if (term.json) term.outJson(task);
  else for (const line of taskDetail(task, term.color)) term.out(line);
}

/** Builds the program; `setExit` receives the exit code of the command that ran. */
export function buildProgram(env: NodeJS.ProcessEnv, setExit: (code: number) => void): Command {
  const program = new Command('agentq')
    .description('Submit, watch and steer agentq tasks over its HTTP API.')
    .version(packageVersion(), '-V, --version')
    .option('--url <url>', `the API's URL (default: $AGENTQ_URL or ${DEFAULT_URL})`)
    .option('--token <token>', 'bearer token (default: $AGENTQ_TOKEN)')
    .option('--json', 'print JSON lines (one object per task or event) for scripts')
    .showHelpAfterError('(run agentq --help, or agentq <command> --help, for the flags)')
    .addHelpText('after', helpFooter())
    .exitOverride();

  /** The command's client and terminal, from the global flags. */
  function context(command: Command): Context {
    const opts = command.optsWithGlobals<GlobalOptions>();
    const term = createTerminal({ json: opts.json === true, env });
    const client = createApiClient({
      url: apiUrl(opts.url, env),
      token: opts.token ?? env.AGENTQ_TOKEN,
    });
    return { client, term };
  }
  /** Runs a command body and hands its exit code on. */
  const run =
    <A extends unknown[]>(body: (ctx: Context, ...args: A) => Promise<number>) =>
    async (...args: A) => {
      const command = args.at(-1) as Command;
      setExit(await body(context(command), ...args));
    };

  program
    .command('submit')
    .description('submit a task; --wait for its end or --follow its steps as they happen')
    .argument('<prompt>', 'the prompt ("-" reads it from standard input)')
    .option('--provider <name>', "openai, google or offline (default: the API's)")
    .option('--model <name>', "the model (default: the provider's)")
    .option(
      '--tool <name>',
      "a tool the model may call; repeat for more (default: the API's defaults)",
      collect,
    )
    .option('--max-steps <n>', 'model turns before the task fails', wholeNumber(1, 1_000_000))
    .option('--temperature <t>', 'sampling temperature', decimal)
    .option('--system-prompt <text>', 'the system prompt')
    .option('--metadata <key=value>', 'metadata to store with the task; repeat for more', keyValue)
    .option('--priority <n>', 'from -100 to 100; higher runs sooner', wholeNumber(-100, 100))
    .option(
      '--max-attempts <n>',
      'attempts before a retryable error fails the task',
      wholeNumber(1, 20),
    )
    .option('--idempotency-key <key>', 'a replay with the same key returns the first task')
    .addOption(
      new Option('--wait', 'wait until the task finishes, then print it').conflicts('follow'),
    )
    .option('--follow', 'print each step as it happens, then the answer')
    .option(
      '--timeout <seconds>',
      'stop waiting (--wait, --follow) after this long',
      wholeNumber(1, 1_000_000),
    )
    .action(
      run(async ({ client, term }, promptArg: string, o: Record<string, unknown>) => {
        const prompt = promptArg === '-' ? await readStdin() : promptArg;
        const config = {
          ...(o.provider === undefined ? {} : { provider: o.provider }),
          ...(o.model === undefined ? {} : { model: o.model }),
          ...(o.tool === undefined ? {} : { tools: o.tool }),
          ...(o.maxSteps === undefined ? {} : { max_steps: o.maxSteps }),
          ...(o.temperature === undefined ? {} : { temperature: o.temperature }),
          ...(o.systemPrompt === undefined ? {} : { system_prompt: o.systemPrompt }),
        };
        const body = {
          input: { prompt },
          ...(Object.keys(config).length > 0 ? { config } : {}),
          ...(o.metadata === undefined ? {} : { metadata: o.metadata }),
          ...(o.priority === undefined ? {} : { priority: o.priority }),
          ...(o.maxAttempts === undefined ? {} : { max_attempts: o.maxAttempts }),
          ...(o.idempotencyKey === undefined ? {} : { idempotency_key: o.idempotencyKey }),
        };
        const { task, replayed } = await client.submit(body);
        const timeoutS = o.timeout as number | undefined;
        if (!term.json) {
          const replay = replayed
            ? term.color.yellow(' (a replay: the task first submitted with this key)')
            : '';
          term.out(`submitted ${term.color.bold(task.id)} · ${modelLine(task)}${replay}`);
        }
        if (o.follow) return followTask(client, term, task, { timeoutS });
        if (o.wait) {
          const done = await waitForTask(client, term, task.id, timeoutS);
          printTask(term, done);
          const code = exitCodeForStatus(done.status);
          return code === EXIT.timeout ? stillUnfinished(term, done, timeoutS) : code;
        }
        if (term.json) term.outJson(task);
        else term.note(term.errColor.dim(`follow it with: agentq events ${task.id} --follow`));
        return EXIT.ok;
      }),
    );

  program
    .command('get')
    .description('show a task; --wait N waits up to N seconds for it to finish')
    .argument('<id>', 'the task id')
    .option(
      '--wait <seconds>',
      'wait up to this long for the task to finish',
      wholeNumber(0, 1_000_000),
    )
    .action(
      run(async ({ client, term }, id: string, o: { wait?: number }) => {
        const task =
          o.wait === undefined || o.wait === 0
            ? await client.get(id, o.wait)
            : await waitForTask(client, term, id, o.wait);
        printTask(term, task);
        const code = exitCodeForStatus(task.status);
        // Unfinished is only a timeout when the caller asked to wait.
        if (code !== EXIT.timeout) return code;
        return o.wait ? stillUnfinished(term, task, o.wait) : EXIT.ok;
      }),
    );

  program
    .command('list')
    .description('list tasks, newest first')
    .option(
      '--status <statuses>',
      `only these (comma-separated, or repeat): ${TASK_STATUSES.join(', ')}`,
      statuses,
    )
    .option('--limit <n>', 'tasks per page, 1 to 200', wholeNumber(1, 200), 20)
    .option('--cursor <cursor>', 'the next page (printed after a full page)')
    .action(
      run(async ({ client, term }, o: { status?: string[]; limit: number; cursor?: string }) => {
        const page = await client.list({
          status: o.status ? [...new Set(o.status)].join(',') : undefined,
          limit: String(o.limit),
          cursor: o.cursor,
        });
        if (term.json) {
          for (const task of page.data) term.outJson(task);
        } else {
          term.out(term.color.dim(LIST_HEADER));
          for (const task of page.data) term.out(taskRow(task, term.color));
          if (page.data.length === 0) term.note(term.errColor.dim('no tasks'));
        }
        if (page.next_cursor) {
          term.note(term.errColor.dim(`more: agentq list --cursor ${page.next_cursor}`));
        }
        return EXIT.ok;
      }),
    );

  program
    .command('cancel')
    .description('cancel a queued or running task')
    .argument('<id>', 'the task id')
    .action(
      run(async ({ client, term }, id: string) => {
        const { task, pending } = await client.cancel(id);
        if (term.json) term.outJson(task);
        else if (pending) {
          term.out(
            `cancel requested: ${task.id} is running; the worker stops it within a second or two`,
          );
        } else term.out(`cancelled ${task.id}`);
        return EXIT.ok;
      }),
    );

  program
    .command('events')
    .description("print a task's step log; --follow streams it until the task finishes")
    .argument('<id>', 'the task id')
    .option('--follow', 'keep printing steps as they happen; exit with the final status')
    .option('--after <seq>', 'only the events after this seq', wholeNumber(0, 1_000_000_000), 0)
    .option('--timeout <seconds>', 'stop following after this long', wholeNumber(1, 1_000_000))
    .action(
      run(
        async (
          { client, term },
          id: string,
          o: { follow?: boolean; after: number; timeout?: number },
        ) => {
          if (o.follow) {
            const task = await client.get(id);
            return followTask(client, term, task, { timeoutS: o.timeout, after: o.after });
          }
          const printer = new StepPrinter(term);
          for (let after = o.after; ;) {
            const page = await client.eventsPage(id, after);
            for (const event of page.data) {
              if (term.json) term.outJson(event);
              else printer.event(event);
            }
            if (page.data.length < 1000) break;
            after = page.next_after;
          }
          printer.flush();
          return EXIT.ok;
        },
      ),
    );

  return program;
}
