/**
 * The dashboard's entry module: asks for a token when the server needs one
 * (kept in localStorage), learns whether it may write (GET /v1/me; a read-only
 * token hides every action), then starts the page's own module.
 */
import { api, onUnauthorized, token } from './api-client.js';
import { $, $$ } from './dom.js';
import { startTaskList } from './task-list.js';
import { startTaskView } from './task-view.js';
import { startWorkersView } from './workers-view.js';

const PAGES = { tasks: startTaskList, task: startTaskView, workers: startWorkersView };

function askForToken(reason) {
  $('#main').hidden = true;
  if (reason) $('#token-reason').textContent = reason;
  $('#token-panel').hidden = false;
  $('#token-input').focus();
}

async function boot() {
  const page = document.body.dataset.page;
  const needsToken = document.body.dataset.auth === 'token';
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    token.set($('#token-input').value.trim());
    location.reload();
  });
  $('#forget-token').addEventListener('click', () => {
    token.forget();
    location.reload();
  });
  $('#forget-token').hidden = !token.get();
  onUnauthorized(() =>
    askForToken('The server refused this token. Enter a valid one (it is kept in this browser).'),
  );
  if (needsToken && !token.get()) return askForToken();

  let me;
  try {
    me = await api('/v1/me');
  } catch (err) {
    if (err.status === 401) return; // the token form is showing
    $('#flash').textContent = `The API did not answer: ${err.message}`;
    return;
  }
  const canWrite = me.access === 'write';
  document.body.dataset.access = me.access;
  if (!canWrite) {
    for (const el of $$('[data-action]')) el.remove();
    const badge = $('#access');
    badge.textContent = 'read-only';
    badge.hidden = false;
  }
  $('#main').hidden = false;
  await PAGES[page]?.({ canWrite });
}

void boot();
