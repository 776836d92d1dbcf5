// Greenline console: notifications. For everyone, their console alerts (docs/api/alerts.md):
// what notifier sent to them, their units or their roles, newest first, each acknowledged
// with one button; the watcher (watchAlerts) runs from sign-in to sign-out, whatever view is
// open, keeps the count of unacknowledged alerts in the header, and sounds the alarm for an
// emergency one until it is acknowledged. For supervisors and admins, also the notifications
// that could not be delivered: notifier's dead letters with their reason, a replay button, and
// one notification's deliveries by id (the id an emergency, referral or appointment shows).
// Calls: GET /api/v1/alerts, POST /api/v1/alerts/{id}/ack (intake's own);
// GET /api/v1/notifications/dead, POST /api/v1/notifications/dead/{id}/replay,
// GET /api/v1/notifications/{id} (notifier's, docs/api/notifier.md).
"use strict";

import { api } from "../api.js";
import { t, tc, fmtTime } from "../i18n.js";
import { h, clear, fill, field, showError, clearErrors, formError, values, panel, table } from "../dom.js";
import { needOps, poll, transient } from "./common.js";
import * as alarm from "../alarm.js";

const POLL_MS = 3000;
const ALARM_PREFIX = "alert:";     // the alarm's id for an alert (the board's are emergency ids)

async function ackAlert(id) {
  return api("POST", "/api/v1/alerts/" + encodeURIComponent(id) + "/ack", { body: {} });
}

function alertText(a) {
  return [a.title, a.body, t("alerts.sent_at", { time: fmtTime(a.created_at) })].filter(Boolean).join(" · ");
}

// The header's count of unacknowledged alerts: a link to this view, made when first needed.
function counter() {
  let el = document.getElementById("alerts-count");
  if (!el) {
    el = h("a", { id: "alerts-count", href: "#/notifications", class: "badge p-normal", hidden: true });
    const who = document.querySelector(".who");
    const user = document.getElementById("user");
    if (who && user) who.insertBefore(el, user);
    else if (who) who.append(el);
  }
  return el;
}

function showCount(items, more) {
  const el = counter();
  const n = items.length;
  el.hidden = n === 0;
  el.textContent = t("alerts.count", { count: more ? n + "+" : String(n) });
  el.className = "badge " + (items.some((a) => a.priority === "emergency") ? "p-emergency" : "p-normal");
  el.dataset.count = String(n);
}

// The alarm for the alerts just read: the oldest unacknowledged emergency one sounds; one
// acknowledged elsewhere (the list, another tab) stops.
function sound(items) {
  lastItems = items;
  const shown = alarm.current();
  if (shown && shown.startsWith(ALARM_PREFIX) && !items.some((a) => ALARM_PREFIX + a.id === shown)) alarm.stop();
  // an alert about an emergency the board's alarm sounds for stays quiet (alarm.js)
  const emergencies = items.filter((a) => a.priority === "emergency" && !alarm.boardHas(a.corr));
  if (emergencies.length && !alarm.current()) {
    const a = emergencies[emergencies.length - 1];
    alarm.raise(ALARM_PREFIX + a.id, alertText(a), () => ackAlert(a.id));
  }
}

let refreshList = null;    // the open view's list, redrawn when the watcher reads a change
let lastItems = [];        // the unacknowledged alerts last read

// The emergency was acknowledged on the board: its alerts are acknowledged with it.
alarm.onEmergencyAcked((emergencyId) => {
  for (const a of lastItems)
    if (a.corr === emergencyId) ackAlert(a.id).catch(() => { /* the list still offers it */ });
});

// From sign-in to sign-out: read the user's unacknowledged alerts every POLL_MS, show their
// count in the header and sound the alarm for an emergency one. Stops quietly when alerts are
// not for this user (403). Returns stop().
export function watchAlerts() {
  let last = "";
  const stopPoll = poll(async () => {
    let page;
    try {
      page = await api("GET", "/api/v1/alerts", { query: { unacknowledged: "true", limit: 50 } });
    } catch (e) {
      if (e.status === 403) stop();
      return !transient(e);
    }
    showCount(page.items, !!page.next_cursor);
    sound(page.items);
    const seen = page.items.map((a) => a.id).join(",");
    if (seen !== last && refreshList) refreshList();
    last = seen;
    return true;
  }, POLL_MS);
  function stop() {
    stopPoll();
    const el = document.getElementById("alerts-count");
    if (el) el.remove();
    if ((alarm.current() || "").startsWith(ALARM_PREFIX)) alarm.stop();
  }
  return stop;
}

