/**
 * One step-log event as a timeline entry: LLM calls with provider, model,
 * latency and tokens; tool calls with their arguments and results (long
 * values folded); retries and recoveries with their reasons.
 */
import { duration, folded, h, pretty, statusBadge, timeEl } from './dom.js';

const tokens = (d) =>
  d.input_tokens === undefined
    ? ''
    : `${d.input_tokens} in / ${d.output_tokens} out tokens${d.usage_reported === false ? ' (not reported)' : ''}`;

const errorText = (e) =>
  e === undefined || e === null
    ? undefined
    : typeof e === 'string'
      ? e
      : `${e.code ?? 'error'}: ${e.message ?? pretty(e)}`;

/** [title, ...body] for each event type; unknown types show their data. */
function describe(type, d) {
  switch (type) {
    case 'status':
      return [
        h('span', {}, d.from ? `${d.from} → ` : 'created as ', statusBadge(d.to)),
        d.attempt ? h('span', { class: 'muted' }, ` attempt ${d.attempt}`) : '',
        d.worker_id ? h('div', { class: 'muted small' }, `worker ${d.worker_id}`) : '',
        d.error ? h('div', { class: 'error-text' }, errorText(d.error)) : '',
      ];
    case 'llm_call':
      return [
        h('strong', {}, 'LLM call'),
        ` ${d.provider ?? ''} · ${d.model ?? ''} · ${duration(d.latency_ms)}`,
        d.error
          ? h('div', { class: 'error-text' }, errorText(d.error))
          : h(
              'div',
              { class: 'muted small' },
              [
                tokens(d),
                d.finish_reason && `finish: ${d.finish_reason}`,
                d.tool_calls ? `${d.tool_calls} tool call${d.tool_calls === 1 ? '' : 's'}` : '',
              ]
                .filter(Boolean)
                .join(' · '),
            ),
        d.note ? h('div', { class: 'muted small' }, d.note) : '',
      ];
    case 'message':
      return [h('strong', {}, 'Model says'), h('p', { class: 'message' }, d.text ?? '')];
    case 'tool_call':
      return [
        h('strong', {}, 'Tool call '),
        h('code', {}, d.name ?? '?'),
        folded(d.arguments ?? {}, 'arguments'),
      ];
    case 'tool_result':
      return [
        h('strong', {}, 'Tool result '),
        h('code', {}, d.name ?? '?'),
        d.duration_ms === undefined
          ? ''
          : h('span', { class: 'muted' }, ` ${duration(d.duration_ms)}`),
        'error' in d
          ? h('div', { class: 'error-text' }, folded(d.error, 'error'))
          : folded(d.output, 'output'),
      ];
    case 'answer':
      return [h('strong', {}, 'Answer'), h('p', { class: 'message' }, d.text ?? '')];
    case 'retry':
      return [
        h('strong', {}, 'Retry'),
        ` after attempt ${d.attempt ?? '?'}`,
        d.reason ? ` — ${d.reason}` : '',
        d.error ? h('div', { class: 'error-text' }, errorText(d.error)) : '',
        h(
          'div',
          { class: 'muted small' },
          `waits ${duration(d.delay_ms)}`,
          d.next_run_at ? ` (until ${new Date(d.next_run_at).toLocaleTimeString()})` : '',
          d.counts_as_attempt === false ? ' · does not count as an attempt' : '',
        ),
      ];
    case 'recovered':
      return [
        h('strong', {}, 'Recovered'),
        ` ${d.reason ?? ''}`,
        h(
          'div',
          { class: 'muted small' },
          `previous worker ${d.previous_worker ?? '?'} · attempt ${d.attempt ?? '?'} · now ${d.outcome ?? '?'}`,
        ),
      ];
    case 'cancel_requested':
      return [h('strong', {}, 'Cancellation requested')];
    case 'error':
      return [h('strong', {}, 'Error'), h('div', { class: 'error-text' }, errorText(d))];
    default:
      return [h('strong', {}, type), folded(d)];
  }
}

export function timelineItem(event) {
  return h(
    'li',
    { class: `step step-${event.type}`, 'data-seq': event.seq, 'data-type': event.type },
    h('span', { class: 'step-time' }, timeEl(event.created_at)),
    h('div', { class: 'step-body' }, describe(event.type, event.data ?? {})),
  );
}
