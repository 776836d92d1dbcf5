// Greenline console: the supervisor's live board. The queue (waiting calls, longest wait, per
// language), every agent's state (with their display name) and how long they have been in it,
// force offline; and, when the deployment has reporting's wallboard, today's figures and
// service level. Updates itself from server-sent events: GET /api/v1/board/stream sends an
// `event: board` {queue, agents, wallboard} at once and again whenever something changes (not
// when only time passes: between events the waits and times in state are advanced here, every
// few seconds). When the browser has no EventSource, or the stream fails STREAM_ERRORS_MAX
// times in a row (a proxy that cuts it, a 503 when too many are open), the board falls back
// to polling the three reads every 3 seconds, as it did before the stream existed.
// Calls: GET /api/v1/board/stream; fallback GET /api/v1/queue, GET /api/v1/agents,
// GET /api/v1/wallboard (reporting); POST /api/v1/agents/{id}/force-offline.
"use strict";

import { api, all, hasOps } from "../api.js";
import { t, tc, fmtDuration, fmtClock, fmtNumber } from "../i18n.js";
import { h, clear, fill, panel, table } from "../dom.js";
import { poll, missingApi, transient } from "./common.js";

const POLL_MS = 3000;
const STREAM = "/api/v1/board/stream";
const STREAM_ERRORS_MAX = 3;
const STATES = ["available", "on_call", "wrap_up", "break", "offline"];

export function tile(labelKey, value, cls) {
  return h("div", { class: "tile" + (cls ? " " + cls : "") },
    h("span", { class: "tile-value" }, value === null || value === undefined ? "–" : String(value)),
    h("span", { class: "tile-label", text: labelKey }));
}

// Agents' display names, as GET /api/v1/agents (and the stream) carry them; a short id when a
// user has none.
function remember(map, agents) {
  for (const a of agents) if (a.display_name) map.set(a.agent_id, a.display_name);
}

export function agentName(map, id) {
  return map.get(id) || (id ? id.slice(0, 8) : "–");
}

// The queue as it will be ms later: the waits grow and the clock moves (the stream sends an
// event only when something else changes).
function aged(q, ms) {
  if (!ms) return q;
  const plus = (v) => (v === null || v === undefined ? v : v + ms);
  const languages = {};
  for (const [l, v] of Object.entries(q.languages || {})) languages[l] = { ...v, oldest_wait_ms: plus(v.oldest_wait_ms) };
  return { ...q, now: q.now + ms, calls: q.calls.map((c) => ({ ...c, wait_ms: plus(c.wait_ms) })), languages };
}

export default async function boardView(main, app) {
  const user = app.user;
  const who = new Map();
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

  function draw(q, agents) {
    remember(who, agents);
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
  }

  // ---------------------------------------------------------------- polling (the fallback)
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
    draw(q, agents);
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

  const stops = [];
  function startPolling() {
    stops.push(poll(refresh, POLL_MS));
    if (wallOk) stops.push(poll(refreshWall, POLL_MS));
  }

  // ---------------------------------------------------------------- the stream
  function startStream() {
    const es = new EventSource(STREAM);
    let last = null;            // the last event's {queue, agents} and when it came
    let errors = 0;
    const redraw = () => {
      if (!last) return;
      draw(aged(last.queue, Date.now() - last.at), last.agents);
      updated.textContent = t("board.live", { time: fmtClock(Date.now()) });
    };
    es.addEventListener("board", (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      errors = 0;
      err.hidden = true;
      last = { queue: data.queue, agents: data.agents, at: Date.now() };
      redraw();
      if (wallOk && data.wallboard) drawWall(wallBody, data.wallboard);
    });
    es.addEventListener("error", () => {
      // EventSource reconnects by itself after a network error; a refused stream (401, 503)
      // closes it. Either way, after a few failures in a row the board polls instead.
      errors += 1;
      if (es.readyState === EventSource.CLOSED || errors >= STREAM_ERRORS_MAX) {
        stopStream();
        startPolling();
      }
    });
    const timer = setInterval(() => { if (es.readyState === EventSource.OPEN) redraw(); }, POLL_MS);
    const stopStream = () => {
      clearInterval(timer);
      es.close();
    };
    stops.push(stopStream);
  }

  if (typeof EventSource === "function") startStream();
  else startPolling();
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
