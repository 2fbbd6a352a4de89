// The chart of runs per minute by outcome over the last hour (uPlot, vendored: vendor/README.md).
// Loaded from /api/v1/runs/per-minute/; a run event counts the run in its minute at once, and a
// reload each minute corrects what events missed (docs/live.md, "Pictures").
"use strict";

const RUNS_CHART = (() => {
  // Bottom to top of a bar; the colours are the state colours of live.css.
  const OUTCOMES = ["succeeded", "failed", "timed_out", "cancelled", "lost"];
  const COLOURS = {
    succeeded: "#1a7f37", failed: "#cf222e", timed_out: "#bc4c00", cancelled: "#8c959f", lost: "#8250df",
  };
  const MINUTE = 60000;
  const HEIGHT = 180;

  class RunsChart {
    // `element` holds the chart, `totals` the hour's count per outcome; `job` limits it to one job.
    constructor(element, totals, { job = null } = {}) {
      Object.assign(this, { element, totals, job });
      this.start = null; // ms, the first minute shown
      this.counts = null; // outcome -> [count per minute]
      this.plot = null;
      this.pending = null;
      new ResizeObserver(() => this.plot && this.plot.setSize(this.size())).observe(element);
    }

    size() {
      return { width: Math.max(300, this.element.clientWidth), height: HEIGHT };
    }

    async reload() {
      const query = new URLSearchParams({ minutes: "60" });
      if (this.job) query.set("job", this.job);
      const chart = await LIVE.api(`/api/v1/runs/per-minute/?${query}`);
      this.start = Date.parse(chart.start);
      this.counts = chart.counts;
      this.draw();
    }

    // A run event: a run that ended is counted in the minute it ended (the event's time).
    count(event) {
      const data = event.data || {};
      if (!this.counts || !OUTCOMES.includes(data.state) || !event.type.startsWith("dts.run.")) return;
      if (this.job && String(data.job_id) !== String(this.job)) return;
      const minutes = this.counts[OUTCOMES[0]].length;
      let index = Math.floor((Date.parse(event.time) - this.start) / MINUTE);
      if (index < 0) return; // before the hour shown
      if (index >= minutes) { // a new minute began: move the hour on
        const shift = index - minutes + 1;
        for (const outcome of OUTCOMES) {
          this.counts[outcome] = this.counts[outcome].slice(shift).concat(new Array(Math.min(shift, minutes)).fill(0))
            .slice(-minutes);
        }
        this.start += shift * MINUTE;
        index = minutes - 1;
      }
      this.counts[data.state][index] += 1;
      this.pending ??= requestAnimationFrame(() => { this.pending = null; this.draw(); });
    }

    // uPlot draws series in order, each over the last: the tallest stack (all outcomes) first.
    data() {
      const minutes = this.counts[OUTCOMES[0]].length;
      const times = Array.from({ length: minutes }, (_, index) => (this.start + index * MINUTE) / 1000);
      const stacked = [];
      let below = new Array(minutes).fill(0);
      for (const outcome of OUTCOMES) {
        below = below.map((sum, index) => sum + this.counts[outcome][index]);
        stacked.push(below);
      }
      return [times, ...stacked.reverse()];
    }

    draw() {
      const total = Object.fromEntries(OUTCOMES.map((outcome) => [outcome, this.counts[outcome].reduce((a, b) => a + b, 0)]));
      this.totals.replaceChildren(...OUTCOMES.map((outcome) => LIVE.element(
        "span", { class: "total", "data-outcome": outcome },
        LIVE.element("i", { class: "swatch", style: `background:${COLOURS[outcome]}` }),
        `${outcome.replace("_", " ")} ${total[outcome]}`,
      )));
      this.element.dataset.total = String(Object.values(total).reduce((a, b) => a + b, 0));
      if (this.plot) {
        this.plot.setData(this.data());
        return;
      }
      const top = [...OUTCOMES].reverse();
      const bars = uPlot.paths.bars({ size: [0.8, 40], gap: 1 });
      this.plot = new uPlot({
        ...this.size(),
        legend: { show: false },
        cursor: { points: { show: false } },
        scales: { x: { time: true }, y: { range: (plot, min, max) => [0, Math.max(4, max)] } },
        axes: [
          { stroke: "#57606a", grid: { show: false } },
          { stroke: "#57606a", grid: { stroke: "#eaeef2" }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000, 100000], size: 40 },
        ],
        series: [{}, ...top.map((outcome) => ({
          label: outcome, fill: COLOURS[outcome], stroke: COLOURS[outcome], width: 0, paths: bars, points: { show: false },
        }))],
      }, this.data(), this.element);
    }
  }

  return { RunsChart, COLOURS };
})();
