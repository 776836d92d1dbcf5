// Greenline console: the knowledge base. Everyone who may read it searches it (also beside the
// agent's contact form: searchBox); agents read their briefings and acknowledge them;
// supervisors write articles (each change a version), see the history and the diff between any
// two versions, and who has not acknowledged a briefing.
// Calls (docs/api/kb.md): GET /api/v1/kb/search, GET/POST /api/v1/kb/articles,
// GET/PATCH /api/v1/kb/articles/{id}, GET …/versions, GET …/versions/{n}, GET …/diff,
// GET /api/v1/kb/briefings[/{id}], POST /api/v1/kb/briefings/{id}/acknowledge.
"use strict";

import { api } from "../api.js";
import { t, tc, fmtTime, language } from "../i18n.js";
import { h, put, clear, fill, field, showError, clearErrors, formError, values, panel, table } from "../dom.js";
import { needOps } from "./common.js";

function list(s) {
  return s ? s.split(/[\s,;]+/).filter(Boolean) : [];
}

function toLocalInput(ms) {
  if (!ms) return "";
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

// An article as text: title, flags, tags, dates and the body with its line breaks.
export function articleView(a) {
  return h("article", { class: "kb-article", "data-article": a.id, lang: a.language },
    h("h3", {}, a.title, a.expired ? h("span", { class: "badge p-emergency" }, " " + t("kb.expired")) : null),
    h("p", { class: "hint" }, t("kb.meta", { version: a.version, time: fmtTime(a.updated_at), language: a.language }),
      a.tags && a.tags.length ? " · " + a.tags.join(", ") : ""),
    a.valid_to ? h("p", { class: a.expired ? "warning" : "hint" }, t("kb.valid_to", { time: fmtTime(a.valid_to) })) : null,
    h("div", { class: "kb-body" }, a.body));
}

// The search form and its results, inside box. language: the default filter (the call's).
export function searchBox(box, defaultLanguage) {
  const form = h("form", { class: "inline-form kb-search", role: "search", novalidate: true },
    field({ name: "q", label: "kb.query", type: "search", attrs: { autocomplete: "off" } }),
    field({ name: "language", label: "kb.language", attrs: { size: 5, autocomplete: "off", value: defaultLanguage || "" } }),
    formError(),
    h("button", { type: "submit" }, t("kb.search")));
  const results = h("div", { class: "kb-results", "aria-live": "polite" });
  const reader = h("div", { class: "kb-reader" });
  async function read(id) {
    clear(reader);
    try {
      const a = await api("GET", "/api/v1/kb/articles/" + id);
      reader.append(articleView(a));
      const head = reader.querySelector("h3");
      head.setAttribute("tabindex", "-1");
      head.focus();
    } catch (e) {
      reader.append(h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const v = values(form);
    if (!v.q) return showError(form, { field: "q", message: t("form.required") });
    try {
      const res = await api("GET", "/api/v1/kb/search", { query: { q: v.q, language: v.language, limit: 20 } });
      clear(reader);
      fill(results, 
        h("p", { class: "hint" }, t("kb.found", { n: res.total !== undefined ? res.total : res.items.length })),
        h("ul", { class: "kb-hits" }, res.items.map((a) => h("li", {},
          h("button", { type: "button", class: "link", onclick: () => read(a.id) },
            a.title), a.expired ? " (" + t("kb.expired") + ")" : "", " ", h("span", { class: "hint" }, a.language)))));
    } catch (e) {
      showError(form, e);
    }
  });
  box.append(form, results, reader);
  return form;
}

export default async function kbView(main, app) {
  const user = app.user;
  const writer = user.roles.includes("supervisor");
  main.append(h("h1", { text: "nav.kb" }));
  const box = h("div", {});
  main.append(box);
  if (!(await needOps(box, "kb.api", ["GET /api/v1/kb/search", "GET /api/v1/kb/articles"]))) return null;

  const search = panel("kb.search_title", { id: "kb-search" });
  searchBox(search, "");
  const briefings = panel("kb.briefings", { id: "kb-briefings" });
  const articles = panel("kb.articles", { id: "kb-articles" });
  const editor = h("div", { id: "kb-editor" });
  box.append(h("div", { class: "two" }, h("div", {}, search, briefings), h("div", {}, articles, editor)));

  // ---------------------------------------------------------------- briefings
  async function loadBriefings() {
    while (briefings.children.length > 1) briefings.lastChild.remove();
    if (!user.roles.includes("agent") && !writer) return;
    try {
      const page = await api("GET", "/api/v1/kb/briefings", { query: writer ? { limit: 20 } : { pending: "true", limit: 50 } });
      const detail = h("div", {});
      briefings.append(page.items.length ? h("ul", { class: "kb-hits" }, page.items.map((b) => h("li", {},
        h("button", { type: "button", class: "link", "data-briefing": b.id, onclick: () => openBriefing(b.id, detail) }, b.title),
        " ", h("span", { class: "hint" }, t("kb.briefing_meta", { version: b.version, time: fmtTime(b.created_at) })),
        b.acknowledged ? h("span", { class: "ok-text" }, " ✓") : null)))
        : h("p", { class: "hint", text: writer ? "kb.no_briefings" : "kb.no_pending" }), detail);
    } catch (e) {
      briefings.append(h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }

  async function openBriefing(id, detail) {
    clear(detail);
    try {
      const b = await api("GET", "/api/v1/kb/briefings/" + id);
      const err = formError();
      detail.append(h("div", { class: "card", id: "briefing-detail" },
        h("h3", {}, b.title),
        b.note ? h("p", {}, b.note) : null,
        b.changes ? diffView(b.changes) : null,
        writer && b.pending ? h("p", { class: "hint" }, t("kb.pending_agents", { n: b.pending.length, done: (b.acknowledged_by || []).length })) : null,
        !b.acknowledged && user.roles.includes("agent") ? h("button", { type: "button", class: "primary", id: "briefing-ack", onclick: async () => {
          try {
            await api("POST", "/api/v1/kb/briefings/" + id + "/acknowledge", { body: {} });
            app.flash(t("kb.acknowledged"));
            loadBriefings();
          } catch (e) {
            err.textContent = e.message;
            err.hidden = false;
          }
        } }, t("kb.acknowledge")) : null, err));
    } catch (e) {
      detail.append(h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }

  // ---------------------------------------------------------------- articles
  async function loadArticles() {
    while (articles.children.length > 1) articles.lastChild.remove();
    try {
      const page = await api("GET", "/api/v1/kb/articles", { query: { limit: 100 } });
      put(articles, table([
        ["kb.col.title", (a) => h("button", { type: "button", class: "link", onclick: () => openArticle(a.id) }, a.title)],
        ["kb.col.language", (a) => a.language],
        ["kb.col.version", (a) => String(a.version)],
        ["kb.col.updated", (a) => fmtTime(a.updated_at)],
        ["kb.col.state", (a) => (a.expired ? h("span", { class: "warning-text" }, t("kb.expired")) : a.valid_now ? t("kb.valid") : t("kb.not_yet"))],
      ], page.items, { caption: "kb.articles", captionHidden: true, empty: "kb.none", id: "kb-list" }),
      writer ? h("button", { type: "button", class: "primary", id: "kb-new", onclick: () => edit(null) }, t("kb.new")) : null);
    } catch (e) {
      articles.append(h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }

  async function openArticle(id) {
    clear(editor);
    try {
      const a = await api("GET", "/api/v1/kb/articles/" + id);
      const hist = await api("GET", "/api/v1/kb/articles/" + id + "/versions");
      const diffBox = h("div", {});
      const from = h("select", { "aria-label": t("kb.diff_from") }, hist.items.map((v) => h("option", { value: v.version, label: String(v.version) })));
      const to = h("select", { "aria-label": t("kb.diff_to") }, hist.items.map((v) => h("option", { value: v.version, label: String(v.version) })));
      if (hist.items.length > 1) from.value = String(hist.items[1].version);
      editor.append(h("div", { class: "card" },
        articleView(a),
        writer ? h("button", { type: "button", onclick: () => edit(a) }, t("kb.edit")) : null,
        h("h4", { text: "kb.history" }),
        table([
          ["kb.col.version", (v) => String(v.version)],
          ["kb.col.updated", (v) => fmtTime(v.at)],
          ["kb.col.note", (v) => v.note],
          ["kb.col.changed", (v) => (v.changed || []).join(", ")],
        ], hist.items, { caption: "kb.history", captionHidden: true }),
        hist.items.length > 1 ? h("div", { class: "inline-form" },
          h("label", {}, t("kb.diff_from"), " ", from), h("label", {}, t("kb.diff_to"), " ", to),
          h("button", { type: "button", onclick: async () => {
            try {
              const d = await api("GET", "/api/v1/kb/articles/" + id + "/diff", { query: { from: from.value, to: to.value } });
              fill(diffBox, diffView(d));
            } catch (e) {
              fill(diffBox, h("p", { class: "form-error", role: "alert" }, e.message));
            }
          } }, t("kb.compare"))) : null,
        diffBox));
    } catch (e) {
      editor.append(h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }

  function edit(a) {
    clear(editor);
    const form = h("form", { id: "kb-form", novalidate: true, class: "card" },
      h("h3", { text: a ? "kb.edit" : "kb.new" }),
      a ? null : field({ name: "language", label: "kb.language", required: true, attrs: { value: language(), size: 5 } }),
      field({ name: "title", label: "kb.title_field", required: true, attrs: { maxlength: 200, value: a ? a.title : "" } }),
      field({ name: "body", label: "kb.body", type: "textarea", required: true, attrs: { rows: 12, maxlength: 20000 } }),
      field({ name: "tags", label: "kb.tags", hint: "kb.tags_hint", attrs: { value: a ? a.tags.join(", ") : "" } }),
      h("div", { class: "row" },
        field({ name: "valid_from", label: "kb.valid_from", type: "datetime-local", attrs: { value: a ? toLocalInput(a.valid_from) : "" } }),
        field({ name: "valid_to", label: "kb.valid_to_field", type: "datetime-local", attrs: { value: a ? toLocalInput(a.valid_to) : "" } })),
      field({ name: "note", label: "kb.note", hint: "kb.note_hint", attrs: { maxlength: 500 } }),
      field({ name: "briefing", label: "kb.make_briefing", type: "checkbox" }),
      formError(),
      h("button", { type: "submit", class: "primary" }, t("kb.publish")));
    if (a) form.elements.body.value = a.body;
    const initial = { valid_from: form.elements.valid_from.value, valid_to: form.elements.valid_to.value };
    form.elements.briefing.checked = true;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const v = values(form);
      const body = { title: v.title || "", body: form.elements.body.value, tags: list(v.tags), briefing: !!v.briefing };
      if (v.note) body.note = v.note;
      // dates go only when changed: the input holds minutes, the article milliseconds
      if ((v.valid_from || "") !== initial.valid_from && v.valid_from) body.valid_from = new Date(v.valid_from).getTime();
      if ((v.valid_to || "") !== initial.valid_to) body.valid_to = v.valid_to ? new Date(v.valid_to).getTime() : null;
      try {
        let saved;
        if (a) saved = await api("PATCH", "/api/v1/kb/articles/" + a.id, { body: { ...body, base_version: a.version } });
        else saved = await api("POST", "/api/v1/kb/articles", { body: { ...body, language: v.language || "" } });
        app.flash(t("kb.saved", { version: saved.version }));
        loadArticles();
        openArticle(saved.id);
        loadBriefings();
      } catch (e) {
        showError(form, e);
      }
    });
    editor.append(form);
    form.querySelector("input").focus();
  }

  await Promise.all([loadBriefings(), loadArticles()]);
  return null;
}

// A diff: the changed fields, tags added and removed, and the body line by line.
export function diffView(d) {
  const fields = Object.entries(d.fields || {});
  return h("div", { class: "diff", "data-from": d.from, "data-to": d.to },
    h("p", { class: "hint" }, t("kb.diff_summary", { from: d.from, to: d.to, added: d.added || 0, removed: d.removed || 0 })),
    fields.length ? h("ul", {}, fields.map(([k, v]) => {
      const show = (x) => (k.startsWith("valid_") ? (x ? fmtTime(x) : "–") : String(x));
      return h("li", {}, tc("kb.field.", k) + ": ", h("del", {}, show(v.from)), " → ", h("ins", {}, show(v.to)));
    })) : null,
    d.tags && (d.tags.added.length || d.tags.removed.length)
      ? h("p", {}, t("kb.tags"), ": ", d.tags.added.map((x) => h("ins", {}, "+" + x + " ")), d.tags.removed.map((x) => h("del", {}, "−" + x + " "))) : null,
    h("pre", { class: "diff-body" }, (d.body || []).map((l) =>
      h("span", { class: l.op === "+" ? "add" : l.op === "-" ? "del" : "same" }, (l.op === " " ? "  " : l.op + " ") + l.line + "\n"))));
}
