/**
 * One task: its status, answer, error, config and usage, and its step log
 * streamed live from /v1/tasks/:id/events until the task finishes. The
 * actions (cancel, run again) show only when they apply and the token may write.
 */
import { api, followStream } from './api-client.js';
import { $, coalesced, flash, folded, h, isTerminal, statusBadge, timeEl } from './dom.js';
import { timelineItem } from './timeline.js';

function row(term, ...value) {
  return [h('dt', {}, term), h('dd', {}, ...value)];
}

function details(task) {
  const c = task.config ?? {};
  const u = task.usage ?? {};
  return [
    row('Type', task.type),
    row('Provider', c.provider ?? '—'),
    row('Model', c.model ?? '—'),
    row('Tools', (c.tools ?? []).join(', ') || 'none'),
    row('Max steps', String(c.max_steps ?? '—')),
    c.temperature !== undefined && c.temperature !== null
      ? row('Temperature', String(c.temperature))
      : [],
    c.system_prompt ? row('System prompt', folded(c.system_prompt)) : [],
    row('Attempts', `${task.attempts} of ${task.max_attempts}`),
    row(
      'Usage',
      `${u.input_tokens ?? 0} in / ${u.output_tokens ?? 0} out tokens · ` +
        `${u.llm_calls ?? 0} LLM call${u.llm_calls === 1 ? '' : 's'} · ` +
        `${u.tool_calls ?? 0} tool call${u.tool_calls === 1 ? '' : 's'}`,
    ),
    row('Priority', String(task.priority)),
    row('Timeout', `${task.timeout_s} s`),
    row('Created', timeEl(task.created_at)),
    row('Run at', timeEl(task.run_at)),
    row('Started', timeEl(task.started_at)),
    row('Finished', timeEl(task.finished_at)),
    task.cancel_requested_at ? row('Cancel requested', timeEl(task.cancel_requested_at)) : [],
    task.metadata && Object.keys(task.metadata).length > 0
      ? row('Metadata', folded(task.metadata))
      : [],
    task.idempotency_key ? row('Idempotency key', h('code', {}, task.idempotency_key)) : [],
    task.webhook_url ? row('Webhook', h('code', {}, task.webhook_url)) : [],
  ].flat();
}

export async function startTaskView({ canWrite }) {
  const id = $('#task').dataset.taskId;
  const cancel = $('#task-cancel');
  const rerun = $('#task-rerun');
  const stepsLive = $('#steps-live');
  const timeline = $('#timeline');
  let task;

  function render() {
    $('#task-status').replaceWith(Object.assign(statusBadge(task.status), { id: 'task-status' }));
    $('#task-prompt').textContent = String(task.input?.prompt ?? '');
    const answer = task.result?.answer;
    $('#answer-section').hidden = answer === undefined;
    $('#task-answer').textContent = answer ?? '';
    const error = $('#task-error');
    error.hidden = !task.error;
    if (task.error) {
      error.replaceChildren(
        h('strong', {}, task.status === 'queued' ? 'Last attempt failed: ' : 'Error: '),
        h('code', {}, task.error.code),
        ` ${task.error.message}`,
      );
    }
    $('#task-details').replaceChildren(...details(task));
    if (canWrite) {
      const active = !isTerminal(task.status);
      cancel.hidden = !active;
      cancel.disabled = task.cancel_requested_at !== null && task.status === 'running';
      cancel.textContent = cancel.disabled ? 'Cancelling…' : 'Cancel task';
      rerun.hidden = active;
    }
  }

  const refresh = coalesced(async () => {
    task = await api(`/v1/tasks/${id}`);
    render();
  });

  try {
    await refresh();
  } catch (err) {
    if (err.status === 401) return;
    $('#task').replaceChildren(
      h('h1', {}, 'Task not found'),
      h('p', {}, err.status === 404 ? `There is no task ${id}.` : err.message),
      h('p', {}, h('a', { href: '/' }, 'Back to the task list')),
    );
    return;
  }

  if (canWrite) {
    cancel.addEventListener('click', async () => {
      try {
        await api(`/v1/tasks/${id}/cancel`, { method: 'POST' });
        flash('Cancellation requested.');
      } catch (err) {
        flash(`Could not cancel: ${err.message}`, 'error');
      }
      await refresh().catch(() => {});
    });
    rerun.addEventListener('click', async () => {
      try {
        const again = await api(`/v1/tasks/${id}/rerun`, { method: 'POST' });
        location.assign(`/tasks/${again.id}`);
      } catch (err) {
        flash(`Could not run it again: ${err.message}`, 'error');
      }
    });
  }

  let lastSeq = 0;
  const controller = new AbortController();
  stepsLive.textContent = 'connecting…';
  await followStream(`/v1/tasks/${id}/events`, {
    signal: controller.signal,
    onOpen: () => (stepsLive.textContent = isTerminal(task.status) ? '' : 'live'),
    onDrop: () => (stepsLive.textContent = 'reconnecting…'),
    onError: (err) => (stepsLive.textContent = `not live: ${err.message}`),
    onEvent: ({ data }) => {
      const event = JSON.parse(data);
      if (event.seq <= lastSeq) return;
      lastSeq = event.seq;
      timeline.append(timelineItem(event));
      void refresh().catch(() => {});
    },
    // The server ends the stream after the terminal status (or at its lifetime: then resume).
    onEnd: async () => {
      await refresh().catch(() => {});
      if (!isTerminal(task.status)) return undefined;
      stepsLive.textContent = '';
      return 'stop';
    },
  });
}
