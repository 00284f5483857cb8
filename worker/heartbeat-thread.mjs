/* global setInterval, clearInterval */
/**
 * The worker's heartbeat, in a thread of its own (worker/heartbeat.ts starts
 * it). On the main thread the beat shared the event loop with the tasks: 50
 * CPU-bound tools yielding in 30 ms slices delay every timer and every
 * database answer by 1.5 s a round, and on a loaded machine by several times
 * that, until peers took a busy worker for a dead one. Here the beat has its
 * own event loop and its own connection, so only a stopped or killed process
 * goes silent.
 *
 * A busy main thread is not a wedged one: it posts a tick every period, and
 * the thread vouches for it only while the last tick is younger than
 * `maxSilenceMs`; a main thread that has run no timer for that long is stuck,
 * and the beat stops, so its tasks are recovered elsewhere (fenced against its
 * late writes). Plain JavaScript, so it loads in a thread whatever runs the
 * TypeScript of the main thread (tsx, vitest, compiled output).
 */
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';

const { connectionString, worker, periodMs, maxSilenceMs } = workerData;

// The statement of workerHeartbeat (shared/workers/worker-queries.ts): an
// upsert, so a worker a peer removed as presumed dead registers again.
const BEAT = `
  INSERT INTO agentq.workers (id, hostname, pid, version, concurrency, last_seen_at)
  VALUES ($1, $2, $3, $4, $5, now())
  ON CONFLICT (id) DO UPDATE SET last_seen_at = now()`;

let lastTick = Date.now();
let client;
let beating = false;

async function connected() {
  if (client) return client;
  const c = new pg.Client({ connectionString, application_name: 'agentq-worker-heartbeat' });
  c.on('error', () => {
    if (client === c) client = undefined; // reconnect on the next beat
  });
  await c.connect();
  client = c;
  return c;
}

async function beat() {
  if (beating) return; // one beat at a time; a slow one is not stacked on
  if (Date.now() - lastTick > maxSilenceMs) {
    parentPort.postMessage({ type: 'main-thread-silent', silentMs: Date.now() - lastTick });
    return;
  }
  beating = true;
  try {
    const c = await connected();
    await c.query(BEAT, [
      worker.id,
      worker.hostname,
      worker.pid,
      worker.version,
      worker.concurrency,
    ]);
  } catch (err) {
    parentPort.postMessage({ type: 'beat-failed', message: String(err?.message ?? err) });
    const c = client;
    client = undefined;
    await c?.end().catch(() => {});
  } finally {
    beating = false;
  }
}

const timer = setInterval(() => void beat(), periodMs);

parentPort.on('message', (message) => {
  if (message === 'tick') lastTick = Date.now();
  else if (message === 'stop') {
    clearInterval(timer);
    void (async () => {
      await client?.end().catch(() => {});
      parentPort.close(); // nothing left: the thread ends
    })();
  }
});
