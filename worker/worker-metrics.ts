/**
 * The worker's metrics, registered on the process's registry
 * (shared/metrics/metrics-registry.ts). Counted where the facts are: the
 * step-log events an attempt records (llm_call, tool_result: latency, tokens,
 * outcome) and the outcome written for it. Labels are bounded: provider,
 * model, tool (a name the task did not allow counts as `unknown`, since the
 * model makes names up), status and error codes; never a task id.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { NO_ERROR_CODE, type MetricsRegistry } from '../shared/metrics/metrics-registry.ts';
import {
  TERMINAL_STATUSES,
  type AgentConfig,
  type EventType,
  type TaskStatus,
} from '../shared/db/schema.ts';

export interface WorkerMetrics {
  base: MetricsRegistry;
  /** An event an attempt recorded in its step log. */
  observeEvent(type: EventType, data: Record<string, unknown>, config: AgentConfig): void;
  /** An attempt's outcome was written: the status it left the task in, after `seconds` on this worker. */
  attemptWritten(status: string, seconds: number): void;
  /** An attempt was claimed `seconds` after its task became due (run_at). */
  attemptClaimed(waitSeconds: number): void;
  /** A status this worker wrote; counted in agentq_tasks_finished_total when it is terminal. */
  statusWritten(status: string, errorCode: string | undefined): void;
}

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];
const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export function registerWorkerMetrics(
  base: MetricsRegistry,
  worker: {
    /** The pool id, once known ('' before: no sample then). */
    workerId: () => string;
    concurrency: number;
    running: () => number;
  },
): WorkerMetrics {
  const registers = [base.registry];
  new Gauge({
    name: 'agentq_worker_running_tasks',
    help: 'Attempts this worker is running now.',
    labelNames: ['worker_id'],
    registers,
    collect() {
      this.reset();
      const id = worker.workerId();
      if (id) this.set({ worker_id: id }, worker.running());
    },
  });
  new Gauge({
    name: 'agentq_worker_concurrency',
    help: 'Attempts this worker runs at most at once (AGENTQ_WORKER_CONCURRENCY).',
    labelNames: ['worker_id'],
    registers,
    collect() {
      this.reset();
      const id = worker.workerId();
      if (id) this.set({ worker_id: id }, worker.concurrency);
    },
  });
  const llmDuration = new Histogram({
    name: 'agentq_llm_call_duration_seconds',
    help: 'Model call latency, by provider, model and outcome (ok or the error code).',
    labelNames: ['provider', 'model', 'outcome'],
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const llmTokens = new Counter({
    name: 'agentq_llm_tokens_total',
    help: 'Tokens the providers reported, by provider, model and token_type (input, output).',
    labelNames: ['provider', 'model', 'token_type'],
    registers,
  });
  const toolCalls = new Counter({
    name: 'agentq_tool_calls_total',
    help: 'Tool calls answered, by tool and outcome (ok, error); tools the task lacks count as unknown.',
    labelNames: ['tool', 'outcome'],
    registers,
  });
  const taskDuration = new Histogram({
    name: 'agentq_task_duration_seconds',
    help: 'Run time of each attempt on its worker, by the status it left the task in (queued: retried).',
    labelNames: ['status'],
    buckets: DURATION_BUCKETS,
    registers,
  });
  const queueWait = new Histogram({
    name: 'agentq_task_queue_wait_seconds',
    help: 'Time from a task becoming due (run_at) to an attempt being claimed.',
    buckets: WAIT_BUCKETS,
    registers,
  });

  return {
    base,
    observeEvent(type, data, config) {
      if (type === 'llm_call') {
        const provider = String(data.provider ?? config.provider);
        const model = String(data.model ?? config.model);
        const error = data.error as { code?: unknown } | undefined;
        const outcome = error ? String(error.code ?? 'internal_error') : 'ok';
        if (typeof data.latency_ms === 'number')
          llmDuration.observe({ provider, model, outcome }, data.latency_ms / 1000);
        for (const [tokenType, n] of [
          ['input', data.input_tokens],
          ['output', data.output_tokens],
        ] as const) {
          if (typeof n === 'number' && n > 0)
            llmTokens.inc({ provider, model, token_type: tokenType }, n);
        }
      } else if (type === 'tool_result') {
        const name = String(data.name);
        toolCalls.inc({
          tool: config.tools.includes(name) ? name : 'unknown',
          outcome: 'error' in data ? 'error' : 'ok',
        });
      }
    },
    attemptWritten(status, seconds) {
      taskDuration.observe({ status }, seconds);
    },
    attemptClaimed(waitSeconds) {
      queueWait.observe(Math.max(0, waitSeconds));
    },
    statusWritten(status, errorCode) {
      if (!TERMINAL_STATUSES.includes(status as TaskStatus)) return;
      const code = status === 'completed' ? NO_ERROR_CODE : (errorCode ?? status);
      base.tasksFinished.inc({ status, error_code: code });
    },
  };
}
