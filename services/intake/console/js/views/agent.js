// Greenline console: the agent's screen. Status; the queue and the call in hand; the caller
// (lookup by case number or phone, past contacts, verification, the case, contact-detail
// changes); the contact form; the emergency button; referral and booking once a contact is
// saved; knowledge-base search beside it when the deployment has it.
// Calls: GET/PUT /api/v1/agents/me[/state], GET /api/v1/queue, POST /api/v1/calls/next,
// GET /api/v1/calls/{id}, POST /api/v1/calls/{id}/end|transfer, POST /api/v1/callers/lookup,
// GET /api/v1/contacts, GET /api/v1/cases/{case_no}/verify-questions,
// POST /api/v1/cases/{case_no}/verify, GET /api/v1/cases/{case_no},
// POST /api/v1/cases/{case_no}/change-requests, GET /api/v1/taxonomy, POST /api/v1/contacts,
// POST /api/v1/emergencies, GET /api/v1/referrals/route-preview, POST /api/v1/referrals,
// POST /api/v1/appointments.
"use strict";

import { api, hasOps } from "../api.js";
import { t, tc, fmtClock, fmtDuration, fmtTime } from "../i18n.js";
import { h, clear, fill, field, radios, showError, clearErrors, formError, values, panel, table, dl, randomKey } from "../dom.js";
import { taxonomy, categoryLabel, missingApi, poll, transient } from "./common.js";

const POLL_MS = 3000;
const STATES = ["available", "wrap_up", "break", "offline"];
const BREAK_REASONS = ["lunch", "rest", "training", "meeting", "coaching", "technical"];
const OUTCOMES = ["information_given", "appointment_booked", "referral_made", "callback_scheduled",
  "complaint_logged", "emergency_raised", "silent", "wrong_number", "prank_or_abusive"];
const NOWHERE = new Set(["silent", "wrong_number", "prank_or_abusive"]);
const EMERGENCY_TYPES = ["threat_to_life", "medical", "violence_or_abuse", "child_at_risk",
  "detention_or_refoulement", "suicide_risk"];
const PRIORITIES = ["low", "normal", "high", "emergency"];
const SEXES = ["female", "male", "other", "unknown"];
const AGES = ["0-4", "5-11", "12-17", "18-59", "60+", "unknown"];
const QUESTIONS = ["dob", "family_size", "phone", "location"];
const FLAG_REASONS = ["abusive_language", "threats", "harassment", "prank", "other"];

// What the agent is working on survives a redraw (a language switch, a trip to another view).
const state = {
  userId: null,           // whose work this is: another user signing in on this tab starts afresh
  me: null,
  queue: null,
  call: null,             // the call held (GET /calls/{id}), with the caller's number
  caller: null,           // {case_no, phone, flag, contacts, verified_until, case}
  contact: null,          // the contact saved in this conversation
  emergency: null,        // {id} raised in this conversation
  emergencyKey: null,     // Idempotency-Key of the emergency form being filled
  referral: null,
  appointment: null,
};

function resetConversation() {
  state.caller = null;
  state.contact = null;
  state.emergency = null;
  state.emergencyKey = null;
  state.referral = null;
  state.appointment = null;
}

// The context the caller is verified in: this call, else the contact saved.
function context() {
  if (state.call) return { call_id: state.call.id };
  if (state.contact) return { contact_id: state.contact.id };
  return null;
}

// The verification questions of this deployment (the same for every case), asked once per page
// load; null when intake does not have the route or cannot answer (every question offered).
let questionsPromise = null;
function verifyQuestions(caseNo) {
  if (!questionsPromise)
    questionsPromise = hasOps(["GET /api/v1/cases/{case_no}/verify-questions"])
      .then((ok) => (ok ? api("GET", "/api/v1/cases/" + encodeURIComponent(caseNo) + "/verify-questions") : null))
      .then((r) => (r && Array.isArray(r.questions) && r.questions.length ? r.questions.filter((q) => QUESTIONS.includes(q)) : null))
      .catch(() => { questionsPromise = null; return null; });
  return questionsPromise;
}

