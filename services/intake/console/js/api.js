// Greenline console: talking to intake's API (docs/api.md). The session is the gl_session
// cookie set at sign-in (HttpOnly: scripts never see it); state changes carry the CSRF token
// login returned, kept in sessionStorage for this tab only. Every error is an ApiError with the
// API's status, code, message and field, so a view can show a 4xx as its message beside the
// field it names.
"use strict";

import { t } from "./i18n.js";

const CSRF_KEY = "gl.csrf";
let onUnauthorized = null;
let reportedKinds = new Set();
let currentView = "login";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export function setView(view) {
  currentView = view;
}

export function csrf() {
  return sessionStorage.getItem(CSRF_KEY);
}

export function setCsrf(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

// Count a failure of the console at the API (POST /api/v1/console/errors: codes only), once
// per kind and view per page load.
export function report(kind) {
  const key = kind + "/" + currentView;
  if (reportedKinds.has(key)) return;
  reportedKinds.add(key);
  fetch("/api/v1/console/errors", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ kind, view: currentView }),
  }).catch(() => {});
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {}))
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? "?" + s : "";
}

// api("GET", "/api/v1/queue") → the parsed body, or throws ApiError.
// opts: {body, query, idem (Idempotency-Key), raw (return {status, body, headers})}
export async function api(method, path, opts) {
  const o = opts || {};
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (o.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(o.body);
  }
  if (method !== "GET" && method !== "HEAD") {
    const token = csrf();
    if (token) headers["X-CSRF-Token"] = token;
  }
  if (o.idem) headers["Idempotency-Key"] = o.idem;
  let res;
  try {
    res = await fetch(path + query(o.query), init);
  } catch (e) {
    report("network");
    throw new ApiError(0, "network", t("error.network"), null);
  }
  let body = null;
  const type = res.headers.get("Content-Type") || "";
  if (type.startsWith("application/json")) body = await res.json().catch(() => null);
  if (res.ok) return o.raw ? { status: res.status, body, headers: res.headers } : body;
  const e = body && body.error ? body.error : null;
  const err = e
    ? new ApiError(res.status, e.code, e.message, e.field)
    : new ApiError(res.status, "http_" + res.status, t("error.http", { status: res.status }), null);
  if (res.status === 429 || res.status === 423) {
    const after = res.headers.get("Retry-After");
    if (after) err.message += " " + t("error.retry_after", { seconds: after });
  }
  if (res.status >= 500) report("api");
  if (res.status === 401 && onUnauthorized && !path.endsWith("/auth/login")) onUnauthorized(err);
  return Promise.reject(err);
}

// Whether this deployment serves an operation ("GET /api/v1/wallboard"), so that a view whose
// API is not there yet can say so instead of showing made-up data. Asked without credentials:
// intake routes a request before it authenticates it (docs/api.md, "Order of checks"), so an
// operation that exists answers 401 and one that does not 404 (no such path) or 405 (no such
// method), and nothing runs. Path parameters get a well-formed dummy. One small request per
// operation, remembered for the tab (the whole OpenAPI document would be ~180 KB).
const known = new Map(Object.entries(JSON.parse(sessionStorage.getItem("gl.ops") || "{}")));

async function probe(op) {
  if (known.has(op)) return known.get(op);
  const [method, pattern] = op.split(" ");
  const path = pattern.replace(/\{[^}]+\}/g, "00000000000000000000000000000000");
  let res;
  try {
    res = await fetch(path, { method, credentials: "omit", cache: "no-store",
      headers: method === "GET" ? {} : { "Content-Type": "application/json" }, body: method === "GET" ? undefined : "{}" });
  } catch (e) {
    throw new ApiError(0, "network", t("error.network"), null);
  }
  let there;
  if (res.status === 401 || res.status === 403) there = true;
  else if (res.status === 404 || res.status === 405) there = false;
  else throw new ApiError(res.status, "http_" + res.status, t("error.http", { status: res.status }), null);
  known.set(op, there);
  sessionStorage.setItem("gl.ops", JSON.stringify(Object.fromEntries(known)));
  return there;
}

export function forgetOperations() {
  known.clear();
  sessionStorage.removeItem("gl.ops");
}

// True when every "METHOD path" in list is served.
export async function hasOps(list) {
  const answers = await Promise.all(list.map(probe));
  return answers.every(Boolean);
}

// Every page of a list (items), at most max items.
export async function all(path, q, max) {
  const items = [];
  let cursor = null;
  do {
    const page = await api("GET", path, { query: { ...(q || {}), limit: 200, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < (max || 1000));
  return items;
}
