// The side panel of the run page: everything about the selected run, its values rendered
// by type, and its logs followed live while the run is not finished.

import { ApiError, getJSON, LogTail } from "./api.js";
import { duration, formatTime, h, isFinished, shortId, stateBadge, tagChips } from "./util.js";
import { podsView } from "./pods.js";
import { renderArtifact } from "./values.js";

const LOG_POLL_MS = 1000;

function section(title, body, { name, closed }) {
  return h("details", { class: "section", open: !closed.has(name), "data-section": name }, h("summary", {}, title), body);
}

function facts(rows) {
  return h(
    "table",
    { class: "facts" },
    h(
      "tbody",
      {},
      rows.filter(([, value]) => value !== null && value !== undefined && value !== "").map(([key, value]) => h("tr", {}, h("th", {}, key), h("td", {}, value))),
    ),
  );
}

function json(value) {
  return h("pre", { class: "code small" }, JSON.stringify(value, null, 2));
}

export class RunPanel {
  // graph: the RunGraph; actions: {select(id), rerunFrom(id)}.
  constructor(element, graph, actions) {
    this.element = element;
    this.graph = graph;
    this.actions = actions;
    this.runId = null;
    this.logs = null;
    this.artifactRequests = new Map();
    this.extra = new Map(); // runs shown that the graph does not list (members of a group)
    this.back = null; // {runId, label, go()}: the way back to the group a member was picked in
  }

  setGraph(graph) {
    this.graph = graph;
  }

  lookup(id) {
    return this.graph.runs.get(id) || this.extra.get(id);
  }

  // A run the graph does not list (a group's member): shown as any other; `back` puts a
  // link above its details to the group it was picked in.
  adopt(run, back) {
    const known = this.extra.get(run.id);
    if (!known || !(known.updated_at > run.updated_at)) this.extra.set(run.id, run);
    if (back !== undefined) this.back = back;
  }

  show(runId) {
    if (runId === this.runId) return;
    this.stopLogs();
    this.runId = runId;
    const run = this.lookup(runId);
    if (!run) {
      this.element.replaceChildren(h("div", { class: "panel-empty" }, "Select a run in the graph to see its details."));
      return;
    }
    this.logs = this.logsView(run);
    this.render(run);
    this.followLogs();
    this.loadTransitions(runId);
  }

  // The selected run changed (events stream): render again, keeping the logs as they are.
  refresh() {
    const run = this.lookup(this.runId);
    if (!run) return;
    const scroll = this.element.scrollTop;
    this.render(run);
    this.element.scrollTop = scroll;
    this.loadTransitions(run.id);
    if (this.logs && !this.logs.timer && !this.logs.polling && !this.logs.finished) this.followLogs();
  }

  dispose() {
    this.stopLogs();
    this.runId = null;
  }

  render(run) {
    const graph = this.graph;
    const closed = new Set();
    if (this.element.dataset.run === run.id) {
      for (const details of this.element.querySelectorAll("details.section:not([open])")) closed.add(details.dataset.section);
    }
    this.element.dataset.run = run.id;
    const parent = run.parent_id ? graph.runs.get(run.parent_id) : null;
    const back = this.back && this.back.runId === run.id ? this.back : null;
    const head = h(
      "div",
      { class: "panel-head" },
      back ? h("a", { href: "#", class: "back-to-group", "data-action": "back-to-group", onclick: (e) => { e.preventDefault(); back.go(); } }, `← ${back.label}`) : null,
      h("div", { class: "panel-title" }, h("h2", {}, run.name), stateBadge(run.state)),
      h("code", { class: "function-path" }, run.function_path),
      h(
        "div",
        { class: "panel-sub" },
        h("span", { class: "muted", title: run.id }, `run ${run.id}`),
        run.cache_hit ? h("span", { class: "chip" }, "cache hit") : null,
        h("span", { class: "chip" }, run.inline ? "inline" : run.execution ? "Kubernetes job" : "worker process"),
      ),
      parent
        ? h("div", { class: "panel-sub" }, "in ", h("a", { href: "#", class: "run-link", onclick: (e) => { e.preventDefault(); this.actions.select(parent.id); } }, parent.name))
        : null,
      run.id !== graph.rootId
        ? h("div", { class: "panel-actions" }, h("button", { type: "button", class: "button", "data-action": "rerun-from", onclick: () => this.actions.rerunFrom(run.id) }, "Rerun from this run"))
        : null,
    );
    const times = facts([
      ["State", stateBadge(run.state)],
      ["Created", formatTime(run.created_at)],
      ["Started", formatTime(run.started_at)],
      ["Ended", formatTime(run.ended_at)],
      ["Duration", h("span", { "data-duration": run.id }, duration(run))],
    ]);
    const transitions = h("div", { class: "transitions" });
    if (this.transitions?.runId === run.id) this.fillTransitions(transitions, this.transitions.list);

    const inputs = Object.entries(run.inputs || {});
    const inputsBody = inputs.length ? h("div", {}, inputs.map(([name, id]) => this.artifact(id, name))) : h("div", { class: "muted" }, "No inputs.");
    let output;
    if (run.output) output = this.artifact(run.output);
    else if (isFinished(run)) output = h("div", { class: "muted" }, "No output.");
    else output = h("div", { class: "muted" }, "Not yet: the run has not finished.");

    const failure =
      run.exception_type || run.exception_message || run.traceback
        ? section(
            "Exception",
            h(
              "div",
              { class: "exception" },
              h("div", { class: "exception-message" }, h("strong", {}, run.exception_type || "Error"), run.exception_message ? `: ${run.exception_message}` : ""),
              run.traceback ? h("pre", { class: "code traceback" }, run.traceback) : null,
            ),
            { name: "exception", closed },
          )
        : null;

    const settings = facts([
      ["Tags", (run.tags || []).length ? h("span", {}, tagChips(run.tags)) : null],
      ["Base image tag", run.base_image_tag ? h("code", {}, run.base_image_tag) : null],
      ["Container image", run.container_image ? h("code", {}, run.container_image) : null],
      ["Resources", run.resource_requirements ? json(run.resource_requirements) : null],
      ["Cache key", run.cache_key ? h("code", { class: "small" }, run.cache_key) : null],
      ["Root run", run.root_id !== run.id ? h("code", {}, shortId(run.root_id)) : null],
    ]);

    const pods = podsView(run, [...graph.runs.values()]);
    const sections = [
      head,
      failure,
      section("Times", h("div", {}, times, transitions), { name: "times", closed }),
      section("Inputs", inputsBody, { name: "inputs", closed }),
      section("Output", output, { name: "output", closed }),
      section("Logs", this.logs.element, { name: "logs", closed }),
      pods ? section("Kubernetes", pods, { name: "kubernetes", closed }) : null,
      run.docstring ? section("Docstring", h("pre", { class: "docstring" }, run.docstring), { name: "docstring", closed }) : null,
      run.source_code ? section("Source", h("pre", { class: "code source" }, run.source_code), { name: "source", closed }) : null,
      settings.querySelector("tr") ? section("Settings", settings, { name: "settings", closed }) : null,
    ];
    this.element.replaceChildren(...sections.filter(Boolean));
  }

