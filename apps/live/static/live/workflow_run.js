// A workflow run's page: its graph, drawn by the server (apps/live/graph.py), each step's box
// coloured by its state. Its events (dts.workflow_run.*) recolour the steps they name at once; the
// run ids of steps that start, and everything after a gap, are read from the REST API
// (docs/live.md).
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("live-page").textContent);
  const graph = document.getElementById("graph");
  const runState = document.getElementById("workflow-run-state");

  function stepShown(name, state, runId) {
    const node = [...graph.querySelectorAll("[data-step]")].find((found) => found.dataset.step === name);
    if (!node) return;
    node.setAttribute("class", `step step-${state}`);
    node.dataset.state = state;
    node.querySelector(".step-state").textContent = state;
    if (runId) node.querySelector("a").setAttribute("href", `${page.run_page}${runId}/`);
  }

  function runShown(state) {
    runState.textContent = state;
    runState.className = `state state-${state}`;
  }

  async function reload() {
    const run = await LIVE.api(`/api/v1/workflow-runs/${page.workflow_run}/`);
    runShown(run.state);
    for (const step of run.steps) stepShown(step.name, step.state, step.run);
  }

  let reloadPending = null;
  function reloadSoon() {
    reloadPending ??= setTimeout(() => { reloadPending = null; reload(); }, 500);
  }

  function applyEvent(event) {
    if (!event.type.startsWith("dts.workflow_run.")) return;
    runShown(event.data.state);
    for (const [name, state] of Object.entries(event.data.steps)) stepShown(name, state, null);
    if (Object.values(event.data.steps).includes("running")) reloadSoon(); // their runs' ids
  }

  new LIVE.Streams(`/ws/workflow-runs/${page.workflow_run}/`, {
    onSync: reload,
    onEvent: applyEvent,
    onStatus: LIVE.statusShown(document.getElementById("connection")),
  });
})();
