/** Tasks for people: the detail of one (`get`), a row per task (`list`), and the closing summary. */
import type { Task } from './api-client.ts';
import { oneLine } from './step-printer.ts';
import type { Colors } from './terminal.ts';

export function statusColor(c: Colors, status: string): (s: string) => string {
  switch (status) {
    case 'completed':
      return c.green;
    case 'failed':
      return c.red;
    case 'cancelled':
      return c.yellow;
    case 'running':
      return c.cyan;
    default:
      return c.dim;
  }
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "2 LLM calls · 1 tool call · 120 tokens", and how long it ran when finished. */
export function usageLine(task: Task): string {
  const u = task.usage;
  const parts = [
    plural(u.llm_calls, 'LLM call'),
    plural(u.tool_calls, 'tool call'),
    `${u.input_tokens} in / ${u.output_tokens} out tokens`,
  ];
  if (task.started_at && task.finished_at) {
    const ms = Date.parse(task.finished_at) - Date.parse(task.started_at);
    parts.unshift(`ran ${(ms / 1000).toFixed(1)} s`);
  }
  return parts.join(' · ');
}

export function modelLine(task: Task): string {
  const { provider = '?', model = '?', tools = [] } = task.config;
  return `${provider} / ${model}${tools.length > 0 ? ` · tools: ${tools.join(', ')}` : ''}`;
}

export function taskDetail(task: Task, c: Colors): string[] {
  const row = (label: string, value: string) => `${c.dim(label.padEnd(9))} ${value}`;
  const lines = [
    row('id', task.id),
    row(
      'status',
      `${statusColor(c, task.status)(task.status)} · attempt ${task.attempts} of ${task.max_attempts}` +
        (task.cancel_requested_at && task.status === 'running' ? ' · cancel requested' : ''),
    ),
    row('model', modelLine(task)),
    row('prompt', oneLine(task.input.prompt, 500)),
  ];
  if (task.result) lines.push(row('answer', c.bold(task.result.answer)));
  if (task.error) lines.push(row('error', c.red(`${task.error.code}: ${task.error.message}`)));
  lines.push(row('usage', usageLine(task)));
  if (Object.keys(task.metadata ?? {}).length > 0)
    lines.push(row('metadata', oneLine(task.metadata)));
  lines.push(row('created', task.created_at));
  if (task.finished_at) lines.push(row('finished', task.finished_at));
  return lines;
}

export const LIST_HEADER = [
  'ID'.padEnd(36),
  'STATUS'.padEnd(9),
  'CREATED'.padEnd(19),
  'PROMPT',
].join('  ');

export function taskRow(task: Task, c: Colors): string {
  const created = task.created_at.slice(0, 19).replace('T', ' ');
  return [
    task.id,
    statusColor(c, task.status)(task.status.padEnd(9)),
    created,
    oneLine(task.input.prompt, 60),
  ].join('  ');
}
