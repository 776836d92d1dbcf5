// Greenline console: the day's shift plan (supervisors), so the wallboard can show planned
// against present. One row per shift: the agent, start and end (HH:MM, local time; 24:00 ends
// a day); the API checks overlaps and names the row at fault (shifts[2].end), shown beside it.
// Calls: GET/PUT /api/v1/shifts/{date}, GET /api/v1/agents (who can be planned).
"use strict";

import { api, all } from "../api.js";
import { t, tc, fmtTime } from "../i18n.js";
import { h, clear, fill, showError, clearErrors, formError } from "../dom.js";

function today() {
  const d = new Date();
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
}

// The plan editor, into box. names(id) → what to call an agent.
export async function shiftPlan(box, names) {
  let agents = [];
  try { agents = await all("/api/v1/agents", {}, 2000); } catch (e) { /* ids typed then */ }
  const date = h("input", { type: "date", id: "shift-date", value: today() });
  const rows = h("tbody", {});
  const form = h("form", { id: "shift-form", novalidate: true },
    h("div", { class: "inline-form" }, h("label", { for: "shift-date" }, t("shifts.date")), date,
      h("button", { type: "button", onclick: () => load() }, t("shifts.load"))),
    h("div", { class: "table-wrap" }, h("table", { class: "grid" },
      h("caption", { class: "sr", text: "shifts.title" }),
      h("thead", {}, h("tr", {}, ["shifts.agent", "shifts.start", "shifts.end", "shifts.now", "board.col.actions"].map((k) => h("th", { scope: "col", text: k })))),
      rows)),
    h("div", { "data-field": "shifts" }, h("p", { class: "error", role: "alert" })),
    formError(),
    h("div", { class: "buttons" },
      h("button", { type: "button", onclick: () => addRow({}) }, t("shifts.add")),
      h("button", { type: "submit", class: "primary" }, t("shifts.save"))),
    h("p", { class: "hint", id: "shift-updated" }));

  function addRow(s) {
    const i = rows.children.length;
    const who = h("select", { name: "agent_id", "aria-label": t("shifts.agent") },
      agents.map((a) => h("option", { value: a.agent_id, label: names(a.agent_id) })));
    if (s.agent_id) {
      if (!agents.some((a) => a.agent_id === s.agent_id)) who.append(h("option", { value: s.agent_id, label: names(s.agent_id) }));
      who.value = s.agent_id;
    }
    const start = h("input", { type: "time", name: "start", value: s.start || "08:00", "aria-label": t("shifts.start") });
    const end = h("input", { type: "text", name: "end", value: s.end || "16:00", size: 5, pattern: "\\d\\d:\\d\\d", "aria-label": t("shifts.end") });
    const tr = h("tr", { "data-field": "shifts[" + i + "]" },
      h("td", { "data-field": "shifts[" + i + "].agent_id" }, who, h("p", { class: "error", role: "alert" })),
      h("td", { "data-field": "shifts[" + i + "].start" }, start, h("p", { class: "error", role: "alert" })),
      h("td", { "data-field": "shifts[" + i + "].end" }, end, h("p", { class: "error", role: "alert" })),
      h("td", {}, s.state ? tc("state.", s.state) + (s.present ? "" : " · " + t("shifts.absent")) : "–"),
      h("td", {}, h("button", { type: "button", class: "small", onclick: () => { tr.remove(); renumber(); } }, t("shifts.remove"))));
    rows.append(tr);
  }

  function renumber() {
    [...rows.children].forEach((tr, i) => {
      tr.dataset.field = "shifts[" + i + "]";
      const cells = tr.querySelectorAll("td[data-field]");
      ["agent_id", "start", "end"].forEach((f, j) => { cells[j].dataset.field = "shifts[" + i + "]." + f; });
    });
  }

  async function load() {
    clearErrors(form);
    clear(rows);
    try {
      const plan = await api("GET", "/api/v1/shifts/" + date.value);
      for (const s of plan.shifts) addRow(s);
      form.querySelector("#shift-updated").textContent = plan.updated_at
        ? t("shifts.updated", { time: fmtTime(plan.updated_at) }) : t("shifts.none");
    } catch (e) {
      showError(form, e);
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const shifts = [...rows.children].map((tr) => ({
      agent_id: tr.querySelector("[name=agent_id]").value,
      start: tr.querySelector("[name=start]").value,
      end: tr.querySelector("[name=end]").value,
    }));
    try {
      await api("PUT", "/api/v1/shifts/" + date.value, { body: { shifts } });
      await load();
    } catch (e) {
      showError(form, e);
    }
  });
  fill(box, form);
  await load();
}
