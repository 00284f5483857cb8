/**
 * Workers and queue: the live workers (what they run, when last seen) and the
 * queue's depth and oldest queued age, re-read when a `stats` event arrives.
 * Heartbeats make no events, so "last seen" is also re-read every 15 s.
 */
import { api, followStream } from './api-client.js';
import { $, ago, coalesced, duration, h, timeEl } from './dom.js';

const HEARTBEAT_REFRESH_MS = 15_000;

function renderQueue(stats) {
  const c = stats.counts ?? {};
  const item = (term, value) => [h('dt', {}, term), h('dd', {}, value)];
  $('#queue').replaceChildren(
    ...item('Queued', String(c.queued ?? 0)),
    ...item('Due now', String(stats.queued_due ?? 0)),
    ...item(
      'Oldest queued',
      stats.oldest_queued_age_s === null || stats.oldest_queued_age_s === undefined
        ? '—'
        : duration(stats.oldest_queued_age_s * 1000),
    ),
    ...item('Running', String(c.running ?? 0)),
    ...item('Live workers', String(stats.workers ?? '—')),
    ...item('Completed', String(c.completed ?? 0)),
    ...item('Failed', String(c.failed ?? 0)),
    ...item('Cancelled', String(c.cancelled ?? 0)),
  );
}

function workerRow(w) {
  const ids = w.running_task_ids ?? [];
  return h(
    'tr',
    { 'data-id': w.id, class: w.alive ? '' : 'gone' },
    h(
      'td',
      {},
      h('code', {}, w.id),
      h('div', { class: 'small' }, w.alive ? 'alive' : 'not seen lately'),
    ),
    h('td', {}, w.hostname ?? '—', h('div', { class: 'muted small' }, `pid ${w.pid ?? '—'}`)),
    h('td', {}, w.version ?? '—'),
    h(
      'td',
      {},
      `${w.running ?? ids.length} of ${w.concurrency ?? '?'}`,
      ids.length > 0 &&
        h(
          'ul',
          { class: 'plain small' },
          ids.map((id) => h('li', {}, h('a', { href: `/tasks/${id}` }, id))),
        ),
    ),
    h('td', {}, timeEl(w.started_at)),
    h('td', {}, w.last_seen_at ? h('span', { title: w.last_seen_at }, ago(w.last_seen_at)) : '—'),
  );
}

export async function startWorkersView() {
  const liveState = $('#live-state');
  const loadWorkers = coalesced(async () => {
    const { data } = await api('/v1/workers');
    $('#workers-table tbody').replaceChildren(...data.map(workerRow));
    $('#workers-empty').hidden = data.length > 0;
  });
  const load = async () => {
    try {
      const [stats] = await Promise.all([api('/v1/stats'), loadWorkers()]);
      renderQueue(stats);
    } catch (err) {
      if (err.status !== 401) liveState.textContent = `could not load: ${err.message}`;
    }
  };
  await load();
  setInterval(() => void loadWorkers().catch(() => {}), HEARTBEAT_REFRESH_MS);
  await followStream('/v1/changes', {
    signal: new AbortController().signal,
    onOpen: () => (liveState.textContent = 'live'),
    onDrop: () => (liveState.textContent = 'reconnecting…'),
    onError: (err) => (liveState.textContent = `not live: ${err.message}`),
    onEvent: ({ event, data }) => {
      if (event === 'stats') {
        renderQueue(JSON.parse(data));
        void loadWorkers().catch(() => {});
      } else if (event === 'resync') void load();
    },
  });
}
