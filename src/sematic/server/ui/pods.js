// What the side panel shows of the pods a run ran in: each attempt (Job, pod, node, image,
// resources, how it ended, the scheduler's events) and what the pods reserved; for the
// pipeline, the sum over its runs.

import { formatSeconds, formatTime, h } from "./util.js";

function usageText(usage) {
  const n = (key, digits) => Number(usage[key] || 0).toFixed(digits);
  return `${n("cpu_seconds", 1)} cpu·s, ${n("memory_gib_seconds", 1)} GiB·s, ${n("gpu_seconds", 0)} GPU·s`;
}

function resources(values) {
  const entries = Object.entries(values || {});
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(" ") : "none";
}

function ended(attempt) {
  let text = attempt.ended || "?";
  if (attempt.exit_code !== null && attempt.exit_code !== undefined) text += ` (exit code ${attempt.exit_code})`;
  return attempt.message ? `${text}: ${attempt.message}` : text;
}

function attemptView(attempt, number) {
  const ran =
    typeof attempt.started_at === "number" && typeof attempt.finished_at === "number"
      ? `${formatTime(attempt.started_at)} – ${formatTime(attempt.finished_at)} (${formatSeconds(attempt.finished_at - attempt.started_at)})`
      : "never started";
  const node = attempt.node ? attempt.node + (attempt.node_type ? ` (${attempt.node_type})` : "") : "no node";
  const rows = [
    ["Job", attempt.warm ? `${attempt.job} (a warm pod: the step ran in a process of its own)` : attempt.job],
    ["Pod", attempt.pod],
    ["Node", node],
    ["Image", attempt.image_digest ? `${attempt.image} (${attempt.image_digest})` : attempt.image],
    ["Requests", resources(attempt.requests)],
    ["Limits", resources(attempt.limits)],
    ["Ran", ran],
    ["Ended", ended(attempt)],
  ];
  const events = (attempt.events || []).map((e) =>
    h("li", {}, h("span", { class: "muted" }, formatTime(e.at)), ` ${e.reason}${e.count > 1 ? ` (×${e.count})` : ""}: ${e.message}`),
  );
  return h(
    "div",
    { class: "attempt", "data-attempt": String(number) },
    h("h4", {}, `Attempt ${number}`),
    h("table", { class: "facts" }, h("tbody", {}, rows.filter(([, v]) => v).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, String(v)))))),
    events.length ? h("ul", { class: "pod-events" }, events) : null,
  );
}

// The "Kubernetes" section's body, or null for a run that ran in no pod (its times say
// how long it ran on this machine).
export function podsView(run, runs) {
  const parts = [];
  const execution = run.execution;
  if (execution) {
    parts.push(h("div", { class: "usage" }, `Reserved: ${usageText(execution.usage || {})}`));
    (execution.attempts || []).forEach((attempt, i) => parts.push(attemptView(attempt, i + 1)));
  }
  if (run.parent_id === null || run.parent_id === undefined) {
    const total = { cpu_seconds: 0, memory_gib_seconds: 0, gpu_seconds: 0 };
    let any = false;
    for (const other of runs) {
      if (!other.execution) continue;
      any = true;
      for (const key of Object.keys(total)) total[key] += Number((other.execution.usage || {})[key] || 0);
    }
    if (any) parts.unshift(h("div", { class: "usage pipeline-usage" }, `Pipeline reserved: ${usageText(total)}`));
  }
  return parts.length ? h("div", { class: "pods" }, parts) : null;
}
