// Greenline console: complaints and feedback. Anyone on the line logs one; supervisors and
// protection staff follow it from received to closed with the answer given, against its
// deadlines (acknowledge, respond), and classify it (a sensitive one goes to its focal point).
// Calls (docs/api/complaints.md): POST/GET /api/v1/complaints, GET/PATCH /api/v1/complaints/{id},
// POST /api/v1/complaints/{id}/acknowledge|start|respond|close.
"use strict";

import { api } from "../api.js";
import { t, tc, fmtTime, fmtDuration } from "../i18n.js";
import { h, clear, fill, field, showError, clearErrors, formError, values, panel, table, dl, randomKey } from "../dom.js";
import { needOps } from "./common.js";

const TYPES = ["complaint", "feedback", "suggestion", "appreciation"];
const CHANNELS = ["call", "walk_in", "sms", "email", "web", "letter", "suggestion_box"];
const KINDS = ["psea", "fraud", "staff_misconduct"];
const STATUSES = ["received", "acknowledged", "in_progress", "responded", "closed"];
const RESPONSE_CHANNELS = ["call", "sms", "email", "in_person", "letter", "notice"];
const OUTCOMES = ["resolved", "not_resolved", "referred", "withdrawn", "unreachable"];

function due(ms, now) {
  if (!ms) return null;
  const left = ms - now;
  return left >= 0 ? h("span", { class: left < 3600000 ? "due-soon" : "due-ok" }, t("sla.left", { time: fmtDuration(left) }))
    : h("span", { class: "overdue" }, t("sla.overdue", { time: fmtDuration(-left) }));
}