  artifact(id, label) {
    const known = this.graph.artifacts.get(id);
    if (known) return renderArtifact(known, label);
    const holder = h("div", { class: "artifact loading" }, label ? `${label}: ` : "", "loading…");
    let request = this.artifactRequests.get(id);
    if (!request) {
      request = getJSON(`/artifacts/${id}`);
      this.artifactRequests.set(id, request);
    }
    request
      .then((artifact) => {
        this.graph.artifacts.set(id, artifact);
        holder.replaceWith(renderArtifact(artifact, label));
      })
      .catch((error) => {
        this.artifactRequests.delete(id);
        holder.replaceChildren(label ? `${label}: ` : "", h("span", { class: "error" }, error.message));
      });
    return holder;
  }

  async loadTransitions(runId) {
    try {
      const data = await getJSON(`/runs/${runId}`);
      if (this.runId !== runId) return;
      this.transitions = { runId, list: data.transitions || [] };
      const holder = this.element.querySelector(".transitions");
      if (holder) this.fillTransitions(holder, this.transitions.list);
    } catch {
      // The facts above already say the essentials.
    }
  }

  fillTransitions(holder, list) {
    if (!list.length) return;
    holder.replaceChildren(
      h("ol", { class: "timeline" }, list.map((t) => h("li", {}, stateBadge(t.state), h("span", { class: "muted" }, formatTime(t.at))))),
    );
  }

  logsView(run) {
    const text = h("pre", { class: "logs", "data-logs": run.id });
    const status = h("div", { class: "logs-status muted" }, "Loading logs…");
    return { element: h("div", {}, text, status), text, status, tail: new LogTail(run.id), timer: null, polling: false, finished: false, controller: new AbortController(), seen: false };
  }

  followLogs() {
    const logs = this.logs;
    const runId = this.runId;
    const poll = async () => {
      logs.timer = null;
      if (this.logs !== logs) return;
      const run = this.lookup(runId);
      const done = !run || isFinished(run); // read before polling: the last poll sees it all
      logs.polling = true;
      try {
        const chunk = await logs.tail.poll(logs.controller.signal);
        if (this.logs !== logs) return;
        logs.seen = true;
        if (chunk) {
          const pre = logs.text;
          const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
          if (chunk.reset) pre.textContent = chunk.text;
          else pre.append(chunk.text);
          if (atBottom) pre.scrollTop = pre.scrollHeight;
        }
        logs.status.textContent = done ? "" : "Following the log while the run is not finished…";
        if (!logs.text.textContent && done) logs.status.textContent = "The log is empty.";
      } catch (error) {
        if (this.logs !== logs || error.name === "AbortError") return;
        if (error instanceof ApiError && error.status === 404) {
          logs.status.textContent = done ? "No logs for this run." : "No logs yet; waiting…";
        } else if (error instanceof ApiError && error.status === 401) {
          logs.status.textContent = "Reading logs needs the API key (field at the top right).";
        } else {
          logs.status.textContent = `Could not read the logs: ${error.message}`;
        }
      } finally {
        logs.polling = false;
      }
      if (this.logs !== logs) return;
      if (done) logs.finished = true;
      else logs.timer = setTimeout(poll, LOG_POLL_MS);
    };
    poll();
  }

  stopLogs() {
    if (!this.logs) return;
    clearTimeout(this.logs.timer);
    this.logs.controller.abort();
    this.logs = null;
  }
}
