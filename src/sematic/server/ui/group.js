// The side panel of a folded group ("inc × 100,000"): the bar of its states (each state a
// filter), the histogram of its runs' durations, and a paged list of its runs, failures
// first, read from the server a page at a time (/runs/PARENT/children?function=F). Picking
// a run in the list shows its details (the run panel, with a way back here).

import { getJSON } from "./api.js";
import { STATE_ORDER, stateSegments } from "./dag.js";
import { duration, formatSeconds, formatTime, h, stateBadge, thousands } from "./util.js";

export const PAGE_SIZE = 50;
const BINS = 20;
const REFRESH_MS = 2000; // a live group's list and histogram, at most this often

function stateBar(states, width) {
  const bar = h("div", { class: "state-bar", role: "img" });
  const labels = [];
  for (const segment of stateSegments(states, width)) {
    labels.push(`${thousands(segment.count)} ${segment.state}`);
    bar.append(h("span", { class: `seg state-${segment.state}`, style: `width:${(100 * segment.w) / width}%`, title: `${thousands(segment.count)} ${segment.state}` }));
  }
  bar.setAttribute("aria-label", labels.join(", "));
  return bar;
}

function histogram(durations) {
  const bins = durations.bins || [];
  if (!durations.count || !bins.length) return h("div", { class: "muted" }, "No finished runs yet.");
  const most = Math.max(1, ...bins.map((bin) => bin.count));
  const bars = bins.map((bin) =>
    h(
      "div",
      { class: "hist-bin", title: `${formatSeconds(bin.start)} – ${formatSeconds(bin.end)}: ${thousands(bin.count)} runs` },
      h("span", { class: "hist-bar", style: `height:${bin.count ? Math.max(2, (100 * bin.count) / most) : 0}%` }),
    ),
  );
  const stat = (label, value) => h("span", {}, h("span", { class: "muted" }, `${label} `), value === null || value === undefined ? "—" : formatSeconds(value));
  return h(
    "div",
    { class: "histogram", "data-count": durations.count },
    h("div", { class: "hist-bars" }, bars),
    h("div", { class: "hist-axis muted" }, h("span", {}, formatSeconds(bins[0].start)), h("span", {}, formatSeconds(bins[bins.length - 1].end))),
    h("div", { class: "hist-stats" }, stat("min", durations.min), stat("p50", durations.p50), stat("p95", durations.p95), stat("max", durations.max)),
  );
}

export class GroupPanel {
  // actions: {pick(run), select(id)}: show a member run; select a run of the graph.
  constructor(element, actions) {
    this.element = element;
    this.actions = actions;
    this.group = null;
    this.status = "";
    this.order = "failed-first";
    this.offset = 0;
    this.token = 0;
    this.refreshTimer = null;
    this.lastRefresh = 0;
  }

  // Shows `run` (a group pseudo-run of the graph), from its first page unless it is the
  // group already shown.
  show(run, parentName) {
    const same = this.group?.id === run.id;
    this.group = run;
    this.parentName = parentName;
    if (!same) {
      this.status = "";
      this.order = "failed-first";
      this.offset = 0;
    }
    this.render();
    this.load();
  }

