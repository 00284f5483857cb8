// The LISTEN connection's fallback: with no session to be had (the direct URL
// unreachable) the listener starts anyway, says so in one line, and tells its
// subscribers to re-read every poll interval; with a session it proves it by
// a probe NOTIFY and delivers notifications as before.
import { createServer } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotificationListener } from '../../shared/db/notification-listener.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { lines, logger };
}

describe('NotificationListener without a session', () => {
  it('starts, logs the fallback once (password masked), and ticks its re-readers every poll interval', async () => {
    const port = await closedPort();
    const { lines, logger } = capture();
    const url = `postgres://agentq:s3cret@127.0.0.1:${port}/agentq`;
    const listener = new NotificationListener({
      connectionString: url,
      channels: ['agentq_task'],
      logger,
      applicationName: 'agentq-test-fallback',
      pollIntervalMs: 100,
    });
    let ticks = 0;
    listener.onReconnect(() => (ticks += 1));
    await listener.start(); // never throws
    try {
      expect(listener.connected).toBe(false);
      expect(listener.isPolling).toBe(true);
      await waitFor(() => ticks >= 3, { what: 'three poll ticks' });
      // Several reconnect tries later, still one error line.
      await waitFor(
        () => lines.filter((l) => l.msg === 'notification listener: still no session').length >= 2,
        { what: 'two more tries for a session' },
      );
      const errors = lines.filter((l) => l.level === 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.msg).toContain('polling every 100 ms');
      expect(errors[0]!.url).toBe(`postgres://agentq:***@127.0.0.1:${port}/agentq`);
      expect(JSON.stringify(lines)).not.toContain('s3cret');
    } finally {
      await listener.stop();
    }
  });
});

describe('NotificationListener with a session', () => {
  it('passes the probe and delivers notifications, without polling', async () => {
    const { lines, logger } = capture();
    const listener = new NotificationListener({
      connectionString: tdb.url,
      channels: ['agentq_task'],
      logger,
      applicationName: 'agentq-test-session',
      pollIntervalMs: 100,
    });
    let ticks = 0;
    listener.onReconnect(() => (ticks += 1));
    await listener.start();
    try {
      expect(listener.connected).toBe(true);
      expect(listener.isPolling).toBe(false);
      const got: string[] = [];
      listener.subscribeChannel('agentq_task', (p) => got.push(p));
      await tdb.pool.query(`SELECT pg_notify('agentq_task', 'hello')`);
      await waitFor(() => got.includes('hello'), { what: 'the notification' });
      expect(ticks).toBe(0);
      expect(lines.filter((l) => l.level === 50)).toEqual([]);
    } finally {
      await listener.stop();
    }
  });
});
