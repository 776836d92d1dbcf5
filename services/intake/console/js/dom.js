// Greenline console: building the page. Text is always set as text (textContent), never as
// HTML, so nothing a response or a user typed can become markup.
"use strict";

import { t } from "./i18n.js";

// h("button", {class: "x", onclick: fn, text: "key.of.string"}, child, …): an element.
// attrs: text (an i18n key), label (text as is), class, for, on<event>, data-*, aria-*, and
// any other attribute; children: elements or strings (as text), null/false skipped.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = t(v);
    else if (k === "label") el.textContent = String(v);
    else if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Empty el and put children in (as h does: strings as text, null/false skipped).
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// Add children to el (as h does).
export function put(el, ...children) {
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function $(sel, root) {
  return (root || document).querySelector(sel);
}

let uid = 0;
export function newId(prefix) {
  uid += 1;
  return (prefix || "f") + "-" + uid;
}

// A labelled field: label, control, a hint and the place for its error, tied together with
// aria-describedby so a screen reader reads the error with the field.
// opts: {name, label (i18n key), type, required, options [[value, key-or-text, isKey]], hint,
//        attrs}
export function field(opts) {
  const id = newId(opts.name);
  const errId = id + "-err";
  const hintId = opts.hint ? id + "-hint" : null;
  let control;
  const common = {
    id,
    name: opts.name,
    required: opts.required ? true : null,
    "aria-describedby": [hintId, errId].filter(Boolean).join(" "),
    ...(opts.attrs || {}),
  };
  if (opts.type === "select") {
    control = h("select", common,
      opts.placeholder !== false ? h("option", { value: "", text: opts.placeholder || "form.choose" }) : null,
      (opts.options || []).map(([v, label, raw]) =>
        h("option", raw ? { value: v, label } : { value: v, text: label })));
  } else if (opts.type === "textarea") {
    control = h("textarea", { rows: 4, ...common });
  } else if (opts.type === "checkbox") {
    control = h("input", { type: "checkbox", ...common });
    return h("div", { class: "field check", "data-field": opts.name },
      control, h("label", { for: id, text: opts.label }),
      hintId ? h("p", { class: "hint", id: hintId, text: opts.hint }) : null,
      h("p", { class: "error", id: errId, role: "alert" }));
  } else {
    control = h("input", { type: opts.type || "text", ...common });
  }
  return h("div", { class: "field", "data-field": opts.name },
    h("label", { for: id }, t(opts.label), opts.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null),
    control,
    hintId ? h("p", { class: "hint", id: hintId, text: opts.hint }) : null,
    h("p", { class: "error", id: errId, role: "alert" }));
}

// A group of radio buttons as a fieldset (one choice required).
export function radios(opts) {
  const errId = newId(opts.name) + "-err";
  return h("fieldset", { class: "field radios" + (opts.big ? " big" : ""), "data-field": opts.name,
    "aria-describedby": errId },
    h("legend", {}, t(opts.label), opts.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null),
    opts.options.map(([v, key]) => {
      const id = newId(opts.name);
      return h("div", { class: "radio" },
        h("input", { type: "radio", id, name: opts.name, value: v, required: opts.required ? true : null }),
        h("label", { for: id, text: key }));
    }),
    h("p", { class: "error", id: errId, role: "alert" }));
}

// Show err (an ApiError, or {field, message}) beside its field in form when it names one the
// form has, else in the form's summary. Returns the element it was shown in.
export function showError(form, err) {
  clearErrors(form);
  const name = err.field ? String(err.field) : "";
  let box = null;
  if (name) {
    // answers.dob → the field "answers.dob", else "dob"; shifts[2].end → "shifts"
    const candidates = [name, name.split(".").pop(), name.split(/[.[]/)[0]];
    for (const c of candidates) {
      box = form.querySelector('[data-field="' + CSS.escape(c) + '"]');
      if (box) break;
    }
  }
  const text = err.message || t("error.unknown");
  if (box) {
    const folded = box.closest("details");
    if (folded) folded.open = true;
    box.classList.add("invalid");
    const p = box.querySelector(".error");
    p.textContent = text;
    const input = box.querySelector("input, select, textarea");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    // the message goes once the field is changed
    box.addEventListener("change", () => {
      box.classList.remove("invalid");
      p.textContent = "";
      for (const el of box.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    }, { once: true });
    return p;
  }
  const summary = form.querySelector(".form-error");
  if (summary) {
    summary.textContent = text;
    summary.hidden = false;
  }
  return summary;
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
  for (const el of form.querySelectorAll(".error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const summary = form.querySelector(".form-error");
  if (summary) {
    summary.textContent = "";
    summary.hidden = true;
  }
}

export function formError() {
  return h("p", { class: "form-error", role: "alert", hidden: true });
}

// A section with a heading (an i18n key) and content.
export function panel(titleKey, attrs, ...children) {
  const id = newId("h");
  return h("section", { class: "panel", "aria-labelledby": id, ...(attrs || {}) },
    h("h2", { id, text: titleKey }), ...children);
}

// A table: cols [[i18n key, fn(row) → text or Node]], rows.
export function table(cols, rows, opts) {
  const o = opts || {};
  return h("div", { class: "table-wrap" }, h("table", { class: "grid" + (o.class ? " " + o.class : ""), id: o.id || null },
    o.caption ? h("caption", { class: o.captionHidden ? "sr" : null, text: o.caption }) : null,
    h("thead", {}, h("tr", {}, cols.map(([key]) => h("th", { scope: "col", text: key })))),
    h("tbody", {}, rows.length
      ? rows.map((r) => h("tr", o.rowAttrs ? o.rowAttrs(r) : {}, cols.map(([, fn]) => {
        const v = fn(r);
        return h("td", {}, v === null || v === undefined ? "–" : v);
      })))
      : h("tr", {}, h("td", { colspan: cols.length, class: "empty", text: o.empty || "table.empty" })))));
}

// A key/value list: pairs [[i18n key, value]].
export function dl(pairs) {
  return h("dl", { class: "kv" }, pairs.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v === null || v === undefined || v === "" ? "–" : v)]));
}

// Form values: inputs by name; checkboxes as booleans; empty strings left out.
export function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.type === "radio") { if (el.checked) out[el.name] = el.value; }
    else if (el.value.trim() !== "") out[el.name] = el.value.trim();
  }
  return out;
}

// A fresh random key (Idempotency-Key).
export function randomKey() {
  const a = new Uint8Array(16);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}
