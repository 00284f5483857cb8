/**
 * Building the page from data: elements made with textContent only (never
 * innerHTML, so a prompt cannot inject markup), and the few formats the pages share.
 */

/** `h('a', { href, class: 'x', onclick }, 'text', child…)`; false/null/undefined children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

export const TERMINAL = ['completed', 'failed', 'cancelled'];
export const isTerminal = (status) => TERMINAL.includes(status);

export const statusBadge = (status) => h('span', { class: `badge status-${status}` }, status);

/** Local date and time, with the exact instant as a tooltip. */
export function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  const today = d.toDateString() === new Date().toDateString();
  const text = today
    ? d.toLocaleTimeString()
    : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  return h('time', { datetime: iso, title: iso }, text);
}

/** 950 ms, 12.3 s, 4 min 5 s, 2 h 3 min. */
export function duration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const ago = (iso) => `${duration(Date.now() - new Date(iso).getTime())} ago`;

/** A long string cut to `max` characters, ending in an ellipsis. */
export const cut = (text, max) => (text.length > max ? `${text.slice(0, max)}…` : text);

export const pretty = (value) =>
  typeof value === 'string' ? value : JSON.stringify(value, null, 2);

/**
 * A value on one line when short, whole when it fits a few lines, folded in a <details> when long (its
 * summary the first line, cut), so a big tool result never floods the page.
 */
export function folded(value, label = '') {
  const compact = typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
  if (compact.length <= 100 && !compact.includes('\n'))
    return h('code', { class: 'value' }, compact);
  const text = pretty(value) ?? '';
  const long = text.length > 160 || text.split('\n').length > 4;
  if (!long) return h('pre', { class: 'value' }, text);
  const head = cut(text.replace(/\s+/g, ' '), 100);
  return h(
    'details',
    { class: 'folded' },
    h('summary', {}, label ? `${label}: ` : '', h('code', {}, head), ` (${text.length} chars)`),
    h('pre', { class: 'value' }, text),
  );
}

let flashTimer;
/** A short message in the page's status line (announced to screen readers). */
export function flash(message, kind = 'info') {
  const el = $('#flash');
  el.textContent = message;
  el.dataset.kind = kind;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => (el.textContent = ''), 8000);
}

/** Runs `fn` at most once at a time; a call while it runs schedules one more run. */
export function coalesced(fn) {
  let running = false;
  let again = false;
  return async function run() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await fn();
      } while (again);
    } finally {
      running = false;
    }
  };
}
