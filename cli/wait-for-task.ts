/**
 * Waits for a task to finish by long-polling `GET /v1/tasks/:id?wait=N`
 * (at most 60 s a request), and follows one over the event stream, printing
 * each step. Both stop at a deadline and say the task is still unfinished.
 */
import type { ApiClient, Task } from './api-client.ts';
import { CliError, EXIT, exitCodeForStatus } from './exit-codes.ts';
import { followEvents } from './follow-events.ts';
import { usageLine } from './render-task.ts';
import { StepPrinter } from './step-printer.ts';
import type { Terminal } from './terminal.ts';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
/** The API's longest long-poll. */
const MAX_WAIT_S = 60;

/** The task once finished, or as it is when `timeoutS` ran out (undefined: no limit). */
export async function waitForTask(
  client: ApiClient,
  term: Terminal,
  id: string,
  timeoutS: number | undefined,
): Promise<Task> {
  const deadline = timeoutS === undefined ? Infinity : Date.now() + timeoutS * 1000;
  term.waiting('waiting for the task to finish…');
  try {
    for (;;) {
      const remaining = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      const task = await client.get(id, Math.min(MAX_WAIT_S, remaining));
      if (TERMINAL.has(task.status) || Date.now() >= deadline) return task;
      term.waiting(`waiting for the task to finish (${task.status})…`);
    }
  } finally {
    term.waiting(undefined);
  }
}

/** An exit code for a task that did not finish in time, with a note saying how to look again. */
export function stillUnfinished(term: Terminal, task: Task, timeoutS: number | undefined): number {
  term.note(
    term.errColor.yellow(
      `gave up waiting after ${timeoutS} s: task ${task.id} is still ${task.status}. ` +
        `Look again with: agentq get ${task.id} --wait 60`,
    ),
  );
  return EXIT.timeout;
}

/**
 * Prints the task's steps as they happen (JSON lines with --json), then the
 * final task; returns the exit code its status calls for.
 */
export async function followTask(
  client: ApiClient,
  term: Terminal,
  task: Pick<Task, 'id' | 'max_attempts'>,
  options: { timeoutS?: number | undefined; after?: number } = {},
): Promise<number> {
  const { timeoutS } = options;
  const signal = timeoutS === undefined ? undefined : AbortSignal.timeout(timeoutS * 1000);
  const printer = new StepPrinter(term, task.max_attempts);
  const onReconnect = (reason: string) =>
    term.note(term.errColor.dim(`(the event stream broke off: ${reason}; resuming)`));
  try {
    for await (const event of followEvents(client, task.id, {
      after: options.after ?? 0,
      signal,
      onReconnect,
    })) {
      if (term.json) term.outJson(event);
      else printer.event(event);
    }
  } catch (err) {
    if (!signal?.aborted || err instanceof CliError) throw err;
    printer.flush();
    term.waiting(undefined);
    return stillUnfinished(term, await client.get(task.id), timeoutS);
  }
  printer.flush();
  term.waiting(undefined);
  const final = await client.get(task.id);
  if (term.json) term.outJson(final);
  else term.out(term.color.dim(`  ${usageLine(final)}`));
  return exitCodeForStatus(final.status);
}
