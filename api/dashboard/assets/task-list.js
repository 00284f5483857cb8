/**
 * The task list: newest first, filtered by the form (mirrored in the URL),
 * paged with the API's cursor, and kept live by /v1/changes (new tasks appear,
 * statuses change, counts follow) unless paused.
 */
import { api, followStream, queryOf } from './api-client.js';
import { $, $$, cut, duration, flash, h, statusBadge, timeEl } from './dom.js';
import { startSubmitForm } from './submit-form.js';

const PAGE_SIZE = 50;
const PROMPT_CHARS = 280;
const FIELDS = ['q', 'type', 'provider', 'model', 'created_after', 'created_before'];

/** The filter as the form shows it (datetime-local values are local times). */
function filterFromForm(form) {
  const data = new FormData(form);
  const filter = { status: data.getAll('status') };
  for (const name of FIELDS) filter[name] = String(data.get(name) ?? '').trim();
  return filter;
}

function filterToForm(form, filter) {
  for (const box of $$('input[name=status]', form)) box.checked = filter.status.includes(box.value);
  for (const name of FIELDS) form.elements[name].value = filter[name] ?? '';
}

function filterFromUrl() {
  const params = new URLSearchParams(location.search);
  const filter = { status: (params.get('status') ?? '').split(',').filter(Boolean) };
  for (const name of FIELDS) filter[name] = params.get(name) ?? '';
  return filter;
}

const isoOf = (local) => (local ? new Date(local).toISOString() : undefined);

/** The filter as the API reads it (list, changes and bulk cancel). */
function apiFilter(filter) {
  return {
    ...filter,
    created_after: isoOf(filter.created_after),
    created_before: isoOf(filter.created_before),
  };
}

function promptOf(task) {
  const prompt = String(task.input?.prompt ?? '');
  const wasCut = task.input_truncated === true || prompt.length > PROMPT_CHARS;
  return { text: cut(prompt, PROMPT_CHARS), wasCut };
}

function took(task) {
  if (!task.started_at) return '—';
  const end = task.finished_at ? new Date(task.finished_at) : new Date();
  const ms = end.getTime() - new Date(task.started_at).getTime();
  return task.finished_at ? duration(ms) : `${duration(ms)}…`;
}

function taskRow(task) {
  const { text, wasCut } = promptOf(task);
  return h(
    'tr',
    { 'data-id': task.id, 'data-status': task.status, 'data-created': task.created_at },
    h('td', {}, statusBadge(task.status)),
    h(
      'td',
      { class: 'prompt-cell' },
      h('a', { href: `/tasks/${task.id}`, class: 'prompt-link' }, text || '(empty)'),
      h(
        'div',
        { class: 'muted small' },
        h('code', {}, task.id),
        wasCut && ' · prompt cut in this list',
      ),
    ),
    h(
      'td',
      { class: 'col-model' },
      task.config?.provider ?? '—',
      h('div', { class: 'muted small' }, task.config?.model ?? ''),
    ),
    h('td', {}, timeEl(task.created_at)),
    h('td', { class: 'col-took' }, took(task)),
  );
}

/** Newest first: created_at, then id (both descending), like the API's order. */
const newer = (a, b) =>
  a.created_at === b.created_at ? a.id > b.id : new Date(a.created_at) > new Date(b.created_at);

