// The run page (#/runs/ID): a pipeline's DAG, live through the events stream, with the
// selected run's details on the side; Cancel and Rerun.
//
// The graph is read folded (?fold=FOLD): a fan-out of one function is one node, its runs
// listed a page at a time in the side panel (group.js), and runs deep in a big pipeline
// come collapsed, their children fetched when expanded. A small pipeline (at most
// FULL_GRAPH_MAX runs) is read whole, as it always was. While it runs, the stream's runs
// are applied once a frame; runs the page does not list (a group's members) only make it
// read the folded graph again, at most once a second (revalidated by its ETag), and the
// nodes are updated in place unless what is shown changed.

import { ApiError, getJSON, postJSON, subscribe } from "./api.js";
import { defaultExpanded, layout, metaText, nodeClass, nodeMarkup, RunGraph, svgMarkup } from "./dag.js";
import { GroupPanel } from "./group.js";
import { RunPanel } from "./panel.js";
import { duration, formatTime, h, hashOf, isFinished, setLive, stateBadge, tagChips, thousands } from "./util.js";
import { Viewport } from "./viewport.js";

const SVG = "http://www.w3.org/2000/svg";
const APPEAR_TIMEOUT_MS = 60000;
const NODE_BATCH = 100; // nodes added to the graph per frame
export const FOLD = 20; // siblings of one function folded into a group from this many
export const FULL_GRAPH_MAX = 1000; // a pipeline this small is shown whole
const REFETCH_MS = 1000;

// A pipeline of at most FULL_GRAPH_MAX runs comes whole (fold_above), in one request.
const foldedPath = (runId, parent) =>
  `/runs/${runId}/graph?fold=${FOLD}&fold_above=${FULL_GRAPH_MAX}${parent ? `&parent=${parent}` : ""}`;

// The graph to show: folded, or whole when the pipeline is small (the server decides).
async function readGraph(runId) {
  try {
    return await getJSON(foldedPath(runId), { cache: "no-cache" });
  } catch (error) {
    // A server that keeps no index to fold with answers 404 too: read the whole graph
    // (which answers 404 in its turn when the run is not recorded).
    if (error instanceof ApiError && error.status === 404) return getJSON(`/runs/${runId}/graph`, { cache: "no-cache" });
    throw error;
  }
}

