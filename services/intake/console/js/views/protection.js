// Greenline console: protection and unit staff. The emergency board (unacknowledged first) with
// acknowledge and close; the referral inbox with SLA countdowns (acknowledge, start, close,
// reject, comment, history); overdue referrals. The alarm watcher (watchEmergencies) runs from
// sign-in to sign-out, whatever view is open, and raises the alarm (sound and banner) for every
// emergency still in "alarm" until someone acknowledges it.
// Calls (referral's API through intake, docs/api/referral.md): GET /api/v1/emergencies,
// POST /api/v1/emergencies/{id}/ack|close, GET /api/v1/referrals, GET /api/v1/referrals/overdue,
// GET /api/v1/referrals/{id}/lifecycle, POST /api/v1/referrals/{id}/ack|start|close|reject|comments.
"use strict";

import { api, hasOps } from "../api.js";
import { t, tc, fmtTime, fmtDuration } from "../i18n.js";
import { h, clear, fill, panel, table, dl, randomKey, field, showError, clearErrors, formError, values } from "../dom.js";
import { poll, missingApi, taxonomy, categoryLabel, transient } from "./common.js";
import * as alarm from "../alarm.js";

const POLL_MS = 3000;
const EMG_OUTCOMES = ["assistance_dispatched", "referred_to_services", "person_safe", "no_contact", "false_alarm"];
const REF_OUTCOMES = ["assistance_provided", "resolved", "referred_on", "no_contact", "declined_by_person", "not_eligible", "duplicate"];
const REF_REJECT = ["wrong_unit", "outside_mandate", "insufficient_information", "duplicate", "no_capacity"];
const REF_PAUSE = ["waiting_for_person", "waiting_for_documents", "waiting_for_partner"];
const REF_REROUTE = ["wrong_unit", "specialised_service", "partner_unavailable", "no_capacity", "person_request"];

function emergencyText(e) {
  return [
    tc("emergency.type.", e.type),
    e.location ? t("alarm.location", { location: e.location }) : null,
    e.language ? t("alarm.language", { language: e.language }) : null,
    t(e.callback_possible ? "alarm.callback_yes" : "alarm.callback_no"),
    t("alarm.raised_at", { time: fmtTime(e.raised_at) }),
  ].filter(Boolean).join(" · ");
}

async function ackEmergency(id) {
  const answer = await api("POST", "/api/v1/emergencies/" + id + "/ack", { body: {}, idem: "ack-" + id });
  alarm.emergencyAcked(id);
  return answer;
}

// The alarm for a board just read: the oldest emergency nobody has acknowledged sounds; one
// acknowledged elsewhere stops.
let boardReadAt = 0;
function sound(board) {
  boardReadAt = Date.now();
  const open = (board.emergencies || []).filter((e) => e.status === "alarm");
  alarm.setBoardEmergencies(open.map((e) => e.emergency_id));
  const shown = alarm.current();
  // an alert's alarm ("alert:<id>", notifications.js) is the alert watcher's to stop
  if (shown && !shown.startsWith("alert:") && !open.some((e) => e.emergency_id === shown)) alarm.stop();   // acknowledged elsewhere
  if (open.length && !alarm.current()) {
    const e = open[0];
    alarm.raise(e.emergency_id, emergencyText(e), () => ackEmergency(e.emergency_id));
  }
}

// From sign-in to sign-out: poll the emergency board and sound the alarm for the oldest
// emergency nobody has acknowledged (while the Protection view is open, its own reading of the
// board serves, so the board is not asked twice). Stops quietly when the board is not for this
// user (403, 404) or the deployment has no board. Returns stop().
export function watchEmergencies() {
  let stopped = false;
  let stopPoll = null;
  hasOps(["GET /api/v1/emergencies", "POST /api/v1/emergencies/{id}/ack"]).then((ok) => {
    if (!ok || stopped) return;
    stopPoll = poll(async () => {
      if (Date.now() - boardReadAt < POLL_MS * 1.5) return true;
      let board;
      const down = document.getElementById("alarm-down");
      try {
        board = await api("GET", "/api/v1/emergencies");
        down.hidden = true;
      } catch (e) {
        if (e.status === 403 || e.status === 404) stop();
        else if (e.status !== 401) {
          // alarms cannot arrive while the board cannot be read: say so until it can
          down.textContent = t("alarm.down", { message: e.message });
          down.hidden = false;
        }
        return false;
      }
      sound(board);
      return true;
    }, POLL_MS);
  }).catch(() => {});
  function stop() {
    stopped = true;
    if (stopPoll) stopPoll();
    document.getElementById("alarm-down").hidden = true;
  }
  return stop;
}

