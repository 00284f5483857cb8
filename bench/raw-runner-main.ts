/**
 * The raw graphile-worker side of the end-to-end phase as its own process, so
 * it runs like agentq's worker does there (its own process, its own CPU
 * time): graphile-worker's run() with a no-op task and the pool size agentq's
 * worker gets. A job's payload carries the wall-clock time its add_job was
 * sent (`t`, ms); the handler keeps "add_job → handler ran" and prints all of
 * them as one JSON line when SIGTERM stops it.
 *
 * Environment: DATABASE_URL, BENCH_RAW_CONCURRENCY, BENCH_RAW_POOL_MAX.
 */
import { createPool } from '../shared/db/database.ts';
import { startRawRunner } from './raw.ts';

const url = process.env.DATABASE_URL;
if (!url) {
  process.stderr.write('raw-runner: DATABASE_URL is not set\n');
  process.exit(1);
}
const concurrency = Number(process.env.BENCH_RAW_CONCURRENCY ?? 10);
const pool = createPool({
  connectionString: url,
  applicationName: 'agentq-bench-raw-worker',
  max: Number(process.env.BENCH_RAW_POOL_MAX ?? concurrency + 5),
});

// Same clock as the submitter's: both processes run on this machine.
const wallClock = () => performance.timeOrigin + performance.now();
const latencies: number[] = [];
const runner = await startRawRunner(pool, concurrency, {
  noop: async (payload) => {
    const t = (payload as { t?: number }).t;
    if (typeof t === 'number') latencies.push(wallClock() - t);
  },
});
process.stdout.write('ready\n');

process.once('SIGTERM', () => {
  void (async () => {
    await runner.stop();
    await pool.end();
    process.stdout.write(`${JSON.stringify({ latencies })}\n`);
    process.exit(0);
  })();
});
