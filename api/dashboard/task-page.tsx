/**
 * One task's shell: the script fills the status, the answer, the details and
 * the step log, and streams new steps in while the task runs.
 */
export function TaskPage({ id }: { id: string }) {
  return (
    <article id="task" data-task-id={id}>
      <div class="page-head">
        <h1>
          Task <code class="task-id">{id}</code>
        </h1>
        <span id="task-status" class="badge">
          …
        </span>
        <div class="actions" data-action>
          <button id="task-cancel" type="button" class="danger" hidden>
            Cancel task
          </button>
          <button id="task-rerun" type="button" hidden>
            Run again
          </button>
        </div>
      </div>
      <p id="task-error" class="error-box" role="alert" hidden></p>
      <section aria-labelledby="answer-title" id="answer-section" class="answer" hidden>
        <h2 id="answer-title">Answer</h2>
        <div id="task-answer" class="answer-text"></div>
      </section>
      <div class="task-grid">
        <div>
          <section aria-labelledby="prompt-title">
            <h2 id="prompt-title">Prompt</h2>
            <pre id="task-prompt" class="prompt"></pre>
          </section>
          <section aria-labelledby="steps-title">
            <h2 id="steps-title">
              Steps <span id="steps-live" class="live-state"></span>
            </h2>
            <ol id="timeline" class="timeline"></ol>
          </section>
        </div>
        <section aria-labelledby="details-title">
          <h2 id="details-title">Details</h2>
          <dl id="task-details" class="details"></dl>
        </section>
      </div>
    </article>
  );
}
