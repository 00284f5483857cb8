// How a thrown error becomes an attempt's outcome, and in particular that an
// unexpected error (a database's, a library's) never puts its text into the
// task's `error`: the task says internal_error, the worker's log has the rest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { Logger } from '../../shared/logger.ts';
import type { TaskRow } from '../../shared/tasks/task-queries.ts';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import { RunAbort } from '../../worker/agent/run-abort.ts';
import { classify, INTERNAL_ERROR_MESSAGE } from '../../worker/agent-task.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

const task = { attempts: 1, max_attempts: 3, timeout_ms: 5000 } as TaskRow;

function recordingLog() {
  const lines: Array<{ fields: unknown; msg: unknown }> = [];
  const log = {
    error: (fields: unknown, msg: unknown) => lines.push({ fields, msg }),
  } as unknown as Logger;
  return { log, lines };
}

describe('classify', () => {
  it('turns a database error into a generic internal_error, and logs the real one', async () => {
    const dbError = await sql`SELECT * FROM agentq.secret_table_name WHERE x = 'private value'`
      .execute(tdb.db)
      .then(
        () => undefined,
        (err: unknown) => err as Error,
      );
    expect(dbError?.message).toMatch(/secret_table_name/);
    const { log, lines } = recordingLog();
    const outcome = classify(dbError, new AbortController().signal, task, log);
    expect(outcome).toEqual({
      status: 'failed',
      error: { code: 'internal_error', message: INTERNAL_ERROR_MESSAGE, retryable: false },
      cancelWins: false,
    });
    expect(JSON.stringify(outcome)).not.toMatch(/secret_table_name|relation|agentq\./);
    expect(lines).toEqual([{ fields: { err: dbError }, msg: expect.any(String) }]);
  });

  it('does the same for any other unexpected throw', () => {
    const { log } = recordingLog();
    for (const thrown of [
      new TypeError("Cannot read properties of undefined (reading 'x')"),
      'a string',
      null,
    ]) {
      const outcome = classify(thrown, new AbortController().signal, task, log);
      expect(outcome).toMatchObject({
        status: 'failed',
        error: { code: 'internal_error', message: INTERNAL_ERROR_MESSAGE },
      });
    }
  });

  it("keeps a TaskFailure's own code and message, retrying while attempts remain", () => {
    const { log } = recordingLog();
    const failure = new TaskFailure('provider_unavailable', 'provider answered 503');
    expect(classify(failure, new AbortController().signal, task, log)).toEqual({
      status: 'retry',
      failure,
    });
    expect(
      classify(failure, new AbortController().signal, { ...task, attempts: 3 } as TaskRow, log),
    ).toEqual({
      status: 'failed',
      // No retry is left: the stored error says so; a requested cancel would still win.
      error: { ...failure.toJSON(), retryable: false },
      cancelWins: true,
    });
  });

  it('reads why the attempt was aborted: cancel, shutdown, fenced, timeout', () => {
    const { log } = recordingLog();
    const aborted = (kind: 'cancel' | 'shutdown' | 'fenced' | 'timeout') => {
      const c = new AbortController();
      c.abort(new RunAbort(kind));
      return classify(new Error('aborted'), c.signal, task, log);
    };
    expect(aborted('cancel')).toMatchObject({ status: 'cancelled' });
    expect(aborted('shutdown')).toEqual({ status: 'shutdown' });
    expect(aborted('fenced')).toEqual({ status: 'fenced' });
    expect(aborted('timeout')).toMatchObject({ status: 'retry' });
  });
});
