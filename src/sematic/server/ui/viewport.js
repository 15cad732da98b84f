// Pan, zoom and a minimap for the run page's graph. The SVG keeps its layout coordinates in
// its viewBox; zooming scales its width and height, and the pane scrolls it natively (so
// the scrollbars, keyboard scrolling and scrollIntoView keep working). Ctrl (or ⌘) + wheel,
// and a trackpad's pinch, zoom around the pointer; dragging the background pans; the
// minimap (shown when the graph does not fit) draws every box and the visible part, and
// moves the view where it is clicked or dragged.

import { STATE_COLOURS } from "./dag.js";

const MIN_ZOOM = 0.01;
const MAX_ZOOM = 2.5;
const STEP = 1.25;
const MINIMAP_W = 200;
const MINIMAP_H = 130;

export class Viewport {
  // scroller: the scrolling pane; svg: the graph; minimap: a <canvas>; zoomLabel: where the
  // zoom is written ("100%").
  constructor({ scroller, svg, minimap, zoomLabel }) {
    this.scroller = scroller;
    this.svg = svg;
    this.minimap = minimap;
    this.zoomLabel = zoomLabel;
    this.zoom = 1;
    this.width = 0;
    this.height = 0;
    this.boxes = null;
    this.stateOf = () => null;
    this.frame = 0;
    this.drag = null;

    scroller.addEventListener(
      "wheel",
      (event) => {
        if (!event.ctrlKey && !event.metaKey) return; // plain wheel: scroll as always
        event.preventDefault();
        this.zoomAt(this.zoom * Math.exp(-event.deltaY / 300), event.clientX, event.clientY);
      },
      { passive: false },
    );
    scroller.addEventListener("scroll", () => this.drawSoon());
    scroller.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || event.target.closest?.("[data-run], [data-toggle]")) return;
      const rect = scroller.getBoundingClientRect();
      if (event.clientX - rect.left >= scroller.clientWidth || event.clientY - rect.top >= scroller.clientHeight) return; // a scrollbar
      this.drag = { x: event.clientX, y: event.clientY, left: scroller.scrollLeft, top: scroller.scrollTop, id: event.pointerId };
      scroller.setPointerCapture(event.pointerId);
      scroller.classList.add("panning");
    });
    scroller.addEventListener("pointermove", (event) => {
      if (!this.drag || event.pointerId !== this.drag.id) return;
      scroller.scrollLeft = this.drag.left - (event.clientX - this.drag.x);
      scroller.scrollTop = this.drag.top - (event.clientY - this.drag.y);
    });
    const stop = (event) => {
      if (!this.drag || event.pointerId !== this.drag.id) return;
      this.drag = null;
      scroller.classList.remove("panning");
    };
    scroller.addEventListener("pointerup", stop);
    scroller.addEventListener("pointercancel", stop);

    minimap.width = MINIMAP_W;
    minimap.height = MINIMAP_H;
    let moving = false;
    const moveTo = (event) => {
      const rect = minimap.getBoundingClientRect();
      const { scale, ox, oy } = this.minimapScale();
      this.centerOn((event.clientX - rect.left - ox) / scale, (event.clientY - rect.top - oy) / scale);
    };
    minimap.addEventListener("pointerdown", (event) => {
      moving = true;
      minimap.setPointerCapture(event.pointerId);
      moveTo(event);
    });
    minimap.addEventListener("pointermove", (event) => moving && moveTo(event));
    minimap.addEventListener("pointerup", () => {
      moving = false;
    });
    this.resize = new ResizeObserver(() => this.drawSoon());
    this.resize.observe(scroller);
  }

  dispose() {
    this.resize.disconnect();
    cancelAnimationFrame(this.frame);
  }

  // A new layout: its size, its boxes (Map id -> {x, y, w, h, open}) and each box's state.
  setContent(width, height, boxes, stateOf) {
    this.width = width;
    this.height = height;
    this.boxes = boxes;
    this.stateOf = stateOf;
    this.apply();
  }

  apply() {
    this.svg.setAttribute("width", String(Math.ceil(this.width * this.zoom)));
    this.svg.setAttribute("height", String(Math.ceil(this.height * this.zoom)));
    this.svg.setAttribute("viewBox", `0 0 ${Math.ceil(this.width)} ${Math.ceil(this.height)}`);
    this.zoomLabel.textContent = `${Math.round(this.zoom * 100)}%`;
    this.drawSoon();
  }

  // Where the SVG starts in the pane's scrolled content (it is centered when narrower).
  offset() {
    const view = this.view();
    return {
      x: Math.max(0, (view.width - this.width * this.zoom) / 2),
      y: 0,
    };
  }

  view() {
    return { width: this.scroller.clientWidth, height: this.scroller.clientHeight };
  }

  // The layout point at the middle of the pane.
  center() {
    const view = this.view();
    const off = this.offset();
    return {
      x: (this.scroller.scrollLeft + view.width / 2 - off.x) / this.zoom,
      y: (this.scroller.scrollTop + view.height / 2 - off.y) / this.zoom,
    };
  }

  centerOn(x, y) {
    const view = this.view();
    const off = this.offset();
    this.scroller.scrollLeft = Math.max(0, off.x + x * this.zoom - view.width / 2);
    this.scroller.scrollTop = Math.max(0, off.y + y * this.zoom - view.height / 2);
  }

  show(box) {
    if (box) this.centerOn(box.x + box.w / 2, box.y + box.h / 2);
  }

  // Zooms keeping the layout point under (clientX, clientY) where it is.
  zoomAt(zoom, clientX, clientY) {
    const next = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom));
    if (Math.abs(next - this.zoom) < 1e-4) return;
    const rect = this.scroller.getBoundingClientRect();
    const px = clientX === undefined ? rect.width / 2 : clientX - rect.left;
    const py = clientY === undefined ? rect.height / 2 : clientY - rect.top;
    let off = this.offset();
    const x = (this.scroller.scrollLeft + px - off.x) / this.zoom;
    const y = (this.scroller.scrollTop + py - off.y) / this.zoom;
    this.zoom = next;
    this.apply();
    off = this.offset();
    this.scroller.scrollLeft = Math.max(0, off.x + x * next - px);
    this.scroller.scrollTop = Math.max(0, off.y + y * next - py);
  }

  zoomIn() {
    this.zoomAt(this.zoom * STEP);
  }

  zoomOut() {
    this.zoomAt(this.zoom / STEP);
  }

  // The whole graph in the pane (never enlarged past 100%).
  fit() {
    const view = this.view();
    if (!this.width || !this.height || !view.width || !view.height) return;
    this.zoom = Math.max(MIN_ZOOM, Math.min(1, view.width / this.width, view.height / this.height));
    this.apply();
    this.scroller.scrollLeft = 0;
    this.scroller.scrollTop = 0;
  }

  // Scale and offsets of the minimap's drawing.
  minimapScale() {
    const scale = Math.min(MINIMAP_W / Math.max(1, this.width), MINIMAP_H / Math.max(1, this.height));
    return { scale, ox: (MINIMAP_W - this.width * scale) / 2, oy: (MINIMAP_H - this.height * scale) / 2 };
  }

  // States changed: the minimap's colours too (at most once a frame).
  drawSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  draw() {
    const view = this.view();
    const fits = this.width * this.zoom <= view.width + 1 && this.height * this.zoom <= view.height + 1;
    this.minimap.hidden = fits || !this.boxes;
    if (this.minimap.hidden) return;
    const context = this.minimap.getContext("2d");
    const { scale, ox, oy } = this.minimapScale();
    context.clearRect(0, 0, MINIMAP_W, MINIMAP_H);
    context.fillStyle = "rgba(255,255,255,0.92)";
    context.fillRect(0, 0, MINIMAP_W, MINIMAP_H);
    for (const [id, box] of this.boxes) {
      const x = ox + box.x * scale;
      const y = oy + box.y * scale;
      const w = Math.max(1, box.w * scale);
      const h = Math.max(1, box.h * scale);
      const colour = STATE_COLOURS[this.stateOf(id)] || "#9aa5b1";
      if (box.open) {
        context.strokeStyle = colour;
        context.globalAlpha = 0.5;
        context.strokeRect(x, y, w, h);
      } else {
        context.fillStyle = colour;
        context.globalAlpha = 0.8;
        context.fillRect(x, y, w, h);
      }
    }
    context.globalAlpha = 1;
    const off = this.offset();
    context.strokeStyle = "#4f46e5";
    context.lineWidth = 1.5;
    context.strokeRect(
      ox + ((this.scroller.scrollLeft - off.x) / this.zoom) * scale,
      oy + ((this.scroller.scrollTop - off.y) / this.zoom) * scale,
      (view.width / this.zoom) * scale,
      (view.height / this.zoom) * scale,
    );
    context.lineWidth = 1;
  }
}
