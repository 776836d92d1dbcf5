// Greenline console: translations. Every string the console shows comes from i18n/<lang>.json
// (en, fr, ar; Arabic is laid out right to left). The choice is kept per user in localStorage
// ("gl.lang.<user id>"), and the last one used on this browser before anyone signs in.
"use strict";

export const LANGUAGES = ["en", "fr", "ar"];
const RTL = new Set(["ar"]);

let strings = {};
let fallback = {};
let current = "en";
const listeners = [];

async function load(lang) {
  const res = await fetch("/console/i18n/" + lang + ".json", { cache: "no-cache" });
  if (!res.ok) throw new Error("i18n " + res.status);
  return res.json();
}

// The language to use before sign-in, or for a user: their saved choice, else the first of
// their spoken languages we have, else the browser's, else English.
export function preferred(user) {
  const saved = localStorage.getItem(user ? "gl.lang." + user.id : "gl.lang");
  if (saved && LANGUAGES.includes(saved)) return saved;
  const spoken = (user && user.languages) || [];
  for (const code of spoken) {
    const base = String(code).split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  const nav = (navigator.language || "en").split("-")[0];
  return LANGUAGES.includes(nav) ? nav : "en";
}

export function remember(lang, user) {
  localStorage.setItem("gl.lang", lang);
  if (user) localStorage.setItem("gl.lang." + user.id, lang);
}

export async function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) lang = "en";
  if (!fallback.app) fallback = await load("en");
  strings = lang === "en" ? fallback : await load(lang);
  current = lang;
  document.documentElement.lang = lang;
  document.documentElement.dir = RTL.has(lang) ? "rtl" : "ltr";
  translate(document);
  for (const fn of listeners) fn(lang);
}

export function language() {
  return current;
}

export function onLanguage(fn) {
  listeners.push(fn);
}

// The string for key, with {name} replaced from vars. A missing key shows the key itself, so
// a gap is visible rather than silent.
export function t(key, vars) {
  let s = strings[key];
  if (s === undefined) s = fallback[key];
  if (s === undefined) return key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined ? m : String(vars[k])));
  return s;
}

// A code's label (prefix + code), or the code itself when the console has no string for it
// (a reason or outcome code added by a service after this console was written).
export function tc(prefix, code) {
  if (code === null || code === undefined || code === "") return "";
  const key = prefix + code;
  return has(key) ? t(key) : String(code);
}

export function has(key) {
  return strings[key] !== undefined || fallback[key] !== undefined;
}

// Fill every element carrying data-i18n (text), data-i18n-aria (aria-label) or
// data-i18n-placeholder under root.
export function translate(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria]"))
    el.setAttribute("aria-label", t(el.dataset.i18nAria));
  for (const el of root.querySelectorAll("[data-i18n-placeholder]"))
    el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder));
}

// Numbers, times and durations in the user's language.
export function fmtTime(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toLocaleString(current, { dateStyle: "short", timeStyle: "medium" });
}

export function fmtClock(ms) {
  if (ms === null || ms === undefined) return "–";
  return new Date(ms).toLocaleTimeString(current);
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "–";
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? h + ":" + String(m).padStart(2, "0") + ":" + sec : m + ":" + sec;
}

export function fmtNumber(n) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString(current);
}
