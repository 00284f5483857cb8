/**
 * Chaos run through the real processes: one API, three workers, a fake OpenAI
 * server, and a stream of faults injected at random while N arithmetic tasks
 * run — workers SIGKILLed and replaced, SIGTERMed (graceful) and replaced,
 * frozen with SIGSTOP past the dead-after threshold and then resumed (a zombie
 * that must be fenced out), and every agentq database connection terminated.
 * Then it checks what a user would: nothing lost, nothing completed twice,
 * every answer right, nothing left running or queued in graphile-worker, and
 * every task that ran more than once says why (`recovered` or `retry`).
 *
 * Knobs (environment): CHAOS_TASKS (default 60), CHAOS_FAULT_MS (fault budget,
 * default 30000), CHAOS_SEED (default random; printed, so a failing run's
 * fault schedule and workload can be replayed), CHAOS_WORKER_CONCURRENCY
 * (default 2). `npm run chaos` (scripts/chaos.ts) runs this file with a
 * bigger N. Process timing is not seeded, so a replay repeats the schedule,
 * not the exact interleaving.
 */
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { apiClient, type TaskJson } from '../helpers/http-client.ts';
import { startApiProcess, startWorkerProcess, type AgentqProcess } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0)
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

const TASKS = Math.max(1, intEnv('CHAOS_TASKS', 60));
const FAULT_MS = intEnv('CHAOS_FAULT_MS', 30_000);
const SEED = intEnv('CHAOS_SEED', randomInt(1, 2 ** 31 - 1));
const CONCURRENCY = Math.max(1, intEnv('CHAOS_WORKER_CONCURRENCY', 2));
const WORKERS = 3;
const HEARTBEAT_MS = 300;
const DEAD_AFTER_MS = 2000;
const GRACE_MS = 1000;
/** Faults stop once this share of the tasks is finished (or the budget is spent). */
const MOSTLY_DONE = 0.9;
/** After the faults, how long every task gets to finish. */
const FINISH_MS = Math.max(60_000, TASKS * 300);

/** mulberry32: a small seeded PRNG, so a run's schedule can be replayed. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    int,
    pick<T>(items: readonly T[]): T {
      return items[int(0, items.length - 1)]!;
    },
    shuffle<T>(items: readonly T[]): T[] {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(0, i);
        [out[i], out[j]] = [out[j]!, out[i]!];
      }
      return out;
    },
  };
}

type FaultKind = 'kill' | 'term' | 'stop' | 'pgterm';
const FAULT_KINDS: readonly FaultKind[] = ['kill', 'term', 'stop', 'pgterm'];

interface Slot {
  name: string;
  p: AgentqProcess & { id: string };
  state: 'live' | 'stopped' | 'leaving' | 'exited';
  /** Set when the test ended it on purpose; any other exit is noted. */
  expectedExit: boolean;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

interface Fault {
  atMs: number;
  kind: FaultKind;
  target: string;
  detail: string;
}

interface Expected {
  id: string;
  index: number;
  answer: string;
}

let tdb: TestDatabase;
let fake: FakeLlmServer;
let api: AgentqProcess & { url: string };
let client: ReturnType<typeof apiClient>;
let env: Record<string, string>;
const slots: Slot[] = [];
const timers = new Map<NodeJS.Timeout, () => void>();
/** Misbehaviour that fails the run: a SIGTERMed worker not exiting 0 in time. */
const findings: string[] = [];
/**
 * Worth knowing, not a failure: a worker that died on its own or failed to
 * start (it is replaced), a zombie resumed before its peers wrote it off.
 */
const notes: string[] = [];
let starting = 0;
let workerSeq = 0;
let tearingDown = false;
const background = new Set<Promise<unknown>>();

const elapsed = (since: number) => Date.now() - since;
/** A pause in the workload (never a wait for correctness); teardown ends every pending one at once. */
const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      timers.delete(t);
      resolve();
    }, ms);
    timers.set(t, resolve);
  });
const track = <T>(promise: Promise<T>): Promise<T> => {
  background.add(promise);
  void promise.finally(() => background.delete(promise)).catch(() => {});
  return promise;
};

const activeSlots = () => slots.filter((s) => s.state === 'live' || s.state === 'stopped');
const liveSlots = () => slots.filter((s) => s.state === 'live');

