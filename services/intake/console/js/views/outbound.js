// Greenline console: outbound calling. Agents pick a campaign, take the next person to call in
// their languages, read the script, fill the questionnaire and record the outcome. Supervisors
// create campaigns, load their targets from a CSV file (or a ready-made query), follow the
// progress and download the results.
// Calls (docs/api/scheduler.md): GET/POST /api/v1/campaigns, GET /api/v1/campaigns/{id},
// POST /api/v1/campaigns/{id}/targets, POST /api/v1/campaigns/{id}/next,
// POST /api/v1/outbound/{id}/outcome, GET /api/v1/campaigns/{id}/progress|export.
"use strict";

import { api } from "../api.js";
import { t, tc, fmtTime, fmtNumber } from "../i18n.js";
import { h, clear, fill, field, showError, clearErrors, formError, values, panel, table, dl, randomKey } from "../dom.js";
import { needOps } from "./common.js";

const OUTCOMES = ["reached", "completed", "no_answer", "busy", "callback", "wrong_number", "refused"];
const KINDS = ["schedule_appointments", "collect_information", "verification", "information"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

// "field type [required] label…" per line → the questionnaire (choice: "field choice a|b|c label").
export function parseQuestions(text) {
  const out = [];
  for (const line of (text || "").split("\n")) {
    const parts = line.trim().split(/\s+/);
    if (!parts[0]) continue;
    const q = { field: parts[0], type: parts[1] || "string" };
    let i = 2;
    if (q.type === "choice") q.options = (parts[i++] || "").split("|").filter(Boolean);
    if (parts[i] === "required") { q.required = true; i++; }
    const label = parts.slice(i).join(" ");
    if (label) q.label = label;
    out.push(q);
  }
  return out;
}

function question(q) {
  const name = "answers." + q.field;
  const label = q.label || q.field;
  const common = { name, label: "outbound.q", required: !!q.required };
  let f;
  if (q.type === "bool") f = field({ ...common, type: "checkbox" });
  else if (q.type === "choice") f = field({ ...common, type: "select", options: (q.options || []).map((o) => [o, o, true]) });
  else if (q.type === "int") f = field({ ...common, type: "number", attrs: { min: q.min, max: q.max } });
  else if (q.type === "date") f = field({ ...common, type: "date" });
  else f = field({ ...common });
  f.querySelector("label").textContent = label;
  f.dataset.type = q.type;
  return f;
}

export default async function outboundView(main, app) {
  const user = app.user;
  const sup = user.roles.includes("supervisor");
  main.append(h("h1", { text: "nav.outbound" }));
  const box = h("div", {});
  main.append(box);
  if (!(await needOps(box, "outbound.api", ["GET /api/v1/campaigns", "POST /api/v1/campaigns/{id}/next", "POST /api/v1/outbound/{id}/outcome"]))) return null;

  const pick = h("form", { class: "inline-form", id: "campaign-pick", novalidate: true });
  const work = h("div", { id: "outbound-work" });
  const manage = h("div", { id: "campaigns" });
  box.append(panel("outbound.calling", {}, pick, work));
  if (sup) box.append(manage);

  let campaigns = [];
  async function loadCampaigns() {
    try {
      campaigns = (await api("GET", "/api/v1/campaigns", { query: { limit: 100 } })).items || [];
    } catch (e) {
      fill(pick, h("p", { class: "form-error", role: "alert" }, e.message));
      return;
    }
    fill(pick, 
      field({ name: "campaign", label: "outbound.campaign", type: "select", required: true,
        options: campaigns.map((c) => [c.campaign_id, c.name + " (" + tc("outbound.kind.", c.kind) + ")", true]) }),
      formError(),
      h("button", { type: "submit", class: "primary", id: "outbound-next" }, t("outbound.next")));
    if (sup) drawManage();
  }

  pick.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(pick);
    const v = values(pick);
    if (!v.campaign) return showError(pick, { field: "campaign", message: t("form.required") });
    try {
      const a = await api("POST", "/api/v1/campaigns/" + v.campaign + "/next", { body: { languages: user.languages || [] }, idem: randomKey() });
      drawAttempt(a);
    } catch (e) {
      showError(pick, e);
    }
  });

  function drawAttempt(a) {
    clear(work);
    if (!a.attempt_id) {
      work.append(h("p", { class: "hint" }, t("outbound.nothing", { time: a.next_due ? fmtTime(a.next_due) : "–" })));
      return;
    }
    const key = randomKey();
    const form = h("form", { id: "outcome-form", novalidate: true },
      (a.questionnaire || []).map(question),
      field({ name: "outcome", label: "outbound.outcome", type: "select", required: true, options: OUTCOMES.map((o) => [o, "outbound.outcome." + o]) }),
      field({ name: "callback_at", label: "outbound.callback_at", type: "datetime-local", hint: "outbound.callback_hint" }),
      formError(),
      h("button", { type: "submit", class: "primary" }, t("outbound.record")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const v = values(form);
      if (!v.outcome) return showError(form, { field: "outcome", message: t("form.required") });
      const body = { outcome: v.outcome };
      if (v.callback_at) body.callback_at = new Date(v.callback_at).getTime();
      const answers = {};
      for (const q of a.questionnaire || []) {
        const raw = v["answers." + q.field];
        if (q.type === "bool") answers[q.field] = !!raw;
        else if (raw !== undefined) answers[q.field] = q.type === "int" ? Number(raw) : raw;
      }
      if (Object.keys(answers).length) body.answers = answers;
      try {
        const r = await api("POST", "/api/v1/outbound/" + a.attempt_id + "/outcome", { body, idem: key });
        fill(work, h("p", { class: "done", role: "status" }, t("outbound.recorded", { status: tc("outbound.status.", r.status), next: r.next_at ? fmtTime(r.next_at) : "–" })));
      } catch (e) {
        showError(form, e);
      }
    });
    work.append(h("div", { class: "card" },
      dl([
        ["outbound.phone", a.phone ? h("strong", { class: "number", dir: "ltr" }, a.phone) : tc("outbound.phone_status.", a.phone_status)],
        ["outbound.case_no", a.case_no],
        ["outbound.language", a.language],
        ["outbound.attempt", t("outbound.attempt_of", { n: a.attempt, max: a.max_attempts })],
        ["outbound.lease", fmtTime(a.lease_until)],
      ]),
      a.script ? h("div", { class: "script" }, h("h3", { text: "outbound.script" }), h("div", { class: "kb-body" }, a.script)) : null,
      form));
    const first = form.querySelector("input, select");
    if (first) first.focus();
  }

  // ---------------------------------------------------------------- supervisors
  function drawManage() {
    clear(manage);
    const create = h("form", { id: "campaign-form", novalidate: true },
      h("div", { class: "row" },
        field({ name: "name", label: "outbound.name", required: true, attrs: { maxlength: 200 } }),
        field({ name: "kind", label: "outbound.kind", type: "select", required: true, options: KINDS.map((k) => [k, "outbound.kind." + k]) }),
        field({ name: "priority", label: "outbound.priority", type: "select", placeholder: false, options: [["normal", "priority.normal"], ["high", "priority.high"], ["low", "priority.low"]] })),
      field({ name: "script", label: "outbound.script", type: "textarea", required: true, attrs: { maxlength: 8000, rows: 4 } }),
      field({ name: "questionnaire", label: "outbound.questionnaire", type: "textarea", hint: "outbound.questionnaire_hint", attrs: { rows: 3 } }),
      h("div", { class: "row" },
        field({ name: "calling_hours", label: "outbound.calling_hours", attrs: { placeholder: "09:00-18:00" } }),
        field({ name: "calling_days", label: "outbound.calling_days", hint: "outbound.days_hint", attrs: { placeholder: "sun mon tue wed thu" } }),
        field({ name: "timezone", label: "outbound.timezone", attrs: { placeholder: "+03:00", size: 6 } }),
        field({ name: "max_attempts", label: "outbound.max_attempts", type: "number", attrs: { min: 1, max: 20, value: 3 } })),
      formError(),
      h("button", { type: "submit", class: "primary" }, t("outbound.create")));
    create.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(create);
      const v = values(create);
      const body = { name: v.name || "", kind: v.kind || "", priority: v.priority || "normal" };
      if (v.script) body.script = v.script;
      if (v.questionnaire) body.questionnaire = parseQuestions(v.questionnaire);
      if (v.calling_hours) body.calling_hours = v.calling_hours;
      if (v.calling_days) body.calling_days = v.calling_days.split(/[\s,]+/).filter((d) => DAYS.includes(d));
      if (v.timezone) body.timezone = v.timezone;
      if (v.max_attempts) body.max_attempts = Number(v.max_attempts);
      try {
        await api("POST", "/api/v1/campaigns", { body, idem: randomKey() });
        app.flash(t("outbound.created"));
        loadCampaigns();
      } catch (e) {
        showError(create, e);
      }
    });
    const list = h("div", {});
    manage.append(panel("outbound.campaigns", {}, table([
      ["outbound.name", (c) => c.name],
      ["outbound.kind", (c) => tc("outbound.kind.", c.kind)],
      ["outbound.status", (c) => c.status],
      ["outbound.progress", (c) => (c.progress ? t("outbound.progress_of", { done: c.progress.done, targets: c.progress.targets, pct: c.progress.percent_finished }) : null)],
      ["inbox.col.open", (c) => h("button", { type: "button", class: "small", onclick: () => openCampaign(c, list) }, t("inbox.open"))],
    ], campaigns, { caption: "outbound.campaigns", captionHidden: true, empty: "outbound.none" }), list),
    panel("outbound.new", {}, create));
  }

  async function openCampaign(c, into) {
    clear(into);
    const file = h("input", { type: "file", accept: ".csv,text/csv", id: "targets-file" });
    const load = h("form", { novalidate: true, class: "inline-form" },
      h("div", { class: "field", "data-field": "csv" }, h("label", { for: "targets-file", text: "outbound.targets_file" }), file, h("p", { class: "error", role: "alert" })),
      field({ name: "query", label: "outbound.targets_query", type: "select", placeholder: "outbound.from_file",
        options: [["no_shows_last_week", "outbound.query.no_shows_last_week"], ["abandoned_today", "outbound.query.abandoned_today"]] }),
      formError(),
      h("button", { type: "submit" }, t("outbound.load")));
    const report = h("div", {});
    load.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(load);
      const v = values(load);
      const body = {};
      if (v.query) body.query = v.query;
      else if (file.files[0]) body.csv = await file.files[0].text();
      else return showError(load, { field: "csv", message: t("form.required") });
      try {
        const r = await api("POST", "/api/v1/campaigns/" + c.campaign_id + "/targets", { body, idem: randomKey() });
        fill(report, h("p", { class: r.rejected ? "warning" : "done" }, t("outbound.loaded", { imported: r.imported, rejected: r.rejected, duplicates: r.duplicates })),
          (r.errors || []).length ? table([["outbound.row", (e) => String(e.row)], ["outbound.field", (e) => e.field], ["outbound.problem", (e) => e.message]], r.errors,
            { caption: "outbound.errors", captionHidden: true }) : null);
        progress();
      } catch (e) {
        showError(load, e);
      }
    });
    const prog = h("div", {});
    async function progress() {
      try {
        const p = await api("GET", "/api/v1/campaigns/" + c.campaign_id + "/progress");
        fill(prog, h("progress", { max: 100, value: p.percent_finished || 0, "aria-label": t("outbound.progress") }),
          dl([["outbound.targets", fmtNumber(p.targets)], ["outbound.done", fmtNumber(p.done)], ["outbound.queued", fmtNumber(p.queued)],
            ["outbound.attempts", fmtNumber(p.attempts)], ["outbound.due_now", fmtNumber(p.due_now)]]));
      } catch (e) {
        fill(prog, h("p", { class: "form-error", role: "alert" }, e.message));
      }
    }
    const exp = h("button", { type: "button", onclick: async () => {
      try {
        let offset = 0, csv = "";
        do {
          const part = await api("GET", "/api/v1/campaigns/" + c.campaign_id + "/export", { query: { offset, limit: 1000 } });
          csv += offset && part.csv.includes("\n") ? part.csv.slice(part.csv.indexOf("\n") + 1) : part.csv;
          offset = part.next_offset;
        } while (offset !== null && offset !== undefined);
        const a = h("a", { href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })), download: "campaign-" + c.campaign_id.slice(0, 8) + ".csv" });
        document.body.append(a);
        a.click();
        a.remove();
      } catch (e) {
        fill(report, h("p", { class: "form-error", role: "alert" }, e.message));
      }
    } }, t("outbound.export"));
    into.append(h("div", { class: "card" }, h("h3", {}, c.name), prog, load, report, exp));
    progress();
  }

  await loadCampaigns();
  return null;
}
