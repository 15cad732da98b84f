// The JSON API under /api/v1, the API key kept in localStorage, logs tails and the events
// stream (Server-Sent Events, reconnected with the last cursor).

const BASE = "/api/v1";
const KEY = "sematic.apiKey";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function apiKey() {
  try {
    return localStorage.getItem(KEY) || "";
  } catch {
    return "";
  }
}

export function setApiKey(value) {
  try {
    if (value) localStorage.setItem(KEY, value);
    else localStorage.removeItem(KEY);
  } catch {
    // Storage refused (private mode): the key lasts until the page reloads.
  }
}

function headers(extra) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

async function request(path, options = {}) {
  const response = await fetch(BASE + path, {
    cache: "no-store",
    ...options,
    headers: headers(options.headers || {}),
  });
  if (!response.ok && response.status !== 206 && response.status !== 416) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).error || message;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(response.status, message);
  }
  return response;
}

export async function getJSON(path, options) {
  return (await request(path, options)).json();
}

export async function postJSON(path, body) {
  const response = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body ?? {}),
  });
  return response.json();
}

// Follows a run's log file: each poll() asks only for the bytes after the ones already read
// (HTTP Range) and returns the new text, or null when nothing changed.
export class LogTail {
  constructor(runId) {
    this.runId = runId;
    this.offset = 0;
    this.decoder = new TextDecoder();
  }

  async poll(signal) {
    const extra = this.offset > 0 ? { Range: `bytes=${this.offset}-` } : {};
    const response = await request(`/runs/${this.runId}/logs`, { headers: extra, signal });
    if (response.status === 416) return null; // nothing after offset
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (response.status === 200 && this.offset > 0) {
      // The server ignored the range: start over.
      this.offset = 0;
      this.decoder = new TextDecoder();
      const text = this.decoder.decode(bytes, { stream: true });
      this.offset = bytes.length;
      return { text, reset: true };
    }
    if (bytes.length === 0) return null;
    this.offset += bytes.length;
    return { text: this.decoder.decode(bytes, { stream: true }), reset: false };
  }
}

// Subscribes to /events (runs of rootId, or root runs of every pipeline without it).
// onRuns(runs) gets every batch; onStatus("live" | "reconnecting") the connection's state.
// Returns a function that closes the stream.
export function subscribe({ rootId, since, onRuns, onStatus }) {
  let cursor = since;
  let source = null;
  let closed = false;
  let timer = null;
  let delay = 1000;

  function open() {
    const query = new URLSearchParams();
    if (rootId) query.set("root_id", rootId);
    if (cursor !== null && cursor !== undefined) query.set("since", String(cursor));
    source = new EventSource(`${BASE}/events?${query}`);
    source.addEventListener("open", () => {
      delay = 1000;
      onStatus?.("live");
    });
    source.addEventListener("runs", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (typeof data.cursor === "number") cursor = data.cursor;
      if (Array.isArray(data.runs) && data.runs.length) onRuns(data.runs);
    });
    source.addEventListener("error", () => {
      // Reconnect ourselves, so that the URL carries the latest cursor.
      source.close();
      if (closed) return;
      onStatus?.("reconnecting");
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    });
  }

  open();
  return () => {
    closed = true;
    clearTimeout(timer);
    source?.close();
  };
}