export default async function complaintsView(main, app) {
  const user = app.user;
  const handler = user.roles.includes("supervisor") || user.roles.includes("protection");
  main.append(h("h1", { text: "nav.complaints" }));
  const box = h("div", {});
  main.append(box);
  if (!(await needOps(box, "complaints.api", ["POST /api/v1/complaints", "GET /api/v1/complaints"]))) return null;

  // ---------------------------------------------------------------- log one
  let key = randomKey();
  const form = h("form", { id: "complaint-form", novalidate: true },
    h("div", { class: "row" },
      field({ name: "type", label: "complaints.type", type: "select", required: true, options: TYPES.map((x) => [x, "complaints.type." + x]) }),
      field({ name: "channel", label: "complaints.channel", type: "select", required: true, options: CHANNELS.map((x) => [x, "complaints.channel." + x]) }),
      field({ name: "language", label: "complaints.language", required: true, attrs: { size: 5, autocomplete: "off" } })),
    field({ name: "description", label: "complaints.description", type: "textarea", required: true, hint: "complaints.description_hint", attrs: { maxlength: 4000 } }),
    h("div", { class: "row" },
      field({ name: "category", label: "complaints.category", attrs: { autocomplete: "off" } }),
      field({ name: "sensitive_kind", label: "complaints.sensitive_kind", type: "select", hint: "complaints.sensitive_hint",
        placeholder: "complaints.not_sensitive", options: KINDS.map((x) => [x, "complaints.kind." + x]) })),
    h("div", { class: "row" },
      field({ name: "case_number", label: "contact.case_number", attrs: { autocomplete: "off" } }),
      field({ name: "phone", label: "contact.phone", type: "tel", attrs: { autocomplete: "off", dir: "ltr" } }),
      field({ name: "contact_id", label: "complaints.contact_id", attrs: { autocomplete: "off" } })),
    field({ name: "anonymous", label: "complaints.anonymous", type: "checkbox" }),
    formError(),
    h("button", { type: "submit", class: "primary" }, t("complaints.submit")),
    h("p", { class: "done", role: "status" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const v = values(form);
    const body = { type: v.type || "", channel: v.channel || "", language: v.language || "", description: v.description || "" };
    for (const k of ["category", "sensitive_kind", "case_number", "phone", "contact_id"]) if (v[k]) body[k] = v[k];
    if (v.anonymous) body.anonymous = true;
    for (const k of ["type", "channel", "language", "description"])
      if (!body[k]) return showError(form, { field: k, message: t("form.required") });
    try {
      const c = await api("POST", "/api/v1/complaints", { body, idem: key });
      key = randomKey();
      form.reset();
      form.querySelector(".done").textContent = t("complaints.logged", { time: fmtTime(c.received_at) });
      if (handler) load();
    } catch (e) {
      showError(form, e);
    }
  });
  box.append(panel("complaints.new", { id: "complaint-new" }, form));

  if (!handler) return null;

  // ---------------------------------------------------------------- follow them
  const filters = h("form", { class: "inline-form", novalidate: true },
    field({ name: "status", label: "complaints.status", type: "select", placeholder: "complaints.any", options: STATUSES.map((x) => [x, "complaints.status." + x]) }),
    field({ name: "type", label: "complaints.type", type: "select", placeholder: "complaints.any", options: TYPES.map((x) => [x, "complaints.type." + x]) }),
    field({ name: "overdue", label: "complaints.overdue_only", type: "checkbox" }),
    formError());
  const listBox = h("div", {});
  const detail = h("div", { id: "complaint-detail" });
  box.append(panel("complaints.list", { id: "complaint-list" }, filters, listBox), detail);

  async function load() {
    const v = values(filters);
    const q = { limit: 100 };
    if (v.status) q.status = v.status;
    if (v.type) q.type = v.type;
    if (v.overdue) q.overdue = "true";
    try {
      const page = await api("GET", "/api/v1/complaints", { query: q });
      clearErrors(filters);
      const now = Date.now();
      fill(listBox, table([
        ["complaints.received", (c) => fmtTime(c.received_at)],
        ["complaints.type", (c) => tc("complaints.type.", c.type)],
        ["complaints.status", (c) => tc("complaints.status.", c.status) + (c.sensitive ? " · " + t("contact.sensitive") : "")],
        ["complaints.ack_due", (c) => (c.status === "received" ? due(c.acknowledge_due, now) : null)],
        ["complaints.respond_due", (c) => (["received", "acknowledged", "in_progress"].includes(c.status) ? due(c.respond_due, now) : null)],
        ["inbox.col.open", (c) => h("button", { type: "button", class: "small", onclick: () => open(c.id) }, t("inbox.open"))],
      ], page.items, { caption: "complaints.list", captionHidden: true, empty: "complaints.none" }));
    } catch (e) {
      showError(filters, e);
    }
  }

  async function open(id) {
    clear(detail);
    let c;
    try {
      c = await api("GET", "/api/v1/complaints/" + id);
    } catch (e) {
      detail.append(h("p", { class: "form-error", role: "alert" }, e.message));
      return;
    }
    const err = formError();
    const act = async (path, body, method) => {
      err.hidden = true;
      try {
        await api(method || "POST", "/api/v1/complaints/" + id + path, { body: body || {} });
        load();
        open(id);
      } catch (e) {
        err.textContent = e.message;
        err.hidden = false;
      }
    };
    const respond = h("form", { novalidate: true },
      field({ name: "response", label: "complaints.response", type: "textarea", attrs: { maxlength: 4000, rows: 3 } }),
      field({ name: "response_channel", label: "complaints.response_channel", type: "select", options: RESPONSE_CHANNELS.map((x) => [x, "complaints.rchannel." + x]) }),
      h("button", { type: "submit" }, t("complaints.respond")));
    respond.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = values(respond);
      act("/respond", { response: v.response || "", response_channel: v.response_channel || null });
    });
    const close = h("form", { novalidate: true },
      field({ name: "outcome", label: "complaints.outcome", type: "select", options: OUTCOMES.map((x) => [x, "complaints.outcome." + x]) }),
      field({ name: "answer", label: "complaints.answer", type: "textarea", attrs: { maxlength: 4000, rows: 2 } }),
      h("button", { type: "submit" }, t("complaints.close")));
    close.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const v = values(close);
      const body = { outcome: v.outcome || null };
      if (v.answer) body.answer = v.answer;
      act("/close", body);
    });
    const s = c.status;
    detail.append(h("div", { class: "card" },
      h("h3", {}, tc("complaints.type.", c.type) + " · " + tc("complaints.status.", s)),
      dl([
        ["complaints.received", fmtTime(c.received_at)],
        ["complaints.channel", tc("complaints.channel.", c.channel)],
        ["complaints.language", c.language],
        ["complaints.category", c.category],
        ["complaints.sensitive_kind", c.sensitive_kind ? tc("complaints.kind.", c.sensitive_kind) : null],
        ["complaints.ack_due", fmtTime(c.acknowledge_due)],
        ["complaints.respond_due", fmtTime(c.respond_due)],
        ["contact.case_number", c.case_number],
        ["contact.phone", c.phone],
        ["complaints.response", c.response],
        ["complaints.outcome", c.outcome ? tc("complaints.outcome.", c.outcome) : null],
      ]),
      h("div", { class: "kb-body" }, c.description),
      h("div", { class: "buttons" },
        s === "received" ? h("button", { type: "button", class: "primary", onclick: () => act("/acknowledge") }, t("complaints.acknowledge")) : null,
        s === "acknowledged" ? h("button", { type: "button", onclick: () => act("/start") }, t("complaints.start")) : null),
      err,
      ["acknowledged", "in_progress"].includes(s) ? respond : null,
      ["acknowledged", "in_progress", "responded", "received"].includes(s) ? close : null,
      c.history ? h("details", {}, h("summary", { text: "referral.history" }),
        table([
          ["referral.h.at", (x) => fmtTime(x.at)],
          ["referral.h.status", (x) => tc("complaints.status.", x.status)],
        ], c.history, { caption: "referral.history", captionHidden: true })) : null));
  }

  filters.addEventListener("change", load);
  await load();
  return null;
}
