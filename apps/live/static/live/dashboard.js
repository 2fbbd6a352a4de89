// The dashboard: the user's recent runs, live; counts by state; runs per minute by outcome over the
// last hour (runs_chart.js); workers and queue depths.
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("live-page").textContent);
  const filters = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const name of ["job", "state"]) if (filters.get(name)) query.set(name, filters.get(name));
  const table = document.getElementById("runs-body");
  const rows = new Map(); // run id -> {run, row}
  const LIMIT = 50;
  const chart = new RUNS_CHART.RunsChart(
    document.getElementById("per-minute-chart"), document.getElementById("per-minute-totals"), { job: query.get("job") },
  );

  function cells(run) {
    const link = LIVE.element("a", { href: `${page.run_page}${run.id}/` }, run.id.slice(0, 8));
    const state = LIVE.element("span", { class: `state state-${run.state}` }, run.state);
    return [
      LIVE.element("td", {}, link),
      LIVE.element("td", {}, page.jobs[run.job] || `job ${run.job}`),
      LIVE.element("td", {}, state),
      LIVE.element("td", {}, run.trigger),
      LIVE.element("td", { class: "duration" }, LIVE.duration(run)),
      LIVE.element("td", {}, run.worker || ""),
      LIVE.element("td", {}, new Date(run.created_at).toLocaleString()),
    ];
  }

  function show(run, { first = false } = {}) {
    const known = rows.get(run.id);
    const row = known ? known.row : LIVE.element("tr", { "data-run": run.id });
    row.replaceChildren(...cells(run));
    rows.set(run.id, { run, row });
    if (!known) first ? table.prepend(row) : table.append(row);
    while (rows.size > LIMIT) {
      const [oldest] = [...rows.keys()].slice(-1);
      rows.get(oldest).row.remove();
      rows.delete(oldest);
    }
  }

  async function reloadRuns() {
    const runs = await LIVE.api(`/api/v1/runs/?limit=${LIMIT}&${query}`);
    rows.clear();
    table.replaceChildren();
    for (const run of runs.results) show(run);
    await reloadCounts();
  }

  let countsPending = null;
  function reloadCounts() {
    // At most one reload a second, however many runs change.
    countsPending ??= new Promise((done) => setTimeout(async () => {
      countsPending = null;
      const scope = new URLSearchParams({ created_after: new Date(Date.now() - 86400000).toISOString() });
      if (query.get("job")) scope.set("job", query.get("job"));
      const counts = await LIVE.api(`/api/v1/runs/counts/?${scope}`);
      for (const [state, count] of Object.entries(counts)) {
        const cell = document.getElementById(`count-${state}`);
        if (cell) cell.textContent = count;
      }
      done();
    }, 200));
    return countsPending;
  }

  async function applyEvent(event) {
    chart.count(event);
    const data = event.data || {};
    if (!data.run_id || !event.type.startsWith("dts.run.")) return;
    const known = rows.get(data.run_id);
    const matches = !query.get("job") || String(data.job_id) === query.get("job");
    if (known || matches) {
      const run = await LIVE.api(`/api/v1/runs/${data.run_id}/`);
      if (known || !query.get("state") || run.state === query.get("state")) show(run, { first: !known });
    }
    reloadCounts();
  }

  async function reloadWorkers() {
    const [workers, queues] = await Promise.all([LIVE.api("/api/v1/workers/"), LIVE.api("/api/v1/queues/")]);
    const alive = workers.filter((worker) => !worker.stopped_at);
    document.getElementById("workers-body").replaceChildren(...alive.map((worker) => LIVE.element(
      "tr", { "data-alive": String(worker.alive) },
      LIVE.element("td", {}, `${worker.hostname} (${worker.pid})`),
      LIVE.element("td", {}, worker.queues.join(", ")),
      LIVE.element("td", {}, String(worker.concurrency)),
      LIVE.element("td", {}, `${new Date(worker.last_heartbeat_at).toLocaleTimeString()}${worker.alive ? "" : " (silent)"}`),
      LIVE.element("td", {}, String(worker.active_run_ids.length)),
    )));
    document.getElementById("queues-body").replaceChildren(...queues.map((queue) => LIVE.element(
      "tr", {}, LIVE.element("td", {}, queue.name), LIVE.element("td", {}, String(queue.depth)),
    )));
  }

  const trigger = document.getElementById("trigger");
  if (trigger) {
    trigger.addEventListener("click", async () => {
      const said = document.getElementById("action-status");
      try {
        const run = await LIVE.api(`/api/v1/jobs/${trigger.dataset.job}/trigger/`, { method: "POST", body: "{}" });
        said.textContent = `Run ${run.id.slice(0, 8)} queued.`;
      } catch (error) {
        said.textContent = `Not triggered: ${error.message}`;
      }
    });
  }

  new LIVE.Streams("/ws/runs/", {
    onSync: () => Promise.all([reloadRuns(), chart.reload()]),
    onEvent: applyEvent,
    onStatus: LIVE.statusShown(document.getElementById("connection")),
  });
  reloadWorkers();
  setInterval(reloadWorkers, 10000);
  setInterval(() => { // running durations tick; pages also reload now and then (docs/live.md)
    for (const { run, row } of rows.values()) {
      if (run.started_at && !run.finished_at) row.querySelector(".duration").textContent = LIVE.duration(run);
    }
  }, 1000);
  setInterval(reloadRuns, 60000);
  setInterval(() => chart.reload(), 60000); // moves the hour on, and corrects what events missed
})();
