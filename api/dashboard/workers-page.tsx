/** The workers-and-queue shell: the script fills it and refreshes it on `stats` events. */
export function WorkersPage() {
  return (
    <>
      <div class="page-head">
        <h1>Workers &amp; queue</h1>
        <span id="live-state" class="live-state" role="status">
          connecting…
        </span>
      </div>
      <section aria-labelledby="queue-title">
        <h2 id="queue-title">Queue</h2>
        <dl id="queue" class="stats"></dl>
      </section>
      <section aria-labelledby="workers-title">
        <h2 id="workers-title">Workers</h2>
        <div class="table-wrap">
          <table id="workers-table" class="workers">
            <thead>
              <tr>
                <th scope="col">Worker</th>
                <th scope="col">Host / pid</th>
                <th scope="col">Version</th>
                <th scope="col">Running</th>
                <th scope="col">Started</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody></tbody>
          </table>
        </div>
        <p id="workers-empty" class="muted" hidden>
          No worker has checked in.
        </p>
      </section>
    </>
  );
}