export async function startTaskList({ canWrite }) {
  const form = $('#filters');
  const tbody = $('#task-table tbody');
  const older = $('#older');
  const liveState = $('#live-state');
  const liveToggle = $('#live-toggle');
  let filter = filterFromUrl();
  let cursor = null;
  let oldestShown = null;
  let stream = null;
  let paused = false;
  const shown = new Map(); // id → task

  filterToForm(form, filter);
  if (canWrite) startSubmitForm();

  const setLive = (text, kind) => {
    liveState.textContent = text;
    liveState.dataset.kind = kind;
  };

  function showEmpty() {
    $('#list-empty').hidden = shown.size > 0;
  }

  function place(task) {
    const existing = tbody.querySelector(`tr[data-id="${task.id}"]`);
    if (filter.status.length > 0 && !filter.status.includes(task.status)) {
      existing?.remove();
      shown.delete(task.id);
      showEmpty();
      return;
    }
    const row = taskRow(task);
    if (existing) {
      existing.replaceWith(row);
    } else {
      // Older than the last page shown while more pages exist: "Older tasks" will bring it.
      if (cursor && oldestShown && !newer(task, oldestShown)) return;
      const before = [...tbody.rows].find((r) => {
        const other = shown.get(r.dataset.id);
        return other !== undefined && newer(task, other);
      });
      if (before) tbody.insertBefore(row, before);
      else tbody.append(row);
      row.classList.add('fresh');
    }
    shown.set(task.id, task);
    showEmpty();
  }

  async function loadPage(append) {
    const query = queryOf({
      ...apiFilter(filter),
      view: 'summary',
      limit: PAGE_SIZE,
      cursor: append ? cursor : undefined,
    });
    const page = await api(`/v1/tasks${query}`);
    if (!append) {
      tbody.replaceChildren();
      shown.clear();
    }
    for (const task of page.data) {
      tbody.append(taskRow(task));
      shown.set(task.id, task);
    }
    if (page.data.length > 0) oldestShown = page.data.at(-1);
    cursor = page.next_cursor ?? null;
    older.hidden = cursor === null;
    showEmpty();
  }

  function renderCounts(stats) {
    for (const button of $$('#counts button')) {
      const n = stats?.counts?.[button.dataset.status];
      button.querySelector('.count-n').textContent = n === undefined ? '–' : String(n);
    }
  }

  async function loadCounts() {
    try {
      renderCounts(await api('/v1/stats'));
    } catch (err) {
      if (err.status !== 401) renderCounts(undefined);
    }
  }

  // Changes heard while the list is being read are applied after it, not overwritten by it.
  let heldBack = null;
  async function reload() {
    heldBack = [];
    try {
      await Promise.all([loadPage(false), loadCounts()]);
    } catch (err) {
      if (err.status !== 401) flash(`Could not load tasks: ${err.message}`, 'error');
    } finally {
      const held = heldBack;
      heldBack = null;
      for (const task of held) place(task);
    }
  }

  /** Follows /v1/changes, reading the list once it is open (so no change falls between). */
  function goLive() {
    stream?.abort();
    if (paused) return reload();
    const controller = new AbortController();
    stream = controller;
    let first = true;
    setLive('connecting…', 'wait');
    void followStream(`/v1/changes${queryOf(apiFilter(filter))}`, {
      signal: controller.signal,
      onOpen: () => {
        setLive('live', 'live');
        if (first) void reload();
        first = false;
      },
      onDrop: () => setLive('reconnecting…', 'wait'),
      onEnd: () => setLive('reconnecting…', 'wait'),
      onError: (err) => {
        setLive(`not live: ${err.message}`, 'off');
        if (first) void reload();
      },
      onEvent: ({ event, data }) => {
        if (event === 'task') {
          const task = JSON.parse(data);
          if (heldBack) heldBack.push(task);
          else place(task);
        } else if (event === 'stats') renderCounts(JSON.parse(data));
        else if (event === 'resync') void reload();
      },
    });
  }

  async function apply() {
    filter = filterFromForm(form);
    const params = queryOf(filter);
    history.replaceState(null, '', `${location.pathname}${params}`);
    await goLive();
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void apply();
  });
  form.addEventListener('reset', (e) => {
    e.preventDefault();
    filterToForm(form, { status: [] });
    void apply();
  });
  for (const button of $$('#counts button')) {
    button.addEventListener('click', () => {
      const only = filter.status.length === 1 && filter.status[0] === button.dataset.status;
      filterToForm(form, { ...filter, status: only ? [] : [button.dataset.status] });
      void apply();
    });
  }
  older.addEventListener('click', async () => {
    try {
      await loadPage(true);
    } catch (err) {
      flash(`Could not load older tasks: ${err.message}`, 'error');
    }
  });
  liveToggle.addEventListener('click', async () => {
    paused = !paused;
    liveToggle.setAttribute('aria-pressed', String(paused));
    liveToggle.textContent = paused ? 'Resume live' : 'Pause live';
    if (paused) {
      stream?.abort();
      setLive('paused', 'off');
    } else {
      // What changed while paused: follow again, and read the list again once following.
      goLive();
    }
  });
  if (canWrite) $('#bulk-cancel').addEventListener('click', () => bulkCancel(apiFilter(filter)));

  goLive();
}

/** Cancel every queued or running task the filter matches, after saying how many. */
async function bulkCancel(filter) {
  // The same strings as the list's query (a status list joined by commas).
  const fields = Object.entries(filter)
    .filter(([, v]) => isSet(v))
    .map(([name, v]) => [name, Array.isArray(v) ? v.join(',') : v]);
  const body = { filter: Object.fromEntries(fields) };
  let matched;
  try {
    ({ matched } = await api('/v1/tasks/cancel', {
      method: 'POST',
      body: { ...body, dry_run: true },
    }));
  } catch (err) {
    flash(`Could not count the tasks: ${err.message}`, 'error');
    return;
  }
  if (matched === 0) {
    flash('No queued or running task matches this filter.');
    return;
  }
  const dialog = $('#confirm-cancel');
  $('#confirm-text').textContent =
    `${matched} queued or running task${matched === 1 ? '' : 's'} match${matched === 1 ? 'es' : ''} this filter. Cancel ${matched === 1 ? 'it' : 'them all'}?`;
  $('#confirm-yes').textContent = `Cancel ${matched} task${matched === 1 ? '' : 's'}`;
  dialog.returnValue = '';
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener('close', resolve, { once: true }));
  if (dialog.returnValue !== 'yes') return;
  try {
    const done = await api('/v1/tasks/cancel', {
      method: 'POST',
      body: { ...body, expected_count: matched },
    });
    flash(
      `Cancelled ${done.cancelled}; cancellation requested for ${done.cancel_requested} running.`,
    );
  } catch (err) {
    if (err.code === 'count_changed') {
      flash('The number of matching tasks changed meanwhile; nothing was cancelled. Try again.');
    } else flash(`Could not cancel: ${err.message}`, 'error');
  }
}

const isSet = (v) => v !== undefined && v !== '' && !(Array.isArray(v) && v.length === 0);
