// dts live pages: a WebSocket that follows numbered streams (docs/live.md), reconnects by itself
// with backoff, and tells the page when a view must be reloaded from the REST API (a "sync").
"use strict";

const LIVE = (() => {
  const csrfToken = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]*)/) || [])[1] || "";

  // Close codes that refuse a stream (docs/live.md), as the page says them.
  const REFUSALS = {
    4401: "Signed out",
    4403: "No longer allowed: removed from the team?",
    4404: "Not found",
  };

  async function api(path, options = {}) {
    const response = await fetch(path, {
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      ...options,
    });
    const body = response.status === 204 ? null : await response.json();
    if (!response.ok) {
      const error = (body && body.error) || {};
      throw new Error(error.message || `${response.status} ${response.statusText}`);
    }
    return body;
  }

  // Follows the streams of `path` (e.g. "/ws/runs/"). onSync(stream) reloads a view; onEvent(event,
  // stream) applies one. onStatus(connected, refused) shows the connection's state.
  class Streams {
    constructor(path, { onSync, onEvent, onStatus }) {
      Object.assign(this, { path, onSync, onEvent, onStatus });
      this.positions = new Map(); // stream -> {epoch, seq}
      this.delay = 500;
      this.connect();
    }

    url() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const after = [...this.positions].map(([stream, p]) => `${stream}:${p.epoch}:${p.seq}`);
      const query = after.length ? `?after=${after.join(",")}` : "";
      return `${scheme}//${location.host}${this.path}${query}`;
    }

    connect() {
      this.socket = new WebSocket(this.url());
      this.socket.onopen = () => this.onStatus(true);
      this.socket.onmessage = (frame) => {
        this.delay = 500; // not on open: a refusal opens, then closes
        this.receive(JSON.parse(frame.data));
      };
      this.socket.onclose = (event) => {
        if (event.code >= 4400 && event.code < 4500) {
          // A refusal (docs/live.md): asking again would be refused again.
          this.onStatus(false, REFUSALS[event.code] || "Refused by the server");
          return;
        }
        this.onStatus(false);
        const wait = this.delay * (0.75 + Math.random() / 2);
        this.delay = Math.min(this.delay * 2, 30000);
        setTimeout(() => this.connect(), wait);
      };
    }

    receive(message) {
      const known = this.positions.get(message.stream);
      if (message.type === "sync") {
        this.positions.set(message.stream, { epoch: message.epoch, seq: message.seq });
        this.onSync(message.stream);
        return;
      }
      if (known && known.epoch === message.epoch && message.seq <= known.seq) return; // seen
      this.positions.set(message.stream, { epoch: message.epoch, seq: message.seq });
      if (!known || known.epoch !== message.epoch || message.seq !== known.seq + 1) {
        this.onSync(message.stream); // something was skipped: reload, this message included
        return;
      }
      this.onEvent(message.event, message.stream);
    }

    close() {
      this.socket.onclose = null;
      this.socket.close();
    }
  }

  // A refused stream is not retried: the page says why (`refused`) and stays as it is.
  function statusShown(element) {
    return (connected, refused) => {
      if (refused) element.textContent = `${refused}: reload the page`;
      else element.textContent = connected ? "Live" : "Disconnected: reconnecting…";
      element.dataset.connected = connected ? "true" : "false";
    };
  }

  function duration(run, now = Date.now()) {
    if (!run.started_at) return "";
    const end = run.finished_at ? Date.parse(run.finished_at) : now;
    const seconds = Math.max(0, (end - Date.parse(run.started_at)) / 1000);
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    const minutes = Math.floor(seconds / 60);
    return minutes < 60 ? `${minutes} min ${Math.round(seconds % 60)} s` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  return { api, Streams, statusShown, duration, element };
})();
