// Greenline console: the supervisor's live board. The queue (waiting calls, longest wait, per
// language), every agent's state and how long they have been in it, force offline; and, when
// the deployment has reporting's wallboard, today's figures and service level. Updates itself
// every 3 seconds by polling (intake's HTTP framework answers each request in one piece, so
// there are no server-sent events to listen to).
// Calls: GET /api/v1/queue, GET /api/v1/agents, POST /api/v1/agents/{id}/force-offline,
// GET /api/v1/users (admins: names), GET /api/v1/wallboard (reporting).
"use strict";

import { api, all, hasOps } from "../api.js";
import { t, tc, fmtDuration, fmtClock, fmtNumber } from "../i18n.js";
import { h, clear, fill, panel, table } from "../dom.js";
import { poll, missingApi, transient } from "./common.js";

const POLL_MS = 3000;
const STATES = ["available", "on_call", "wrap_up", "break", "offline"];

export function tile(labelKey, value, cls) {
  return h("div", { class: "tile" + (cls ? " " + cls : "") },
    h("span", { class: "tile-value" }, value === null || value === undefined ? "–" : String(value)),
    h("span", { class: "tile-label", text: labelKey }));
}

// Names of users, for admins who may list them; others see short ids (GET /api/v1/agents
// carries no names).
async function names(user) {
  const map = new Map();
  if (!user.roles.includes("admin")) return map;
  try {
    for (const u of await all("/api/v1/users", {}, 2000)) map.set(u.id, u.display_name || u.username);
  } catch (e) { /* ids then */ }
  return map;
}

export function agentName(map, id) {
  return map.get(id) || (id ? id.slice(0, 8) : "–");
}

