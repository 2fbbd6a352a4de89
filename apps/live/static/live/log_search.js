// The dashboard's log search: /api/v1/logs/ (docs/logs.md, "Search"), lines of the user's teams,
// newest first, each linking to its run; "More" follows the result's cursor.
"use strict";

(() => {
  const page = JSON.parse(document.getElementById("live-page").textContent);
  const form = document.getElementById("log-search");
  const results = document.getElementById("log-search-results");
  const status = document.getElementById("log-search-status");
  const more = document.getElementById("log-search-more");
  const BACKENDS = { elasticsearch: "Elasticsearch", database: "PostgreSQL (no Elasticsearch configured)" };
  let next = null;

  // The server escapes the message and marks the matches: only <mark> elements are kept, parsed in
  // an inert template (nothing in it loads or runs).
  function highlighted(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    for (const node of template.content.querySelectorAll("*")) {
      if (node.tagName !== "MARK") node.replaceWith(node.textContent);
    }
    return LIVE.element("span", { class: "message" }, template.content);
  }

  function item(line) {
    const link = LIVE.element("a", { href: `${page.run_page}${line.run}/` }, line.run.slice(0, 8));
    return LIVE.element(
      "li",
      { "data-run": line.run, "data-sequence": String(line.sequence) },
      LIVE.element("time", { datetime: line.logged_at }, new Date(line.logged_at).toLocaleString()),
      " ",
      LIVE.element("span", { class: `level level-${line.level.toLowerCase()}` }, line.level),
      " ",
      line.job_name,
      " ",
      link,
      " ",
      line.highlight === null ? LIVE.element("span", { class: "message" }, line.message) : highlighted(line.highlight),
    );
  }

  async function show(url, { append }) {
    status.textContent = "Searching…";
    try {
      const found = await LIVE.api(url);
      if (!append) results.replaceChildren();
      results.append(...found.results.map(item));
      const count = `${found.total}${found.total_is_lower_bound ? "+" : ""}`;
      const noun = found.total === 1 ? "line" : "lines";
      status.textContent = `${count} ${noun}, searched in ${BACKENDS[found.backend] || found.backend}`;
      next = found.next;
      more.hidden = !next;
    } catch (error) {
      status.textContent = `Search failed: ${error.message}`;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams({ q: form.elements.q.value, limit: "20" });
    const job = new URLSearchParams(location.search).get("job");
    if (job) query.set("job", job);
    show(`/api/v1/logs/?${query}`, { append: false });
  });
  more.addEventListener("click", () => next && show(new URL(next).pathname + new URL(next).search, { append: true }));
})();
