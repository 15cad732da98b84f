// A pipeline's runs as a DAG: the model (runs, nesting, data edges), a layered layout
// (longest-path layers, barycenter ordering sweeps) done per nesting level, and the SVG
// markup, built as strings: the boxes and edges in one DOM update, the nodes in batches.
//
// Nesting: a run with children is either collapsed (one node) or expanded (a box holding
// its children, laid out recursively in its place). An edge between two runs is drawn
// between their nearest visible ancestors; within one box, it orders the box's children.
//
// A folded graph (the server's ?fold=N) also has groups: siblings of one function, shown
// as ONE node ("inc × 100,000") with a bar of their states; they are kept in `runs` as
// pseudo-runs (`run.group` set, id "group:..."), so that nesting, edges and layout treat
// them as any run. A run whose children were not sent (`nested`) is collapsed with their
// counts; expanding it fetches them (RunGraph.merge).

import { escape, thousands } from "./util.js";

export const NODE_W = 188;
export const NODE_H = 50;
const GAP_X = 22;
const GAP_Y = 46;
const PAD = 14;
const HEADER = 50;
const MARGIN = 16;
const MAX_ROW = 40; // a layer wider than this wraps onto several rows
const SWEEPS = 4;
export const GROUP_H = 64;
export const BIG_GRAPH = 200;

// The order of the states in a group's bar and legend; their colours as in style.css.
export const STATE_ORDER = ["FAILED", "NESTED_FAILED", "RETRYING", "SCHEDULED", "RAN", "CREATED", "CANCELED", "RESOLVED"];
export const STATE_COLOURS = {
  CREATED: "#7b8794",
  SCHEDULED: "#2563eb",
  RAN: "#0e7490",
  RETRYING: "#b45309",
  RESOLVED: "#15803d",
  FAILED: "#dc2626",
  NESTED_FAILED: "#c2410c",
  CANCELED: "#6d28d9",
};
const ACTIVE = ["SCHEDULED", "RETRYING", "RAN", "CREATED"];

// The one state a group's node is coloured by: failures first, then work under way.
export function groupState(states) {
  if (states.FAILED) return "FAILED";
  if (states.NESTED_FAILED) return "NESTED_FAILED";
  for (const state of ACTIVE) if (states[state]) return state;
  if (states.CANCELED) return "CANCELED";
  return "RESOLVED";
}

// A group of the folded graph as a pseudo-run.
function groupRun(rootId, group) {
  return {
    id: group.id,
    root_id: rootId,
    parent_id: group.parent_id,
    name: group.name,
    function_path: group.function_path,
    state: groupState(group.states || {}),
    created_at: group.created_at,
    started_at: group.started_at,
    ended_at: group.ended_at,
    updated_at: 0,
    inline: true,
    group,
  };
}

export function isGroupId(id) {
  return typeof id === "string" && id.startsWith("group:");
}

