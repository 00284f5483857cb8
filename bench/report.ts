/**
 * Turns the measurements into the printed table and the JSON file. Every row
 * is raw graphile-worker beside agentq and the ratio agentq/raw; whether a
 * bigger ratio is good depends on the row (`better`).
 */
import { writeFile } from 'node:fs/promises';

export interface Row {
  section: string;
  metric: string;
  unit: 'tasks/s' | 'requests/s' | 'commits/s' | 'ms' | 'MB' | 'per task';
  raw: number;
  agentq: number;
  /** agentq / raw. */
  ratio: number;
  better: 'higher' | 'lower' | 'info';
}

export interface BenchResults {
  generated_at: string;
  machine: {
    cpus: number;
    cpu_model: string;
    platform: string;
    node: string;
    postgres: string;
    postgres_source: string;
    graphile_worker: string;
    /** 1-minute load averages when the run started and ended: other work on the machine skews every number. */
    load_average: { start: number; end: number };
  };
  parameters: {
    tasks: number;
    concurrency: number;
    enqueue_clients: number;
    /** Connections per pool, the same on both sides. */
    pool_max: number;
    latency_samples: number;
    enqueue_warmup: number;
    latency_warmup: number;
  };
  rows: Row[];
  details: Record<string, unknown>;
  notes: string[];
}

/**
 * One table row. `minRaw`: below it the raw value is within measurement noise
 * (a phase that grew RSS by 0.01 MB), so no ratio is given (n/a; null in JSON).
 */
export function row(
  section: string,
  metric: string,
  unit: Row['unit'],
  better: Row['better'],
  raw: number,
  agentq: number,
  minRaw = 0,
): Row {
  const ratio = raw > minRaw ? agentq / raw : Number.NaN;
  return { section, metric, unit, raw, agentq, ratio, better };
}

const group = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function formatValue(value: number, unit: Row['unit']): string {
  if (!Number.isFinite(value)) return 'n/a';
  switch (unit) {
    case 'tasks/s':
    case 'requests/s':
    case 'commits/s':
      return `${group(value)}/s`;
    case 'ms':
      return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
    case 'MB':
      return `${value.toFixed(1)} MB`;
    case 'per task':
      return value.toFixed(1);
  }
}

const SECTION_HINT: Record<Row['better'], string> = {
  higher: 'higher is better; ratio < 1 means agentq is slower',
  lower: 'lower is better; ratio > 1 means agentq takes more',
  info: 'what each task costs the database',
};

export function renderTable(results: BenchResults): string {
  const { machine: m, parameters: p } = results;
  const lines: string[] = [
    `agentq beside raw graphile-worker ${m.graphile_worker}: same run, same Postgres`,
    `machine    ${m.cpus} CPUs (${m.cpu_model}), ${m.platform}, Node ${m.node}, PostgreSQL ${m.postgres} (${m.postgres_source})`,
    `           load average ${m.load_average.start.toFixed(2)} at start, ${m.load_average.end.toFixed(2)} at end`,
    `workload   ${p.tasks} tasks per system and phase, worker concurrency ${p.concurrency}, ` +
      `${p.enqueue_clients} enqueue clients, ${p.pool_max} connections per pool,`,
    `           ${p.latency_samples} sequential latency samples; untimed warm-ups: ` +
      `${p.enqueue_warmup} enqueues, ${p.latency_warmup} latency samples`,
    '',
  ];
  const labelWidth = Math.max(...results.rows.map((r) => r.metric.length)) + 2;
  const cell = 13;
  lines.push(
    `${''.padEnd(labelWidth)}${'raw gw'.padStart(cell)}${'agentq'.padStart(cell)}${'agentq/raw'.padStart(cell)}`,
  );
  let section = '';
  for (const r of results.rows) {
    if (r.section !== section) {
      section = r.section;
      lines.push(`${section} (${SECTION_HINT[r.better]})`);
    }
    const ratio = Number.isFinite(r.ratio)
      ? `${r.ratio < 0.1 ? r.ratio.toFixed(3) : r.ratio.toFixed(2)}×`
      : 'n/a';
    lines.push(
      `  ${r.metric.padEnd(labelWidth - 2)}${formatValue(r.raw, r.unit).padStart(cell)}` +
        `${formatValue(r.agentq, r.unit).padStart(cell)}${ratio.padStart(cell)}`,
    );
  }
  lines.push('', ...results.notes.map((n) => `• ${n}`));
  return lines.join('\n');
}

export async function writeResults(path: string, results: BenchResults): Promise<void> {
  await writeFile(path, `${JSON.stringify(results, null, 2)}\n`);
}
