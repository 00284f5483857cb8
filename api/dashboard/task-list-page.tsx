/**
 * The task list's shell: the counts, the filters, the live switch, the table
 * the script fills and keeps live, and the submit form. The choices (statuses,
 * providers, tools) come from the same lists the API validates with.
 */
import { PROVIDER_NAMES, TOOL_NAMES } from '../../shared/catalog.ts';
import { TASK_STATUSES } from '../../shared/db/schema.ts';
import { DEFAULT_MAX_STEPS, DEFAULT_TOOLS } from '../../shared/tasks/agent-config.ts';

export function TaskListPage() {
  return (
    <>
      <div class="page-head">
        <h1>Tasks</h1>
        <div class="live">
          <span id="live-state" class="live-state" role="status">
            connecting…
          </span>
          <button id="live-toggle" type="button" aria-pressed="false">
            Pause live
          </button>
        </div>
      </div>

      <ul id="counts" class="counts" aria-label="Tasks per status">
        {TASK_STATUSES.map((s) => (
          <li>
            <button type="button" class={`count status-${s}`} data-status={s}>
              <span class="count-label">{s}</span> <span class="count-n">–</span>
            </button>
          </li>
        ))}
      </ul>

      <details id="new-task" class="panel" data-action>
        <summary>New task</summary>
        <NewTaskForm />
      </details>

      <form id="filters" class="filters" role="search" aria-label="Filter tasks">
        <fieldset class="statuses">
          <legend>Status</legend>
          {TASK_STATUSES.map((s) => (
            <label class="check">
              <input type="checkbox" name="status" value={s} /> {s}
            </label>
          ))}
        </fieldset>
        <label>
          Search <input type="search" name="q" placeholder="task id or prompt text" />
        </label>
        <label>
          Type
          <select name="type">
            <option value="">any</option>
            <option value="agent">agent</option>
          </select>
        </label>
        <ProviderAndModel unset="any" unsetModel="any" />
        <label>
          Created after <input type="datetime-local" name="created_after" />
        </label>
        <label>
          Created before <input type="datetime-local" name="created_before" />
        </label>
        <div class="filter-buttons">
          <button type="submit">Apply</button>
          <button type="reset" class="secondary">
            Clear
          </button>
          <button id="bulk-cancel" type="button" class="danger" data-action>
            Cancel matching…
          </button>
        </div>
      </form>

      <div class="table-wrap">
        <table id="task-table" class="tasks">
          <caption class="visually-hidden">Tasks, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Prompt</th>
              <th scope="col">Provider / model</th>
              <th scope="col">Created</th>
              <th scope="col">Took</th>
            </tr>
          </thead>
          <tbody></tbody>
        </table>
      </div>
      <p id="list-empty" class="muted" hidden>
        No tasks match.
      </p>
      <button id="older" type="button" class="secondary" hidden>
        Older tasks
      </button>

      <dialog id="confirm-cancel" aria-labelledby="confirm-title">
        <form method="dialog">
          <h2 id="confirm-title">Cancel tasks?</h2>
          <p id="confirm-text"></p>
          <div class="dialog-buttons">
            <button value="no" class="secondary" autofocus>
              Keep them
            </button>
            <button id="confirm-yes" value="yes" class="danger">
              Cancel tasks
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

function NewTaskForm() {
  return (
    <form id="submit-form" class="submit-form">
      <label class="wide">
        Prompt
        <textarea name="prompt" rows={4} required maxlength={100_000}></textarea>
      </label>
      <ProviderAndModel unset="server default" unsetModel="provider default" />
      <label>
        Max steps
        <input type="number" name="max_steps" min={1} max={100} value={DEFAULT_MAX_STEPS} />
      </label>
      <fieldset>
        <legend>Tools</legend>
        {TOOL_NAMES.map((t) => (
          <label class="check">
            <input
              type="checkbox"
              name="tools"
              value={t}
              checked={(DEFAULT_TOOLS as readonly string[]).includes(t)}
            />{' '}
            {t}
          </label>
        ))}
      </fieldset>
      <p id="submit-error" class="error-text" role="alert"></p>
      <button type="submit">Submit task</button>
    </form>
  );
}

/** The provider choice (unset: `unset`) and the model field, in the filter and the submit form. */
function ProviderAndModel({ unset, unsetModel }: { unset: string; unsetModel: string }) {
  return (
    <>
      <label>
        Provider
        <select name="provider">
          <option value="">{unset}</option>
          {PROVIDER_NAMES.map((p) => (
            <option value={p}>{p}</option>
          ))}
        </select>
      </label>
      <label>
        Model <input type="text" name="model" placeholder={unsetModel} spellcheck={false} />
      </label>
    </>
  );
}
