// The web UI's entry point: hash routing between the pipelines page and the run page, and
// the API key field of the header. Plain ES modules, no build step, nothing from outside.

import { apiKey, setApiKey } from "./api.js";
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

window.addEventListener("hashchange", route);
route();
