// Renders an artifact's summary (the JSON preview the server stores; see
// sematic/storage/serialization/_summary.py) as readable HTML, by its shape.

import { h, thousands } from "./util.js";

const MAX_DEPTH = 8;

function hasKeys(value, keys) {
  return keys.every((key) => Object.prototype.hasOwnProperty.call(value, key));
}

function keysAre(value, keys, optional = []) {
  const names = Object.keys(value);
  return hasKeys(value, keys) && names.every((k) => keys.includes(k) || optional.includes(k));
}

function isScalar(value) {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

// The last line of a type key ("sematic-artifact/1\njson\nint" -> "int").
export function typeName(typeDescription) {
  if (!typeDescription) return "";
  if (typeDescription.type) return String(typeDescription.type);
  const key = String(typeDescription.type_key || "");
  return key.split("\n").pop();
}

function scalar(value, floatType, nested) {
  if (value === null) return h("span", { class: "v-none" }, "None");
  if (typeof value === "boolean") return h("span", { class: "v-bool" }, value ? "True" : "False");
  if (typeof value === "number") {
    const text = floatType && Number.isInteger(value) ? value.toFixed(1) : String(value);
    return h("span", { class: "v-num" }, text);
  }
  return h("span", { class: nested ? "v-str quoted" : "v-str" }, value);
}

function more(shown, length, what) {
  return h("div", { class: "v-more" }, `showing ${shown} of ${thousands(length)} ${what}`);
}

// A table whose first column holds row headers (keys, or a frame's index).
function table(head, rows, className) {
  return h(
    "table",
    { class: `v-table ${className || ""}` },
    head ? h("thead", {}, h("tr", {}, head.map((cell) => h("th", {}, cell)))) : null,
    h(
      "tbody",
      {},
      rows.map((row) => h("tr", {}, row.map((cell, i) => h(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, cell)))),
    ),
  );
}

const isFloat = (dtype) => /^float/.test(String(dtype || ""));

function list(items, depth) {
  if (items.every(isScalar) && items.length <= 20) {
    const parts = [];
    items.forEach((item, i) => {
      if (i) parts.push(", ");
      parts.push(scalar(item, false, true));
    });
    return h("span", { class: "v-inline" }, "[", parts, "]");
  }
  return h(
    "ol",
    { class: "v-list", start: "0" },
    items.map((item) => h("li", {}, render(item, depth + 1, true))),
  );
}

function mapping(object, depth) {
  const entries = Object.entries(object);
  if (!entries.length) return h("span", { class: "v-inline" }, "{}");
  return table(
    null,
    entries.map(([key, value]) => [key, render(value, depth + 1, true)]),
    "v-mapping",
  );
}

function frame(value, depth) {
  const [rows, columns] = value.shape;
  const head = ["", ...value.columns.map((c) => h("span", {}, c, h("small", {}, value.dtypes?.[c] || "")))];
  const body = value.head.map((row, i) => [
    h("span", { class: "v-index" }, String(value.index[i])),
    ...row.map((cell, j) => render(cell, depth + 1, false, isFloat(value.dtypes?.[value.columns[j]]))),
  ]);
  return h(
    "div",
    { class: "v-frame" },
    h("div", { class: "v-caption" }, `DataFrame · ${thousands(rows)} rows × ${columns} columns`),
    table(head, body, "v-dataframe"),
    rows > value.head.length ? more(value.head.length, rows, "rows") : null,
    value.truncated ? h("div", { class: "v-more" }, "some columns not shown") : null,
    value.describe ? statistics(value.describe, depth) : null,
  );
}

// DataFrame.describe(): one row per statistic (count, mean, std, min, quartiles, max).
function statistics(stats, depth) {
  if (!Array.isArray(stats.rows) || !stats.rows.length) return null;
  const body = stats.rows.map((row, i) => [
    h("span", { class: "v-index" }, String(stats.index[i])),
    ...row.map((cell) => render(cell, depth + 1, false)),
  ]);
  return h(
    "div",
    { class: "v-describe" },
    h("div", { class: "v-caption" }, "Statistics (describe)"),
    table(["", ...stats.columns], body, "v-stats"),
  );
}

function series(value, depth) {
  const [length] = value.shape;
  const name = value.name === null || value.name === undefined ? "" : String(value.name);
  const body = value.head.map((cell, i) => [
    h("span", { class: "v-index" }, String(value.index[i])),
    render(cell, depth + 1, false, isFloat(value.dtype)),
  ]);
  return h(
    "div",
    { class: "v-frame" },
    h("div", { class: "v-caption" }, `Series ${name} · ${thousands(length)} values · ${value.dtype}`),
    table(["", name || "value"], body, "v-dataframe"),
    length > value.head.length ? more(value.head.length, length, "values") : null,
  );
}

function array(value, depth) {
  return h(
    "div",
    { class: "v-array" },
    h("div", { class: "v-caption" }, `array · shape (${value.shape.join(", ")}) · ${value.dtype}`),
    list(value.values, depth),
    value.size > value.values.length ? more(value.values.length, value.size, "values") : null,
  );
}

// sematic.types values ({class: "sematic.types.X", ...}): links (Link, S3Bucket,
// S3Location, Hugging Face references) and a prompt with its response.
const LINK_URL = /^(https?|ftp):\/\//i;

function isSematicType(value, keys, optional = []) {
  return keysAre(value, ["class", ...keys], optional) && /^sematic\.types\./.test(String(value.class));
}

// A URL that is not a web address (javascript:, file:, ...) is shown, never followed.
const linkText = (label, url) => h("span", { class: "v-link-text" }, String(label), " ", h("code", {}, String(url)));

function link(value) {
  const label = String(value.label);
  if (!LINK_URL.test(String(value.href))) return linkText(label, value.href);
  return h(
    "a",
    { class: "v-link", href: value.href, title: value.title || value.href, target: "_blank", rel: "noopener noreferrer" },
    label,
    h("span", { class: "v-link-icon", "aria-hidden": "true" }, " \u2197"),
  );
}

function promptResponse(value, depth) {
  const part = (name, text) =>
    h(
      "div",
      { class: "v-prompt-part", "data-part": name.toLowerCase() },
      h("div", { class: "v-caption" }, name),
      h("div", { class: "v-prompt-text" }, render(text, depth + 1)),
    );
  return h("div", { class: "v-prompt" }, part("Prompt", value.prompt), part("Response", value.response));
}

// plotly.js, served by the server from its plotly package, is loaded the first time a figure
// is shown (it is large); a server without plotly answers 404 and figures stay JSON.
let plotlyLoading = null;
function loadPlotly() {
  plotlyLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/ui/vendor/plotly.min.js";
    script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("no Plotly")));
    script.onerror = () => reject(new Error("plotly.js is not served here"));
    document.head.append(script);
  });
  return plotlyLoading;
}

