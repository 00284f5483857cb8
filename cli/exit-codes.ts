/**
 * The CLI's exit codes, one per outcome a script may want to tell apart, and
 * the error that carries one. `agentq --help` and the README print this table.
 */
import type { TaskStatus } from '../shared/db/schema.ts';

export const EXIT = {
  /** The task completed, or the command did what it was asked. */
  ok: 0,
  failed: 1,
  usage: 2,
  cancelled: 3,
  /** Waiting ran out (`--timeout`, `get --wait`) before the task finished. */
  timeout: 4,
  /** The API answered with an error (4xx or 5xx), e.g. 401 without a token. */
  api: 5,
  /** The API could not be reached. */
  connection: 6,
  /** A bug in the CLI itself (EX_SOFTWARE). */
  internal: 70,
} as const;

export const EXIT_CODE_TABLE: ReadonlyArray<readonly [number, string]> = [
  [EXIT.ok, 'the task completed (or the command succeeded)'],
  [EXIT.failed, 'the task failed'],
  [EXIT.usage, 'usage error: a bad command, flag or value'],
  [EXIT.cancelled, 'the task was cancelled'],
  [EXIT.timeout, 'gave up waiting: the task is still queued or running'],
  [EXIT.api, 'the API answered with an error (401: set AGENTQ_TOKEN)'],
  [EXIT.connection, 'the API is unreachable (start it, or set AGENTQ_URL)'],
  [EXIT.internal, 'a bug in the CLI'],
];

/** An error the CLI reports in one message and turns into its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** What a finished (or still unfinished) task's status says to exit with. */
export function exitCodeForStatus(status: TaskStatus): number {
  switch (status) {
    case 'completed':
      return EXIT.ok;
    case 'failed':
      return EXIT.failed;
    case 'cancelled':
      return EXIT.cancelled;
    default:
      return EXIT.timeout;
  }
}
