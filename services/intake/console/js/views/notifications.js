// Greenline console: notifications that could not be delivered (supervisors, admins). The dead
// letters of notifier with their reason, a replay button, and one notification's deliveries by
// id (the id an emergency, referral or appointment shows).
// Calls (docs/api/notifier.md): GET /api/v1/notifications/dead,
// POST /api/v1/notifications/dead/{id}/replay, GET /api/v1/notifications/{id}.
"use strict";

import { api } from "../api.js";
import { t, tc, fmtTime } from "../i18n.js";
import { h, clear, fill, field, showError, clearErrors, formError, values, panel, table } from "../dom.js";
import { needOps } from "./common.js";

export default async function notificationsView(main) {
  main.append(h("h1", { text: "nav.notifications" }));
  const box = h("div", {});
  main.append(box);
  if (!(await needOps(box, "notifications.api", ["GET /api/v1/notifications/dead", "POST /api/v1/notifications/dead/{id}/replay"]))) return null;
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
  return null;
}