// The user's alerts, newest first, with "acknowledge" on those not yet acknowledged.
function alertsPanel() {
  const box = panel("alerts.title", { id: "alerts" });
  const err = formError();
  const list = h("div", {});
  const more = h("button", { type: "button", hidden: true }, t("audit.more"));
  box.append(err, list, more);
  let rows = [];
  let next = null;
  let busy = false;
  let again = false;      // a refresh asked for while a read was out: done right after it

  async function load(first) {
    if (busy) {
      again = again || first;
      return;
    }
    busy = true;
    try {
      const page = await api("GET", "/api/v1/alerts", { query: { limit: 50, cursor: first ? null : next } });
      // a refresh (a new alert, an acknowledgement) starts again from the newest
      rows = first ? page.items : rows.concat(page.items);
      next = page.next_cursor;
      more.hidden = !next;
      err.hidden = true;
      draw();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    } finally {
      busy = false;
      if (again) {
        again = false;
        load(true);
      }
    }
  }

  function draw() {
    fill(list, table([
      ["alerts.sent", (a) => fmtTime(a.created_at)],
      ["notifications.priority", (a) => h("span", { class: "badge " + (a.priority === "emergency" ? "p-emergency" : "p-normal") }, tc("priority.", a.priority))],
      ["alerts.what", (a) => h("div", {}, h("strong", {}, a.title), h("div", {}, a.body))],
      ["alerts.to", (a) => tc("alerts.to.", a.recipient && a.recipient.kind)],
      ["board.col.actions", (a) => a.acknowledged
        ? t("alerts.acked_at", { time: fmtTime(a.acknowledged_at) })
        : h("button", { type: "button", class: a.priority === "emergency" ? "danger small" : "small", "data-alert": a.id, onclick: async (ev) => {
          ev.target.disabled = true;
          try {
            await ackAlert(a.id);
            if (alarm.current() === ALARM_PREFIX + a.id) alarm.stop();
            await load(true);
          } catch (e) {
            ev.target.disabled = false;
            err.textContent = e.message;
            err.hidden = false;
          }
        } }, t("alerts.ack"))],
    ], rows, { caption: "alerts.title", captionHidden: true, empty: "alerts.none", rowAttrs: (a) => ({ "data-id": a.id, class: a.acknowledged ? null : "unacked" }) }));
  }
  more.addEventListener("click", () => load(false));
  return { box, load };
}

export default async function notificationsView(main, app) {
  main.append(h("h1", { text: "nav.notifications" }));
  const alerts = alertsPanel();
  main.append(alerts.box);
  await alerts.load(true);
  refreshList = () => alerts.load(true);     // the watcher saw the unacknowledged ones change
  const stop = () => {
    refreshList = null;
  };
  const roles = (app && app.user && app.user.roles) || [];
  if (!roles.includes("supervisor") && !roles.includes("admin")) return stop;
  const box = h("div", {});
  main.append(box);
  if (!(await needOps(box, "notifications.api", ["GET /api/v1/notifications/dead", "POST /api/v1/notifications/dead/{id}/replay"]))) return stop;
  const dead = panel("notifications.dead", { id: "dead-letters" });
  const one = panel("notifications.lookup", { id: "notification-lookup" });
  box.append(dead, one);
  const err = formError();
  const list = h("div", {});
  const more = h("button", { type: "button", hidden: true }, t("audit.more"));
  dead.append(err, list, more);
  let rows = [];
  let next = null;

  async function load(first) {
    err.hidden = true;
    try {
      const page = await api("GET", "/api/v1/notifications/dead", { query: { limit: 50, after: first ? null : next } });
      rows = first ? page.items : rows.concat(page.items);
      next = page.next;
      more.hidden = !next;
      fill(list, table([
        ["notifications.dead_at", (d) => fmtTime(d.dead_at)],
        ["notifications.channel", (d) => d.channel],
        ["notifications.template", (d) => d.template],
        ["notifications.priority", (d) => tc("priority.", d.priority)],
        ["notifications.reason", (d) => d.reason + (d.error ? " · " + d.error : "")],
        ["notifications.tries", (d) => String(d.deliveries)],
        ["board.col.actions", (d) => h("button", { type: "button", class: "small", onclick: async () => {
          try {
            await api("POST", "/api/v1/notifications/dead/" + encodeURIComponent(d.id) + "/replay", { body: {}, idem: "replay-" + d.id });
            load(true);
          } catch (e) {
            err.textContent = e.message;
            err.hidden = false;
          }
        } }, t("notifications.replay"))],
      ], rows, { caption: "notifications.dead", captionHidden: true, empty: "notifications.none" }));
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }
  more.addEventListener("click", () => load(false));

  const form = h("form", { class: "inline-form", novalidate: true },
    field({ name: "id", label: "notifications.id", attrs: { autocomplete: "off", size: 34 } }), formError(),
    h("button", { type: "submit" }, t("notifications.find")));
  const found = h("div", {});
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const v = values(form);
    if (!v.id) return showError(form, { field: "id", message: t("form.required") });
    try {
      const n = await api("GET", "/api/v1/notifications/" + encodeURIComponent(v.id));
      fill(found, h("p", {}, n.template + " · " + tc("priority.", n.priority) + " · " + fmtTime(n.requested_at)),
        table([
          ["notifications.channel", (d) => d.channel],
          ["notifications.state", (d) => d.state],
          ["notifications.tries", (d) => String(d.total_attempts || d.attempts)],
          ["notifications.sent_at", (d) => fmtTime(d.sent_at)],
          ["notifications.reason", (d) => d.reason],
        ], n.deliveries || [], { caption: "notifications.lookup", captionHidden: true }));
    } catch (e) {
      showError(form, e);
    }
  });
  one.append(form, found);
  await load(true);
  return stop;
}