  // The group's counts changed (a refetch of the folded graph): the bar now, the list and
  // the histogram soon.
  update(run) {
    if (this.group?.id !== run.id) return;
    this.group = run;
    this.renderHead();
    if (this.refreshTimer) return;
    const wait = Math.max(0, this.lastRefresh + REFRESH_MS - Date.now());
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      if (this.group?.id === run.id) this.load();
    }, wait);
  }

  dispose() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    this.group = null;
    this.token += 1;
  }

  query(extra) {
    const params = new URLSearchParams({ function: this.group.group.function_path, ...extra });
    return params.toString();
  }

  render() {
    const run = this.group;
    this.head = h("div", { class: "group-head" });
    this.stateSelect = h(
      "select",
      { name: "group-status", "aria-label": "Only runs in this state", onchange: () => this.filter(this.stateSelect.value) },
    );
    this.orderSelect = h(
      "select",
      { name: "group-order", "aria-label": "Order", onchange: () => { this.order = this.orderSelect.value; this.offset = 0; this.load(); } },
      h("option", { value: "failed-first" }, "Failed first"),
      h("option", { value: "created" }, "Oldest first"),
    );
    this.orderSelect.value = this.order;
    this.rows = h("tbody", {});
    this.pagerText = h("span", { class: "muted group-range" });
    this.previous = h("button", { type: "button", class: "button small", "data-action": "group-previous", onclick: () => this.page(-1) }, "← Previous");
    this.next = h("button", { type: "button", class: "button small", "data-action": "group-next", onclick: () => this.page(1) }, "Next →");
    this.histogram = h("div", { class: "group-histogram" }, h("div", { class: "muted" }, "Loading…"));
    this.element.dataset.run = run.id;
    this.element.replaceChildren(
      this.head,
      h("details", { class: "section", open: true, "data-section": "durations" }, h("summary", {}, "Durations"), this.histogram),
      h(
        "details",
        { class: "section", open: true, "data-section": "group-runs" },
        h("summary", {}, "Runs"),
        h("div", { class: "group-filters" }, this.stateSelect, this.orderSelect),
        h("table", { class: "group-runs" }, h("thead", {}, h("tr", {}, h("th", {}, "Run"), h("th", {}, "State"), h("th", {}, "Duration"), h("th", {}, "Created"))), this.rows),
        h("div", { class: "group-pager" }, this.previous, this.pagerText, this.next),
      ),
    );
    this.renderHead();
  }

  renderHead() {
    const run = this.group;
    const group = run.group;
    const states = group.states || {};
    const legend = STATE_ORDER.filter((state) => states[state] > 0).map((state) =>
      h(
        "button",
        { type: "button", class: `legend state-${state}${this.status === state ? " active" : ""}`, "data-state": state, title: `Only ${state} runs`, onclick: () => this.filter(this.status === state ? "" : state) },
        h("span", { class: "swatch" }),
        `${thousands(states[state])} ${state.toLowerCase().replace("_", " ")}`,
      ),
    );
    const parent = group.parent_id;
    this.head.replaceChildren(
      h("div", { class: "panel-title" }, h("h2", {}, `${run.name} × ${thousands(group.count)}`), stateBadge(run.state)),
      h("code", { class: "function-path" }, group.function_path),
      h(
        "div",
        { class: "panel-sub" },
        h("span", { class: "muted" }, `${thousands(group.count)} runs of one function, folded`),
        group.nested_runs ? h("span", { class: "chip" }, `${thousands(group.nested_runs)} nested below them`) : null,
      ),
      parent
        ? h("div", { class: "panel-sub" }, "in ", h("a", { href: "#", class: "run-link", onclick: (e) => { e.preventDefault(); this.actions.select(parent); } }, this.parentName || parent))
        : null,
      stateBar(states, 400),
      h("div", { class: "legend-row" }, legend),
      h(
        "div",
        { class: "panel-sub muted" },
        `started ${formatTime(group.started_at)}`,
        " · ",
        group.ended_at ? `ended ${formatTime(group.ended_at)}` : "not finished",
      ),
    );
    const options = [h("option", { value: "" }, `All states (${thousands(group.count)})`)];
    for (const state of STATE_ORDER) {
      if (states[state] > 0 || state === this.status) options.push(h("option", { value: state }, `${state} (${thousands(states[state] || 0)})`));
    }
    this.stateSelect.replaceChildren(...options);
    this.stateSelect.value = this.status;
  }

  filter(state) {
    this.status = state;
    this.offset = 0;
    this.renderHead();
    this.load();
  }

  page(direction) {
    this.offset = Math.max(0, this.offset + direction * PAGE_SIZE);
    this.load();
  }

  async load() {
    const token = (this.token += 1);
    const group = this.group.group;
    this.lastRefresh = Date.now();
    const listQuery = { order: this.order, offset: String(this.offset), limit: String(PAGE_SIZE) };
    if (this.status) listQuery.status = this.status;
    this.element.setAttribute("aria-busy", "true");
    const [list, summary] = await Promise.allSettled([
      getJSON(`/runs/${group.parent_id}/children?${this.query(listQuery)}`),
      getJSON(`/runs/${group.parent_id}/children/summary?${this.query({ bins: String(BINS) })}`),
    ]);
    if (token !== this.token) return;
    this.element.removeAttribute("aria-busy");
    if (list.status === "fulfilled") this.fillList(list.value);
    else this.rows.replaceChildren(h("tr", { class: "empty" }, h("td", { colspan: 4, class: "error" }, `Could not list the runs: ${list.reason.message}`)));
    if (summary.status === "fulfilled") this.histogram.replaceChildren(histogram(summary.value.durations || {}));
    else this.histogram.replaceChildren(h("div", { class: "error" }, `Could not read the durations: ${summary.reason.message}`));
  }

  fillList(data) {
    const runs = data.runs || [];
    if (!runs.length && data.total > 0 && this.offset >= data.total) {
      // Fewer runs than before (a filter's count shrank): the last page.
      this.offset = Math.max(0, Math.floor((data.total - 1) / PAGE_SIZE) * PAGE_SIZE);
      this.load();
      return;
    }
    this.rows.replaceChildren(
      ...runs.map((run) =>
        h(
          "tr",
          { "data-run": run.id, tabindex: "0", onclick: () => this.actions.pick(run), onkeydown: (e) => e.key === "Enter" && this.actions.pick(run) },
          h("td", {}, h("a", { href: "#", class: "run-link", onclick: (e) => e.preventDefault() }, run.name), run.exception_message ? h("div", { class: "row-error", title: run.exception_message }, run.exception_message) : null),
          h("td", {}, stateBadge(run.state)),
          h("td", {}, duration(run)),
          h("td", { class: "muted" }, formatTime(run.created_at)),
        ),
      ),
    );
    if (!runs.length) this.rows.replaceChildren(h("tr", { class: "empty" }, h("td", { colspan: 4 }, "No runs match.")));
    const total = data.total ?? runs.length;
    this.pagerText.textContent = total ? `${thousands(this.offset + 1)}–${thousands(this.offset + runs.length)} of ${thousands(total)}` : "0 runs";
    this.previous.disabled = this.offset === 0;
    this.next.disabled = this.offset + runs.length >= total;
  }
}