export default async function boardView(main, app) {
  const user = app.user;
  const who = await names(user);
  const updated = h("p", { class: "hint", id: "board-updated", "aria-live": "off" });
  const err = h("p", { class: "form-error", role: "alert", hidden: true });
  const tiles = h("div", { class: "tiles", id: "board-tiles" });
  const queueBox = panel("board.queue", { id: "board-queue" });
  const agentsBox = panel("board.agents", { id: "board-agents" });
  const wallBox = panel("board.wallboard", { id: "board-wallboard" });
  const shiftBox = h("details", { class: "panel", id: "shift-plan" }, h("summary", { text: "shifts.title" }));
  main.append(h("h1", { text: "nav.board" }), updated, err, tiles, h("div", { class: "two" }, queueBox, agentsBox), wallBox, shiftBox);
  if (user.roles.includes("supervisor"))
    shiftBox.addEventListener("toggle", async () => {
      if (!shiftBox.open || shiftBox.dataset.loaded) return;
      shiftBox.dataset.loaded = "1";
      const body = h("div", {});
      shiftBox.append(body);
      (await import("./shifts.js")).shiftPlan(body, (id) => agentName(who, id));
    });
  else shiftBox.hidden = true;

  let wallOk = false;
  try { wallOk = await hasOps(["GET /api/v1/wallboard"]); } catch (e) { wallOk = false; }
  if (!wallOk) wallBox.append(missingApi("board.wallboard_api", "GET /api/v1/wallboard"));
  const wallBody = h("div", {});
  wallBox.append(wallBody);
  const queueBody = h("div", {});
  queueBox.append(queueBody);
  const agentsBody = h("div", {});
  agentsBox.append(agentsBody);

  async function forceOffline(id) {
    try {
      await api("POST", "/api/v1/agents/" + id + "/force-offline", { body: {} });
      app.flash(t("board.forced", { name: agentName(who, id) }));
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }

  async function refresh() {
    let q, agents;
    try {
      [q, agents] = await Promise.all([api("GET", "/api/v1/queue"), all("/api/v1/agents", {}, 2000)]);
      err.hidden = true;
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
      return !transient(e);
    }
    const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
    for (const a of agents) counts[a.state] = (counts[a.state] || 0) + 1;
    let longest = null;
    for (const c of q.calls) if (longest === null || c.wait_ms > longest) longest = c.wait_ms;
    fill(tiles, 
      tile("board.waiting", q.waiting, q.waiting ? "hot" : ""),
      tile("board.longest", fmtDuration(longest), longest > 120000 ? "hot" : ""),
      tile("board.answered", q.answered),
      ...STATES.map((s) => tile("state." + s, counts[s], "s-" + s)));
    fill(queueBody, 
      table([
        ["board.col.position", (c) => String(c.position)],
        ["board.col.language", (c) => c.language],
        ["board.col.priority", (c) => h("span", { class: "badge p-" + c.priority }, t("priority." + c.priority))],
        ["board.col.wait", (c) => fmtDuration(c.wait_ms)],
        ["board.col.line", (c) => c.line],
        ["board.col.transfers", (c) => String(c.transfers)],
      ], q.calls, { caption: "board.queue", captionHidden: true, empty: "board.queue_empty", id: "queue-table" }),
      h("h3", { text: "board.by_language" }),
      table([
        ["board.col.language", ([l]) => l],
        ["board.waiting", ([, v]) => String(v.waiting)],
        ["board.answered", ([, v]) => String(v.answered)],
        ["board.longest", ([, v]) => fmtDuration(v.oldest_wait_ms)],
      ], Object.entries(q.languages || {}), { caption: "board.by_language", captionHidden: true }));
    const now = q.now;
    fill(agentsBody, table([
      ["board.col.agent", (a) => agentName(who, a.agent_id)],
      ["board.col.state", (a) => h("span", { class: "badge s-" + a.state }, t("state." + a.state))],
      ["board.col.for", (a) => fmtDuration(now - a.since)],
      ["board.col.reason", (a) => (a.reason_code ? tc("reason.", a.reason_code) : null)],
      ["board.col.call", (a) => (a.call_id ? a.call_id.slice(0, 8) : null)],
      ["board.col.languages", (a) => a.languages.join(", ")],
      ["board.col.actions", (a) => (a.state !== "offline" && user.roles.includes("supervisor")
        ? h("button", { type: "button", class: "small", onclick: () => forceOffline(a.agent_id),
          "aria-label": t("board.force_offline_of", { name: agentName(who, a.agent_id) }) }, t("board.force_offline")) : null)],
    ], agents, { caption: "board.agents", captionHidden: true, empty: "board.no_agents", rowAttrs: (a) => ({ "data-agent": a.agent_id }) }));
    updated.textContent = t("board.updated", { time: fmtClock(Date.now()) });
    return true;
  }

  // reporting's figures on their own poller: when reporting is down its backing off does not
  // slow the live queue
  async function refreshWall() {
    try {
      drawWall(wallBody, await api("GET", "/api/v1/wallboard"));
      return true;
    } catch (e) {
      drawWall(wallBody, { error: e });
      return !transient(e);
    }
  }

  const stops = [poll(refresh, POLL_MS)];
  if (wallOk) stops.push(poll(refreshWall, POLL_MS));
  return () => stops.forEach((stop) => stop());
}

// reporting's wallboard: today's figures, service level, planned against present.
export function drawWall(box, wall) {
  clear(box);
  if (wall.error) {
    box.append(h("p", { class: "form-error", role: "alert" }, wall.error.message));
    return;
  }
  const d = wall.today || {};
  const pct = (r) => (r === null || r === undefined ? "–" : Math.round(r * 1000) / 10 + " %");
  const sl = Object.entries(d.service_level || {});
  box.append(h("div", { class: "tiles", id: "wall-tiles" },
    tile("wall.offered", fmtNumber(d.offered)),
    tile("wall.answered", fmtNumber(d.answered)),
    tile("wall.abandoned", fmtNumber(d.abandoned), d.abandoned ? "hot" : ""),
    tile("wall.abandonment_rate", pct(d.abandonment_rate)),
    tile("wall.asa", fmtDuration(d.asa_ms)),
    ...sl.map(([s, v]) => tile(t("reports.sl", { s }), pct(v))),
    tile("wall.contacts", fmtNumber(d.contacts)),
    tile("wall.emergencies", fmtNumber(d.emergencies), d.emergencies ? "hot" : ""),
    tile("wall.planned_present", fmtNumber(wall.agents_planned) + " / " + fmtNumber(wall.agents_present))),
  h("p", { class: "hint" }, t("wall.as_of", { date: wall.date || "", time: fmtClock(wall.as_of) })));
}
