/**
 * Prints a task's step log for people, one line per step: each model call,
 * each tool call and its result (long values cut), retries and recoveries
 * with their reason, the answer, and the final status. While following it
 * also keeps the spinner's text saying what the task is waiting on.
 */
import type { TaskEvent } from './api-client.ts';
import type { Colors, Terminal } from './terminal.ts';

/** One-line values are cut to this many characters. */
export const MAX_VALUE_CHARS = 200;

type Data = Record<string, unknown>;

/** A value as one line: strings as they are (newlines shown as ↵), the rest as JSON; cut when long. */
export function oneLine(value: unknown, max = MAX_VALUE_CHARS): string {
  const text =
    typeof value === 'string'
      ? value.replace(/\s*\r?\n\s*/g, ' ↵ ')
      : (JSON.stringify(value) ?? '');
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

const describeError = (error: unknown): string => {
  if (typeof error !== 'object' || error === null) return oneLine(error);
  const { code, message } = error as { code?: unknown; message?: unknown };
  return code === undefined ? oneLine(error) : `${String(code)}: ${oneLine(message ?? '')}`;
};

const seconds = (ms: unknown) => `${(Number(ms) / 1000).toFixed(1)} s`;

export class StepPrinter {
  /** An assistant message, held back: when the answer repeats it, it is printed once. */
  private pendingMessage: TaskEvent | undefined;
  private openToolCalls = 0;

  constructor(
    private readonly term: Terminal,
    private readonly maxAttempts?: number,
  ) {}

  private get c(): Colors {
    return this.term.color;
  }

  event(e: TaskEvent): void {
    const message = this.pendingMessage;
    this.pendingMessage = undefined;
    if (message && !(e.type === 'answer' && e.data.text === message.data.text)) {
      this.print(`  ${this.c.dim('model:')} ${oneLine(message.data.text)}`);
    }
    const d = e.data;
    switch (e.type) {
      case 'status':
        return this.status(d);
      case 'llm_call':
        return this.llmCall(d);
      case 'message':
        this.pendingMessage = e;
        return;
      case 'tool_call':
        this.openToolCalls += 1;
        this.print(`${this.c.cyan('→')} ${this.c.cyan(String(d.name))} ${oneLine(d.arguments)}`);
        return this.term.waiting(`running ${String(d.name)}…`);
      case 'tool_result':
        return this.toolResult(d);
      case 'answer':
        this.term.waiting(undefined);
        return this.print(`${this.c.bold('answer:')} ${String(d.text ?? '')}`);
      case 'retry':
        return this.retry(d);
      case 'recovered':
        this.print(
          this.c.yellow(
            `↻ recovered: ${String(d.reason ?? 'the task was handed back')}` +
              (d.previous_worker ? ` (worker ${String(d.previous_worker)})` : ''),
          ),
        );
        return;
      case 'cancel_requested':
        this.print(this.c.yellow('■ cancel requested'));
        return this.term.waiting('cancelling…');
      case 'error':
        return this.print(this.c.red(`✖ error: ${describeError(d)}`));
      case 'webhook':
        return this.print(
          this.c.dim(
            `  webhook · ${String(d.outcome)}` +
              (d.status_code === undefined ? '' : ` (HTTP ${String(d.status_code)})`) +
              (d.error === undefined ? '' : `: ${oneLine(d.error)}`) +
              ` · attempt ${String(d.attempt)}`,
          ),
        );
      default:
        return this.print(this.c.dim(`  ${e.type} ${oneLine(d)}`));
    }
  }

  private print(line: string): void {
    this.term.out(line);
  }

  private status(d: Data): void {
    const of = this.maxAttempts === undefined ? '' : ` of ${this.maxAttempts}`;
    switch (d.to) {
      case 'queued':
        // A requeue is told by the retry or recovered event beside it.
        if (d.from === undefined) {
          this.print(this.c.dim('· queued'));
          this.term.waiting('waiting for a worker…');
        }
        return;
      case 'running':
        this.print(this.c.dim(`· running · attempt ${String(d.attempt)}${of}`));
        return this.term.waiting('the model is thinking…');
      case 'completed':
        this.term.waiting(undefined);
        return this.print(this.c.green('✔ completed'));
      case 'failed':
        this.term.waiting(undefined);
        return this.print(
          this.c.red(`✖ failed${d.error === undefined ? '' : `: ${describeError(d.error)}`}`),
        );
      case 'cancelled':
        this.term.waiting(undefined);
        return this.print(this.c.yellow('■ cancelled'));
      default:
        return this.print(this.c.dim(`· ${String(d.to)}`));
    }
  }

  private llmCall(d: Data): void {
    const head = `  step ${String(d.step)} · ${String(d.model)}`;
    if (d.error !== undefined) {
      this.print(this.c.yellow(`${head} · the model call failed: ${describeError(d.error)}`));
      return;
    }
    const tokens =
      d.usage_reported === false ? '' : ` · ${d.input_tokens}→${d.output_tokens} tokens`;
    this.print(this.c.dim(`${head} · ${String(d.latency_ms)} ms${tokens}`));
    this.term.waiting(Number(d.tool_calls) > 0 ? 'calling tools…' : 'answering…');
  }

  private toolResult(d: Data): void {
    this.openToolCalls = Math.max(0, this.openToolCalls - 1);
    const took = d.duration_ms === undefined ? '' : this.c.dim(` · ${String(d.duration_ms)} ms`);
    if (d.error !== undefined) {
      this.print(
        `${this.c.red('←')} ${this.c.red(String(d.name))} error: ${oneLine(d.error)}${took}`,
      );
    } else {
      this.print(
        `${this.c.green('←')} ${this.c.green(String(d.name))} ${oneLine(d.output)}${took}`,
      );
    }
    if (this.openToolCalls === 0) this.term.waiting('the model is thinking…');
  }

  private retry(d: Data): void {
    const why =
      d.error !== undefined ? describeError(d.error) : String(d.reason ?? 'retryable error');
    const next =
      d.delay_ms === undefined || Number(d.delay_ms) === 0 ? 'now' : `in ${seconds(d.delay_ms)}`;
    this.print(
      this.c.yellow(`↻ retry: attempt ${String(d.attempt)} failed (${why}); next try ${next}`),
    );
    this.term.waiting('waiting to retry…');
  }

  /** Prints a message still held back (the log ended after it). */
  flush(): void {
    const message = this.pendingMessage;
    this.pendingMessage = undefined;
    if (message) this.print(`  ${this.c.dim('model:')} ${oneLine(message.data.text)}`);
  }
}