export default async function protectionView(main, app) {
  const user = app.user;
  const stops = [];
  main.append(h("h1", { text: "nav.protection" }));
  const emgBox = panel("emergencies.title", { id: "emergency-board" });
  const inboxBox = panel("inbox.title", { id: "referral-inbox" });
  const overdueBox = panel("overdue.title", { id: "referral-overdue" });
  main.append(emgBox, inboxBox, overdueBox);
  let tax = { categories: [] };
  try { tax = await taxonomy(); } catch (e) { /* codes then */ }

  // ---------------------------------------------------------------- emergencies
  let ops;
  try {
    ops = {
      board: await hasOps(["GET /api/v1/emergencies"]),
      inbox: await hasOps(["GET /api/v1/referrals", "POST /api/v1/referrals/{id}/ack"]),
      overdue: await hasOps(["GET /api/v1/referrals/overdue"]),
    };
  } catch (e) {
    main.append(h("p", { class: "form-error", role: "alert" }, e.message));
    return null;
  }

  if (!ops.board) emgBox.append(missingApi("emergencies.api", "GET /api/v1/emergencies"));
  else {
    const body = h("div", {});
    const err = h("p", { class: "form-error", role: "alert", hidden: true });
    emgBox.append(err, body);
    const act = async (fn) => {
      err.hidden = true;
      try { await fn(); refreshEmg(); } catch (e) { err.textContent = e.message; err.hidden = false; }
    };
    const refreshEmg = async () => {
      let board;
      try {
        board = await api("GET", "/api/v1/emergencies", { query: { closed: "true" } });
      } catch (e) {
        err.textContent = e.message;
        err.hidden = false;
        return !transient(e);
      }
      err.hidden = true;
      document.getElementById("alarm-down").hidden = true;
      sound(board);
      const now = board.now;
      fill(body, 
        h("p", { class: board.unacknowledged ? "warning" : "hint", id: "unacked-count" },
          t("emergencies.unacked", { n: board.unacknowledged || 0 })),
        table([
          ["emergencies.col.status", (e) => h("span", { class: "badge e-" + e.status }, t("emergencies.status." + e.status))],
          ["emergencies.col.type", (e) => tc("emergency.type.", e.type)],
          ["emergencies.col.raised", (e) => fmtTime(e.raised_at)],
          ["emergencies.col.waiting", (e) => (e.status === "alarm" ? fmtDuration(now - e.raised_at) : null)],
          ["emergencies.col.location", (e) => e.location],
          ["emergencies.col.callback", (e) => t(e.callback_possible ? "form.yes" : "form.no")],
          ["emergencies.col.unit", (e) => e.unit],
          ["emergencies.col.level", (e) => String(e.level)],
          ["emergencies.col.delivery", (e) => (e.undelivered ? h("span", { class: "warning-text" }, t("emergencies.undelivered")) : t("emergencies.delivered", { n: e.delivered || 0 }))],
          ["emergencies.col.actions", (e) => emgActions(e)],
        ], board.emergencies || [], { caption: "emergencies.title", captionHidden: true, empty: "emergencies.none",
          rowAttrs: (e) => ({ "data-emergency": e.emergency_id, class: e.status === "alarm" ? "row-alarm" : null }) }));
    };
    const emgActions = (e) => {
      if (e.status === "alarm")
        return h("button", { type: "button", class: "danger small", onclick: () => act(async () => {
          await ackEmergency(e.emergency_id);
          if (alarm.current() === e.emergency_id) alarm.stop();
        }) }, t("alarm.ack"));
      if (e.status === "acknowledged") {
        const sel = h("select", { "aria-label": t("emergencies.outcome") },
          EMG_OUTCOMES.map((o) => h("option", { value: o, text: "emergencies.outcome." + o })));
        return h("span", { class: "inline" }, sel, h("button", { type: "button", class: "small", onclick: () => act(() =>
          api("POST", "/api/v1/emergencies/" + e.emergency_id + "/close", { body: { outcome: sel.value }, idem: "close-" + e.emergency_id + "-" + sel.value })) }, t("emergencies.close")));
      }
      return e.outcome ? tc("emergencies.outcome.", e.outcome) : null;
    };
    stops.push(poll(refreshEmg, POLL_MS));
  }

  // ---------------------------------------------------------------- referral inbox
  if (!ops.inbox) inboxBox.append(missingApi("inbox.api", ["GET /api/v1/referrals", "POST /api/v1/referrals/{id}/ack"]));
  else {
    const filters = h("form", { class: "inline-form", novalidate: true },
      field({ name: "assignee", label: "inbox.show", type: "select", placeholder: false,
        options: [["", "inbox.show_all"], ["me", "inbox.show_mine"]] }),
      field({ name: "unit", label: "inbox.unit", type: "select", placeholder: false,
        options: [["", "inbox.any_unit"]].concat((user.units || []).map((u) => [u, u, true])) }),
      field({ name: "status", label: "inbox.status", type: "select", placeholder: false,
        options: [["open", "inbox.status_open"], ["all", "inbox.status_all"]] }),
      formError());
    const body = h("div", {});
    const detail = h("div", { id: "referral-detail" });
    inboxBox.append(filters, body, detail);
    const refreshInbox = async () => {
      const v = values(filters);
      const q = { limit: 100 };
      if (v.assignee) q.assignee = v.assignee;
      if (v.unit) q.unit = v.unit;
      if (v.status === "all" && v.unit) q.status = "all";
      let list;
      try {
        list = await api("GET", "/api/v1/referrals", { query: q });
        clearErrors(filters);
      } catch (e) {
        showError(filters, e);
        return !transient(e);
      }
      const now = list.now || Date.now();
      fill(body, referralTable(list.referrals || [], now, tax, (r) => openReferral(r.referral_id)));
    };
    const openReferral = async (id) => {
      clear(detail);
      try {
        const lc = await api("GET", "/api/v1/referrals/" + id + "/lifecycle");
        lc.units = await unitCodes();
        drawReferral(detail, lc, tax, () => { refreshInbox(); openReferral(id); });
        detail.querySelector("h3").focus();
      } catch (e) {
        detail.append(h("p", { class: "form-error", role: "alert" }, e.message));
      }
    };
    filters.addEventListener("change", refreshInbox);
    stops.push(poll(refreshInbox, 5000));
  }

  // ---------------------------------------------------------------- overdue
  if (!ops.overdue) overdueBox.append(missingApi("overdue.api", "GET /api/v1/referrals/overdue"));
  else {
    const body = h("div", {});
    overdueBox.append(body);
    stops.push(poll(async () => {
      try {
        const list = await api("GET", "/api/v1/referrals/overdue", { query: { limit: 100 } });
        fill(body, referralTable(list.referrals || [], list.now || Date.now(), tax, null, true));
      } catch (e) {
        fill(body, h("p", { class: "form-error", role: "alert" }, e.message));
        return !transient(e);
      }
      return true;
    }, 10000));
  }

  return () => stops.forEach((s) => s());
}

