// A run's page: its state, attempts, result and traceback, and its log lines as they are written.
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("live-page").textContent);
  const log = document.getElementById("log");
  const lines = new Set(); // "attempt:sequence" already shown
  let lastSequence = 0;
  let run = null;

  function text(id, value) {
    document.getElementById(id).textContent = value ?? "";
  }

  function showRun(shown) {
    run = shown;
    const state = document.getElementById("run-state");
    state.textContent = run.state;
    state.className = `state state-${run.state}`;
    text("run-attempt", String(run.attempt));
    text("run-worker", run.worker || "–");
    text("run-duration", LIVE.duration(run) || "–");
    text("run-result", run.result === null ? "" : JSON.stringify(run.result, null, 2));
    text("run-error", run.error);
    text("run-traceback", run.traceback);
    document.getElementById("attempts-body").replaceChildren(...run.attempts.map((attempt) => LIVE.element(
      "tr", {},
      LIVE.element("td", {}, String(attempt.number)),
      LIVE.element("td", {}, attempt.worker),
      LIVE.element("td", {}, attempt.started_at ? new Date(attempt.started_at).toLocaleString() : ""),
      LIVE.element("td", {}, attempt.finished_at ? new Date(attempt.finished_at).toLocaleString() : ""),
      LIVE.element("td", {}, attempt.outcome),
      LIVE.element("td", {}, attempt.error),
    )));
  }

  function showLines(newLines) {
    for (const line of newLines) {
      const key = `${line.attempt}:${line.sequence}`;
      if (lines.has(key)) continue;
      lines.add(key);
      lastSequence = Math.max(lastSequence, line.sequence);
      log.append(LIVE.element(
        "li", { class: `level-${line.level.toLowerCase()}` },
        LIVE.element("time", { datetime: line.logged_at }, new Date(line.logged_at).toLocaleTimeString()),
        ` ${line.level} ${line.logger}: `,
        line.message,
      ));
    }
  }

  async function reload() {
    showRun(await LIVE.api(`/api/v1/runs/${page.run}/`));
    let after = 0;
    for (;;) { // every line written so far, a page at a time
      const chunk = await LIVE.api(`/api/v1/runs/${page.run}/log/?after=${after}&limit=1000`);
      showLines(chunk.lines);
      if (!chunk.lines.length) break;
      after = chunk.next_after;
    }
  }

  async function applyEvent(event) {
    if (event.type === "dts.run.log") {
      showLines(event.data.lines);
    } else {
      showRun(await LIVE.api(`/api/v1/runs/${page.run}/`));
    }
  }

  for (const action of ["cancel", "retry"]) {
    const button = document.getElementById(action);
    if (!button) continue;
    button.addEventListener("click", async () => {
      const said = document.getElementById("action-status");
      try {
        const answer = await LIVE.api(`/api/v1/runs/${page.run}/${action}/`, { method: "POST", body: "{}" });
        said.textContent = action === "retry" ? `Retried as run ${answer.id.slice(0, 8)}.` : "Cancel asked.";
      } catch (error) {
        said.textContent = `Not done: ${error.message}`;
      }
    });
  }

  new LIVE.Streams(`/ws/runs/${page.run}/`, {
    onSync: reload,
    onEvent: applyEvent,
    onStatus: LIVE.statusShown(document.getElementById("connection")),
  });
  setInterval(() => { if (run && run.started_at && !run.finished_at) text("run-duration", LIVE.duration(run)); }, 1000);
})();
