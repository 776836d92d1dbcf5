// Greenline console: what several views share — the taxonomy, the "this API is not here yet"
// notice, a poller that pauses while a request is out.
"use strict";

import { api, hasOps, forgetOperations } from "../api.js";
import { t, has } from "../i18n.js";
import { h } from "../dom.js";

let taxPromise = null;

// GET /api/v1/taxonomy, once per page load.
export function taxonomy() {
  if (!taxPromise) taxPromise = api("GET", "/api/v1/taxonomy").catch((e) => {
    taxPromise = null;
    throw e;
  });
  return taxPromise;
}

// A category's label: the console's translation when it has one (cat.<code>), else the
// taxonomy's own label, else the code.
export function categoryLabel(tax, code) {
  const top = String(code).split(".")[0];
  const topLabel = () => {
    if (has("cat." + top)) return t("cat." + top);
    const c = tax.categories.find((x) => x.code === top);
    return c ? c.label : top;
  };
  if (top === code) return topLabel();
  if (has("cat." + code)) return topLabel() + " › " + t("cat." + code);
  for (const c of tax.categories)
    for (const s of c.subcategories) if (s.code === code) return topLabel() + " › " + s.label;
  return code;
}

// The notice a view shows when the API it needs is not in this deployment yet: which service
// and which operation, and nothing made up.
export function missingApi(whatKey, ops) {
  return h("div", { class: "notice missing-api", role: "status", "data-missing": [].concat(ops).join(", ") },
    h("p", {}, h("strong", {}, t("missing.title"))),
    h("p", {}, t("missing.text", { what: t(whatKey) })),
    h("p", { class: "hint" }, t("missing.ops"), " ", h("code", {}, [].concat(ops).join(", "))),
    h("button", { type: "button", onclick: () => { forgetOperations(); location.reload(); } }, t("missing.recheck")));
}

// Show the view body when every operation is served, else the notice. Returns true when served.
export async function needOps(container, whatKey, ops) {
  let ok = false;
  try {
    ok = await hasOps(ops);
  } catch (e) {
    container.append(h("p", { class: "form-error", role: "alert" }, e.message));
    return false;
  }
  if (!ok) container.append(missingApi(whatKey, ops));
  return ok;
}

// Run fn now and every ms milliseconds, never two at once. When fn answers false (its request
// failed: a service down, the network gone) the next run waits twice as long, up to 30 s, and
// the pace comes back with the first success: a forwarded request to a service that is down
// holds intake's loop until its timeout, so a screen must not keep knocking. Returns stop().
export function poll(fn, ms) {
  let stopped = false;
  let timer = null;
  let wait = ms;
  async function tick() {
    if (stopped) return;
    let ok = true;
    try {
      ok = (await fn()) !== false;
    } catch (e) {
      ok = false;
    }
    wait = ok ? ms : Math.min(wait * 2, 30000);
    if (!stopped) timer = setTimeout(tick, wait);
  }
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// True when err says the request may succeed later (a 5xx, the network), so a poller backs off.
export function transient(err) {
  return !err || err.status === 0 || err.status >= 500;
}
