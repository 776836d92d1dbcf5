// Greenline console: the emergency alarm. Browsers keep sound off until the user has
// interacted with the page, so the sound is armed at sign-in (the click or key that signs in)
// or with the header's "arm sound" button after a reload. The alarm shows a banner that stays,
// and beeps every two seconds, until the user acknowledges it. Two watchers raise it: the
// emergency board's (views/protection.js: ids are emergency ids) and the console alerts'
// (views/notifications.js: ids are "alert:<alert id>"); each stops only its own.
"use strict";

import { t } from "./i18n.js";

let ctx = null;
let beeping = null;
let active = null;      // {id, text, onAck}
const armListeners = [];

export function armed() {
  return !!ctx && ctx.state === "running";
}

// Call from a user gesture (a click or key handler).
export function arm() {
  try {
    if (!ctx) ctx = new (window.AudioContext || window.webkitAudioContext)();
    if (ctx.state !== "running") ctx.resume().then(notify, notify);
  } catch (e) {
    ctx = null;
  }
  notify();
}

export function onArmed(fn) {
  armListeners.push(fn);
}

function notify() {
  for (const fn of armListeners) fn(armed());
}

// One emergency, one alarm. The board's watcher says which emergencies it is sounding or will
// sound (those in "alarm" on the board it last read); an alert about one of them (its corr is
// the emergency id) then stays quiet, and acknowledging the emergency acknowledges such alerts
// too (the listeners registered with onEmergencyAcked).
let boardEmergencies = new Set();
const ackListeners = [];

export function setBoardEmergencies(ids) {
  boardEmergencies = new Set(ids);
}

export function boardHas(emergencyId) {
  return !!emergencyId && boardEmergencies.has(emergencyId);
}

export function onEmergencyAcked(fn) {
  ackListeners.push(fn);
}

export function emergencyAcked(emergencyId) {
  boardEmergencies.delete(emergencyId);
  for (const fn of ackListeners) {
    try { fn(emergencyId); } catch (e) { /* a listener's failure is its own */ }
  }
}

// Beeps counted, so a test (and an operator) can tell the sound ran.
export let beeps = 0;

function beep() {
  if (!armed()) return;
  const now = ctx.currentTime;
  for (let i = 0; i < 3; i++) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "square";
    osc.frequency.value = i % 2 ? 660 : 880;
    gain.gain.setValueAtTime(0.0001, now + i * 0.25);
    gain.gain.exponentialRampToValueAtTime(0.3, now + i * 0.25 + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.25 + 0.2);
    osc.connect(gain).connect(ctx.destination);
    osc.start(now + i * 0.25);
    osc.stop(now + i * 0.25 + 0.22);
  }
  beeps += 1;
  document.getElementById("alarm").dataset.beeps = String(beeps);
}

// Raise the alarm for one thing (an emergency): id, the text to show, and onAck (async; the
// alarm goes when it resolves, and stays with the error shown when it throws). A second alarm
// while one shows replaces nothing: the first stays until acknowledged.
export function raise(id, text, onAck) {
  if (active) return active.id === id;
  active = { id, text, onAck };
  const box = document.getElementById("alarm");
  document.getElementById("alarm-text").textContent = text;
  document.getElementById("alarm-error").textContent = armed() ? "" : t("alarm.muted");
  box.dataset.id = id;
  box.hidden = false;
  document.body.classList.add("alarming");
  const btn = document.getElementById("alarm-ack");
  btn.disabled = false;
  btn.focus();
  beep();
  beeping = setInterval(beep, 2000);
  return true;
}

export function current() {
  return active ? active.id : null;
}

export function stop() {
  if (beeping) clearInterval(beeping);
  beeping = null;
  active = null;
  const box = document.getElementById("alarm");
  box.hidden = true;
  delete box.dataset.id;
  document.body.classList.remove("alarming");
}

export function init() {
  const btn = document.getElementById("alarm-ack");
  btn.addEventListener("click", async () => {
    if (!active) return;
    btn.disabled = true;
    try {
      await active.onAck();
      stop();
    } catch (e) {
      document.getElementById("alarm-error").textContent = e.message || t("error.unknown");
      btn.disabled = false;
      btn.focus();
    }
  });
}
