// Greenline console: start, sign-in, navigation. One page; each view is a module loaded when
// first opened (js/views/*.js) that draws into <main> and returns a function that stops its
// timers. Routes are the URL's hash (#/agent, #/board …), so the browser's back button and a
// reload keep the view.
"use strict";

import { api, ApiError, setCsrf, csrf, setUnauthorizedHandler, setView, report, forgetOperations } from "./api.js";
import { t, setLanguage, preferred, remember, language, LANGUAGES, onLanguage } from "./i18n.js";
import { h, clear, field, showError, clearErrors, formError, values } from "./dom.js";
import * as alarm from "./alarm.js";

// route → {roles allowed, nav label key, module, view code for error reports}
export const ROUTES = [
  { path: "agent", roles: ["agent", "supervisor"], key: "nav.agent", mod: "./views/agent.js", view: "agent" },
  { path: "board", roles: ["supervisor"], key: "nav.board", mod: "./views/board.js", view: "supervisor" },
  { path: "protection", roles: ["protection", "supervisor"], key: "nav.protection", mod: "./views/protection.js", view: "protection" },
  { path: "reports", roles: ["supervisor", "admin", "agent", "protection"], key: "nav.reports", mod: "./views/reports.js", view: "supervisor" },
  { path: "kb", roles: ["agent", "supervisor", "protection"], key: "nav.kb", mod: "./views/kb.js", view: "agent" },
  { path: "complaints", roles: ["agent", "supervisor", "protection"], key: "nav.complaints", mod: "./views/complaints.js", view: "agent" },
  { path: "qa", roles: ["supervisor", "agent"], key: "nav.qa", mod: "./views/qa.js", view: "supervisor" },
  { path: "outbound", roles: ["agent", "supervisor"], key: "nav.outbound", mod: "./views/outbound.js", view: "agent" },
  { path: "notifications", roles: ["supervisor", "admin", "agent", "protection"], key: "nav.notifications", mod: "./views/notifications.js", view: "supervisor" },
  { path: "audit", roles: ["supervisor", "admin"], key: "nav.audit", mod: "./views/audit.js", view: "admin" },
  { path: "users", roles: ["admin"], key: "nav.users", mod: "./views/users.js", view: "admin" },
];

export const session = { user: null };
let stopView = null;
let watchers = [];
let quiet = false;     // a language change that must not redraw (sign-in draws once itself)

// Where a user lands: supervisors on the board, protection staff on their inbox, agents on
// calls, admins on accounts.
function home(user) {
  for (const [role, path] of [["supervisor", "board"], ["protection", "protection"], ["agent", "agent"], ["admin", "users"]])
    if (user.roles.includes(role)) return ROUTES.find((r) => r.path === path);
  return ROUTES.find((r) => allowed(r, user));
}

function allowed(route, user) {
  return user && route.roles.some((r) => user.roles.includes(r));
}

function flash(text) {
  const el = document.getElementById("flash");
  el.textContent = text || "";
}
export { flash };