async function startSlot(): Promise<void> {
  starting++;
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const p = await startWorkerProcess(env);
        const slot: Slot = { name: `w${++workerSeq}`, p, state: 'live', expectedExit: false };
        slots.push(slot);
        const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
          slot.exit = { code, signal };
          slot.state = 'exited';
          if (!slot.expectedExit && !tearingDown) {
            notes.push(
              `worker ${slot.name} (${p.id}) exited on its own (code ${code}, signal ${signal}); last output:\n${p.output().slice(-1500)}`,
            );
            ensureWorkers();
          }
        };
        if (p.proc.exitCode !== null || p.proc.signalCode !== null)
          onExit(p.proc.exitCode, p.proc.signalCode);
        else p.proc.once('exit', onExit);
        if (tearingDown) {
          slot.expectedExit = true;
          p.proc.kill('SIGKILL');
        }
        return;
      } catch (err) {
        // A worker can fail to start when its connections are cut mid-start.
        notes.push(
          `worker start attempt ${attempt} failed: ${(err as Error).message.slice(0, 1500)}`,
        );
        if (attempt >= 5 || tearingDown) throw err;
      }
    }
  } finally {
    starting--;
  }
}

/** Keeps three worker processes (running or frozen), starting replacements in the background. */
function ensureWorkers(): void {
  while (!tearingDown && activeSlots().length + starting < WORKERS) {
    track(startSlot()).catch(() => {});
  }
}

function victim(rng: ReturnType<typeof prng>, minLive: number): Slot | undefined {
  const live = liveSlots();
  return live.length >= minLive ? rng.pick(live) : undefined;
}

/** Cuts every agentq connection to the test database (the API's and the workers', not the test's own). */
async function terminateBackends(): Promise<number> {
  const { rows } = await sql<{ terminated: boolean }>`
    SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND application_name LIKE 'agentq-%' AND application_name <> 'agentq-test'`.execute(tdb.db);
  return rows.filter((r) => r.terminated).length;
}

async function workerRegistered(id: string): Promise<boolean> {
  const { rows } = await sql<{
    n: number;
  }>`SELECT count(*)::int AS n FROM agentq.workers WHERE id = ${id}`.execute(tdb.db);
  return rows[0]!.n > 0;
}

/** Freezes a worker past the dead-after threshold, until its peers have written it off, then resumes it. */
async function zombie(slot: Slot, frozenMs: number): Promise<void> {
  const since = Date.now();
  try {
    await sleep(frozenMs);
    await waitFor(async () => tearingDown || !(await workerRegistered(slot.p.id)), {
      timeoutMs: 45_000,
      intervalMs: 100,
      what: `frozen worker ${slot.name} (${slot.p.id}) to be presumed dead`,
    }).catch((err: unknown) => notes.push(`zombie ${slot.name}: ${(err as Error).message}`));
  } finally {
    if (slot.state === 'stopped') {
      slot.p.proc.kill('SIGCONT');
      slot.state = 'live';
      console.log(`chaos: resumed ${slot.name} after ${elapsed(since)} ms frozen`);
    }
  }
}

/** SIGTERM: the worker must finish or requeue its tasks and exit 0 within the grace period (plus slack). */
async function gracefulStop(slot: Slot): Promise<void> {
  slot.p.proc.kill('SIGTERM');
  const code = await Promise.race([
    slot.p.exited,
    sleep(GRACE_MS + 15_000).then(() => 'timeout' as const),
  ]);
  if (tearingDown) return;
  if (code === 'timeout') {
    findings.push(
      `worker ${slot.name} (${slot.p.id}) did not exit within ${GRACE_MS + 15_000} ms of SIGTERM`,
    );
    slot.p.proc.kill('SIGKILL');
  } else if (code !== 0) {
    findings.push(
      `worker ${slot.name} (${slot.p.id}) exited ${code} after SIGTERM; last output:\n${slot.p.output().slice(-2000)}`,
    );
  }
}

