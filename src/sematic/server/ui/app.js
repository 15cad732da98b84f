// The web UI's entry point: hash routing between the pipelines page and the run page, and
// the API key: asked for once when the server answers 401 (a dialog), kept in localStorage,
// and shown in the header's field to change it. Plain ES modules, no build step.

import { apiKey, onUnauthorized, setApiKey } from "./api.js";
import { showPipelines } from "./list.js";
import { showRun } from "./run.js";
import { h, parseHash } from "./util.js";

const main = document.getElementById("main");
let current = null;

function route() {
  current?.dispose();
  current = null;
  window.scrollTo(0, 0);
  const { path, params } = parseHash(location.hash);
  const run = path.match(/^\/runs\/([0-9a-f]{32})\/?$/);
  if (path === "/" || path === "") {
    current = showPipelines(main, params);
  } else if (run) {
    current = showRun(main, run[1], params.get("run"));
  } else {
    document.title = "Not found · Sematic";
    main.replaceChildren(
      h("div", { class: "error-page" }, h("h1", {}, "Nothing here"), h("p", {}, `No page at ${path}.`), h("a", { href: "#/" }, "All pipelines")),
    );
  }
}

const keyField = document.getElementById("api-key");
keyField.value = apiKey();
function applyKey() {
  if (keyField.value.trim() === apiKey()) return;
  setApiKey(keyField.value.trim());
  route(); // read again what needed the key
}
keyField.addEventListener("change", applyKey);
keyField.form.addEventListener("submit", (event) => {
  event.preventDefault();
  applyKey();
});

// A 401: ask for the key (once, however many requests were refused), then read again.
const dialog = document.getElementById("key-dialog");
const dialogInput = document.getElementById("key-dialog-input");
const dialogWhy = dialog.querySelector(".key-dialog-why");
const whyText = dialogWhy.textContent;
onUnauthorized(() => {
  if (dialog.open) return;
  dialogWhy.textContent = apiKey() ? "The server refused the key this browser sent. Enter the right one." : whyText;
  dialogInput.value = "";
  dialog.showModal();
  dialogInput.focus();
});
dialog.addEventListener("cancel", () => {
  dialogInput.value = ""; // Escape: keep the key there was
});
dialog.addEventListener("close", () => {
  const value = dialogInput.value.trim();
  if (!value) return;
  keyField.value = value;
  setApiKey(value);
  route();
});

window.addEventListener("hashchange", route);
route();
