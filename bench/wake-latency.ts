/**
 * Commit → long-poll wake: how long after a status change commits does a
 * waiting `GET /v1/tasks/:id?wait=…` answer. One sample at a time against an
 * API process with no worker: submit a task (it stays queued), start the
 * long-poll, let it settle into its wait, then cancel the task with one
 * autocommit UPDATE and time from that statement's return (the commit is
 * done by then) to the long-poll's answer. No raw counterpart: graphile-worker
 * has no read API.
 */
import type { HttpClient } from './http-client.ts';
import { summarize, type LatencySummary } from './measure.ts';
import { Monitor } from './monitor.ts';

export interface WakeLatencyResult {
  samples: number;
  latencyMs: LatencySummary;
}

// How long the long-poll gets to reach its wait before the commit. Not a
// measurement: only so the sample times a wake, not a first read.
const SETTLE_MS = 30;

export async function wakeLatency(
  http: HttpClient,
  databaseUrl: string,
  samples: number,
): Promise<WakeLatencyResult> {
  const monitor = await Monitor.connect(databaseUrl);
  const times: number[] = [];
  try {
    for (let i = 0; i < samples + 5; i++) {
      const submitted = await http.request('POST', '/v1/tasks', {
        input: { prompt: `wake ${i}` },
      });
      if (submitted.status !== 201) throw new Error(`wake latency: submit ${submitted.status}`);
      const id = (submitted.body as { id: string }).id;
      let answeredAt = 0;
      const poll = http.request('GET', `/v1/tasks/${id}?wait=10`).then((res) => {
        answeredAt = performance.now();
        return res;
      });
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      await monitor.query(
        `UPDATE agentq.tasks SET status = 'cancelled', cancel_requested_at = now(),
           error = '{"code":"cancelled","message":"bench","retryable":false}'
         WHERE id = $1 AND status = 'queued'`,
        [id],
      );
      const committedAt = performance.now();
      const res = await poll;
      if ((res.body as { status?: string }).status !== 'cancelled')
        throw new Error(`wake latency: the long-poll answered ${JSON.stringify(res.body)}`);
      // The first few samples warm the path up (JIT, connections).
      if (i >= 5) times.push(Math.max(0, answeredAt - committedAt));
    }
  } finally {
    await monitor.close();
  }
  return { samples: times.length, latencyMs: summarize(times) };
}
