#!/usr/bin/env node
// The console's static checks, no browser needed:
//  - en.json, fr.json and ar.json have the same keys, none empty, and each string the same
//    {placeholders} in every language;
//  - every i18n key the code names literally (t("…"), text: "…", data-i18n="…") exists;
//  - the code never turns text into markup (innerHTML and friends) and loads nothing from
//    outside the deployment (no absolute URLs in src/href/url()/import/fetch).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.resolve(here, "../../services/intake/console");
let failures = 0;
function fail(msg) {
  failures += 1;
  console.log("FAIL " + msg);
}

const langs = ["en", "fr", "ar"];
const files = {};
for (const l of langs) {
  const p = path.join(dir, "i18n", l + ".json");
  try {
    files[l] = JSON.parse(fs.readFileSync(p, "utf8"));
  } catch (e) {
    fail(p + ": " + e.message);
    files[l] = {};
  }
}
const placeholders = (s) => [...String(s).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(",");
for (const l of langs) {
  for (const k of Object.keys(files.en)) if (!(k in files[l])) fail(l + ".json lacks " + k);
  for (const [k, v] of Object.entries(files[l])) {
    if (!(k in files.en)) fail(l + ".json has " + k + ", which en.json does not");
    if (typeof v !== "string" || !v.trim()) fail(l + ".json: " + k + " is empty");
    else if (k in files.en && placeholders(v) !== placeholders(files.en[k]))
      fail(l + ".json: " + k + " has placeholders {" + placeholders(v) + "}, en.json {" + placeholders(files.en[k]) + "}");
  }
}

function walk(d) {
  return fs.readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]);
}
const sources = walk(dir).filter((f) => /\.(js|html|css)$/.test(f));
const prefixes = new Set(Object.keys(files.en).map((k) => k.split(".")[0]));
let named = 0;
for (const f of sources) {
  const rel = path.relative(dir, f);
  const text = fs.readFileSync(f, "utf8");
  const code = text.replace(/^\s*\/\/.*$/gm, "").replace(/\/\*[\s\S]*?\*\//g, "");
  if (/\.(js|html)$/.test(f)) {
    for (const m of code.matchAll(/["']([a-z][a-z_]*\.[a-z0-9_][a-z0-9_.+-]*)["']/g)) {
      const key = m[1];
      if (!prefixes.has(key.split(".")[0]) || key.endsWith(".") || /\.(js|json|css|html|svg)$/.test(key)) continue;
      named += 1;
      if (!(key in files.en)) fail(rel + " names the key " + key + ", which en.json does not have");
    }
    for (const bad of ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("])
      if (code.includes(bad)) fail(rel + " uses " + bad + ": text must stay text");
  }
  for (const m of code.matchAll(/(?:src|href)\s*=\s*["'](?:https?:)?\/\/|url\(\s*["']?(?:https?:)?\/\/|(?:import|fetch)\s*\(\s*["'](?:https?:)?\/\//g))
    fail(rel + " loads from outside the deployment: " + m[0]);
}
if (named < 200) fail("only " + named + " keys found in the code: the scan is broken");
console.log(failures ? failures + " failed" : "ok: " + Object.keys(files.en).length + " strings in " + langs.join(", ") + "; " + named + " literal keys in the code all exist");
process.exit(failures ? 1 : 0);
