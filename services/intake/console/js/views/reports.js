// Greenline console: reports, trends and downloads (supervisors, admins; the statistical export
// also for protection staff). A period picker (day, week, month, or a range of dates), the key
// figures, a chart of calls per day or per hour (SVG drawn here, nothing fetched), the tables
// behind them, the week's rising categories, and the CSV downloads.
// Calls (docs/api/reporting.md): GET /api/v1/reports/{period}, GET /api/v1/trends,
// GET /api/v1/exports/report/{period}, GET /api/v1/exports/stats.
"use strict";

import { api, hasOps } from "../api.js";
import { t, fmtDuration, fmtNumber } from "../i18n.js";
import { h, clear, fill, field, showError, clearErrors, formError, values, panel, table } from "../dom.js";
import { needOps, taxonomy, categoryLabel } from "./common.js";
import { tile } from "./board.js";

const PERIODS = ["day", "week", "month", "range"];

export function pct(rate) {
  return rate === null || rate === undefined ? "–" : Math.round(rate * 1000) / 10 + " %";
}

function today() {
  const d = new Date();
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
}

// A bar chart of series (keys of each row) over rows, labelled by label(row). Text alternative:
// the table next to it holds the same numbers.
export function barChart(rows, series, label, titleKey) {
  const W = 720, H = 220, pad = 28, bottom = 34;
  const max = Math.max(1, ...rows.flatMap((r) => series.map((s) => r[s] || 0)));
  const band = (W - pad * 2) / Math.max(1, rows.length);
  const bw = Math.max(2, (band - 4) / series.length);
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svg = el("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "aria-label": t(titleKey) });
  svg.append(el("line", { x1: pad, y1: H - bottom, x2: W - pad, y2: H - bottom, class: "axis" }));
  svg.append(el("text", { x: pad, y: 12 }, fmtNumber(max)));
  const colours = ["bar", "bar2", "bar3"];
  rows.forEach((r, i) => {
    series.forEach((s, j) => {
      const v = r[s] || 0;
      const hgt = ((H - bottom - 18) * v) / max;
      const rect = el("rect", { x: pad + i * band + 2 + j * bw, y: H - bottom - hgt, width: bw - 1, height: hgt, class: colours[j] });
      rect.append(el("title", {}, label(r) + " · " + t("reports.series." + s) + ": " + v));
      svg.append(rect);
    });
    if (rows.length <= 31 && (rows.length <= 12 || i % 2 === 0))
      svg.append(el("text", { x: pad + i * band + band / 2, y: H - bottom + 14, "text-anchor": "middle" }, label(r)));
  });
  const legend = h("p", { class: "legend" }, series.map((s, j) => h("span", { class: "key " + colours[j] }, t("reports.series." + s))));
  return h("figure", { class: "chart-box" }, svg, legend);
}

function download(file) {
  const blob = new Blob([file.data], { type: file.content_type || "text/csv" });
  const a = h("a", { href: URL.createObjectURL(blob), download: file.filename || "greenline.csv" });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

function dims(obj, labelFn) {
  return Object.entries(obj || {}).sort((a, b) => (b[1] || 0) - (a[1] || 0)).map(([k, v]) => [labelFn ? labelFn(k) : k, v]);
}

export default async function reportsView(main, app) {
  const user = app.user;
  main.append(h("h1", { text: "nav.reports" }));
  const box = h("div", {});
  main.append(box);
  if (!(await needOps(box, "reports.api", ["GET /api/v1/reports/{period}"]))) return null;
  let tax = { categories: [] };
  try { tax = await taxonomy(); } catch (e) { /* codes */ }
  const cat = (c) => categoryLabel(tax, c);

  const form = h("form", { class: "inline-form", id: "report-form", novalidate: true },
    field({ name: "period", label: "reports.period", type: "select", placeholder: false, options: PERIODS.map((p) => [p, "reports.period." + p]) }),
    field({ name: "date", label: "reports.date", type: "date", attrs: { value: today() } }),
    field({ name: "from", label: "reports.from", type: "date" }),
    field({ name: "to", label: "reports.to", type: "date" }),
    formError(),
    h("button", { type: "submit", class: "primary" }, t("reports.show")),
    h("button", { type: "button", id: "report-csv" }, t("reports.download")));
  const out = h("div", { id: "report" });
  const trends = panel("reports.trends", { id: "trends" });
  const stats = panel("reports.stats", { id: "stats-export" });
  const reader = user.roles.some((r) => ["agent", "supervisor", "admin"].includes(r));
  const staff = user.roles.includes("supervisor") || user.roles.includes("admin");
  if (!staff) form.querySelector("#report-csv").hidden = true;     // the export is for supervisors and admins
  if (reader) box.append(form, out);
  if (staff) box.append(trends);
  box.append(stats);

  function query() {
    const v = values(form);
    const q = {};
    if (v.period === "range" || (v.from && v.to)) {
      q.from = v.from;
      q.to = v.to;
    } else if (v.date) q.date = v.date;
    return [v.period || "day", q];
  }

  async function show() {
    clearErrors(form);
    const [period, q] = query();
    let r;
    try {
      r = await api("GET", "/api/v1/reports/" + period, { query: q });
    } catch (e) {
      showError(form, e);
      return;
    }
    const c = r.calls || {};
    const sl = c.service_level || {};
    const slTiles = Object.entries(sl).map(([s, v]) => tile(t("reports.sl", { s }), pct(v)));
    fill(out, 
      h("p", { class: "hint" }, t("reports.range", { from: r.period.from, to: r.period.to, tz: r.period.time_zone || "" })),
      h("div", { class: "tiles" },
        tile("reports.offered", fmtNumber(c.offered)),
        tile("reports.answered", fmtNumber(c.answered)),
        tile("reports.abandoned", fmtNumber(c.abandoned)),
        tile("reports.abandonment", pct(c.abandonment_rate)),
        tile("reports.asa", fmtDuration(c.asa_ms)),
        tile("reports.aht", fmtDuration(c.aht_ms)),
        ...slTiles,
        tile("reports.contacts", fmtNumber((r.contacts || {}).total)),
        tile("reports.fcr", pct((r.fcr || {}).rate)),
        tile("reports.referrals", fmtNumber((r.referrals || {}).requested)),
        tile("reports.emergencies", fmtNumber((r.emergencies || {}).raised)),
        tile("reports.appointments", fmtNumber((r.appointments || {}).booked)),
        tile("reports.complaints", fmtNumber((r.complaints || {}).received))),
      r.hours && r.hours.length
        ? barChart(r.hours, ["offered", "answered", "abandoned"], (x) => String(x.hour), "reports.chart_hours")
        : barChart(r.days || [], ["offered", "answered", "abandoned"], (x) => String(x.date).slice(5), "reports.chart_days"),
      h("div", { class: "two" },
        panel("reports.by_category", {}, table([["reports.category", (x) => x[0]], ["reports.count", (x) => fmtNumber(x[1])]],
          dims((r.contacts || {}).by_category, cat), { caption: "reports.by_category", captionHidden: true })),
        panel("reports.by_outcome", {}, table([["reports.outcome", (x) => x[0]], ["reports.count", (x) => fmtNumber(x[1])]],
          dims((r.contacts || {}).by_outcome, (k) => t("outcome." + k)), { caption: "reports.by_outcome", captionHidden: true }))),
      panel("reports.agents", {}, table([
        ["board.col.agent", (a) => a.agent_id.slice(0, 8)],
        ["reports.answered", (a) => fmtNumber(a.answered)],
        ["reports.aht", (a) => fmtDuration(a.aht_ms)],
        ["reports.occupancy", (a) => pct(a.occupancy)],
        ["reports.qa", (a) => (a.qa_avg_score === null || a.qa_avg_score === undefined ? "–" : String(a.qa_avg_score))],
      ], r.agents || [], { caption: "reports.agents", captionHidden: true })));
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); show(); });
  form.querySelector("#report-csv").addEventListener("click", async () => {
    clearErrors(form);
    const [period, q] = query();
    try {
      download(await api("GET", "/api/v1/exports/report/" + period, { query: q }));
    } catch (e) {
      showError(form, e);
    }
  });

  // ---------------------------------------------------------------- trends
  if (await hasOps(["GET /api/v1/trends"]).catch(() => false)) {
    const tf = h("form", { class: "inline-form", novalidate: true },
      field({ name: "date", label: "reports.week_of", type: "date" }), formError(),
      h("button", { type: "submit" }, t("reports.show")));
    const tb = h("div", {});
    trends.append(tf, tb);
    tf.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(tf);
      try {
        const v = values(tf);
        const res = await api("GET", "/api/v1/trends", { query: v.date ? { date: v.date } : {} });
        const rows = (res.categories && res.categories.all) || [];
        fill(tb, h("p", { class: "hint" }, t("reports.trend_week", { from: res.week_from, to: res.week_to })),
          table([
            ["reports.category", (x) => cat(x.category)],
            ["reports.observed", (x) => fmtNumber(x.observed)],
            ["reports.expected", (x) => (typeof x.expected === "number" ? x.expected.toFixed(1) : "–")],
            ["reports.q_value", (x) => (typeof x.q_value === "number" ? x.q_value.toFixed(3) : "–")],
            ["reports.rising", (x) => (x.rising ? h("strong", { class: "overdue" }, t("reports.rising_yes")) : "")],
          ], rows, { caption: "reports.trends", captionHidden: true, empty: "reports.no_trends" }));
      } catch (e) {
        showError(tf, e);
      }
    });
  } else trends.append(h("p", { class: "hint", text: "reports.no_trends_api" }));

  // ---------------------------------------------------------------- statistical export
  if (await hasOps(["GET /api/v1/exports/stats"]).catch(() => false)) {
    const sf = h("form", { class: "inline-form", novalidate: true },
      field({ name: "from", label: "reports.from", type: "date", required: true }),
      field({ name: "to", label: "reports.to", type: "date", required: true }),
      field({ name: "granularity", label: "reports.granularity", type: "select", placeholder: false,
        options: [["month", "reports.period.month"], ["week", "reports.period.week"], ["day", "reports.period.day"]] }),
      formError(),
      h("button", { type: "submit" }, t("reports.download")));
    stats.append(h("p", { class: "hint", text: "reports.stats_hint" }), sf);
    sf.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(sf);
      const v = values(sf);
      try {
        download(await api("GET", "/api/v1/exports/stats", { query: { from: v.from, to: v.to, granularity: v.granularity, format: "csv" } }));
      } catch (e) {
        showError(sf, e);
      }
    });
  }
  if (reader) await show();
  return null;
}