export default async function agentView(main, app) {
  const user = app.user;
  if (state.userId !== user.id) {
    resetConversation();
    Object.assign(state, { userId: user.id, me: null, queue: null, call: null });
  }
  const tax = await taxonomy();
  const ui = {};

  const emergencyBtn = h("button", { type: "button", class: "danger emergency-btn", id: "emergency-open",
    "aria-keyshortcuts": "Alt+X", onclick: () => openEmergency() },
  h("span", { class: "siren", "aria-hidden": "true" }, "!"), " ", t("emergency.button"));

  ui.status = panel("agent.status.title", { id: "status-panel" });
  ui.call = panel("agent.call.title", { id: "call-panel" });
  ui.caller = panel("caller.title", { id: "caller-panel" });
  ui.emergency = h("div", { id: "emergency-slot" });
  ui.contact = panel("contact.title", { id: "contact-panel" });
  ui.after = h("div", { id: "after-slot" });
  ui.kb = h("div", { id: "kb-slot" });

  main.append(
    h("h1", { class: "sr", text: "nav.agent" }),
    h("div", { class: "agent-grid" },
      h("div", { class: "col" }, ui.status, ui.call, ui.caller),
      h("div", { class: "col wide" }, h("div", { class: "emergency-bar" }, emergencyBtn), ui.emergency, ui.contact, ui.after),
      h("div", { class: "col" }, ui.kb)),
    h("p", { class: "hint shortcuts", text: "agent.shortcuts" }));

  // ---------------------------------------------------------------- status
  const statusBody = h("div", {});
  const reasonSel = h("select", { id: "break-reason", "aria-label": t("agent.status.reason") },
    BREAK_REASONS.map((r) => h("option", { value: r, text: "reason." + r })));
  const statusErr = h("p", { class: "form-error", role: "alert", hidden: true });
  const pollErr = h("p", { class: "form-error", role: "status", hidden: true });     // the last refresh failed
  const stateButtons = h("div", { class: "buttons", role: "group", "aria-label": t("agent.status.set") },
    STATES.map((s) => h("button", { type: "button", class: "state-btn s-" + s, "data-state": s,
      onclick: () => setState(s) }, t("state." + s))),
    h("label", { for: "break-reason", class: "sr", text: "agent.status.reason" }), reasonSel);
  ui.status.append(statusBody, stateButtons, statusErr, pollErr);

  function drawStatus() {
    clear(statusBody);
    const me = state.me;
    if (!me) return;
    statusBody.append(h("p", { class: "state-now" },
      h("span", { class: "badge s-" + me.state, id: "my-state", "data-state": me.state }, t("state." + me.state)),
      me.reason_code ? " (" + tc("reason.", me.reason_code) + ")" : "",
      me.since ? " · " + t("agent.status.since", { time: fmtClock(me.since) }) : ""));
    for (const b of stateButtons.querySelectorAll("button"))
      b.setAttribute("aria-pressed", b.dataset.state === me.state ? "true" : "false");
  }

  async function setState(s) {
    statusErr.hidden = true;
    const body = { state: s };
    if (s === "break") body.reason = reasonSel.value;
    try {
      state.me = await api("PUT", "/api/v1/agents/me/state", { body });
      drawStatus();
      app.flash(t("agent.status.changed", { state: t("state." + s) }));
    } catch (e) {
      statusErr.textContent = e.message;
      statusErr.hidden = false;
    }
  }

  // ---------------------------------------------------------------- call
  const callBody = h("div", {});
  const callErr = h("p", { class: "form-error", role: "alert", hidden: true });
  const nextBtn = h("button", { type: "button", class: "primary", id: "next-call", "aria-keyshortcuts": "Alt+N",
    onclick: () => takeNext() }, t("agent.call.next"));
  ui.call.append(h("p", { id: "queue-summary", class: "queue-summary", "aria-live": "polite" }), nextBtn, callBody, callErr);

  function drawQueue() {
    const q = state.queue;
    const el = ui.call.querySelector("#queue-summary");
    if (!q) return;
    const mine = (state.me && state.me.languages) || user.languages || [];
    let waiting = 0;
    let oldest = null;
    for (const [lang, v] of Object.entries(q.languages || {}))
      if (mine.includes(lang)) {
        waiting += v.waiting;
        if (v.oldest_wait_ms !== null && (oldest === null || v.oldest_wait_ms > oldest)) oldest = v.oldest_wait_ms;
      }
    el.textContent = waiting
      ? t("agent.call.waiting", { n: waiting, all: q.waiting, wait: fmtDuration(oldest) })
      : t("agent.call.none_waiting", { all: q.waiting });
  }

  function drawCall() {
    clear(callBody);
    const c = state.call;
    nextBtn.disabled = !!(c && c.state === "answered");
    if (!c) return;
    callBody.append(h("div", { class: "call-card" + (c.priority === "emergency" ? " urgent" : ""), id: "current-call" },
      dl([
        ["call.number", h("strong", { class: "number", dir: "ltr" }, c.caller_number || "–")],
        ["call.state", t("call.state." + c.state)],
        ["call.line", c.line],
        ["call.language", c.language],
        ["call.priority", t("priority." + c.priority)],
        ["call.answered_at", fmtClock(c.answered_at)],
        ["call.wait", fmtDuration(c.wait_ms)],
      ]),
      c.state === "answered" ? h("div", { class: "buttons" },
        h("button", { type: "button", id: "end-call", onclick: () => endCall() }, t("agent.call.end")),
        h("button", { type: "button", onclick: () => backToQueue() }, t("agent.call.requeue"))) : null));
  }

  function callError(e) {
    callErr.textContent = e.message;
    callErr.hidden = false;
  }

  async function takeNext() {
    callErr.hidden = true;
    try {
      const res = await api("POST", "/api/v1/calls/next", { body: {} });
      if (!res.call) {
        app.flash(t("agent.call.nothing"));
        callErr.textContent = t("agent.call.nothing");
        callErr.hidden = false;
        return;
      }
      resetConversation();
      state.call = res.call;
      drawAll();
      app.flash(t("agent.call.taken", { number: res.call.caller_number || "" }));
      ui.caller.querySelector("input").focus();
      refresh();
    } catch (e) {
      callError(e);
    }
  }

  async function endCall() {
    callErr.hidden = true;
    try {
      state.call = await api("POST", "/api/v1/calls/" + state.call.id + "/end", { body: { ended_by: "agent" } });
      drawCall();
      refresh();
    } catch (e) {
      callError(e);
    }
  }

  async function backToQueue() {
    callErr.hidden = true;
    try {
      await api("POST", "/api/v1/calls/" + state.call.id + "/transfer", { body: { target: "queue" } });
      state.call = null;
      resetConversation();
      drawAll();
      refresh();
    } catch (e) {
      callError(e);
    }
  }

  // ---------------------------------------------------------------- caller
  function drawCaller() {
    // keep the panel's heading, redraw the rest
    while (ui.caller.children.length > 1) ui.caller.lastChild.remove();
    const cl = state.caller;
    const lookup = h("form", { class: "inline-form", id: "lookup-form", novalidate: true },
      field({ name: "case_no", label: "caller.case_no", attrs: { autocomplete: "off", value: cl ? cl.case_no || "" : "" } }),
      field({ name: "phone", label: "caller.phone", type: "tel", attrs: { autocomplete: "off", dir: "ltr", value: cl ? cl.phone || "" : (state.call && state.call.caller_number) || "" } }),
      formError(),
      h("button", { type: "submit", "aria-keyshortcuts": "Alt+L" }, t("caller.lookup")));
    lookup.addEventListener("submit", (ev) => { ev.preventDefault(); doLookup(lookup); });
    ui.caller.append(lookup);
    if (!cl) return;
    if (cl.flag)
      ui.caller.append(h("p", { class: "warning", role: "alert", id: "abusive-flag" },
        t("caller.abusive", { reason: tc("flag.", cl.flag.reason), date: fmtTime(cl.flag.flagged_at) })));
    if (user.roles.includes("supervisor")) ui.caller.append(flagControls(cl));
    ui.caller.append(h("h3", { text: "caller.past_contacts" }),
      table([
        ["contact.when", (r) => fmtTime(r.created_at)],
        ["contact.channel", (r) => t("channel." + r.channel)],
        ["contact.categories", (r) => r.categories.map((c) => categoryLabel(tax, c)).join(", ")],
        ["contact.outcome", (r) => t("outcome." + r.outcome)],
        ["contact.flags", (r) => [r.repeat ? t("contact.repeat") : "", r.sensitive ? t("contact.sensitive") : ""].filter(Boolean).join(" · ")],
      ], cl.contacts || [], { caption: "caller.past_contacts", captionHidden: true, empty: "caller.no_contacts", class: "past" }));
    if (cl.case_no) drawVerify();
  }

  // Supervisors flag an abusive caller (POST /api/v1/callers/flags) or clear the flag
  // (DELETE /api/v1/callers/flags/{id}); agents see the flag as the call starts.
  function flagControls(cl) {
    const err = h("p", { class: "error", role: "alert" });
    const act = async (fn) => {
      err.textContent = "";
      try {
        await fn();
        const by = cl.case_no ? { case_no: cl.case_no } : { phone: cl.phone };
        cl.flag = (await api("POST", "/api/v1/callers/lookup", { body: by })).abusive;
        drawCaller();
      } catch (e) {
        err.textContent = e.message;
      }
    };
    if (cl.flag)
      return h("div", { class: "buttons" }, h("button", { type: "button", class: "small",
        onclick: () => act(() => api("DELETE", "/api/v1/callers/flags/" + cl.flag.id)) }, t("caller.unflag")), err);
    const reason = h("select", { "aria-label": t("caller.flag_reason") },
      FLAG_REASONS.map((r) => h("option", { value: r, text: "flag." + r })));
    const body = () => ({ ...(cl.case_no ? { case_no: cl.case_no } : { phone: cl.phone }), reason: reason.value });
    return h("div", { class: "buttons" }, reason, h("button", { type: "button", class: "small",
      onclick: () => act(() => api("POST", "/api/v1/callers/flags", { body: body() })) }, t("caller.flag")), err);
  }

  async function doLookup(form) {
    clearErrors(form);
    const v = values(form);
    if (!v.case_no && !v.phone) return showError(form, { field: "case_no", message: t("caller.need_one") });
    const by = v.case_no ? { case_no: v.case_no } : { phone: v.phone };
    try {
      const flag = await api("POST", "/api/v1/callers/lookup", { body: by });
      const q = v.case_no ? { case_number: v.case_no } : { phone: v.phone };
      const page = await api("GET", "/api/v1/contacts", { query: { ...q, limit: 20 } });
      const same = state.caller && state.caller.case_no === (v.case_no || null);
      state.caller = {
        case_no: v.case_no || null, phone: v.phone || null, flag: flag.abusive, contacts: page.items,
        verified_until: same ? state.caller.verified_until : null, case: same ? state.caller.case : null,
      };
      drawCaller();
      drawContact(true);
    } catch (e) {
      showError(form, e.field === "case_no" || e.field === "phone" || !e.field ? { ...e, message: e.message, field: e.field || (v.case_no ? "case_no" : "phone") } : e);
    }
  }

  function drawVerify() {
    const cl = state.caller;
    if (cl.case) return drawCase();
    const ctx = context();
    const box = h("div", { class: "verify", id: "verify" }, h("h3", { text: "verify.title" }));
    if (!ctx) {
      box.append(h("p", { class: "hint", text: "verify.need_context" }));
      ui.caller.append(box);
      return;
    }
    // The questions are the deployment's (GET /api/v1/cases/{case_no}/verify-questions); the
    // fields appear once they are known. Without that route, every question is offered.
    const fields = h("div", { class: "verify-fields" });
    let asked = null;
    const form = h("form", { id: "verify-form", novalidate: true },
      h("p", { class: "hint", text: "verify.hint" }),
      fields,
      formError(),
      h("button", { type: "submit" }, t("verify.submit")));
    verifyQuestions(cl.case_no).then((qs) => {
      asked = qs;
      fill(fields, qs ? qs.map((q) => questionField(q, true)) : [
        questionField("dob"), questionField("family_size"),
        h("details", {}, h("summary", { text: "verify.more" }), questionField("phone"), questionField("location"))]);
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const v = values(form);
      const answers = {};
      for (const q of asked || QUESTIONS) {
        const val = v["answers." + q];
        if (val !== undefined) answers[q] = q === "family_size" ? Number(val) : val;
        else if (asked) return showError(form, { field: "answers." + q, message: t("form.required") });
      }
      try {
        const res = await api("POST", "/api/v1/cases/" + encodeURIComponent(cl.case_no) + "/verify", { body: { ...context(), answers } });
        if (!res.verified) {
          showError(form, { message: t("verify.failed", { left: res.attempts_left }) });
          return;
        }
        cl.verified_until = res.verified_until;
        cl.case = await api("GET", "/api/v1/cases/" + encodeURIComponent(cl.case_no), { query: context() });
        drawCaller();
        drawAfter();
      } catch (e) {
        showError(form, e);
      }
    });
    box.append(form);
    ui.caller.append(box);
  }

  // A verification question's field; required when the deployment asks it.
  function questionField(q, required) {
    const opts = {
      dob: { type: "date" },
      family_size: { type: "number", attrs: { min: 1, max: 99 } },
      phone: { type: "tel", attrs: { dir: "ltr" } },
      location: {},
    }[q];
    if (!opts) return null;
    return field({ name: "answers." + q, label: "verify." + q, required, ...opts });
  }

  function caseValue(f) {
    if (!f) return null;
    const v = Array.isArray(f.value) ? f.value.join(", ") : String(f.value);
    return h("span", {}, h("bdi", { dir: /^[+\d\s,().-]+$/.test(v) ? "ltr" : null }, v),
      h("span", { class: "asof" }, " " + t("case.as_of", { date: f.as_of })));
  }

  function drawCase() {
    const c = state.caller.case;
    ui.caller.append(h("div", { class: "case", id: "case-details" },
      h("h3", {}, t("case.title", { case_no: c.case_no })),
      h("p", { class: "ok-text" }, t("verify.ok", { until: fmtClock(c.verified_until) })),
      dl([
        ["case.registration_status", caseValue(c.registration_status)],
        ["case.rsd_status", caseValue(c.rsd_status)],
        ["case.resettlement_status", caseValue(c.resettlement_status)],
        ["case.assistance_status", caseValue(c.assistance_status)],
        ["case.next_appointment", caseValue(c.next_appointment)],
        ["case.family_size", caseValue(c.family_size)],
        ["case.phones", caseValue(c.phones)],
        ["case.language", caseValue(c.language)],
        ["case.location", caseValue(c.location)],
      ]),
      changeRequestForm(c)));
  }

  function changeRequestForm(c) {
    const form = h("form", { novalidate: true, id: "change-form" },
      h("p", { class: "hint", text: "change.hint" }),
      field({ name: "phones", label: "change.phones", type: "tel", hint: "change.phones_hint", attrs: { dir: "ltr" } }),
      field({ name: "language", label: "change.language" }),
      field({ name: "location", label: "change.location" }),
      formError(),
      h("button", { type: "submit" }, t("change.submit")),
      h("p", { class: "done", role: "status" }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const v = values(form);
      const body = { ...context() };
      if (v.phones) body.phones = v.phones.split(/[;,]/).map((s) => s.trim()).filter(Boolean);
      if (v.language) body.language = v.language;
      if (v.location) body.location = v.location;
      try {
        const r = await api("POST", "/api/v1/cases/" + encodeURIComponent(c.case_no) + "/change-requests", { body });
        form.querySelector(".done").textContent = t("change.done", { status: t("change.status." + r.status) });
      } catch (e) {
        showError(form, e);
      }
    });
    return h("details", { class: "change" }, h("summary", { text: "change.title" }), form);
  }

  // ---------------------------------------------------------------- contact form
  let contactKey = randomKey();

  function categoryPicker(selected) {
    const listId = "cat-list";
    const chips = h("ul", { class: "chips", "aria-label": t("contact.chosen") });
    const input = h("input", { type: "text", id: "cat-input", list: listId, autocomplete: "off",
      "aria-describedby": "cat-hint cat-err" });
    const data = h("datalist", { id: listId });
    for (const c of tax.categories) {
      data.append(h("option", { value: c.code, label: categoryLabel(tax, c.code) }));
      for (const s of c.subcategories) data.append(h("option", { value: s.code, label: categoryLabel(tax, s.code) }));
    }
    const chosen = new Set(selected || []);
    function draw() {
      clear(chips);
      for (const code of chosen)
        chips.append(h("li", {}, h("button", { type: "button", class: "chip", "data-code": code,
          "aria-label": t("contact.remove_category", { label: categoryLabel(tax, code) }),
          onclick: () => { chosen.delete(code); draw(); input.focus(); } }, categoryLabel(tax, code), " ×")));
    }
    function resolve(text) {
      const s = text.trim().toLocaleLowerCase();
      if (!s) return null;
      // a code, the taxonomy's label, or the label in the user's language (its last part)
      const all = [];
      for (const c of tax.categories) {
        all.push([c.code, c.label, categoryLabel(tax, c.code)]);
        for (const sc of c.subcategories) all.push([sc.code, sc.label, categoryLabel(tax, sc.code).split(" › ").pop()]);
      }
      const norm = (x) => x.toLocaleLowerCase();
      const exact = all.find(([code, a, b]) => code === s || norm(a) === s || norm(b) === s);
      if (exact) return exact[0];
      const some = all.filter(([code, a, b]) => code.includes(s) || norm(a).includes(s) || norm(b).includes(s));
      return some.length === 1 ? some[0][0] : null;
    }
    function add() {
      const code = resolve(input.value);
      const err = box.querySelector(".error");
      if (!code) {
        if (input.value.trim()) err.textContent = t("contact.no_such_category");
        return false;
      }
      err.textContent = "";
      chosen.add(code);
      input.value = "";
      draw();
      return true;
    }
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.ctrlKey && !ev.metaKey) {
        if (input.value.trim()) {
          ev.preventDefault();
          add();
        }
      } else if (ev.key === "Backspace" && !input.value && chosen.size) {
        chosen.delete([...chosen].pop());
        draw();
      }
    });
    input.addEventListener("change", () => add());
    const box = h("div", { class: "field", "data-field": "categories" },
      h("label", { for: "cat-input", text: "contact.categories" }),
      chips, input, data,
      h("p", { class: "hint", id: "cat-hint", text: "contact.categories_hint" }),
      h("p", { class: "error", id: "cat-err", role: "alert" }));
    draw();
    return { box, chosen: () => [...chosen], add };
  }

  let picker = null;

  function drawContact(keepValues) {
    const old = ui.contact.querySelector("form");
    const keep = keepValues && old ? values(old) : null;
    const keepCats = keepValues && picker ? picker.chosen() : null;
    while (ui.contact.children.length > 1) ui.contact.lastChild.remove();
    if (state.contact) {
      ui.contact.append(h("div", { class: "saved", id: "contact-saved", role: "status" },
        h("p", {}, t("contact.saved", { time: fmtClock(state.contact.created_at) })),
        state.contact.repeat ? h("p", { class: "hint", text: "contact.is_repeat" }) : null,
        h("button", { type: "button", onclick: () => newConversation() }, t("contact.new"))));
      return;
    }
    const call = state.call;
    const cl = state.caller;
    picker = categoryPicker(keepCats);
    const form = h("form", { id: "contact-form", novalidate: true, "aria-keyshortcuts": "Control+Enter" },
      h("div", { class: "row" },
        field({ name: "channel", label: "contact.channel", type: "select", required: true, placeholder: false,
          options: [["call", "channel.call"], ["walk_in", "channel.walk_in"], ["sms", "channel.sms"]] }),
        field({ name: "direction", label: "contact.direction", type: "select", placeholder: false,
          options: [["inbound", "direction.inbound"], ["outbound", "direction.outbound"]] }),
        field({ name: "language", label: "contact.language", required: true, attrs: { size: 6, autocomplete: "off" } })),
      h("div", { class: "row" },
        field({ name: "case_number", label: "contact.case_number", attrs: { autocomplete: "off" } }),
        field({ name: "phone", label: "contact.phone", type: "tel", attrs: { autocomplete: "off", dir: "ltr" } }),
        field({ name: "anonymous", label: "contact.anonymous", type: "checkbox" })),
      picker.box,
      field({ name: "outcome", label: "contact.outcome", type: "select", required: true,
        options: OUTCOMES.map((o) => [o, "outcome." + o]) }),
      field({ name: "notes", label: "contact.notes", type: "textarea", hint: "contact.notes_hint", attrs: { maxlength: 4000 } }),
      field({ name: "frustration", label: "contact.frustration", type: "checkbox" }),
      h("details", { class: "agd" }, h("summary", { text: "contact.more" }),
        h("div", { class: "row" },
          field({ name: "individual_number", label: "contact.individual_number", attrs: { autocomplete: "off" } }),
          field({ name: "sex", label: "contact.sex", type: "select", options: SEXES.map((s) => [s, "sex." + s]) }),
          field({ name: "age_group", label: "contact.age_group", type: "select", options: AGES.map((a) => [a, "age." + a]) })),
        h("div", { class: "row" },
          field({ name: "nationality", label: "contact.nationality", hint: "contact.nationality_hint", attrs: { size: 4, autocomplete: "off" } }),
          field({ name: "specific_needs", label: "contact.specific_needs", hint: "contact.specific_needs_hint", attrs: { autocomplete: "off" } }),
          field({ name: "location", label: "contact.location", attrs: { autocomplete: "off" } })),
        field({ name: "recording_ref", label: "contact.recording_ref", attrs: { autocomplete: "off" } })),
      formError(),
      h("div", { class: "buttons" },
        h("button", { type: "submit", class: "primary", id: "contact-save" }, t("contact.save")),
        h("span", { class: "hint", text: "contact.save_hint" })));
    const set = (name, v) => { const el = form.elements[name]; if (el && v !== undefined && v !== null) { if (el.type === "checkbox") el.checked = !!v; else el.value = v; } };
    set("channel", call ? "call" : "walk_in");
    set("language", call ? call.language : "");
    if (cl) {
      set("case_number", cl.case_no);
      set("phone", cl.phone || (call && call.caller_number));
    } else if (call) set("phone", call.caller_number);
    if (state.emergency) set("outcome", "emergency_raised");
    if (keep) for (const [k, v] of Object.entries(keep)) set(k, v);
    form.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (ev) => { ev.preventDefault(); saveContact(form); });
    ui.contact.append(form);
  }

  async function saveContact(form) {
    clearErrors(form);
    picker.add();
    const v = values(form);
    const body = { channel: v.channel, language: v.language, outcome: v.outcome, categories: picker.chosen() };
    if (!v.language) return showError(form, { field: "language", message: t("form.required") });
    if (!v.outcome) return showError(form, { field: "outcome", message: t("form.required") });
    if (v.direction && v.direction !== "inbound") body.direction = v.direction;
    if (state.call && v.channel === "call") body.call_id = state.call.id;
    if (v.anonymous) body.anonymous = true;
    if (v.frustration) body.frustration = true;
    for (const k of ["case_number", "phone", "notes", "individual_number", "sex", "age_group", "nationality", "location", "recording_ref"])
      if (v[k]) body[k] = v[k];
    if (v.specific_needs) body.specific_needs = v.specific_needs.split(/[\s,;]+/).filter(Boolean).map((s) => s.toUpperCase());
    if (body.nationality) body.nationality = body.nationality.toUpperCase();
    if (!body.categories.length && !NOWHERE.has(body.outcome))
      return showError(form, { field: "categories", message: t("contact.need_category") });
    const btn = form.querySelector("#contact-save");
    btn.disabled = true;
    try {
      state.contact = await api("POST", "/api/v1/contacts", { body, idem: contactKey });
      contactKey = randomKey();
      app.flash(t("contact.saved", { time: fmtClock(state.contact.created_at) }));
      drawContact();
      drawAfter();
      if (state.caller && state.caller.case_no && !state.caller.case) drawCaller();
    } catch (e) {
      btn.disabled = false;
      showError(form, e);
    }
  }

  function newConversation() {
    resetConversation();
    contactKey = randomKey();
    drawAll();
  }

  // ---------------------------------------------------------------- emergency
  function openEmergency() {
    if (!state.emergencyKey) state.emergencyKey = randomKey();
    drawEmergency(true);
  }

  function drawEmergency(focus) {
    clear(ui.emergency);
    if (state.emergency) {
      ui.emergency.append(h("div", { class: "raised", role: "status", id: "emergency-raised" },
        h("strong", {}, t("emergency.raised")), " ", t("emergency.raised_detail", { id: state.emergency.emergency_id.slice(0, 8) })));
      return;
    }
    if (!state.emergencyKey) return;
    const ctx = state.contact ? { contact_id: state.contact.id } : state.call ? { call_id: state.call.id } : null;
    const form = h("form", { class: "emergency-form", id: "emergency-form", novalidate: true, "aria-labelledby": "emg-title" },
      h("h2", { id: "emg-title" }, t("emergency.title")),
      ctx ? h("p", { class: "hint" }, state.contact ? t("emergency.for_contact") : t("emergency.for_call"))
        : h("p", { class: "warning", text: "emergency.no_context" }),
      radios({ name: "type", label: "emergency.type", required: true, big: true, options: EMERGENCY_TYPES.map((x) => [x, "emergency.type." + x]) }),
      radios({ name: "callback_possible", label: "emergency.callback", required: true, options: [["true", "form.yes"], ["false", "form.no"]] }),
      field({ name: "location", label: "emergency.location", attrs: { autocomplete: "off" } }),
      field({ name: "notes", label: "emergency.notes", type: "textarea", hint: "emergency.notes_hint", attrs: { maxlength: 4000 } }),
      formError(),
      h("div", { class: "buttons" },
        h("button", { type: "submit", class: "danger big", id: "emergency-submit" }, t("emergency.submit")),
        h("button", { type: "button", onclick: () => { state.emergencyKey = null; clear(ui.emergency); } }, t("form.cancel"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const v = values(form);
      if (!v.type) return showError(form, { field: "type", message: t("emergency.need_type") });
      if (!v.callback_possible) return showError(form, { field: "callback_possible", message: t("emergency.need_callback") });
      const body = { type: v.type, callback_possible: v.callback_possible === "true" };
      const c = state.contact ? { contact_id: state.contact.id } : state.call ? { call_id: state.call.id } : {};
      Object.assign(body, c);
      if (v.location) body.location = v.location;
      if (v.notes) body.notes = v.notes;
      const btn = form.querySelector("#emergency-submit");
      btn.disabled = true;
      try {
        state.emergency = await api("POST", "/api/v1/emergencies", { body, idem: state.emergencyKey });
        state.emergencyKey = null;
        drawEmergency();
        app.flash(t("emergency.raised"));
        const out = ui.contact.querySelector("select[name=outcome]");
        if (out && !out.value) out.value = "emergency_raised";
      } catch (e) {
        btn.disabled = false;
        showError(form, e);
      }
    });
    ui.emergency.append(form);
    if (focus) form.querySelector("input[name=type]").focus();
  }

  // ---------------------------------------------------------------- referral, booking
  let afterGen = 0;
  async function drawAfter() {
    const gen = ++afterGen;
    const booking = await bookingPanel();
    if (gen !== afterGen) return;     // a later redraw won
    fill(ui.after, referralPanel(), booking);
  }

  function referralPanel() {
    const p = panel("referral.title", { id: "referral-panel" });
    if (state.referral) {
      const routed = h("p", { class: "hint", id: "referral-routed", "aria-live": "polite" });
      p.append(h("p", { class: "done", role: "status" }, t("referral.done", { id: state.referral.referral_id.slice(0, 8) })), routed);
      showRouting(state.referral.referral_id, routed);
      return p;
    }
    if (!state.contact) {
      p.append(h("p", { class: "hint", text: "referral.need_contact" }));
      return p;
    }
    const key = randomKey();
    // Where it would go, asked again as the agent changes what routing looks at.
    const preview = h("p", { class: "hint route-preview", id: "route-preview", "aria-live": "polite" });
    const options = [];
    for (const c of tax.categories) {
      options.push([c.code, categoryLabel(tax, c.code), true]);
      for (const s of c.subcategories) options.push([s.code, categoryLabel(tax, s.code), true]);
    }
    const form = h("form", { id: "referral-form", novalidate: true },
      field({ name: "category", label: "referral.category", type: "select", required: true, options }),
      field({ name: "priority", label: "referral.priority", type: "select", required: true, options: PRIORITIES.map((x) => [x, "priority." + x]) }),
      field({ name: "consent", label: "referral.consent", type: "checkbox", hint: "referral.consent_hint" }),
      field({ name: "notes", label: "referral.notes", type: "textarea", attrs: { maxlength: 4000 } }),
      h("p", { class: "hint", id: "route-hint", text: "referral.routing" }),
      preview,
      formError(),
      h("button", { type: "submit" }, t("referral.submit")));
    const cats = state.contact.categories || [];
    if (cats.length) form.elements.category.value = cats[0];
    form.elements.priority.value = "normal";
    for (const name of ["category", "priority", "consent"])
      form.elements[name].addEventListener("change", () => showPreview(form, preview));
    showPreview(form, preview);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const v = values(form);
      if (!v.category) return showError(form, { field: "category", message: t("form.required") });
      const body = { contact_id: state.contact.id, category: v.category, priority: v.priority, consent: !!v.consent };
      if (v.notes) body.notes = v.notes;
      try {
        state.referral = await api("POST", "/api/v1/referrals", { body, idem: key });
        drawAfter();
      } catch (e) {
        showError(form, e);
      }
    });
    p.append(form);
    return p;
  }

  // Where referral routed it: its lifecycle (GET /api/v1/referrals/{id}/lifecycle), asked a few
  // times while referral picks the event up.
  async function showRouting(id, into) {
    let ok = false;
    try { ok = await hasOps(["GET /api/v1/referrals/{id}/lifecycle"]); } catch (e) { ok = false; }
    if (!ok) return;
    let shown = false;    // stop once the panel has been drawn and then replaced
    for (let i = 0; i < 10; i++) {
      if (into.isConnected) shown = true;
      else if (shown) return;
      try {
        const lc = await api("GET", "/api/v1/referrals/" + id + "/lifecycle");
        const r = lc.referral;
        into.textContent = t("referral.routed", { unit: r.partner ? unitName(r.unit) + " → " + tc("partner.", r.partner) : unitName(r.unit),
          due: r.ack_due ? fmtTime(r.ack_due) : "–" });
        return;
      } catch (e) {
        if (e.status !== 404 && e.status !== 503) {
          into.textContent = e.message;
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    into.textContent = t("referral.not_routed_yet");
  }

  // Where a referral with the form's inputs would go now (GET /api/v1/referrals/route-preview):
  // the unit (or partner), its SLA; referral answers it with the routing real referrals get.
  // The language is the contact's, as intake sends it with the referral. Only the latest
  // answer is shown.
  let previewGen = 0;
  async function showPreview(form, into) {
    const gen = ++previewGen;
    const v = values(form);
    delete into.dataset.unit;
    if (!v.category) {
      into.textContent = "";
      return;
    }
    let ok = false;
    try { ok = await hasOps(["GET /api/v1/referrals/route-preview"]); } catch (e) { ok = false; }
    if (!ok || gen !== previewGen) return;
    into.textContent = t("referral.preview.checking");
    const query = { category: v.category, priority: v.priority || "normal", consent: v.consent ? "true" : "false" };
    if (state.contact && state.contact.language) query.language = state.contact.language;
    let p;
    try {
      p = await api("GET", "/api/v1/referrals/route-preview", { query });
    } catch (e) {
      if (gen === previewGen) into.textContent = e.status === 503 ? t("referral.preview.unavailable") : e.message;
      return;
    }
    if (gen !== previewGen) return;
    if (!p.unit) {
      into.textContent = t("referral.preview.none");
      return;
    }
    into.dataset.unit = p.unit.code;
    const sla = p.sla;
    const when = { ack: slaSpan(sla.ack_ms), resolve: slaSpan(sla.resolve_ms), unit: unitName(p.unit.code) };
    const parts = [p.partner
      ? t("referral.preview.partner", { ...when, partner: tc("partner.", p.partner.code) })
      : t("referral.preview.unit", when)];
    parts.push(t(sla.business_hours ? "referral.preview.business" : "referral.preview.wall", { due: fmtTime(sla.ack_due) }));
    if (p.rule && p.rule.default) parts.push(t("referral.preview.default"));
    if (p.partner_without_consent) parts.push(t("referral.preview.no_consent", { partner: tc("partner.", p.partner_without_consent) }));
    if (p.sensitive) parts.push(t("referral.preview.sensitive"));
    into.textContent = parts.join(" ");
  }

  // A unit's name in the console's language, else its code.
  function unitName(code) {
    return tc("unit.", code);
  }

  // An SLA duration in whole days, hours or minutes ("3 d", "4 h", "30 min").
  function slaSpan(ms) {
    const min = Math.round(ms / 60000);
    if (min % 1440 === 0) return t("referral.preview.days", { n: min / 1440 });
    if (min % 60 === 0) return t("referral.preview.hours", { n: min / 60 });
    return t("referral.preview.minutes", { n: min });
  }

  async function bookingPanel() {
    const p = panel("booking.title", { id: "booking-panel" });
    const cl = state.caller;
    if (!cl || !cl.case) {
      p.append(h("p", { class: "hint", text: "booking.need_verified" }));
      return p;
    }
    let ops = {};
    try {
      ops = {
        centres: await hasOps(["GET /api/v1/centres"]),
        slots: await hasOps(["GET /api/v1/slots"]),
        search: await hasOps(["POST /api/v1/appointments/search", "POST /api/v1/appointments/{id}/move", "POST /api/v1/appointments/{id}/cancel"]),
      };
    } catch (e) { /* plain form then */ }
    const mod = await import("./booking.js");
    await mod.bookingForm(p, {
      caseNo: cl.case_no,
      context: context(),
      language: (cl.case.language && cl.case.language.value) || (state.call && state.call.language) || "",
      ops,
      done: (appt) => { state.appointment = appt; app.flash(t("booking.done")); },
    });
    return p;
  }

  // ---------------------------------------------------------------- knowledge base
  async function drawKb() {
    clear(ui.kb);
    const p = panel("kb.title", { id: "kb-panel" });
    ui.kb.append(p);
    let ok = false;
    try { ok = await hasOps(["GET /api/v1/kb/search"]); } catch (e) { ok = false; }
    if (!ok) {
      p.append(missingApi("kb.api", "GET /api/v1/kb/search"));
      return;
    }
    const mod = await import("./kb.js");
    mod.searchBox(p, state.call ? state.call.language : "");
    try {
      const page = await api("GET", "/api/v1/kb/briefings", { query: { pending: "true", limit: 50 } });
      if (page.items.length)
        p.prepend(h("p", { class: "warning", id: "briefings-pending" },
          h("a", { href: "#/kb" }, t("kb.to_read", { n: page.items.length + (page.next_cursor ? "+" : "") }))));
    } catch (e) { /* the search still works */ }
  }

  // ---------------------------------------------------------------- refresh
  function drawAll() {
    drawStatus();
    drawQueue();
    drawCall();
    drawCaller();
    drawEmergency();
    drawContact();
    drawAfter();
  }

  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const [me, q] = await Promise.all([api("GET", "/api/v1/agents/me"), api("GET", "/api/v1/queue")]);
      const changed = !state.me || state.me.state !== me.state || state.me.call_id !== me.call_id;
      state.me = me;
      state.queue = q;
      if (me.call_id && (!state.call || state.call.id !== me.call_id)) {
        // a call answered for this agent elsewhere (the PBX): fetch it with the number
        resetConversation();
        state.call = await api("GET", "/api/v1/calls/" + me.call_id);
        drawAll();
      } else if (!me.call_id && state.call && state.call.state === "answered") {
        // ended or moved elsewhere (the PBX, a supervisor): read how it ended
        state.call = await api("GET", "/api/v1/calls/" + state.call.id).catch(() => null);
        drawStatus();
        drawCall();
      } else if (changed) {
        drawStatus();
        drawCall();
      }
      drawQueue();
    } catch (e) {
      pollErr.textContent = e.message;
      pollErr.hidden = false;
      return !transient(e);
    } finally {
      busy = false;
    }
    pollErr.hidden = true;
    return true;
  }

  function onKey(ev) {
    if (!ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const k = ev.code;
    if (k === "KeyN") { ev.preventDefault(); if (!nextBtn.disabled) takeNext(); }
    else if (k === "KeyL") { ev.preventDefault(); ui.caller.querySelector("input").focus(); }
    else if (k === "KeyK") { ev.preventDefault(); const f = ui.contact.querySelector("input, select"); if (f) f.focus(); }
    else if (k === "KeyX") { ev.preventDefault(); openEmergency(); }
  }
  document.addEventListener("keydown", onKey);

  drawAll();
  drawKb();
  const stopPoll = poll(refresh, POLL_MS);
  return () => {
    stopPoll();
    document.removeEventListener("keydown", onKey);
  };
}
