// Item 9: reading a task must not leave anything behind per request. With
// AbortSignal.any([req.signal, shutdownSignal]) on Node 20 each read left a
// combined signal registered on the long-lived shutdown signal (~50–90 bytes).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApi } from '../helpers/api-harness.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

// A gc() without restarting the test worker with --expose-gc: set the flag,
// then take the function from a fresh context, which sees it.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(tdb);
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

it('reads a task 100,000 times in-process (half of them long-polls) with under 2 MB of heap growth', async () => {
  const res = await api.post('/v1/tasks', { input: { prompt: 'read me' } });
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };
  const readMany = async (n: number) => {
    const concurrency = 20;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          next += 1;
          // Every other read is a (1 ms) long-poll, so the waiting path runs too.
          const r = await api.get(`/v1/tasks/${id}${next % 2 === 0 ? '?wait=0.001' : ''}`);
          if (r.status !== 200) throw new Error(`status ${r.status}`);
          await r.arrayBuffer();
        }
      }),
    );
  };
  await readMany(5_000); // warm up: JIT, pool connections, caches
  const before = await heapAfterGc();
  await readMany(100_000);
  const after = await heapAfterGc();
  const growthMb = (after - before) / 1024 / 1024;
  console.info(
    `[leak] heap after GC: ${(before / 2 ** 20).toFixed(1)} → ${(after / 2 ** 20).toFixed(1)} MB`,
  );
  expect(growthMb).toBeLessThan(2);
}, 300_000);
