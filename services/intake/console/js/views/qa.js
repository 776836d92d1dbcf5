// Greenline console: quality. Supervisors draw a random sample of an agent's contacts, score one
// on a scorecard with a comment, and read the scores by criterion; agents read the feedback on
// their contacts and acknowledge it, with a reply.
// Calls (docs/api/qa.md): GET /api/v1/qa/scorecards, POST /api/v1/qa/samples,
// POST/GET /api/v1/qa/reviews, GET /api/v1/qa/reviews/{id}, POST …/acknowledge,
// GET /api/v1/qa/scores; GET /api/v1/agents (who can be sampled), GET /api/v1/contacts/{id}.
"use strict";

import { api, all } from "../api.js";
import { t, tc, fmtTime } from "../i18n.js";
import { h, clear, fill, field, showError, clearErrors, formError, values, panel, table, dl } from "../dom.js";
import { needOps, taxonomy, categoryLabel } from "./common.js";

function dayStart(date) {
  return new Date(date + "T00:00").getTime();
}

export default async function qaView(main, app) {
  const user = app.user;
  const sup = user.roles.includes("supervisor");
  main.append(h("h1", { text: "nav.qa" }));
  const box = h("div", {});
  main.append(box);
  if (!(await needOps(box, "qa.api", ["GET /api/v1/qa/scorecards", "GET /api/v1/qa/reviews", "GET /api/v1/qa/scores"]))) return null;
  const cards = (await api("GET", "/api/v1/qa/scorecards")).items || [];
  let tax = { categories: [] };
  try { tax = await taxonomy(); } catch (e) { /* codes */ }
  const work = h("div", { id: "qa-work" });
  const reviews = panel("qa.reviews", { id: "qa-reviews" });
  const scores = panel("qa.scores", { id: "qa-scores" });

  // ---------------------------------------------------------------- sample and score
  if (sup) {
    let agents = [];
    try { agents = await all("/api/v1/agents", {}, 2000); } catch (e) { /* type the id */ }
    const sample = h("form", { class: "inline-form", id: "qa-sample", novalidate: true },
      agents.length
        ? field({ name: "agent_id", label: "qa.agent", type: "select", required: true,
          options: agents.map((a) => [a.agent_id, a.agent_id.slice(0, 8) + " (" + a.languages.join(", ") + ")", true]) })
        : field({ name: "agent_id", label: "qa.agent", required: true }),
      field({ name: "from", label: "reports.from", type: "date", required: true }),
      field({ name: "to", label: "reports.to", type: "date", required: true }),
      field({ name: "size", label: "qa.size", type: "number", attrs: { min: 1, max: 50, value: 5 } }),
      formError(),
      h("button", { type: "submit", class: "primary" }, t("qa.draw")));
    const drawn = h("div", {});
    sample.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(sample);
      const v = values(sample);
      if (!v.from || !v.to) return showError(sample, { field: v.from ? "to" : "from", message: t("form.required") });
      try {
        const s = await api("POST", "/api/v1/qa/samples", { body: {
          agent_id: v.agent_id || "", from: dayStart(v.from), to: dayStart(v.to) + 86400000, size: Number(v.size || 5) } });
        fill(drawn, h("p", { class: "hint" }, t("qa.drawn", { n: s.contact_ids.length, of: s.population })),
          h("ul", { class: "kb-hits" }, s.contact_ids.map((id) => h("li", {},
            h("button", { type: "button", class: "link", onclick: () => score(id, s.id) }, t("qa.score_contact", { id: id.slice(0, 8) }))))));
      } catch (e) {
        showError(sample, e);
      }
    });
    box.append(panel("qa.sample", { id: "qa-sample-panel" }, sample, drawn));
  }
  box.append(work, reviews, scores);

  async function score(contactId, sampleId) {
    clear(work);
    let c = null;
    try { c = await api("GET", "/api/v1/contacts/" + contactId); } catch (e) {
      work.append(h("p", { class: "form-error", role: "alert" }, e.message));
      return;
    }
    const cardSel = h("select", { id: "qa-card", "aria-label": t("qa.scorecard") }, cards.map((k) => h("option", { value: k.code, label: k.code })));
    const form = h("form", { novalidate: true, id: "qa-review-form" });
    const draw = () => {
      clear(form);
      const card = cards.find((k) => k.code === cardSel.value) || cards[0];
      form.append(
        h("div", { class: "row" }, card.criteria.map((cr) =>
          field({ name: "scores." + cr.code, label: "qa.criterion", type: "number", required: true,
            attrs: { min: 0, max: cr.max, value: cr.max } }))),
        field({ name: "comment", label: "qa.comment", type: "textarea", attrs: { maxlength: 4000, rows: 3 } }),
        formError(),
        h("button", { type: "submit", class: "primary" }, t("qa.save")));
      for (const cr of card.criteria) {
        const lab = form.querySelector('[data-field="scores.' + cr.code + '"] label');
        lab.textContent = tc("qa.crit.", cr.code) + " (0–" + cr.max + (cr.critical ? ", " + t("qa.critical") : "") + ")";
      }
    };
    cardSel.addEventListener("change", draw);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const v = values(form);
      const card = cards.find((k) => k.code === cardSel.value) || cards[0];
      const body = { contact_id: contactId, scorecard: card.code, scores: {} };
      for (const cr of card.criteria) body.scores[cr.code] = Number(v["scores." + cr.code]);
      if (v.comment) body.comment = v.comment;
      if (sampleId) body.sample_id = sampleId;
      try {
        const r = await api("POST", "/api/v1/qa/reviews", { body });
        fill(work, h("p", { class: "done", role: "status" }, t("qa.saved", { percent: r.percent })));
        loadReviews();
      } catch (e) {
        showError(form, e);
      }
    });
    draw();
    work.append(panel("qa.review_of", {},
      dl([
        ["contact.when", fmtTime(c.created_at)],
        ["contact.channel", tc("channel.", c.channel)],
        ["contact.categories", (c.categories || []).map((x) => categoryLabel(tax, x)).join(", ")],
        ["contact.outcome", tc("outcome.", c.outcome)],
        ["contact.recording_ref", c.recording_ref],
        ["contact.notes", c.notes],
      ]),
      h("label", { for: "qa-card" }, t("qa.scorecard")), " ", cardSel, form));
  }

  // ---------------------------------------------------------------- reviews
  async function loadReviews() {
    while (reviews.children.length > 1) reviews.lastChild.remove();
    try {
      const page = await api("GET", "/api/v1/qa/reviews", { query: sup ? { limit: 50 } : { limit: 50 } });
      const detail = h("div", {});
      reviews.append(table([
        ["qa.when", (r) => fmtTime(r.created_at)],
        ["qa.agent", (r) => r.agent_id.slice(0, 8)],
        ["qa.scorecard", (r) => r.scorecard],
        ["qa.percent", (r) => r.percent + " %" + (r.passed ? "" : " · " + t("qa.failed"))],
        ["qa.status", (r) => tc("qa.status.", r.status)],
        ["inbox.col.open", (r) => h("button", { type: "button", class: "small", onclick: () => openReview(r.id, detail) }, t("inbox.open"))],
      ], page.items, { caption: "qa.reviews", captionHidden: true, empty: "qa.none" }), detail);
    } catch (e) {
      reviews.append(h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }

  async function openReview(id, detail) {
    clear(detail);
    try {
      const r = await api("GET", "/api/v1/qa/reviews/" + id);
      const ack = h("form", { novalidate: true },
        field({ name: "comment", label: "qa.reply", type: "textarea", attrs: { maxlength: 4000, rows: 2 } }),
        formError(),
        h("button", { type: "submit", class: "primary" }, t("qa.acknowledge")));
      ack.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        clearErrors(ack);
        const v = values(ack);
        try {
          await api("POST", "/api/v1/qa/reviews/" + id + "/acknowledge", { body: v.comment ? { comment: v.comment } : {} });
          loadReviews();
        } catch (e) {
          showError(ack, e);
        }
      });
      detail.append(h("div", { class: "card" },
        h("h3", {}, t("qa.review_title", { percent: r.percent, total: r.total, max: r.max })),
        table([["qa.criterion", ([k]) => tc("qa.crit.", k)], ["qa.points", ([, v]) => String(v)]], Object.entries(r.scores || {}),
          { caption: "qa.scores", captionHidden: true }),
        r.comment ? h("p", {}, h("strong", {}, t("qa.comment") + ": "), r.comment) : null,
        r.agent_comment ? h("p", {}, h("strong", {}, t("qa.reply") + ": "), r.agent_comment) : null,
        r.status === "completed" && user.roles.includes("agent") && r.agent_id === user.id ? ack : null));
    } catch (e) {
      detail.append(h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }

  // ---------------------------------------------------------------- scores
  async function loadScores() {
    while (scores.children.length > 1) scores.lastChild.remove();
    try {
      const s = await api("GET", "/api/v1/qa/scores", { query: sup ? {} : { agent_id: user.id } });
      for (const sc of s.scorecards || [])
        scores.append(h("h3", {}, t("qa.card_summary", { card: sc.scorecard, reviews: sc.reviews, passed: sc.passed, percent: Math.round(sc.percent || 0) })),
          table([
            ["qa.criterion", (c) => tc("qa.crit.", c.code)],
            ["qa.average", (c) => (typeof c.average === "number" ? c.average.toFixed(1) + " / " + c.max : "–")],
            ["qa.percent", (c) => (typeof c.percent === "number" ? Math.round(c.percent) + " %" : "–")],
          ], sc.criteria || [], { caption: "qa.scores", captionHidden: true }));
      if (!(s.scorecards || []).length) scores.append(h("p", { class: "hint", text: "qa.none" }));
    } catch (e) {
      scores.append(h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }

  await Promise.all([loadReviews(), loadScores()]);
  return null;
}
