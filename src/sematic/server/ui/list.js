// The pipelines page (#/): the latest run of each pipeline, or (#/?pipeline=NAME) every run
// of one pipeline; filtered by name, status and who submitted it, paginated, live through
// the events stream.

import { getJSON, subscribe } from "./api.js";
import { debounce, duration, formatTime, h, hashOf, isFinished, setLive, shortId, stateBadge, tagChips, thousands } from "./util.js";

const PAGE_SIZE = 20;
const FETCH_LIMIT = 500; // the API's largest page
const MAX_ROOTS = 10000; // root runs read to group pipelines by name
const STATES = ["CREATED", "SCHEDULED", "RAN", "RETRYING", "RESOLVED", "FAILED", "NESTED_FAILED", "CANCELED"];

export function showPipelines(main, params) {
  const filters = {
    q: params.get("q") || "",
    status: params.get("status") || "",
    user: params.get("user") || "",
    pipeline: params.get("pipeline") || "",
    page: Math.max(1, Number.parseInt(params.get("page") || "1", 10) || 1),
  };
  const grouped = !filters.pipeline;
  let disposed = false;
  let unsubscribe = null;
  let roots = new Map(); // grouped: every root run read; history: the current page
  let total = 0;
  let totalExact = true; // false: more than `total` runs match (shown as "10,000+")
  let nextCursor = null; // history: where the next page starts (null: this is the last)
  const cursors = new Map(); // history: page number -> the cursor it starts at
  let truncated = false;
  let loaded = false;
  const timers = [];

  document.title = grouped ? "Pipelines · Sematic" : `${filters.pipeline} · Sematic`;
  const body = h("tbody", {});
  const summary = h("span", { class: "muted count" });
  const pager = h("div", { class: "pager" });
  const notice = h("div", { class: "notice" });
  const search = h("input", {
    type: "search",
    name: "q",
    placeholder: grouped ? "Filter by name" : "",
    value: filters.q,
    "aria-label": "Filter by name",
    hidden: !grouped,
    oninput: () => {
      filters.q = search.value;
      filters.page = 1;
      remember();
      render();
    },
  });
  const reloadUser = debounce(() => load(), 300);
  const user = h("input", {
    type: "search",
    name: "user",
    placeholder: "Submitted by",
    value: filters.user,
    "aria-label": "Filter by the user who submitted",
    oninput: () => {
      filters.user = user.value.trim();
      filters.page = 1;
      remember();
      if (grouped) render();
      else reloadUser(); // filtered by the server (submitted_by)
    },
  });
  const status = h(
    "select",
    {
      name: "status",
      "aria-label": "Filter by status",
      onchange: () => {
        filters.status = status.value;
        filters.page = 1;
        remember();
        if (grouped) render();
        else load();
      },
    },
    h("option", { value: "" }, "Any status"),
    STATES.map((state) => h("option", { value: state, selected: state === filters.status }, state)),
  );

  main.replaceChildren(
    h(
      "section",
      { class: "list-page" },
      h(
        "div",
        { class: "page-head" },
        grouped
          ? h("h1", {}, "Pipelines")
          : h("h1", {}, h("a", { href: "#/", class: "back", title: "All pipelines" }, "←"), "Runs of ", h("code", {}, filters.pipeline)),
        summary,
      ),
      h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, search, status, user),
      notice,
      h(
        "table",
        { class: "runs" },
        h(
          "thead",
          {},
          h("tr", {}, ["Pipeline", "Status", "Started", "Duration", "Tags", "Submitted by", grouped ? "Runs" : "Run id"].map((t) => h("th", {}, t))),
        ),
        body,
      ),
      pager,
    ),
  );

  function remember() {
    const hash = hashOf("/", {
      pipeline: filters.pipeline,
      q: grouped ? filters.q : "",
      status: filters.status,
      user: filters.user,
      page: filters.page > 1 ? filters.page : "",
    });
    history.replaceState(null, "", hash);
  }

  // Grouped view: the newest root run of each name, with how many runs the name has.
  function groups() {
    const latest = new Map();
    const counts = new Map();
    for (const run of roots.values()) {
      if (filters.user && run.submitted_by !== filters.user) continue;
      counts.set(run.name, (counts.get(run.name) || 0) + 1);
      const known = latest.get(run.name);
      if (!known || run.created_at > known.created_at || (run.created_at === known.created_at && run.id < known.id)) {
        latest.set(run.name, run);
      }
    }
    const needle = filters.q.trim().toLowerCase();
    const rows = [...latest.values()]
      .filter((run) => !needle || run.name.toLowerCase().includes(needle))
      .filter((run) => !filters.status || run.state === filters.status)
      .sort((a, b) => b.created_at - a.created_at);
    return { rows, counts };
  }

  function row(run, count) {
    return h(
      "tr",
      { "data-run": run.id, "data-name": run.name },
      h(
        "td",
        {},
        h("a", { href: hashOf(`/runs/${run.id}`), class: "run-link" }, run.name),
        h("div", { class: "muted small" }, run.function_path),
      ),
      h("td", {}, stateBadge(run.state)),
      h("td", {}, formatTime(run.started_at ?? run.created_at)),
      h("td", { "data-duration": run.id }, duration(run)),
      h("td", {}, tagChips(run.tags)),
      h("td", { class: "submitted-by" }, run.submitted_by || h("span", { class: "muted" }, "—")),
      grouped
        ? h("td", {}, h("a", { href: hashOf("/", { pipeline: run.name, user: filters.user }), class: "muted" }, `${count} run${count === 1 ? "" : "s"}`))
        : h("td", {}, h("code", { class: "muted" }, shortId(run.id))),
    );
  }

  function render() {
    if (!loaded) return;
    let rows;
    let count;
    let counts = new Map();
    if (grouped) {
      const grouping = groups();
      counts = grouping.counts;
      count = grouping.rows.length;
      const pages = Math.max(1, Math.ceil(count / PAGE_SIZE));
      filters.page = Math.min(filters.page, pages);
      rows = grouping.rows.slice((filters.page - 1) * PAGE_SIZE, filters.page * PAGE_SIZE);
      summary.textContent = `${count} pipeline${count === 1 ? "" : "s"}`;
    } else {
      rows = [...roots.values()].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1));
      count = total;
      summary.textContent = totalExact ? `${count} run${count === 1 ? "" : "s"}` : `${thousands(count)}+ runs`;
    }
    notice.textContent = truncated ? `Grouped from the latest ${thousands(MAX_ROOTS)} pipeline runs.` : "";
    if (!rows.length) {
      const filtered = filters.q || filters.status || filters.user;
      const text = filtered ? "No pipeline matches these filters." : "No pipelines recorded yet: run one with LocalResolver and it appears here.";
      body.replaceChildren(h("tr", { class: "empty" }, h("td", { colspan: "7" }, text)));
    } else {
      body.replaceChildren(...rows.map((run) => row(run, counts.get(run.name) || 1)));
    }
    const pages = Math.max(1, Math.ceil(count / PAGE_SIZE));
    const last = grouped ? filters.page >= pages : !nextCursor;
    const go = (page) => () => {
      filters.page = page;
      remember();
      if (grouped) render();
      else load();
    };
    pager.replaceChildren(
      h("button", { type: "button", class: "button small", disabled: filters.page <= 1, onclick: go(filters.page - 1), "data-action": "previous" }, "‹ Previous"),
      h("span", { class: "muted" }, `page ${filters.page} of ${thousands(pages)}${grouped || totalExact ? "" : "+"}`),
      h("button", { type: "button", class: "button small", disabled: last, onclick: go(filters.page + 1), "data-action": "next" }, "Next ›"),
    );
  }

  async function load() {
    try {
      if (grouped) {
        // Page after page by cursor: each one costs the same however deep it is.
        const found = new Map();
        let cursor = null;
        truncated = false;
        for (;;) {
          const query = new URLSearchParams({ root_only: "true", limit: String(FETCH_LIMIT) });
          if (cursor) query.set("cursor", cursor);
          const page = await getJSON(`/runs?${query}`);
          for (const run of page.runs) found.set(run.id, run);
          cursor = page.next_cursor;
          if (!cursor || !page.runs.length) break;
          if (found.size >= MAX_ROOTS) {
            truncated = true;
            break;
          }
        }
        if (disposed) return;
        roots = found;
      } else {
        // "Next" follows the previous page's cursor; a page opened from the address (or
        // after a live reload) is read by offset (the server takes one up to 10,000).
        if (filters.page === 1) cursors.clear();
        const query = new URLSearchParams({ root_only: "true", name: filters.pipeline, limit: String(PAGE_SIZE) });
        const at = cursors.get(filters.page);
        if (at) query.set("cursor", at);
        else if (filters.page > 1) query.set("offset", String(Math.min((filters.page - 1) * PAGE_SIZE, 10000)));
        if (filters.status) query.set("status", filters.status);
        if (filters.user) query.set("submitted_by", filters.user);
        const page = await getJSON(`/runs?${query}`);
        if (disposed) return;
        roots = new Map(page.runs.map((run) => [run.id, run]));
        total = page.total;
        totalExact = page.total_exact !== false;
        nextCursor = page.next_cursor ?? null;
        if (nextCursor) cursors.set(filters.page + 1, nextCursor);
      }
      loaded = true;
      render();
    } catch (error) {
      if (!disposed) body.replaceChildren(h("tr", { class: "empty" }, h("td", { colspan: "7", class: "error" }, `Could not list the runs: ${error.message}`)));
    }
  }

  const reload = debounce(load, 800);

  function onRuns(runs) {
    let changed = false;
    for (const run of runs) {
      if (run.parent_id) continue;
      const known = roots.get(run.id);
      if (known && known.updated_at > run.updated_at) continue;
      if (grouped) {
        roots.set(run.id, run);
        changed = true;
      } else if (known) {
        roots.set(run.id, run);
        changed = true;
      } else if (run.name === filters.pipeline) {
        reload(); // a new run of this pipeline: the page's content shifts
      }
    }
    if (changed) render();
  }

  (async () => {
    await load();
    if (disposed) return;
    let since = 0;
    for (const run of roots.values()) since = Math.max(since, run.updated_at);
    unsubscribe = subscribe({ since: since ? since - 2 : 0, onRuns, onStatus: setLive });
  })();

  timers.push(
    setInterval(() => {
      for (const cell of body.querySelectorAll("[data-duration]")) {
        const run = roots.get(cell.dataset.duration);
        if (run && !isFinished(run)) cell.textContent = duration(run);
      }
    }, 1000),
  );

  return {
    dispose() {
      disposed = true;
      reload.cancel();
      reloadUser.cancel();
      unsubscribe?.();
      for (const timer of timers) clearInterval(timer);
      setLive(null);
    },
  };
}
