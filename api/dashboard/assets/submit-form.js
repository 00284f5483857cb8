/** The "New task" form: submits to POST /v1/tasks and opens the new task's page. */
import { api } from './api-client.js';
import { $ } from './dom.js';

export function startSubmitForm() {
  const form = $('#submit-form');
  const problem = $('#submit-error');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const config = { tools: data.getAll('tools') };
    const provider = String(data.get('provider') ?? '');
    const model = String(data.get('model') ?? '').trim();
    const maxSteps = String(data.get('max_steps') ?? '').trim();
    if (provider) config.provider = provider;
    if (model) config.model = model;
    if (maxSteps) config.max_steps = Number(maxSteps);
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    problem.textContent = '';
    try {
      const task = await api('/v1/tasks', {
        method: 'POST',
        body: { input: { prompt: String(data.get('prompt') ?? '') }, config },
      });
      location.assign(`/tasks/${task.id}`);
    } catch (err) {
      const issues = err.details?.issues;
      problem.textContent = Array.isArray(issues)
        ? issues.map((i) => `${i.field}: ${i.message}`).join('; ')
        : err.message;
      button.disabled = false;
    }
  });
}
