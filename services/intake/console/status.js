// Greenline console: the service status line at the foot of every page. Shows /health and
// /ready of the intake service and refreshes them every 5 seconds. Text only (textContent),
// never HTML from a response.
"use strict";

import { t, onLanguage, fmtClock } from "./js/i18n.js";
import { report } from "./js/api.js";

const REFRESH_MS = 5000;
let last = null;

function show(id, text, state) {
  const el = document.getElementById(id);
  el.textContent = text;
  el.className = state;
}

async function probe(path) {
  try {
    const res = await fetch(path, { cache: "no-store" });
    const body = await res.json().catch(() => ({}));
    return { status: res.status, body: body };
  } catch (e) {
    return { status: 0, body: {} };
  }
}

function draw() {
  if (!last) return;
  const { health, ready } = last;
  if (health.status === 200) {
    show("health", t("status.alive", { uptime: health.body.uptime_s }), "ok");
    document.getElementById("instance").textContent = health.body.instance || "";
  } else {
    show("health", health.status ? t("error.http", { status: health.status }) : t("status.no_answer"), "bad");
  }
  if (ready.status === 200) show("ready", t("status.ready"), "ok");
  else if (ready.status === 503) show("ready", t("status.not_ready", { reason: ready.body.reason || "?" }), "bad");
  else show("ready", ready.status ? t("error.http", { status: ready.status }) : t("status.no_answer"), "bad");
  document.getElementById("checked").textContent = t("status.checked", { time: fmtClock(Date.now()) });
}

async function refresh() {
  const health = await probe("/health");
  const ready = await probe("/ready");
  if (health.status === 0) report("network");
  else if (ready.status >= 500 && ready.status !== 503) report("api");
  last = { health, ready };
  draw();
}

onLanguage(draw);
refresh();
setInterval(refresh, REFRESH_MS);
