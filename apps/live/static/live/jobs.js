// The jobs page: each job's health, schedules in words, next fire, last success and its latest
// runs as coloured cells (newest first), each a link to its run. Loaded from
// /api/v1/jobs/overview/; a run event adds or recolours a cell at once, and the rows reload when
// health may have changed (docs/live.md).
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("live-page").textContent);
  const CELLS = 20;
  const FILTERS = ["search", "health", "team", "tag", "offset"];
  const given = new URLSearchParams(location.search);
  const query = new URLSearchParams({ limit: "100", runs: String(CELLS) });
  for (const name of FILTERS) if (given.get(name)) query.set(name, given.get(name));
  const body = document.getElementById("jobs-body");
  const rows = new Map(); // job id -> the row's cells container

  function when(iso) {
    if (!iso) return LIVE.element("span", { class: "muted" }, "–");
    const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
    const size = Math.abs(seconds);
    const amount = size < 90 ? `${size} s` : size < 5400 ? `${Math.round(size / 60)} min` : size < 129600
      ? `${Math.round(size / 3600)} h` : `${Math.round(size / 86400)} d`;
    return LIVE.element(
      "time", { datetime: iso, title: new Date(iso).toLocaleString() }, seconds >= 0 ? `in ${amount}` : `${amount} ago`,
    );
  }

  function cell(run) {
    const created = new Date(run.created_at).toLocaleString();
    return LIVE.element("a", {
      class: `cell cell-${run.state}`,
      href: `${page.run_page}${run.id}/`,
      "data-run": run.id,
      "data-state": run.state,
      "data-created": run.created_at,
      title: `${run.state} · ${created}`,
      "aria-label": `Run ${run.id.slice(0, 8)}: ${run.state}`,
    });
  }

  function schedules(job) {
    if (!job.schedules.length) return LIVE.element("span", { class: "muted" }, "–");
    return LIVE.element("ul", { class: "schedules" }, ...job.schedules.map((schedule) => LIVE.element(
      "li", schedule.active ? {} : { class: "muted" },
      schedule.active ? schedule.description : `${schedule.description} (paused)`,
    )));
  }

  function row(job) {
    const cells = LIVE.element("div", { class: "cells" }, ...job.latest_runs.map(cell));
    rows.set(String(job.id), cells);
    return LIVE.element(
      "tr", { "data-job": String(job.id) },
      LIVE.element("td", {}, LIVE.element("a", { href: `${page.job_runs}${job.id}` }, job.name)),
      LIVE.element("td", {}, job.team),
      LIVE.element("td", {}, LIVE.element("span", { class: `health health-${job.health}` }, job.health)),
      LIVE.element("td", {}, schedules(job)),
      LIVE.element("td", {}, when(job.next_fire_at)),
      LIVE.element("td", {}, when(job.last_success_at)),
      LIVE.element("td", {}, cells),
    );
  }

  async function reload() {
    const jobs = await LIVE.api(`/api/v1/jobs/overview/?${query}`);
    rows.clear();
    body.replaceChildren(...jobs.results.map(row));
    document.getElementById("jobs-shown").textContent = `${jobs.results.length} of ${jobs.count} jobs`;
    const more = document.getElementById("jobs-more");
    more.replaceChildren();
    if (jobs.next) {
      const next = new URLSearchParams(given);
      next.set("offset", new URL(jobs.next).searchParams.get("offset"));
      more.append(LIVE.element("a", { href: `?${next}` }, "Next jobs"));
    }
  }

  // At most one reload every two seconds, however many runs end: health and times are the
  // server's to decide.
  let reloadPending = null;
  function reloadSoon() {
    reloadPending ??= setTimeout(() => { reloadPending = null; reload(); }, 2000);
  }

  function applyEvent(event) {
    const data = event.data || {};
    if (event.type.startsWith("dts.job.") || event.type.startsWith("dts.schedule.")) {
      reloadSoon();
      return;
    }
    if (!event.type.startsWith("dts.run.") || !data.run_id || !data.state) return;
    const cells = rows.get(String(data.job_id));
    if (!cells) return; // a job not shown here
    const known = cells.querySelector(`[data-run="${data.run_id}"]`);
    if (known) {
      known.replaceWith(cell({ id: data.run_id, state: data.state, created_at: known.dataset.created }));
    } else if (event.type === "dts.run.queued") {
      cells.prepend(cell({ id: data.run_id, state: data.state, created_at: event.time }));
      while (cells.children.length > CELLS) cells.lastElementChild.remove();
    } else {
      reloadSoon(); // a run this page has not seen begin
      return;
    }
    if (!["queued", "running"].includes(data.state)) reloadSoon(); // health, last success
  }

  new LIVE.Streams("/ws/runs/", {
    onSync: reload,
    onEvent: applyEvent,
    onStatus: LIVE.statusShown(document.getElementById("connection")),
  });
  setInterval(reload, 30000); // health moves with time (late, missed), and next fires come
})();
