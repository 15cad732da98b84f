// The run page (#/runs/ID): a pipeline's DAG, live through the events stream, with the
// selected run's details on the side; Cancel and Rerun.

import { ApiError, getJSON, postJSON, subscribe } from "./api.js";
import { defaultExpanded, layout, metaText, nodeClass, nodeMarkup, RunGraph, svgMarkup } from "./dag.js";
import { RunPanel } from "./panel.js";
import { debounce, duration, formatTime, h, hashOf, isFinished, setLive, stateBadge, tagChips, thousands } from "./util.js";

const SVG = "http://www.w3.org/2000/svg";
const APPEAR_TIMEOUT_MS = 60000;
const NODE_BATCH = 100; // nodes added to the graph per frame

// Fetches the graph; a run that does not exist yet (a rerun starting) is waited for.
async function fetchGraph(runId, isDisposed, onWait) {
  const deadline = Date.now() + APPEAR_TIMEOUT_MS;
  for (;;) {
    try {
      return await getJSON(`/runs/${runId}/graph`);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404 || Date.now() > deadline) throw error;
      onWait();
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (isDisposed()) return null;
    }
  }
}

export function showRun(main, runId, selectedId) {
  let disposed = false;
  let graph = null;
  let lay = null;
  let selected = selectedId || null;
  let elements = new Map();
  let unsubscribe = null;
  let panel = null;
  const toggled = new Map(); // run id -> expanded, as the user chose
  const timers = [];

  const status = h("div", { class: "loading" }, "Loading…");
  main.replaceChildren(status);

  const title = h("h1", {});
  const badge = h("span", {});
  const facts = h("div", { class: "run-facts" });
  const message = h("div", { class: "action-message", role: "status" });
  const cancelButton = h("button", { type: "button", class: "button danger", "data-action": "cancel", onclick: () => cancel() }, "Cancel");
  const rerunButton = h("button", { type: "button", class: "button", "data-action": "rerun", onclick: () => rerun(null) }, "Rerun");
  const counts = h("span", { class: "muted" });
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "dag");
  const scroller = h("div", { class: "graph-scroll" }, svg);
  const side = h("aside", { class: "panel" });

  const isExpanded = (id) => (toggled.has(id) ? toggled.get(id) : defaultExpanded(graph, id));

  function page() {
    return h(
      "section",
      { class: "run-page" },
      h(
        "div",
        { class: "run-header" },
        h("div", { class: "run-title" }, h("a", { href: "#/", class: "back", title: "All pipelines" }, "←"), title, badge),
        facts,
        h("div", { class: "run-actions" }, message, cancelButton, rerunButton),
      ),
      h(
        "div",
        { class: "run-body" },
        h(
          "div",
          { class: "graph-pane" },
          h(
            "div",
            { class: "graph-toolbar" },
            counts,
            h("button", { type: "button", class: "button small", "data-action": "expand-all", onclick: () => setAll(true) }, "Expand all"),
            h("button", { type: "button", class: "button small", "data-action": "collapse-all", onclick: () => setAll(false) }, "Collapse all"),
          ),
          scroller,
        ),
        side,
      ),
    );
  }

  function renderHeader() {
    const root = graph.runs.get(graph.rootId);
    document.title = `${root.name} · Sematic`;
    title.textContent = root.name;
    badge.replaceChildren(stateBadge(root.state));
    facts.replaceChildren(
      h("span", {}, h("span", { class: "muted" }, "started "), formatTime(root.started_at ?? root.created_at)),
      h("span", {}, h("span", { class: "muted" }, "duration "), h("span", { "data-duration": root.id }, duration(root))),
      h("code", { class: "muted", title: "root run id" }, root.id),
      ...(root.submitted_by ? [h("span", { "data-submitted-by": "" }, h("span", { class: "muted" }, "submitted by "), root.submitted_by)] : []),
      ...tagChips(root.tags),
    );
    cancelButton.hidden = isFinished(root);
  }

  // Boxes and edges at once; then the nodes in batches, one per frame, nearest to the
  // visible part first, so that no frame has to lay out 1,000 nodes' text.
  let generation = 0;
  function renderGraph(focusId) {
    generation += 1;
    const mine = generation;
    lay = layout(graph, isExpanded);
    const width = Math.ceil(lay.width);
    const height = Math.ceil(lay.height);
    const view = { width: scroller.clientWidth, height: scroller.clientHeight };
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const { markup, nodes } = svgMarkup(graph, lay, selected);
    svg.innerHTML = markup;
    const focus = focusId ? lay.boxes.get(lay.visible.get(focusId)) : null;
    if (focus) {
      scroller.scrollLeft = Math.max(0, focus.x + focus.w / 2 - view.width / 2);
      scroller.scrollTop = Math.max(0, focus.y + focus.h / 2 - view.height / 2);
    }
    // The SVG is centered when narrower than the pane.
    const left = scroller.scrollLeft - Math.max(0, (view.width - width) / 2);
    const cx = left + view.width / 2;
    const cy = scroller.scrollTop + view.height / 2;
    const distance = new Map();
    for (const id of nodes) {
      const box = lay.boxes.get(id);
      distance.set(id, Math.abs(box.x + box.w / 2 - cx) / 2 + Math.abs(box.y + box.h / 2 - cy));
    }
    nodes.sort((a, b) => distance.get(a) - distance.get(b));
    elements = new Map();
    for (const element of svg.querySelectorAll("[data-run]")) elements.set(element.dataset.run, element);
    const group = svg.querySelector("g.nodes");
    let next = 0;
    const batch = () => {
      if (mine !== generation) return; // rendered again since
      const end = Math.min(nodes.length, next + NODE_BATCH);
      const parts = [];
      for (let i = next; i < end; i += 1) parts.push(nodeMarkup(graph, nodes[i], lay.boxes.get(nodes[i]), selected));
      group.insertAdjacentHTML("beforeend", parts.join(""));
      for (let i = next; i < end; i += 1) elements.set(nodes[i], group.children[i]);
      next = end;
      if (next < nodes.length) requestAnimationFrame(batch);
      else svg.dataset.rendered = String(mine);
    };
    batch();
    counts.textContent = `${thousands(graph.runs.size)} runs · ${thousands(lay.boxes.size)} shown`;
  }

  function updateNodes(ids) {
    for (const id of ids) {
      const element = elements.get(id);
      const run = graph.runs.get(id);
      if (!element || !run) continue;
      const kind = element.classList.contains("cluster") ? "cluster" : "node";
      element.setAttribute("class", nodeClass(run, kind, id === selected));
      const meta = element.querySelector(":scope > .meta");
      if (meta) meta.textContent = metaText(graph, run);
    }
  }

  function scrollTo(id) {
    const box = lay?.boxes.get(lay.visible.get(id));
    if (!box) return;
    scroller.scrollLeft = Math.max(0, box.x + box.w / 2 - scroller.clientWidth / 2);
    scroller.scrollTop = Math.max(0, box.y + box.h / 2 - scroller.clientHeight / 2);
  }

  function select(id, { scroll = false } = {}) {
    if (!graph.runs.has(id)) return;
    const hidden = graph.ancestors(id).filter((a) => !isExpanded(a));
    const previous = selected;
    selected = id;
    if (hidden.length) {
      for (const ancestor of hidden) toggled.set(ancestor, true);
      renderGraph(scroll ? id : null);
    } else {
      updateNodes([previous, id].filter(Boolean));
      if (scroll) scrollTo(id);
    }
    history.replaceState(null, "", hashOf(`/runs/${graph.rootId}`, { run: id === graph.rootId ? "" : id }));
    panel.show(id);
  }

  function setAll(expanded) {
    for (const id of graph.children.keys()) if (id !== graph.rootId) toggled.set(id, expanded);
    renderGraph();
  }

  svg.addEventListener("mouseover", (event) => {
    const run = graph?.runs.get(event.target.closest("[data-run]")?.dataset.run);
    scroller.title = run ? `${run.name} — ${run.state}` : "";
  });

  svg.addEventListener("keydown", (event) => {
    const node = event.target.closest?.("[data-run]");
    if (!node || (event.key !== "Enter" && event.key !== " ")) return;
    event.preventDefault();
    if (event.key === " " && graph.hasChildren(node.dataset.run)) {
      const id = node.dataset.run;
      toggled.set(id, !isExpanded(id));
      renderGraph(id);
    } else {
      select(node.dataset.run);
    }
  });

  svg.addEventListener("click", (event) => {
    const toggle = event.target.closest("[data-toggle]");
    if (toggle) {
      const id = toggle.dataset.toggle;
      toggled.set(id, !isExpanded(id));
      renderGraph();
      return;
    }
    const node = event.target.closest("[data-run]");
    if (node) select(node.dataset.run);
  });

  async function cancel() {
    cancelButton.disabled = true;
    message.textContent = "Asking to cancel…";
    try {
      await postJSON(`/runs/${graph.rootId}/cancel`, {});
      message.textContent = "Cancel requested.";
    } catch (error) {
      message.textContent = error.status === 401 ? "Canceling needs the API key (top right)." : `Could not cancel: ${error.message}`;
      cancelButton.disabled = false;
    }
  }

  async function rerun(fromRunId) {
    message.textContent = "Starting the rerun…";
    try {
      const answer = await postJSON(`/runs/${graph.rootId}/rerun`, { from_run_id: fromRunId });
      location.hash = hashOf(`/runs/${answer.root_id}`);
    } catch (error) {
      message.textContent = error.status === 401 ? "Rerunning needs the API key (top right)." : `Could not rerun: ${error.message}`;
    }
  }

  const reload = debounce(async () => {
    try {
      const data = await getJSON(`/runs/${graph.rootId}/graph`);
      if (disposed) return;
      const fresh = new RunGraph(data);
      // Runs from the stream newer than this snapshot win.
      fresh.update([...graph.runs.values()]);
      for (const [id, artifact] of graph.artifacts) if (!fresh.artifacts.has(id)) fresh.artifacts.set(id, artifact);
      fresh.index();
      graph = fresh;
      panel.setGraph(graph);
      renderHeader();
      renderGraph();
      panel.refresh();
    } catch {
      // The stream will bring the next change; the page keeps what it shows.
    }
  }, 800);

  function onRuns(runs) {
    const { changed, added } = graph.update(runs);
    if (added) reload();
    if (changed.length) {
      updateNodes(changed);
      if (changed.includes(graph.rootId)) renderHeader();
      if (changed.includes(selected)) panel.refresh();
    }
  }

  async function start() {
    let data;
    try {
      data = await fetchGraph(runId, () => disposed, () => {
        status.textContent = `Waiting for run ${runId} to be recorded…`;
      });
    } catch (error) {
      if (!disposed) main.replaceChildren(h("div", { class: "error-page" }, h("h1", {}, "Cannot show this run"), h("p", {}, error.message), h("a", { href: "#/" }, "All pipelines")));
      return;
    }
    if (disposed || !data) return;
    graph = new RunGraph(data);
    if (graph.rootId !== runId && !selected) {
      selected = runId; // a nested run's page is its pipeline's page, with it selected
    }
    if (!graph.runs.has(selected)) selected = graph.rootId;
    panel = new RunPanel(side, graph, { select: (id) => select(id, { scroll: true }), rerunFrom: (id) => rerun(id) });
    main.replaceChildren(page());
    renderHeader();
    if (selected !== graph.rootId) for (const ancestor of graph.ancestors(selected)) if (!isExpanded(ancestor)) toggled.set(ancestor, true);
    renderGraph(selected !== graph.rootId ? selected : null);
    select(selected);

    let since = 0;
    for (const run of graph.runs.values()) since = Math.max(since, run.updated_at);
    unsubscribe = subscribe({ rootId: graph.rootId, since: Math.max(0, since - 2), onRuns, onStatus: setLive });
    timers.push(
      setInterval(() => {
        for (const element of main.querySelectorAll("[data-duration]")) {
          const run = graph.runs.get(element.dataset.duration);
          if (run && !isFinished(run)) element.textContent = duration(run);
        }
      }, 1000),
    );
  }

  start();
  return {
    dispose() {
      disposed = true;
      reload.cancel();
      unsubscribe?.();
      panel?.dispose();
      for (const timer of timers) clearInterval(timer);
      setLive(null);
    },
  };
}