// The units a referral can be re-routed to (GET /api/v1/units), once per page load.
let unitsPromise = null;
function unitCodes() {
  if (!unitsPromise)
    unitsPromise = api("GET", "/api/v1/units").then((u) => (u.units || []).map((x) => x.code)).catch(() => {
      unitsPromise = null;
      return [];
    });
  return unitsPromise;
}

// Time left to a due time, or how long it is overdue.
function countdown(due, now) {
  if (!due) return null;
  const left = due - now;
  return left >= 0
    ? h("span", { class: left < 3600000 ? "due-soon" : "due-ok" }, t("sla.left", { time: fmtDuration(left) }))
    : h("span", { class: "overdue" }, t("sla.overdue", { time: fmtDuration(-left) }));
}

function referralTable(rows, now, tax, onOpen, withKind) {
  const open = (r) => ["routed", "acknowledged", "in_progress"].includes(r.status);
  return table([
    ["inbox.col.requested", (r) => fmtTime(r.requested_at)],
    ["inbox.col.category", (r) => categoryLabel(tax, r.category)],
    ["inbox.col.priority", (r) => h("span", { class: "badge p-" + r.priority }, t("priority." + r.priority))],
    ["inbox.col.status", (r) => tc("referral.status.", r.status) + (r.paused ? " · " + t("inbox.paused") : "")],
    ["inbox.col.unit", (r) => r.partner ? r.unit + " → " + r.partner : r.unit],
    ["inbox.col.ack_due", (r) => (r.status === "routed" ? countdown(r.ack_due, now) : r.acked_at ? t("inbox.acked_at", { time: fmtTime(r.acked_at) }) : null)],
    ["inbox.col.resolve_due", (r) => (open(r) ? countdown(r.resolve_due, now) : null)],
    withKind ? ["overdue.col.kind", (r) => (r.overdue ? tc("overdue.kind.", r.overdue) : null)] : null,
    onOpen ? ["inbox.col.open", (r) => h("button", { type: "button", class: "small", "data-referral": r.referral_id, onclick: () => onOpen(r) }, t("inbox.open"))] : null,
  ].filter(Boolean), rows, { caption: "inbox.title", captionHidden: true, empty: "inbox.none",
    rowAttrs: (r) => ({ "data-referral-row": r.referral_id, class: r.sensitive ? "sensitive" : null }) });
}