async function countFinished(ids: string[]): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM agentq.tasks
    WHERE id = ANY(${ids}::uuid[]) AND status IN ('completed', 'failed', 'cancelled')`.execute(
    tdb.db,
  );
  return rows[0]!.n;
}

async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  fake = await startFakeOpenAI({ apiKey: 'sk-test-valid' });
  env = {
    DATABASE_URL: tdb.url,
    AGENTQ_DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: 'sk-test-valid',
    OPENAI_BASE_URL: fake.url,
    AGENTQ_HEARTBEAT_MS: String(HEARTBEAT_MS),
    AGENTQ_WORKER_DEAD_AFTER_MS: String(DEAD_AFTER_MS),
    AGENTQ_POLL_INTERVAL_MS: '200',
    AGENTQ_RETRY_BASE_MS: '100',
    AGENTQ_SHUTDOWN_GRACE_MS: String(GRACE_MS),
    AGENTQ_WORKER_CONCURRENCY: String(CONCURRENCY),
  };
  [api] = await Promise.all([
    startApiProcess(env),
    ...Array.from({ length: WORKERS }, () => startSlot()),
  ]);
  client = apiClient(api.url);
}, 120_000);

afterAll(async () => {
  tearingDown = true;
  for (const [t, resolve] of timers) {
    clearTimeout(t);
    resolve();
  }
  timers.clear();
  for (const s of slots) {
    s.expectedExit = true;
    if (s.p.proc.exitCode === null && s.p.proc.signalCode === null) {
      s.p.proc.kill('SIGCONT'); // a frozen process cannot act on anything else
      s.p.proc.kill('SIGKILL');
    }
  }
  await Promise.all(slots.map((s) => s.p.exited));
  await Promise.allSettled([...background]);
  if (api && api.proc.exitCode === null && api.proc.signalCode === null) {
    api.proc.kill('SIGKILL');
    await api.exited;
  }
  await fake?.close();
  await tdb?.drop();
}, 60_000);

describe('chaos', () => {
  it(
    `loses nothing and completes nothing twice while workers are killed, stopped and restarted (${TASKS} tasks)`,
    async () => {
      const rng = prng(SEED);
      console.log(
        `chaos: seed=${SEED} N=${TASKS} fault_budget=${FAULT_MS}ms workers=${WORKERS}x${CONCURRENCY} (repeat with CHAOS_SEED=${SEED})`,
      );
      const started = Date.now();

      // The workload: arithmetic tasks with a known answer and a random model latency.
      const specs = Array.from({ length: TASKS }, (_, i) => {
        const a = rng.int(1, 999);
        const b = rng.int(1, 999);
        return {
          i,
          a,
          b,
          prompt: `[delay=${rng.int(100, 600)}] What is ${a} + ${b}? (chaos ${i})`,
        };
      });
      const expected: Expected[] = await mapLimit(specs, 16, async (s) => {
        const res = await client.submit({ input: { prompt: s.prompt }, max_attempts: 20 });
        if (res.status !== 201)
          throw new Error(`submit ${s.i}: ${res.status} ${JSON.stringify(res.body)}`);
        return { id: res.body.id, index: s.i, answer: `The answer is ${s.a + s.b}.` };
      });
      const ids = expected.map((e) => e.id);

      // The faults: a shuffled bag of every kind, so each kind shows up in every four faults.
      const faultsFrom = Date.now();
      const faultsUntil = faultsFrom + FAULT_MS;
      const faults: Fault[] = [];
      const counts: Record<FaultKind, number> = { kill: 0, term: 0, stop: 0, pgterm: 0 };
      let bag: FaultKind[] = [];
      const record = (kind: FaultKind, target: string, detail = '') => {
        counts[kind]++;
        faults.push({ atMs: elapsed(faultsFrom), kind, target, detail });
      };
      while (
        Date.now() < faultsUntil &&
        (await countFinished(ids)) < Math.ceil(TASKS * MOSTLY_DONE)
      ) {
        await sleep(rng.int(400, 1800));
        if (bag.length === 0) bag = rng.shuffle(FAULT_KINDS);
        const kind = bag.pop()!;
        if (kind === 'pgterm') {
          const n = await terminateBackends();
          record('pgterm', 'db', `${n} backends`);
          continue;
        }
        // A frozen worker needs a live peer to write it off. With no victim yet
        // (replacements still starting), keep this fault for the next tick.
        const slot = victim(rng, kind === 'stop' ? 2 : 1);
        if (!slot) {
          bag.push(kind);
          continue;
        }
        const target = `${slot.name}:${slot.p.id}`;
        if (kind === 'kill') {
          slot.state = 'leaving';
          slot.expectedExit = true;
          slot.p.proc.kill('SIGKILL');
          record('kill', target);
        } else if (kind === 'term') {
          slot.state = 'leaving';
          slot.expectedExit = true;
          track(gracefulStop(slot));
          record('term', target);
        } else {
          slot.state = 'stopped';
          slot.p.proc.kill('SIGSTOP');
          const frozenMs = DEAD_AFTER_MS + rng.int(500, 2500);
          track(zombie(slot, frozenMs));
          record('stop', target, `${frozenMs} ms`);
        }
        ensureWorkers();
      }
      const faultPhaseMs = elapsed(faultsFrom);

      // Let every zombie resume and every SIGTERMed worker exit before judging.
      await Promise.allSettled([...background]);

      let settleError: string | undefined;
      try {
        await waitFor(async () => (await countFinished(ids)) === TASKS, {
          timeoutMs: FINISH_MS,
          intervalMs: 250,
          what: `all ${TASKS} tasks to finish`,
        });
        // graphile-worker deletes a job right after its handler returns: allow for that.
        await waitFor(
          async () => {
            const { rows } = await sql<{ n: number }>`
              SELECT count(*)::int AS n FROM graphile_worker._private_jobs
              WHERE payload->>'task_id' = ANY(${ids}::text[])`.execute(tdb.db);
            return rows[0]!.n === 0;
          },
          {
            timeoutMs: 15_000,
            intervalMs: 250,
            what: 'the finished tasks’ graphile-worker jobs to be gone',
          },
        );
      } catch (err) {
        settleError = (err as Error).message;
      }

      // What a user sees over HTTP.
      const seen: TaskJson[] = await mapLimit(ids, 16, (id) => client.get(id));
      // And what the step log and the queue say.
      const { rows: perTask } = await sql<{
        id: string;
        status: string;
        attempts: number;
        completions: number;
        runs: number;
        recovered: number;
        retries: number;
      }>`
        SELECT t.id, t.status, t.attempts,
          count(*) FILTER (WHERE e.type = 'status' AND e.data->>'to' = 'completed')::int AS completions,
          count(*) FILTER (WHERE e.type = 'status' AND e.data->>'to' = 'running')::int AS runs,
          count(*) FILTER (WHERE e.type = 'recovered')::int AS recovered,
          count(*) FILTER (WHERE e.type = 'retry')::int AS retries
        FROM agentq.tasks t LEFT JOIN agentq.task_events e ON e.task_id = t.id
        WHERE t.id = ANY(${ids}::uuid[])
        GROUP BY t.id`.execute(tdb.db);
      const { rows: jobsLeft } = await sql<{
        task_id: string;
        id: number;
        locked_by: string | null;
        attempts: number;
        last_error: string | null;
      }>`
        SELECT j.payload->>'task_id' AS task_id, j.id, j.locked_by, j.attempts, j.last_error
        FROM graphile_worker._private_jobs j JOIN agentq.tasks t ON t.id::text = j.payload->>'task_id'
        WHERE t.id = ANY(${ids}::uuid[]) AND t.status IN ('completed', 'failed', 'cancelled')`.execute(
        tdb.db,
      );
      const { rows: running } = await sql<{ id: string; worker_id: string | null }>`
        SELECT id, worker_id FROM agentq.tasks WHERE id = ANY(${ids}::uuid[]) AND status = 'running'`.execute(
        tdb.db,
      );

      const byId = new Map(perTask.map((r) => [r.id, r]));
      const lost = seen.filter((t) => t.status !== 'completed');
      const twice = perTask.filter((r) => r.completions > 1);
      const wrong = expected.filter(
        (e, i) => seen[i]!.status === 'completed' && seen[i]!.result?.answer !== e.answer,
      );
      const unexplained = perTask.filter((r) => r.runs > 1 && r.recovered + r.retries === 0);
      const sum = (f: (r: (typeof perTask)[number]) => number) =>
        perTask.reduce((n, r) => n + f(r), 0);
      const totalFaults = faults.length;
      // Errors the workers logged along the way (worth a look even when every task is fine).
      const errorLogs = new Map<string, number>();
      for (const sl of slots) {
        for (const l of sl.p.logs()) {
          if (typeof l.level === 'number' && l.level >= 50) {
            const err = l.err as { message?: unknown } | string | undefined;
            const key =
              `${String(l.msg)}${err ? `: ${typeof err === 'string' ? err : String(err.message)}` : ''}`
                .replace(/\d+ ?ms\b/g, 'N ms')
                .slice(0, 200);
            errorLogs.set(key, (errorLogs.get(key) ?? 0) + 1);
          }
        }
      }
      for (const [msg, n] of errorLogs) notes.push(`workers logged ${n}x error: ${msg}`);
      const { rows: orphans } = await sql<{ id: string }>`
        SELECT t.id FROM agentq.tasks t
        WHERE t.id = ANY(${ids}::uuid[]) AND t.status = 'queued'
          AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs j WHERE j.payload->>'task_id' = t.id::text)`.execute(
        tdb.db,
      );
      if (orphans.length > 0) {
        const some = orphans
          .slice(0, 20)
          .map((o) => o.id)
          .join(' ');
        console.log(
          `chaos: ${orphans.length} task(s) queued with no graphile-worker job left to run them: ${some}`,
        );
      }
      const line =
        `chaos: N=${TASKS} seed=${SEED} faults=${totalFaults} (kill=${counts.kill} term=${counts.term} stop=${counts.stop} pgterm=${counts.pgterm})` +
        ` lost=${lost.length} completed_twice=${twice.length} recovered_events=${sum((r) => r.recovered)} retries=${sum((r) => r.retries)}` +
        ` max_attempts_used=${Math.max(0, ...perTask.map((r) => r.attempts))} elapsed=${(elapsed(started) / 1000).toFixed(1)}s`;
      console.log(line);
      console.log(
        `chaos: fault phase ${(faultPhaseMs / 1000).toFixed(1)}s; workers started=${workerSeq}; ` +
          `tasks run more than once=${perTask.filter((r) => r.runs > 1).length}; findings=${findings.length} notes=${notes.length}`,
      );

      for (const n of notes) console.log(`chaos: note: ${n.split('\n')[0]}`);

      const bad = new Set([
        ...lost.map((t) => t.id),
        ...twice.map((r) => r.id),
        ...wrong.map((e) => e.id),
        ...unexplained.map((r) => r.id),
        ...running.map((r) => r.id),
        ...jobsLeft.map((j) => j.task_id),
      ]);
      if (bad.size > 0 || settleError || findings.length > 0) {
        const dir = path.join(os.tmpdir(), `agentq-chaos-${SEED}-${process.pid}`);
        mkdirSync(dir, { recursive: true });
        const evidence: string[] = [line, `settle: ${settleError ?? 'ok'}`, '', 'faults:'];
        for (const f of faults) evidence.push(`  +${f.atMs}ms ${f.kind} ${f.target} ${f.detail}`);
        evidence.push(
          '',
          'findings:',
          ...findings.map((f) => `  ${f}`),
          '',
          'notes:',
          ...notes.map((f) => `  ${f}`),
          '',
        );
        for (const id of [...bad].slice(0, 20)) {
          const { rows: events } = await sql<{
            seq: number;
            type: string;
            data: unknown;
            created_at: Date;
          }>`
            SELECT seq, type, data, created_at FROM agentq.task_events WHERE task_id = ${id} ORDER BY seq`.execute(
            tdb.db,
          );
          const { rows: jobs } = await sql<Record<string, unknown>>`
            SELECT id, run_at, locked_by, locked_at, attempts, last_error FROM graphile_worker._private_jobs
            WHERE payload->>'task_id' = ${id}`.execute(tdb.db);
          const { rows: row } = await sql<Record<string, unknown>>`
            SELECT status, attempts, job_id, worker_id, run_at, updated_at FROM agentq.tasks WHERE id = ${id}`.execute(
            tdb.db,
          );
          const e = expected.find((x) => x.id === id);
          evidence.push(
            `task ${id} (chaos ${e?.index}) expected "${e?.answer}" counts=${JSON.stringify(byId.get(id))}`,
          );
          evidence.push(`  row: ${JSON.stringify(row[0])}`);
          evidence.push(`  jobs: ${JSON.stringify(jobs)}`);
          evidence.push(`  http: ${JSON.stringify(seen[ids.indexOf(id)])}`);
          for (const ev of events)
            evidence.push(
              `  ${ev.created_at.toISOString()} #${ev.seq} ${ev.type} ${JSON.stringify(ev.data)}`,
            );
          for (const s of slots) {
            for (const l of s.p
              .output()
              .split('\n')
              .filter((x) => x.includes(id)))
              evidence.push(`  [${s.name}] ${l}`);
          }
        }
        for (const s of slots) writeFileSync(path.join(dir, `${s.name}.log`), s.p.output());
        writeFileSync(path.join(dir, 'api.log'), api.output());
        writeFileSync(path.join(dir, 'evidence.txt'), evidence.join('\n'));
        console.log(`chaos: evidence in ${dir}\n${evidence.slice(0, 200).join('\n')}`);
      }

      expect(totalFaults, 'faults injected').toBeGreaterThan(0);
      expect(settleError, 'every task finished and its job was removed').toBeUndefined();
      expect(
        lost.map((t) => [t.id, t.status, t.error?.code]),
        'lost tasks',
      ).toEqual([]);
      expect(
        twice.map((r) => r.id),
        'tasks completed twice',
      ).toEqual([]);
      expect(
        wrong.map((e) => e.id),
        'wrong answers',
      ).toEqual([]);
      expect(running, 'tasks left running').toEqual([]);
      expect(jobsLeft, 'graphile-worker jobs left for finished tasks').toEqual([]);
      expect(
        unexplained.map((r) => r.id),
        'tasks run more than once without a recovered/retry event',
      ).toEqual([]);
      expect(findings, 'worker processes misbehaving under the faults').toEqual([]);
    },
    FAULT_MS + FINISH_MS + 120_000,
  );
});