function plotly(figure, depth) {
  const box = h("div", { class: "v-plotly" });
  box.append(h("div", { class: "v-caption" }, "Plotly figure (JSON)"), tree(figure, depth));
  if (!figure || typeof figure !== "object") return box;
  loadPlotly().then(
    (Plotly) => {
      const chart = h("div", { class: "v-plotly-chart" });
      box.replaceChildren(chart);
      try {
        Plotly.newPlot(chart, figure.data || [], figure.layout || {}, { responsive: true });
      } catch (error) {
        box.replaceChildren(h("div", { class: "error" }, `Plotly: ${error.message}`), tree(figure, depth));
      }
    },
    () => {}, // not served: the JSON stays
  );
  return box;
}

// A collapsible JSON tree (<details>), for values shown as data rather than by shape.
function tree(value, depth) {
  if (isScalar(value)) return scalar(value, false, true);
  if (depth > MAX_DEPTH) return h("span", { class: "v-more" }, "…");
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const label = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  return h(
    "details",
    { class: "v-tree", open: depth < 2 },
    h("summary", {}, label),
    h(
      "ul",
      {},
      entries.map(([key, item]) => h("li", {}, h("span", { class: "v-key" }, key), ": ", tree(item, depth + 1))),
    ),
  );
}

export function render(value, depth = 0, nested = false, floatType = false) {
  if (isScalar(value)) return scalar(value, floatType, nested);
  if (depth > MAX_DEPTH) return h("span", { class: "v-more" }, "…");
  if (Array.isArray(value)) return list(value, depth);
  if (typeof value !== "object") return h("span", {}, String(value));

  // Figures and images ({class, size, image: "data:image/png;base64,..."}), plotly figures
  // ({class, plotly: figure JSON}), and previews left out for their size.
  if (keysAre(value, ["image"], ["class", "size"]) && typeof value.image === "string") {
    if (/^data:image\/(png|jpeg|gif|webp|avif|bmp|x-icon|svg\+xml);base64,/.test(value.image)) {
      const size = Array.isArray(value.size) ? ` · ${value.size.join(" × ")} px` : "";
      return h(
        "figure",
        { class: "v-figure" },
        h("img", { class: "v-image", src: value.image, alt: value.class || "image" }),
        h("figcaption", { class: "v-caption" }, `${value.class || "image"}${size}`),
      );
    }
  }
  if (keysAre(value, ["plotly"], ["class"])) return plotly(value.plotly, depth);
  if (isSematicType(value, ["label", "href"], ["title"])) return link(value);
  if (isSematicType(value, ["label", "url"])) return linkText(value.label, value.url);
  if (isSematicType(value, ["prompt", "response"])) return promptResponse(value, depth);
  if (keysAre(value, ["preview"], ["class", "size"]) && typeof value.preview === "string") {
    const size = Array.isArray(value.size) ? ` · ${value.size.join(" × ")} px` : "";
    return h("span", { class: "v-class" }, `<${value.class || "value"}>${size} · preview ${value.preview}`);
  }
  if (keysAre(value, ["text", "length", "truncated"])) {
    return h(
      "div",
      {},
      h("span", { class: "v-str" }, value.text),
      more(value.text.length, value.length, "characters"),
    );
  }
  if (keysAre(value, ["items", "length", "truncated"])) {
    const items = value.items;
    const shown = Array.isArray(items) ? items.length : Object.keys(items).length;
    return h("div", {}, render(items, depth, nested), more(shown, value.length, "items"));
  }
  if (keysAre(value, ["shape", "columns", "dtypes", "index", "head"], ["truncated", "describe"])) {
    return frame(value, depth);
  }
  if (keysAre(value, ["shape", "name", "dtype", "index", "head"])) return series(value, depth);
  if (keysAre(value, ["shape", "dtype", "size", "values"])) return array(value, depth);
  if (keysAre(value, ["bytes", "hex"])) {
    return h("span", { class: "v-bytes" }, `${thousands(value.bytes)} bytes: ${value.hex}${value.bytes > 32 ? "…" : ""}`);
  }
  if (keysAre(value, ["class"], ["shape", "dtype"])) {
    const extra = value.shape ? ` · shape (${value.shape.join(", ")}) · ${value.dtype}` : "";
    return h("span", { class: "v-class" }, `<${value.class}>${extra}`);
  }
  return mapping(value, depth);
}

// An artifact: its type, size and id, then its value.
export function renderArtifact(artifact, label) {
  const type = typeName(artifact.type_description);
  const floatType = type === "float";
  const key = String(artifact.type_description?.type_key || "");
  const path = key.split("\n").pop();
  return h(
    "div",
    { class: "artifact", "data-artifact": artifact.id },
    h(
      "div",
      { class: "artifact-head" },
      label ? h("span", { class: "param" }, label) : null,
      h("code", { class: "type", title: key }, type || key),
      path && path !== type ? h("code", { class: "type-key" }, path) : null,
      h("span", { class: "muted", title: artifact.id }, `${thousands(artifact.size)} B · ${artifact.id.slice(0, 10)}`),
    ),
    h("div", { class: "value" }, render(artifact.summary, 0, false, floatType)),
  );
}
