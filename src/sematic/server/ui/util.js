// Small helpers shared by the pages: DOM building, escaping, formatting times and states.

export const TERMINAL = new Set(["RESOLVED", "FAILED", "NESTED_FAILED", "CANCELED"]);

export function isFinished(run) {
  return TERMINAL.has(run.state);
}

// h("div", {class: "x", onclick: fn}, "text", child, [more, children]) -> HTMLElement.
export function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

// For markup built as a string (the graph): every value from the API goes through this.
export function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

export function shortId(id) {
  return id ? id.slice(0, 8) : "";
}

const pad = (n) => String(n).padStart(2, "0");

// 1234567 -> "1,234,567".
export function thousands(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

// Local time, "HH:MM:SS" today and "YYYY-MM-DD HH:MM:SS" otherwise (no Intl: its first use
// costs tens of milliseconds).
export function formatTime(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const date = new Date(seconds * 1000);
  const today = new Date();
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  if (date.toDateString() === today.toDateString()) return time;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

export function formatSeconds(seconds) {
  if (seconds < 1) return `${Math.max(0, Math.round(seconds * 1000))} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} m ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${String(minutes % 60).padStart(2, "0")} m`;
}

// How long a run took (or has been taking, while it is not finished).
export function duration(run) {
  const start = run.started_at;
  if (start === null || start === undefined) return "—";
  let end = run.ended_at;
  if (end === null || end === undefined) end = isFinished(run) ? run.updated_at : Date.now() / 1000;
  return formatSeconds(Math.max(0, end - start));
}

export function stateBadge(state) {
  return h("span", { class: `state state-${state}`, "data-state": state }, state);
}

export function tagChips(tags) {
  return (tags || []).map((tag) => h("span", { class: "tag" }, tag));
}

// Parses "#/runs/ID?run=X" into {path: "/runs/ID", params: URLSearchParams}.
export function parseHash(hash) {
  const raw = (hash || "").replace(/^#/, "") || "/";
  const [path, query] = raw.split("?", 2);
  return { path: path || "/", params: new URLSearchParams(query || "") };
}

export function hashOf(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") query.set(key, value);
  }
  const text = query.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

// Calls fn at most once per `wait` ms, trailing.
export function debounce(fn, wait) {
  let timer = null;
  const call = () => {
    timer = null;
    fn();
  };
  const wrapped = () => {
    if (timer === null) timer = setTimeout(call, wait);
  };
  wrapped.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return wrapped;
}

// The header's indicator of the events stream: "live", "reconnecting" or null (hidden).
export function setLive(status) {
  const element = document.getElementById("live");
  if (!element) return;
  element.hidden = !status;
  element.dataset.status = status || "";
  element.textContent = status === "live" ? "live" : status === "reconnecting" ? "reconnecting…" : "";
}