// Fetches the graph; a run that does not exist yet (a rerun starting) is waited for.
async function fetchGraph(runId, isDisposed, onWait) {
  const deadline = Date.now() + APPEAR_TIMEOUT_MS;
  for (;;) {
    try {
      return await readGraph(runId);
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
  let selected = selectedId || null; // the run (or group) shown in the side panel
  let elements = new Map();
  let unsubscribe = null;
  let panel = null;
  let groupPanel = null;
  let viewport = null;
  const toggled = new Map(); // run id -> expanded, as the user chose
  const loadedParents = new Set(); // cut runs whose children were fetched (?parent=)
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
  const minimap = h("canvas", { class: "minimap", "aria-label": "Minimap: click to move the view", hidden: true });
  const zoomLabel = h("span", { class: "zoom-label muted", "data-zoom": "" }, "100%");
  const runSide = h("div", { class: "run-side" });
  const groupSide = h("div", { class: "group-side", hidden: true });
  const side = h("aside", { class: "panel" }, runSide, groupSide);

  const isExpanded = (id) => (toggled.has(id) ? toggled.get(id) : defaultExpanded(graph, id));
  // The node highlighted: the selected run's, or its group's when it is a group's member.
  const highlighted = () => {
    if (!selected || graph.runs.has(selected)) return selected;
    const run = panel?.lookup(selected);
    const group = run ? `group:${run.parent_id}:${run.function_path}` : null;
    return group && graph.runs.has(group) ? group : null;
  };

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
            h(
              "span",
              { class: "zoom-controls", title: "Zoom: these buttons, or Ctrl + wheel; drag the background to pan" },
              h("button", { type: "button", class: "button small", "data-action": "zoom-out", "aria-label": "Zoom out", onclick: () => viewport.zoomOut() }, "−"),
              zoomLabel,
              h("button", { type: "button", class: "button small", "data-action": "zoom-in", "aria-label": "Zoom in", onclick: () => viewport.zoomIn() }, "+"),
              h("button", { type: "button", class: "button small", "data-action": "fit", onclick: () => viewport.fit() }, "Fit"),
            ),
          ),
          scroller,
          minimap,
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

  const stateOf = (id) => graph.runs.get(id)?.state;

  // Boxes and edges at once; then the nodes in batches, one per frame, nearest to the
  // visible part first, so that no frame has to lay out 1,000 nodes' text.
  let generation = 0;
  function renderGraph(focusId) {
    generation += 1;
    const mine = generation;
    lay = layout(graph, isExpanded);
    viewport.setContent(lay.width, lay.height, lay.boxes, stateOf);
    const mark = highlighted();
    const { markup, nodes } = svgMarkup(graph, lay, mark);
    svg.innerHTML = markup;
    const focus = focusId ? lay.boxes.get(lay.visible.get(focusId)) : null;
    if (focus) viewport.show(focus);
    const { x: cx, y: cy } = viewport.center();
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
      for (let i = next; i < end; i += 1) parts.push(nodeMarkup(graph, nodes[i], lay.boxes.get(nodes[i]), mark));
      group.insertAdjacentHTML("beforeend", parts.join(""));
      for (let i = next; i < end; i += 1) elements.set(nodes[i], group.children[i]);
      next = end;
      if (next < nodes.length) requestAnimationFrame(batch);
      else svg.dataset.rendered = String(mine);
    };
    batch();
    const groups = [...graph.runs.values()].filter((run) => run.group).length;
    counts.textContent = `${thousands(graph.totalRuns)} runs · ${thousands(lay.boxes.size)} shown${groups ? ` · ${groups} folded` : ""}`;
  }

  // States or counts changed, not the shape: the nodes in place, no layout.
  function updateNodes(ids) {
    const mark = highlighted();
    for (const id of ids) {
      const element = elements.get(id);
      const run = graph.runs.get(id);
      if (!element || !run) continue;
      if (run.group && !element.classList.contains("cluster")) {
        const box = lay.boxes.get(id);
        if (!box) continue;
        element.insertAdjacentHTML("afterend", nodeMarkup(graph, id, box, mark));
        const fresh = element.nextElementSibling;
        element.remove();
        elements.set(id, fresh);
        continue;
      }
      const kind = element.classList.contains("cluster") ? "cluster" : "node";
      element.setAttribute("class", nodeClass(run, kind, id === mark));
      const meta = element.querySelector(":scope > .meta");
      if (meta) meta.textContent = metaText(graph, run);
    }
    viewport.drawSoon();
  }

  function showSide(group) {
    groupSide.hidden = !group;
    runSide.hidden = group;
  }

  function select(id, { scroll = false } = {}) {
    if (!graph.runs.has(id)) return;
    const hidden = graph.ancestors(id).filter((a) => !isExpanded(a));
    const previous = highlighted();
    selected = id;
    if (hidden.length) {
      for (const ancestor of hidden) toggled.set(ancestor, true);
      renderGraph(scroll ? id : null);
    } else {
      updateNodes([previous, id].filter(Boolean));
      if (scroll) viewport.show(lay?.boxes.get(lay.visible.get(id)));
    }
    history.replaceState(null, "", hashOf(`/runs/${graph.rootId}`, { run: id === graph.rootId ? "" : id }));
    const run = graph.runs.get(id);
    if (run.group) {
      panel.show(null);
      groupPanel.show(run, graph.runs.get(run.parent_id)?.name);
      showSide(true);
    } else {
      groupPanel.dispose();
      panel.show(id);
      showSide(false);
    }
  }

  // A run the graph does not list (a group's member, picked in the list or named in the
  // address): its details, with a link back to its group.
  function pick(run) {
    const group = `group:${run.parent_id}:${run.function_path}`;
    const inGroup = graph.runs.get(group);
    const previous = highlighted();
    panel.adopt(run, inGroup ? { runId: run.id, label: `${inGroup.name} × ${thousands(inGroup.group.count)}`, go: () => select(group) } : null);
    selected = run.id;
    if (previous !== highlighted()) updateNodes([previous, highlighted()].filter(Boolean));
    history.replaceState(null, "", hashOf(`/runs/${graph.rootId}`, { run: run.id }));
    panel.show(run.id);
    showSide(false);
  }

  function setAll(expanded) {
    for (const id of graph.children.keys()) if (id !== graph.rootId) toggled.set(id, expanded);
    renderGraph();
  }

  // Expands (or collapses) a run; a run the server cut has its children fetched first.
  async function toggle(id, focus) {
    const expand = !(graph.children.has(id) && isExpanded(id));
    if (expand && !graph.children.has(id) && graph.nested.has(id)) {
      try {
        const data = await getJSON(foldedPath(graph.rootId, id), { cache: "no-cache" });
        if (disposed) return;
        graph.merge(data);
        loadedParents.add(id);
      } catch (error) {
        message.textContent = `Could not read the runs in it: ${error.message}`;
        return;
      }
    }
    toggled.set(id, expand);
    renderGraph(focus ? id : null);
  }

  svg.addEventListener("mouseover", (event) => {
    const run = graph?.runs.get(event.target.closest("[data-run]")?.dataset.run);
    scroller.title = run ? (run.group ? `${run.name} × ${thousands(run.group.count)} — ${metaText(graph, run)}` : `${run.name} — ${run.state}`) : "";
  });

  svg.addEventListener("keydown", (event) => {
    const node = event.target.closest?.("[data-run]");
    if (!node || (event.key !== "Enter" && event.key !== " ")) return;
    event.preventDefault();
    if (event.key === " " && graph.hasChildren(node.dataset.run)) toggle(node.dataset.run, true);
    else select(node.dataset.run);
  });

  svg.addEventListener("click", (event) => {
    const button = event.target.closest("[data-toggle]");
    if (button) {
      toggle(button.dataset.toggle, false);
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

  // Reads the graph again (runs were added, or a group's members changed): the nodes are
  // updated in place when the same ones are shown, laid out again otherwise. One read at a
  // time: a change seen during a read asks for one more after it.
  let reading = false;
  let again = false;
  let lastRead = 0;
  let readTimer = null;
  function reload() {
    if (reading) again = true;
    else if (readTimer === null) readTimer = setTimeout(readAgain, Math.max(0, lastRead + REFETCH_MS - Date.now()));
  }
  async function readAgain() {
    readTimer = null;
    reading = true;
    lastRead = Date.now();
    try {
      const data = await readGraph(graph.rootId);
      const parents = data.folded ? [...loadedParents] : [];
      const more = await Promise.all(parents.map((id) => getJSON(foldedPath(graph.rootId, id), { cache: "no-cache" }).catch(() => null)));
      if (disposed) return;
      const fresh = new RunGraph(data);
      for (const extra of more) if (extra) fresh.merge(extra);
      // Runs from the stream newer than this snapshot win.
      fresh.update([...graph.runs.values()].filter((run) => !run.group));
      for (const [id, artifact] of graph.artifacts) if (!fresh.artifacts.has(id)) fresh.artifacts.set(id, artifact);
      fresh.index();
      const same = fresh.folded === graph.folded && fresh.shape() === graph.shape();
      const changed = [];
      if (same) {
        for (const [id, run] of fresh.runs) {
          const old = graph.runs.get(id);
          if (old !== run && (old.state !== run.state || old.updated_at !== run.updated_at || JSON.stringify(old.group) !== JSON.stringify(run.group))) changed.push(id);
        }
      }
      graph = fresh;
      panel.setGraph(graph);
      renderHeader();
      if (same) updateNodes(changed);
      else renderGraph();
      const shown = graph.runs.get(selected);
      if (shown?.group) groupPanel.update(shown);
      else panel.refresh();
    } catch {
      // The stream will bring the next change; the page keeps what it shows.
    } finally {
      reading = false;
      if (again && !disposed) {
        again = false;
        reload();
      }
    }
  }

  // The stream's runs, applied once a frame.
  let pending = [];
  let frame = 0;
  function flush() {
    frame = 0;
    const runs = pending;
    pending = [];
    if (disposed || !runs.length) return;
    const { changed, added } = graph.update(runs);
    let member = false;
    for (const run of runs) {
      if (!graph.runs.has(run.id) && panel.extra.has(run.id)) {
        panel.adopt(run);
        member ||= run.id === selected;
      }
    }
    if (added) reload();
    if (changed.length) {
      updateNodes(changed);
      if (changed.includes(graph.rootId)) renderHeader();
    }
    if (member || changed.includes(selected)) panel.refresh();
  }

  function onRuns(runs) {
    for (const run of runs) pending.push(run);
    if (!frame) frame = requestAnimationFrame(flush);
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
    panel = new RunPanel(runSide, graph, { select: (id) => select(id, { scroll: true }), rerunFrom: (id) => rerun(id) });
    groupPanel = new GroupPanel(groupSide, { pick, select: (id) => select(id, { scroll: true }) });
    let member = null;
    if (selected && !graph.runs.has(selected) && graph.folded && /^[0-9a-f]{32}$/.test(selected)) {
      try {
        member = await getJSON(`/runs/${selected}`); // in a group, or cut
      } catch {
        member = null;
      }
      if (disposed) return;
      if (member?.root_id !== graph.rootId) member = null;
    }
    if (!member && !graph.runs.has(selected)) selected = graph.rootId;
    main.replaceChildren(page());
    viewport = new Viewport({ scroller, svg, minimap, zoomLabel });
    renderHeader();
    if (member) {
      panel.adopt(member);
      renderGraph();
      pick(member);
    } else {
      if (selected !== graph.rootId) for (const ancestor of graph.ancestors(selected)) if (!isExpanded(ancestor)) toggled.set(ancestor, true);
      renderGraph(selected !== graph.rootId ? selected : null);
      select(selected);
    }

    let since = 0;
    for (const run of graph.runs.values()) if (!run.group) since = Math.max(since, run.updated_at);
    unsubscribe = subscribe({ rootId: graph.rootId, since: Math.max(0, since - 2), onRuns, onStatus: setLive });
    timers.push(
      setInterval(() => {
        for (const element of main.querySelectorAll("[data-duration]")) {
          const run = panel.lookup(element.dataset.duration);
          if (run && !isFinished(run)) element.textContent = duration(run);
        }
      }, 1000),
    );
  }

  start();
  return {
    dispose() {
      disposed = true;
      clearTimeout(readTimer);
      cancelAnimationFrame(frame);
      unsubscribe?.();
      panel?.dispose();
      groupPanel?.dispose();
      viewport?.dispose();
      for (const timer of timers) clearInterval(timer);
      setLive(null);
    },
  };
}
