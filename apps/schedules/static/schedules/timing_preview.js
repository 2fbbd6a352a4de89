// The admin's schedule form: the schedule's description and next fire times as its timing is
// typed, before it is saved, from /api/v1/schedules/preview/ (docs/api.md), which refuses what
// saving would refuse; the reason goes under the field at fault.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector(".field-preview .readonly");
  if (!box) return;
  const form = box.closest("form");
  const TIMING = ["kind", "cron_expression", "timezone", "interval_seconds", "once_at", "start_at", "end_at"];
  const WAIT_MS = 250;
  let asked = 0; // the latest question: an older answer arriving later is dropped
  let pending = null;

  // A field's value as the API takes it; a date and time the admin splits in two are joined.
  function value(name) {
    const single = form.elements[name];
    if (single) return single.value.trim();
    const date = form.elements[`${name}_0`];
    const time = form.elements[`${name}_1`];
    if (!date || !date.value.trim()) return "";
    return `${date.value.trim()}T${time?.value.trim() || "00:00:00"}`;
  }

  function element(tag, text, className) {
    const made = document.createElement(tag);
    if (text !== undefined) made.textContent = text;
    if (className) made.className = className;
    return made;
  }

  function shownAt(iso, zone) {
    const local = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, weekday: "short", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
    }).format(new Date(iso));
    return `${local} (${iso})`;
  }

  function refusalShow(error) {
    const field = TIMING.includes(error.field) ? error.field : "preview";
    const list = element("ul", undefined, "errorlist timing-preview-error");
    list.append(element("li", error.message || "Refused."));
    form.querySelector(`.field-${field}`)?.prepend(list);
    box.replaceChildren(element("span", "None: the schedule would be refused.", "timing-preview-none"));
  }

  function previewShow(preview, zone) {
    const list = element("ol", undefined, "timing-preview-fires");
    list.append(...preview.fire_times.map((iso) => element("li", shownAt(iso, zone))));
    box.replaceChildren(
      element("p", preview.description, "timing-preview-description"),
      preview.fire_times.length ? list : element("span", "None: it has nothing left to fire."),
    );
  }

  async function refresh() {
    const query = new URLSearchParams();
    for (const name of TIMING) if (value(name)) query.set(name, value(name));
    const ticket = ++asked;
    let response, body;
    try {
      response = await fetch(`/api/v1/schedules/preview/?${query}`, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      body = await response.json();
    } catch {
      return; // the server is away: the form still saves, and says what is wrong then
    }
    if (ticket !== asked) return;
    form.querySelectorAll(".timing-preview-error").forEach((old) => old.remove());
    if (response.ok) previewShow(body, value("timezone") || "UTC");
    else refusalShow(body.error || {});
  }

  function refreshSoon(event) {
    const name = event.target.name?.replace(/_[01]$/, "");
    if (!TIMING.includes(name)) return;
    clearTimeout(pending);
    pending = setTimeout(refresh, WAIT_MS);
  }

  form.addEventListener("input", refreshSoon);
  form.addEventListener("change", refreshSoon);
});
