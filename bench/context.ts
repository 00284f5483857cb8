/**
 * What the phases added for issue 8 (end-to-end, read load, realistic load,
 * history, CPU profiles) get from run.ts, and the environment they read.
 * They live in their own files so run.ts only calls runExtendedPhases().
 */
import type { Row } from './report.ts';
import type { BenchPostgres } from './postgres.ts';

export interface PhaseContext {
  pg: BenchPostgres;
  tasks: number;
  /** Worker concurrency, the same on both sides. */
  concurrency: number;
  poolMax: number;
  phaseTimeoutMs: number;
  donePollMs: number;
  onCleanup(what: string, run: () => Promise<void>): () => Promise<void>;
  log(line: string): void;
}

export interface PhaseOutput {
  rows: Row[];
  notes: string[];
  details: Record<string, unknown>;
}

export function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, not "${text}"`);
  }
  return value;
}

/** A comma-separated list of whole numbers, e.g. BENCH_HISTORY=0,100000,1000000. */
export function intListFromEnv(name: string, fallback: number[], max: number): number[] {
  const text = process.env[name];
  if (text === undefined || text.trim() === '') return fallback;
  const parts = text.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p) || Number(p) > max)) {
    throw new Error(
      `${name} must be whole numbers from 0 to ${max} separated by commas, not "${text}"`,
    );
  }
  return [...new Set(parts.map(Number))].sort((a, b) => a - b);
}

/** Parameters of the extended phases, read once at start so a typo fails before any work. */
export function readExtendedParams() {
  return {
    /** Concurrent HTTP submitters / add_job callers in the end-to-end phase. */
    E2E_CLIENTS: intFromEnv('BENCH_E2E_CLIENTS', 32, 1, 500),
    /** Concurrent GET clients and the timed seconds of the read-load phase. */
    READ_CLIENTS: intFromEnv('BENCH_READ_CLIENTS', 32, 1, 500),
    READ_SECONDS: intFromEnv('BENCH_READ_SECONDS', 5, 1, 600),
    /** Worker concurrency and model answer time of the realistic phase. */
    REALISTIC_CONCURRENCY: intFromEnv('BENCH_REALISTIC_CONCURRENCY', 50, 1, 1000),
    MODEL_MS: intFromEnv('BENCH_MODEL_MS', 40, 1, 10_000),
    /** Finished tasks present for each history drain; 0 is the empty-table figure. */
    HISTORY: intListFromEnv('BENCH_HISTORY', [0, 100_000], 10_000_000),
    /** Start the end-to-end phase's processes with --cpu-prof. */
    CPU_PROF: process.env.BENCH_CPU_PROF === '1',
    /** Phases to run (default all but scale): e2e,read,realistic,history,scale. */
    PHASES: phasesFromEnv(),
    /** Worker and API process counts of the scale phase. */
    SCALE_WORKERS: intListFromEnv('BENCH_SCALE_WORKERS', [1, 2, 3], 16),
    SCALE_APIS: intListFromEnv('BENCH_SCALE_APIS', [1, 2], 16),
  };
}

const PHASES = ['e2e', 'read', 'realistic', 'history', 'scale'];
/** Run when BENCH_PHASES is unset; scale (process counts) is asked for by name, it takes minutes. */
const DEFAULT_PHASES = ['e2e', 'read', 'realistic', 'history'];

function phasesFromEnv(): string[] {
  const text = process.env.BENCH_PHASES ?? DEFAULT_PHASES.join(',');
  const phases = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const unknown = phases.filter((p) => !PHASES.includes(p));
  if (unknown.length > 0) {
    throw new Error(`BENCH_PHASES takes some of ${PHASES.join(',')}, not "${unknown.join(',')}"`);
  }
  return phases;
}

export type ExtendedParams = ReturnType<typeof readExtendedParams>;
