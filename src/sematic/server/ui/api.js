// The JSON API under /api/v1, the API key kept in localStorage, logs tails and the events
// stream (Server-Sent Events read through fetch, so that it carries the API key too,
// reconnected with the last cursor). Every request sends the key when there is one; a 401
// calls the handler given to onUnauthorized (the page asks for the key).

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

let unauthorized = null;

export function onUnauthorized(handler) {
  unauthorized = handler;
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
    if (response.status === 401) unauthorized?.();
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

// Follows a run's log (a pod's too, appended to while it runs): each poll() asks only for
// the bytes after the ones already read (?offset=N; X-Log-Size is the whole log's size) and
// returns the new text, or null when nothing changed. A log replaced by a shorter one (the
// whole log of a pod that ended) is read again from its start.
export class LogTail {
  constructor(runId) {
    this.runId = runId;
    this.offset = 0;
    this.decoder = new TextDecoder();
  }

  async poll(signal) {
    const path = `/runs/${this.runId}/logs?offset=${this.offset}`;
    const response = await request(path, { signal });
    const size = Number(response.headers.get("X-Log-Size") ?? NaN);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (size < this.offset) {
      // Replaced by a shorter log: start over.
      this.offset = 0;
      this.decoder = new TextDecoder();
      return this.poll(signal).then((chunk) => ({ text: chunk ? chunk.text : "", reset: true }));
    }
    if (bytes.length === 0) return null;
    this.offset += bytes.length;
    return { text: this.decoder.decode(bytes, { stream: true }), reset: false };
  }
}

// The events of a text/event-stream body, as { event, data, id } objects.
async function* serverEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let fields = { event: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop(); // an unfinished line waits for the next chunk
    for (const line of lines) {
      if (line === "") {
        if (fields.data.length) yield { event: fields.event, data: fields.data.join("\n"), id: fields.id };
        fields = { event: "message", data: [], id: null };
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (name === "event") fields.event = text;
        else if (name === "data") fields.data.push(text);
        else if (name === "id") fields.id = text;
      }
    }
  }
}

// Subscribes to /events (runs of rootId, or root runs of every pipeline without it).
// onRuns(runs) gets every batch; onStatus("live" | "reconnecting") the connection's state.
// Returns a function that closes the stream. Without the API key it stops (the page asks
// for the key and opens the page again).
export function subscribe({ rootId, since, onRuns, onStatus }) {
  let cursor = since;
  let closed = false;
  let timer = null;
  let delay = 1000;
  const abort = new AbortController();

  async function open() {
    const query = new URLSearchParams();
    if (rootId) query.set("root_id", rootId);
    if (cursor !== null && cursor !== undefined) query.set("since", String(cursor));
    try {
      const response = await request(`/events?${query}`, {
        headers: { Accept: "text/event-stream" },
        signal: abort.signal,
      });
      delay = 1000;
      onStatus?.("live");
      for await (const event of serverEvents(response.body)) {
        if (event.event !== "runs") continue;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          continue;
        }
        if (typeof data.cursor === "number") cursor = data.cursor;
        if (Array.isArray(data.runs) && data.runs.length) onRuns(data.runs);
      }
    } catch (error) {
      if (closed || (error instanceof ApiError && error.status === 401)) return;
    }
    if (closed) return;
    // Reconnect, from the latest cursor.
    onStatus?.("reconnecting");
    timer = setTimeout(open, delay);
    delay = Math.min(delay * 2, 15000);
  }

  open();
  return () => {
    closed = true;
    clearTimeout(timer);
    abort.abort();
  };
}
