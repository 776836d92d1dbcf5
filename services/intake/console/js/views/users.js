// Greenline console: accounts (admins). Users with roles, units and languages; create one;
// disable or enable.
// Calls: GET/POST /api/v1/users, POST /api/v1/users/{id}/disable|enable.
"use strict";

import { api, all } from "../api.js";
import { t, fmtTime } from "../i18n.js";
import { h, clear, fill, field, showError, clearErrors, formError, values, table, panel } from "../dom.js";

const ROLES = ["agent", "supervisor", "protection", "admin"];

function list(s) {
  return s ? s.split(/[\s,;]+/).filter(Boolean) : [];
}

export default async function usersView(main, app) {
  const listBox = h("div", { id: "users-list" });
  const err = h("p", { class: "form-error", role: "alert", hidden: true });
  const form = h("form", { id: "user-form", novalidate: true },
    h("div", { class: "row" },
      field({ name: "username", label: "users.username", required: true, attrs: { autocomplete: "off", autocapitalize: "none" } }),
      field({ name: "display_name", label: "users.display_name", attrs: { autocomplete: "off" } }),
      field({ name: "password", label: "users.password", type: "password", required: true, hint: "users.password_hint", attrs: { autocomplete: "new-password" } })),
    h("fieldset", { class: "field checks", "data-field": "roles" }, h("legend", { text: "users.roles" }),
      ROLES.map((r) => h("label", { class: "inline" }, h("input", { type: "checkbox", name: "role_" + r }), " ", t("role." + r))),
      h("p", { class: "error", role: "alert" })),
    h("div", { class: "row" },
      field({ name: "units", label: "users.units", hint: "users.list_hint", attrs: { autocomplete: "off" } }),
      field({ name: "languages", label: "users.languages", hint: "users.list_hint", attrs: { autocomplete: "off" } })),
    formError(),
    h("button", { type: "submit", class: "primary" }, t("users.create")));
  main.append(h("h1", { text: "nav.users" }), err, listBox, panel("users.new", {}, form));

  async function load() {
    try {
      const users = await all("/api/v1/users", {}, 5000);
      fill(listBox, table([
        ["users.username", (u) => u.username],
        ["users.display_name", (u) => u.display_name],
        ["users.roles", (u) => u.roles.map((r) => t("role." + r)).join(", ")],
        ["users.units", (u) => u.units.join(", ")],
        ["users.languages", (u) => u.languages.join(", ")],
        ["users.created", (u) => fmtTime(u.created_ms)],
        ["users.actions", (u) => h("button", { type: "button", class: "small", onclick: () => toggle(u) },
          t(u.disabled ? "users.enable" : "users.disable"))],
      ], users, { caption: "nav.users", captionHidden: true }));
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }

  async function toggle(u) {
    try {
      await api("POST", "/api/v1/users/" + u.id + (u.disabled ? "/enable" : "/disable"), { body: {} });
      load();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const v = values(form);
    const body = { username: v.username || "", password: v.password || "", roles: ROLES.filter((r) => v["role_" + r]) };
    if (v.display_name) body.display_name = v.display_name;
    if (v.units) body.units = list(v.units);
    if (v.languages) body.languages = list(v.languages);
    try {
      await api("POST", "/api/v1/users", { body });
      form.reset();
      app.flash(t("users.created_ok", { username: body.username }));
      load();
    } catch (e) {
      showError(form, e);
    }
  });
  await load();
}
