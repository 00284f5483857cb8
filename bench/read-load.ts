/**
 * GET /v1/tasks/:id under concurrent load: `clients` keep-alive HTTP clients in
 * this process each asking for a random finished task, one request at a time,
 * against an API process of its own (api/main.ts) on the end-to-end phase's
 * database. One untimed second first (JIT, connections), then `seconds`
 * timed. No raw graphile-worker counterpart: it has no read API.
 */
import { startApiChild } from './processes.ts';
import { agentqEnv } from './end-to-end.ts';
import type { PhaseContext } from './context.ts';
import { httpClient, type HttpClient } from './http-client.ts';
import { summarize, type LatencySummary } from './measure.ts';
import { Monitor } from './monitor.ts';
import { wakeLatency, type WakeLatencyResult } from './wake-latency.ts';

// Sequential commit → wake samples taken after the read load.
const WAKE_SAMPLES = 200;

export interface ReadLoadResult {
  clients: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  latencyMs: LatencySummary;
  /** Finished tasks the ids were drawn from. */
  tasks: number;
  /** Commit → long-poll wake, measured after the load on the same API process. */
  wake: WakeLatencyResult;
}

/** Every lane sends requests back to back until `deadline`; returns each request's ms. */
async function hammer(
  http: HttpClient,
  ids: string[],
  clients: number,
  deadline: number,
): Promise<number[]> {
  const times: number[] = [];
  const lane = async () => {
    while (performance.now() < deadline) {
      const id = ids[Math.floor(Math.random() * ids.length)]!;
      const start = performance.now();
      const res = await http.request('GET', `/v1/tasks/${id}`);
      if (res.status !== 200) throw new Error(`GET /v1/tasks/${id}: ${res.status}`);
      times.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: clients }, lane));
  return times;
}

export async function readLoad(
  ctx: PhaseContext,
  url: string,
  clients: number,
  seconds: number,
): Promise<ReadLoadResult> {
  const monitor = await Monitor.connect(url);
  const ids = (
    await monitor.query<{ id: string }>(
      `SELECT id FROM agentq.tasks WHERE status = 'completed' ORDER BY id DESC LIMIT 10000`,
    )
  ).map((r) => r.id);
  await monitor.close();
  if (ids.length === 0) throw new Error('read load: no finished tasks to read');
  // The API's pool as in the other phases; requests wait for a connection beyond it.
  const api = await startApiChild(agentqEnv(url, ctx.concurrency, ctx.poolMax));
  const stopApi = ctx.onCleanup('read-load api', async () => {
    await api.stop();
  });
  const http = httpClient(api.url, clients);
  try {
    await hammer(http, ids, clients, performance.now() + 1000);
    const start = performance.now();
    const times = await hammer(http, ids, clients, start + seconds * 1000);
    const elapsed = (performance.now() - start) / 1000;
    const wake = await wakeLatency(http, url, WAKE_SAMPLES);
    return {
      wake,
      clients,
      seconds: elapsed,
      requests: times.length,
      requestsPerSecond: times.length / elapsed,
      latencyMs: summarize(times),
      tasks: ids.length,
    };
  } finally {
    http.close();
    await stopApi();
  }
}
