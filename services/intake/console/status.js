// Greenline console: the status page. Shows /health and /ready of the intake service and
// refreshes them. Text only (textContent), never HTML from a response.
"use strict";

const REFRESH_MS = 5000;
let reported = false;

function show(id, text, state) {
  const el = document.getElementById(id);
  el.textContent = text;
  el.className = state;
}

// Count a failure of this page at the API (codes only), once per page load.
function report(kind) {
  if (reported) return;
  reported = true;
  fetch("/api/v1/console/errors", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ kind: kind, view: "status" }),
  }).catch(() => {});
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

async function refresh() {
  const health = await probe("/health");
  if (health.status === 200) {
    show("health", "alive, up " + health.body.uptime_s + " s", "ok");
    document.getElementById("instance").textContent = health.body.instance || "–";
  } else {
    show("health", health.status ? "HTTP " + health.status : "no answer", "bad");
    if (health.status === 0) report("network");
  }
  const ready = await probe("/ready");
  if (ready.status === 200) {
    show("ready", "ready", "ok");
  } else if (ready.status === 503) {
    show("ready", "not ready: " + (ready.body.reason || "unknown reason"), "bad");
  } else {
    show("ready", ready.status ? "HTTP " + ready.status : "no answer", "bad");
    if (ready.status >= 500) report("api");
  }
  document.getElementById("checked").textContent =
    "Last checked " + new Date().toLocaleTimeString() + ".";
}

window.addEventListener("error", () => report("script"));
refresh();
setInterval(refresh, REFRESH_MS);