function drawReferral(box, lc, tax, changed) {
  const r = lc.referral;
  const err = formError();
  const act = async (path, body) => {
    err.hidden = true;
    try {
      await api("POST", "/api/v1/referrals/" + r.referral_id + path, { body: body || {}, idem: randomKey() });
      changed();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  };
  const open = ["routed", "acknowledged", "in_progress"].includes(r.status);
  const outcome = h("select", { id: "ref-outcome", "aria-label": t("referral.outcome") }, REF_OUTCOMES.map((o) => h("option", { value: o, text: "referral.outcome." + o })));
  const reject = h("select", { id: "ref-reject", "aria-label": t("referral.reject_reason") }, REF_REJECT.map((o) => h("option", { value: o, text: "referral.reject." + o })));
  const pause = h("select", { "aria-label": t("referral.pause_reason") }, REF_PAUSE.map((o) => h("option", { value: o, text: "referral.pause." + o })));
  const reroute = h("select", { "aria-label": t("referral.reroute_reason") }, REF_REROUTE.map((o) => h("option", { value: o, text: "referral.reroute." + o })));
  const units = (lc.units || []).filter((u) => u !== r.unit);
  const unit = h("select", { "aria-label": t("referral.reroute_to") }, units.map((u) => h("option", { value: u, label: u })));
  const comment = h("form", { novalidate: true, class: "comment-form" },
    field({ name: "text", label: "referral.comment", type: "textarea", attrs: { maxlength: 2000, rows: 2 } }),
    h("button", { type: "submit" }, t("referral.add_comment")));
  comment.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = values(comment);
    if (v.text) act("/comments", { text: v.text });
  });
  box.append(h("div", { class: "card referral-detail" },
    h("h3", { tabindex: "-1" }, t("referral.detail", { category: categoryLabel(tax, r.category) })),
    dl([
      ["inbox.col.status", tc("referral.status.", r.status)],
      ["inbox.col.priority", t("priority." + r.priority)],
      ["inbox.col.unit", r.unit],
      ["referral.assignee", r.assignee ? r.assignee.slice(0, 8) : null],
      ["referral.consent_label", t(r.consent ? "form.yes" : "form.no")],
      ["referral.language", r.language],
      ["referral.location", r.location],
      ["referral.contact", r.contact_id ? h("code", {}, r.contact_id.slice(0, 12)) : null],
    ]),
    open ? h("div", { class: "buttons" },
      r.status === "routed" ? h("button", { type: "button", class: "primary", onclick: () => act("/ack") }, t("referral.ack")) : null,
      r.status !== "in_progress" ? h("button", { type: "button", onclick: () => act("/start") }, t("referral.start")) : null,
      r.status !== "routed" ? h("span", { class: "inline" }, outcome, h("button", { type: "button", onclick: () => act("/close", { outcome: outcome.value }) }, t("referral.close"))) : null,
      h("span", { class: "inline" }, reject, h("button", { type: "button", onclick: () => act("/reject", { reason: reject.value }) }, t("referral.reject_btn"))),
      r.paused
        ? h("button", { type: "button", onclick: () => act("/resume") }, t("referral.resume"))
        : h("span", { class: "inline" }, pause, h("button", { type: "button", onclick: () => act("/pause", { reason: pause.value }) }, t("referral.pause"))),
      units.length ? h("span", { class: "inline" }, unit, reroute, h("button", { type: "button", onclick: () => act("/reroute", { unit: unit.value, reason: reroute.value }) }, t("referral.reroute"))) : null) : null,
    err,
    h("h4", { text: "referral.history" }),
    table([
      ["referral.h.at", (x) => fmtTime(x.at)],
      ["referral.h.action", (x) => tc("referral.action.", x.action)],
      ["referral.h.status", (x) => tc("referral.status.", x.status)],
      ["referral.h.unit", (x) => x.unit],
      ["referral.h.code", (x) => x.code],
    ], lc.history || [], { caption: "referral.history", captionHidden: true }),
    h("h4", { text: "referral.comments" }),
    h("ul", { class: "comments" }, (lc.comments || []).map((c) => h("li", {}, h("span", { class: "hint" }, fmtTime(c.at) + " · "), c.text))),
    open ? comment : null));
}