function byCreation(a, b) {
  return a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class RunGraph {
  constructor(data) {
    this.rootId = data.root_id;
    this.folded = Boolean(data.folded);
    this.totalRuns = data.total_runs ?? data.runs.length;
    this.runs = new Map(data.runs.map((run) => [run.id, run]));
    for (const group of data.groups || []) this.runs.set(group.id, groupRun(this.rootId, group));
    this.artifacts = new Map((data.artifacts || []).map((a) => [a.id, a]));
    this.edges = data.edges || [];
    this.nested = new Map(Object.entries(data.nested || {}));
    this.index();
  }

  // Adds a folded graph of some run's descendants (?parent=P): its runs, groups, edges.
  merge(data) {
    for (const run of data.runs || []) {
      const known = this.runs.get(run.id);
      if (!known || !(known.updated_at > run.updated_at)) this.runs.set(run.id, run);
    }
    for (const group of data.groups || []) this.runs.set(group.id, groupRun(this.rootId, group));
    for (const artifact of data.artifacts || []) this.artifacts.set(artifact.id, artifact);
    const seen = new Set(this.edges.map(edgeKey));
    for (const edge of data.edges || []) if (!seen.has(edgeKey(edge))) this.edges.push(edge);
    for (const [id, counts] of Object.entries(data.nested || {})) this.nested.set(id, counts);
    // Runs whose children came with it are no longer cut.
    for (const run of data.runs || []) if (!(data.nested && run.id in data.nested)) this.nested.delete(run.id);
    this.index();
  }

  // What decides the layout: the nodes, their nesting, the edges, what is cut.
  shape() {
    const parts = [];
    for (const [id, run] of this.runs) parts.push(`${id}<${run.parent_id || ""}`);
    parts.sort();
    const edges = this.edges.map(edgeKey).sort();
    return `${parts.join(",")}|${edges.join(",")}|${[...this.nested.keys()].sort().join(",")}`;
  }

  index() {
    this.children = new Map();
    const ordered = [...this.runs.values()].sort(byCreation);
    for (const run of ordered) {
      if (run.parent_id && this.runs.has(run.parent_id)) {
        let list = this.children.get(run.parent_id);
        if (!list) this.children.set(run.parent_id, (list = []));
        list.push(run.id);
      }
    }
    // Within the box of their lowest common ancestor, an edge orders two siblings.
    this.clusterEdges = new Map();
    this.dataEdges = [];
    this.edgeCounts = new Map(); // "source>destination" -> how many values flow (a group's: many)
    const seenCluster = new Set();
    const seenData = new Set();
    for (const edge of this.edges) {
      const source = edge.source_run_id;
      const destination = edge.destination_run_id;
      if (!source || !destination || !this.runs.has(source) || !this.runs.has(destination)) continue;
      const pair = this.siblingsUnder(source, destination);
      if (!pair) continue;
      const [ancestor, from, to] = pair;
      const key = `${from}>${to}`;
      if (!seenCluster.has(key)) {
        seenCluster.add(key);
        let list = this.clusterEdges.get(ancestor);
        if (!list) this.clusterEdges.set(ancestor, (list = []));
        list.push([from, to]);
      }
      const dataKey = `${source}>${destination}`;
      this.edgeCounts.set(dataKey, (this.edgeCounts.get(dataKey) || 0) + (edge.count ?? 1));
      if (!seenData.has(dataKey)) {
        seenData.add(dataKey);
        this.dataEdges.push([source, destination]);
      }
    }
  }

  parentOf(id) {
    const parent = this.runs.get(id)?.parent_id;
    return parent && this.runs.has(parent) ? parent : null;
  }

  // [lowest common ancestor, its child above source, its child above destination], or null
  // when one run contains the other.
  siblingsUnder(source, destination) {
    const below = new Map(); // ancestor of source -> its child on the way to source
    let previous = null;
    for (let id = source; id !== null; id = this.parentOf(id)) {
      below.set(id, previous);
      previous = id;
    }
    if (below.has(destination)) return null;
    previous = destination;
    for (let id = this.parentOf(destination); id !== null; id = this.parentOf(id)) {
      if (below.has(id)) {
        const from = below.get(id);
        return from === null ? null : [id, from, previous];
      }
      previous = id;
    }
    return null;
  }

  // Children shown (or to be fetched: a run the server cut, in `nested`).
  hasChildren(id) {
    return this.children.has(id) || this.nested.has(id);
  }

  isGroup(id) {
    return Boolean(this.runs.get(id)?.group);
  }

  // How many runs are directly below `id`, a group counting its members.
  childCount(id) {
    const list = this.children.get(id);
    if (!list) return this.nested.get(id)?.count ?? 0;
    let count = 0;
    for (const child of list) count += this.runs.get(child)?.group?.count ?? 1;
    return count;
  }

  descendantCount(id) {
    let count = 0;
    const stack = [...(this.children.get(id) || [])];
    while (stack.length) {
      const next = stack.pop();
      count += 1;
      stack.push(...(this.children.get(next) || []));
    }
    return count;
  }

  ancestors(id) {
    const result = [];
    for (let parent = this.parentOf(id); parent !== null; parent = this.parentOf(parent)) {
      result.push(parent);
    }
    return result;
  }

  // Applies runs from the events stream; returns {changed: [ids], added: bool}. A folded
  // graph keeps only the runs it lists (the others are in groups or cut).
  update(runs) {
    const changed = [];
    let added = false;
    for (const run of runs) {
      if (run.root_id !== this.rootId) continue;
      const known = this.runs.get(run.id);
      if (!known) added = true;
      else if (known.updated_at > run.updated_at) continue;
      if (!known && this.folded) continue;
      this.runs.set(run.id, run);
      if (known) changed.push(run.id);
    }
    return { changed, added };
  }
}

function edgeKey(edge) {
  return `${edge.source_run_id}>${edge.destination_run_id}:${edge.parameter}`;
}

// The default: the root expanded; the rest expanded too unless the graph is big.
export function defaultExpanded(graph, id) {
  return id === graph.rootId || graph.runs.size <= BIG_GRAPH;
}

// Orders the nodes of a layered graph: a few barycenter sweeps, down then up.
function orderLayers(layers, predecessors, successors) {
  const position = new Map();
  for (const layer of layers) layer.forEach((id, i) => position.set(id, (i + 0.5) / layer.length));
  const sweep = (layer, neighbours) => {
    const keys = new Map();
    for (const id of layer) {
      const around = neighbours.get(id);
      if (around && around.length) {
        let sum = 0;
        for (const other of around) sum += position.get(other);
        keys.set(id, sum / around.length);
      } else {
        keys.set(id, position.get(id));
      }
    }
    layer.sort((a, b) => keys.get(a) - keys.get(b) || position.get(a) - position.get(b));
    layer.forEach((id, i) => position.set(id, (i + 0.5) / layer.length));
  };
  for (let pass = 0; pass < SWEEPS; pass += 1) {
    if (pass % 2 === 0) for (let i = 1; i < layers.length; i += 1) sweep(layers[i], predecessors);
    else for (let i = layers.length - 2; i >= 0; i -= 1) sweep(layers[i], successors);
  }
}

// Lays out `ids` (siblings) with the edges between them; sizes come from nested layouts.
function placeLevel(graph, parentId, ids, isOpen) {
  const items = new Map();
  for (const id of ids) {
    if (isOpen(id)) {
      const sub = placeLevel(graph, id, graph.children.get(id), isOpen);
      items.set(id, { id, open: true, sub, w: Math.max(sub.width + 2 * PAD, NODE_W), h: sub.height + HEADER + PAD });
    } else {
      items.set(id, { id, open: false, w: NODE_W, h: graph.isGroup(id) ? GROUP_H : NODE_H });
    }
  }
  // Longest-path layers (Kahn's algorithm, in creation order).
  const predecessors = new Map();
  const successors = new Map();
  const indegree = new Map(ids.map((id) => [id, 0]));
  for (const [from, to] of graph.clusterEdges.get(parentId) || []) {
    if (!items.has(from) || !items.has(to)) continue;
    if (!successors.has(from)) successors.set(from, []);
    if (!predecessors.has(to)) predecessors.set(to, []);
    successors.get(from).push(to);
    predecessors.get(to).push(from);
    indegree.set(to, indegree.get(to) + 1);
  }
  const layerOf = new Map();
  const queue = ids.filter((id) => indegree.get(id) === 0);
  for (const id of queue) layerOf.set(id, 0);
  for (let head = 0; head < queue.length; head += 1) {
    const id = queue[head];
    for (const next of successors.get(id) || []) {
      layerOf.set(next, Math.max(layerOf.get(next) ?? 0, layerOf.get(id) + 1));
      indegree.set(next, indegree.get(next) - 1);
      if (indegree.get(next) === 0) queue.push(next);
    }
  }
  let deepest = 0;
  for (const layer of layerOf.values()) deepest = Math.max(deepest, layer);
  for (const id of ids) if (!layerOf.has(id)) layerOf.set(id, deepest + 1); // a cycle: should not happen
  const layers = [];
  for (const id of ids) {
    const layer = layerOf.get(id);
    while (layers.length <= layer) layers.push([]);
    layers[layer].push(id);
  }
  orderLayers(layers, predecessors, successors);

  // Coordinates: rows top to bottom, each row centered.
  const rows = [];
  for (const layer of layers) {
    for (let start = 0; start < layer.length; start += MAX_ROW) rows.push(layer.slice(start, start + MAX_ROW));
  }
  const widths = rows.map((row) => row.reduce((sum, id) => sum + items.get(id).w, 0) + GAP_X * (row.length - 1));
  const width = Math.max(0, ...widths);
  let y = 0;
  const placed = [];
  rows.forEach((row, r) => {
    let x = (width - widths[r]) / 2;
    let tallest = 0;
    for (const id of row) {
      const item = items.get(id);
      item.x = x;
      item.y = y;
      x += item.w + GAP_X;
      tallest = Math.max(tallest, item.h);
      placed.push(item);
    }
    y += tallest + GAP_Y;
  });
  return { width, height: Math.max(0, y - GAP_Y), items: placed };
}

// Positions of every visible run: {boxes: Map id -> {x, y, w, h, open}, visible: Map run
// id -> id of the node or box that shows it, edges: [[from, to, how many values]], width,
// height}.
export function layout(graph, isExpanded) {
  const isOpen = (id) => graph.children.has(id) && isExpanded(id);
  const boxes = new Map();
  const top = placeLevel(graph, null, [graph.rootId], isOpen);
  const assign = (level, ox, oy) => {
    for (const item of level.items) {
      const x = ox + item.x;
      const y = oy + item.y;
      boxes.set(item.id, { x, y, w: item.w, h: item.h, open: item.open });
      if (item.open) assign(item.sub, x + (item.w - item.sub.width) / 2, y + HEADER);
    }
  };
  assign(top, MARGIN, MARGIN);

  const visible = new Map([[graph.rootId, graph.rootId]]);
  const stack = [graph.rootId];
  while (stack.length) {
    const id = stack.pop();
    const shownBy = visible.get(id);
    for (const child of graph.children.get(id) || []) {
      visible.set(child, shownBy === id && isOpen(id) ? child : shownBy);
      stack.push(child);
    }
  }
  const edges = [];
  const seen = new Map(); // "from>to" -> its edge
  for (const [source, destination] of graph.dataEdges) {
    const from = visible.get(source);
    const to = visible.get(destination);
    if (!from || !to || from === to) continue;
    const key = `${from}>${to}`;
    const count = graph.edgeCounts.get(`${source}>${destination}`) || 1;
    const known = seen.get(key);
    if (known) {
      known[2] += count;
      continue;
    }
    const edge = [from, to, count];
    seen.set(key, edge);
    edges.push(edge);
  }
  return { boxes, visible, edges, width: top.width + 2 * MARGIN, height: top.height + 2 * MARGIN };
}

function truncate(text, room) {
  const chars = Math.max(4, Math.floor(room / 7.4));
  return text.length <= chars ? text : `${text.slice(0, chars - 1)}…`;
}

export function metaText(graph, run) {
  if (run.group) return groupMeta(run.group);
  const parts = [run.state];
  if (run.cache_hit) parts.push("cached");
  if (!run.inline) parts.push("worker");
  const count = graph.childCount(run.id);
  if (count) parts.push(`${thousands(count)} nested`);
  return parts.join(" · ");
}

const EXECUTING = new Set(["SCHEDULED", "RETRYING"]);

export function nodeClass(run, kind, selected) {
  const live = EXECUTING.has(run.state) ? " running" : ""; // animated: keep it to a few
  return `${kind}${run.group ? " group" : ""} state-${run.state}${live}${selected ? " selected" : ""}`;
}

// "99,990 resolved · 10 failed": the two largest counts (failures always named).
export function groupMeta(group) {
  const states = Object.entries(group.states || {}).filter(([, n]) => n > 0);
  states.sort((a, b) => (b[0] === "FAILED") - (a[0] === "FAILED") || b[1] - a[1]);
  return states
    .slice(0, 2)
    .map(([state, n]) => `${thousands(n)} ${state.toLowerCase().replace("_", " ")}`)
    .join(" · ");
}

// The bar of a group's states: one segment per state, as wide as its share (at least 2
// pixels, so that 10 failures among 100,000 show).
export function stateSegments(states, width) {
  const entries = STATE_ORDER.filter((state) => states[state] > 0).map((state) => [state, states[state]]);
  const total = entries.reduce((sum, [, n]) => sum + n, 0);
  if (!total) return [];
  const min = Math.min(2, width / entries.length);
  const wanted = entries.map(([, n]) => Math.max(min, (n / total) * width));
  const excess = wanted.reduce((a, b) => a + b, 0) - width;
  const big = wanted.reduce((sum, w) => sum + (w > min ? w : 0), 0);
  let x = 0;
  return entries.map(([state, n], i) => {
    const w = wanted[i] > min && big > 0 ? wanted[i] - (excess * wanted[i]) / big : wanted[i];
    const segment = { state, count: n, x, w };
    x += w;
    return segment;
  });
}

function groupMarkup(run, box, selectedId) {
  const group = run.group;
  const bar = NODE_W - 28;
  const segments = stateSegments(group.states || {}, bar)
    .map((s) => `<rect class="seg state-${s.state}" x="${(14 + s.x).toFixed(1)}" y="31" width="${s.w.toFixed(1)}" height="8"><title>${thousands(s.count)} ${s.state}</title></rect>`)
    .join("");
  return (
    `<g class="${nodeClass(run, "node", run.id === selectedId)}" data-run="${escape(run.id)}" data-count="${group.count}" tabindex="0" transform="translate(${Math.round(box.x)},${Math.round(box.y)})">` +
    `<rect class="body" width="${NODE_W}" height="${GROUP_H}" rx="8"/>` +
    `<rect class="stack" x="4" y="${GROUP_H}" width="${NODE_W - 8}" height="4" rx="2"/>` +
    `<rect class="band" width="5" height="${GROUP_H - 16}" x="0" y="8" rx="2"/>` +
    `<text class="name" x="14" y="21">${escape(truncate(`${run.name} × ${thousands(group.count)}`, NODE_W - 24))}</text>` +
    `<rect class="bar" x="14" y="31" width="${bar}" height="8" rx="2"/>${segments}` +
    `<text class="meta" x="14" y="55">${escape(metaText(null, run))}</text></g>`
  );
}

function toggleMarkup(id, open, x) {
  return (
    `<g class="toggle" data-toggle="${id}" transform="translate(${x},9)">` +
    `<title>${open ? "Collapse" : "Expand"} nested runs</title>` +
    `<rect width="22" height="22" rx="5"/><text x="11" y="16">${open ? "−" : "+"}</text></g>`
  );
}

// One collapsed run's node, as markup.
export function nodeMarkup(graph, id, box, selectedId) {
  const run = graph.runs.get(id);
  if (run.group) return groupMarkup(run, box, selectedId);
  const toggle = graph.hasChildren(id);
  return (
    `<g class="${nodeClass(run, "node", id === selectedId)}" data-run="${id}" tabindex="0" transform="translate(${Math.round(box.x)},${Math.round(box.y)})">` +
    `<rect class="body" width="${NODE_W}" height="${NODE_H}" rx="8"/>` +
    `<rect class="band" width="5" height="${NODE_H - 16}" x="0" y="8" rx="2"/>` +
    `<text class="name" x="14" y="21">${escape(truncate(run.name, NODE_W - (toggle ? 50 : 24)))}</text>` +
    `<text class="meta" x="14" y="39">${escape(metaText(graph, run))}</text>` +
    `${toggle ? toggleMarkup(id, false, NODE_W - 32) : ""}</g>`
  );
}

// Everything but the collapsed nodes (the expanded boxes and the edges), as one string,
// ending with the empty group the nodes go in; and the ids of the collapsed nodes.
export function svgMarkup(graph, lay, selectedId) {
  const parts = [
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" ' +
      'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z"/></marker></defs>',
  ];
  const nodes = [];
  for (const [id, box] of lay.boxes) {
    if (!box.open) {
      nodes.push(id);
      continue;
    }
    const run = graph.runs.get(id);
    parts.push(
      `<g class="${nodeClass(run, "cluster", id === selectedId)}" data-run="${id}" transform="translate(${Math.round(box.x)},${Math.round(box.y)})">` +
        `<rect class="frame" width="${box.w}" height="${box.h}" rx="10"/>` +
        `<text class="name" x="14" y="21">${escape(truncate(run.name, box.w - 56))}</text>` +
        `<text class="meta" x="14" y="38">${escape(metaText(graph, run))}</text>` +
        `${toggleMarkup(id, true, box.w - 32)}</g>`,
    );
  }
  parts.push('<g class="edges">');
  for (const [from, to, count] of lay.edges) {
    const a = lay.boxes.get(from);
    const b = lay.boxes.get(to);
    const sx = Math.round(a.x + a.w / 2);
    const sy = Math.round(a.y + a.h);
    const tx = Math.round(b.x + b.w / 2);
    const ty = Math.round(b.y) - 2;
    const bend = Math.max(18, Math.abs(ty - sy) / 2);
    parts.push(
      `<path class="edge${count > 1 ? " many" : ""}" data-from="${escape(from)}" data-to="${escape(to)}" d="M${sx},${sy}C${sx},${sy + bend} ${tx},${ty - bend} ${tx},${ty}">` +
        `${count > 1 ? `<title>${thousands(count)} values</title>` : ""}</path>`,
    );
  }
  parts.push('</g><g class="nodes"></g>');
  return { markup: parts.join(""), nodes };
}