function drawHeader() {
  const nav = clear(document.getElementById("nav"));
  const user = session.user;
  document.getElementById("signout").hidden = !user;
  document.getElementById("user").textContent = user ? (user.display_name || user.username) : "";
  drawArm();
  if (!user) return;
  const here = location.hash.replace(/^#\//, "").split("/")[0];
  const list = h("ul", {});
  for (const r of ROUTES)
    if (allowed(r, user))
      list.append(h("li", {}, h("a", { href: "#/" + r.path, "aria-current": r.path === here ? "page" : null, text: r.key })));
  nav.append(list);
}

function drawArm() {
  const btn = document.getElementById("arm");
  const user = session.user;
  // anyone signed in may get an emergency alert (notifications.js); the board's alarm is for
  // protection staff and supervisors, so only they are pressed (warn) to arm it
  const needs = user && (user.roles.includes("protection") || user.roles.includes("supervisor"));
  btn.hidden = !user;
  btn.textContent = alarm.armed() ? t("alarm.armed") : t("alarm.arm");
  btn.classList.toggle("warn", needs && !alarm.armed());
  btn.setAttribute("aria-pressed", alarm.armed() ? "true" : "false");
}

function drawLanguages() {
  const sel = document.getElementById("lang");
  clear(sel);
  for (const code of LANGUAGES) sel.append(h("option", { value: code, label: t("lang." + code) }));
  sel.value = language();
}

let routeGen = 0;

// Draw the view the hash names (or the user's first). Each call draws into a fresh container;
// a slower, older call that finishes late finds its container detached and stops its view.
async function route() {
  const gen = ++routeGen;
  if (stopView) {
    try { stopView(); } catch (e) { /* the old view is gone anyway */ }
    stopView = null;
  }
  const main = document.getElementById("main");
  const box = h("div", { class: "view" });
  main.replaceChildren(box);
  flash("");
  const user = session.user;
  if (!user) {
    setView("login");
    drawSignIn(box);
    return;
  }
  const name = location.hash.replace(/^#\//, "").split("/")[0];
  let r = ROUTES.find((x) => x.path === name && allowed(x, user));
  if (!r) {
    r = home(user);
    if (!r) {
      box.append(h("p", { class: "notice", text: "app.no_views" }));
      return;
    }
    if (name !== r.path) {
      location.replace("#/" + r.path);
      return;   // hashchange calls route again
    }
  }
  drawHeader();
  setView(r.view);
  document.title = t(r.key) + " · " + t("app.name");
  let stop = null;
  try {
    const mod = await import(r.mod);
    if (gen !== routeGen) return;
    stop = (await mod.default(box, { user, flash })) || null;
  } catch (e) {
    if (gen !== routeGen) return;
    report("script");
    box.append(h("p", { class: "form-error", role: "alert" }, e instanceof ApiError ? e.message : t("error.view")));
  }
  if (gen !== routeGen) {
    if (stop) stop();
    return;
  }
  stopView = stop;
  box.dataset.ready = "1";      // drawn (tests wait for this)
}

function drawSignIn(main) {
  document.title = t("auth.title") + " · " + t("app.name");
  const form = h("form", { class: "card signin", novalidate: true },
    h("h1", { text: "auth.title" }),
    field({ name: "username", label: "auth.username", required: true, attrs: { autocomplete: "username", autocapitalize: "none", spellcheck: "false" } }),
    field({ name: "password", label: "auth.password", type: "password", required: true, attrs: { autocomplete: "current-password" } }),
    formError(),
    h("button", { type: "submit", class: "primary", text: "auth.signin" }),
    h("p", { class: "hint", text: "auth.sound_note" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    alarm.arm();    // this submit is the user's gesture: sound may be started from here on
    clearErrors(form);
    const v = values(form);
    for (const k of ["username", "password"])
      if (!v[k]) return showError(form, { field: k, message: t("form.required") });
    const btn = form.querySelector("button[type=submit]");
    btn.disabled = true;
    try {
      const res = await api("POST", "/api/v1/auth/login", { body: { username: v.username, password: v.password } });
      setCsrf(res.csrf_token);
      forgetOperations();
      await signedIn(res.user);
    } catch (e) {
      btn.disabled = false;
      showError(form, e);
    }
  });
  main.append(form);
  const reason = sessionStorage.getItem("gl.signin_reason");
  if (reason) {
    sessionStorage.removeItem("gl.signin_reason");
    const p = form.querySelector(".form-error");
    p.textContent = t(reason);
    p.hidden = false;
  }
  form.querySelector("input").focus();
}

async function signedIn(user) {
  session.user = user;
  const lang = preferred(user);
  quiet = true;
  try {
    if (lang !== language()) await setLanguage(lang);
  } finally {
    quiet = false;
  }
  drawLanguages();
  drawHeader();
  startWatchers(user);
  if (!location.hash || location.hash === "#/") location.hash = "#/" + (home(user) || { path: "" }).path;
  else route();
}

function startWatchers(user) {
  stopWatchers();
  import("./views/notifications.js").then((m) => {
    if (session.user === user) watchers.push(m.watchAlerts(user));
  }).catch(() => report("script"));
  if (user.roles.includes("protection") || user.roles.includes("supervisor"))
    import("./views/protection.js").then((m) => {
      if (session.user === user) watchers.push(m.watchEmergencies(user));
    }).catch(() => report("script"));
}

function stopWatchers() {
  for (const stop of watchers) if (stop) stop();
  watchers = [];
  alarm.stop();
}

// Signed out (or the session ended): forget the CSRF token and start the page afresh, so that
// nothing of the last user's work (a caller, a case) stays in memory on a shared computer.
function signedOut(reasonKey) {
  session.user = null;
  setCsrf(null);
  stopWatchers();
  if (reasonKey) sessionStorage.setItem("gl.signin_reason", reasonKey);
  location.reload();
}

async function start() {
  alarm.init();
  await setLanguage(preferred(null));
  drawLanguages();
  document.getElementById("lang").addEventListener("change", async (ev) => {
    const lang = ev.target.value;
    remember(lang, session.user);
    await setLanguage(lang);
  });
  onLanguage(() => {
    if (quiet) return;
    drawLanguages();
    drawHeader();
    route();
  });
  document.getElementById("signout").addEventListener("click", async () => {
    try { await api("POST", "/api/v1/auth/logout", { body: {} }); } catch (e) { /* gone already */ }
    signedOut(null);
  });
  document.getElementById("arm").addEventListener("click", () => alarm.arm());
  alarm.onArmed(() => drawArm());
  setUnauthorizedHandler((err) => {
    if (!session.user) return;
    signedOut(err.code === "unauthorized" ? "auth.ended" : null);
  });
  window.addEventListener("hashchange", async () => {
    drawHeader();
    await route();
    // a new view: the screen reader starts reading from it, the keyboard from its top
    document.getElementById("main").focus({ preventScroll: true });
  });
  // the skip link moves the focus without touching the hash (the hash names the view)
  document.querySelector(".skip").addEventListener("click", (ev) => {
    ev.preventDefault();
    document.getElementById("main").focus();
  });
  window.addEventListener("error", () => report("script"));
  window.addEventListener("unhandledrejection", () => report("script"));
  // A session already open in this tab (a reload): the cookie and the CSRF token of this tab.
  if (csrf()) {
    try {
      const me = await api("GET", "/api/v1/auth/me");
      if (me.kind === "user") return signedIn(me);
    } catch (e) { /* sign in again */ }
    setCsrf(null);
  }
  route();
}

start();
