// Greenline console: the audit trail (supervisors, admins). Filters by record, actor, action
// and time; newest first; "more" follows the cursor (a sparse filter may give a short page
// with more to come).
// Calls: GET /api/v1/audit.
"use strict";

import { api } from "../api.js";
import { t, fmtTime } from "../i18n.js";
import { h, clear, fill, field, showError, clearErrors, formError, values, table } from "../dom.js";

export default async function auditView(main) {
  const form = h("form", { class: "filters", id: "audit-form", novalidate: true },
    h("div", { class: "row" },
      field({ name: "record_type", label: "audit.record_type", attrs: { autocomplete: "off" } }),
      field({ name: "record_id", label: "audit.record_id", attrs: { autocomplete: "off" } }),
      field({ name: "actor", label: "audit.actor", attrs: { autocomplete: "off" } }),
      field({ name: "action", label: "audit.action", attrs: { autocomplete: "off" } })),
    h("div", { class: "row" },
      field({ name: "from", label: "audit.from", type: "datetime-local" }),
      field({ name: "to", label: "audit.to", type: "datetime-local" })),
    formError(),
    h("button", { type: "submit", class: "primary" }, t("audit.search")));
  const results = h("div", { id: "audit-results" });
  const more = h("button", { type: "button", hidden: true, id: "audit-more" }, t("audit.more"));
  main.append(h("h1", { text: "nav.audit" }), form, results, more);

  let cursor = null;
  let rows = [];
  let q = {};

  function draw() {
    fill(results, table([
      ["audit.time", (e) => fmtTime(e.time_ms)],
      ["audit.actor", (e) => (e.actor ? e.actor.slice(0, 8) : t("audit.system"))],
      ["audit.roles", (e) => (e.roles || []).join(", ")],
      ["audit.action", (e) => e.action],
      ["audit.record_type", (e) => e.record_type],
      ["audit.record_id", (e) => (e.record_id ? h("code", { title: e.record_id }, e.record_id.slice(0, 12)) : null)],
      ["audit.detail", (e) => e.detail],
      ["audit.request", (e) => (e.request_id ? h("code", { title: e.request_id }, e.request_id.slice(0, 8)) : null)],
    ], rows, { caption: "nav.audit", captionHidden: true, empty: cursor ? "audit.none_yet" : "audit.none" }));
    more.hidden = !cursor;
  }

  async function load(first) {
    clearErrors(form);
    try {
      const page = await api("GET", "/api/v1/audit", { query: { ...q, limit: 100, cursor: first ? null : cursor } });
      rows = first ? page.items : rows.concat(page.items);
      cursor = page.next_cursor;
      draw();
    } catch (e) {
      showError(form, e);
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = values(form);
    q = {};
    for (const k of ["record_type", "record_id", "actor", "action"]) if (v[k]) q[k] = v[k];
    if (v.from) q.from = new Date(v.from).getTime();
    if (v.to) q.to = new Date(v.to).getTime();
    load(true);
  });
  more.addEventListener("click", () => load(false));
  await load(true);
}
