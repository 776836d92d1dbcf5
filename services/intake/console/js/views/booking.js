// Greenline console: booking, moving and cancelling a verified caller's appointments, from
// free slots. Booking is intake's POST /api/v1/appointments (the caller must be verified in this
// call or contact); the centres, the free slots and the person's appointments are scheduler's
// (docs/api/scheduler.md), shown when the deployment has them — else the agent types the
// centre, service and time agreed.
// Calls: GET /api/v1/centres, GET /api/v1/slots, POST /api/v1/appointments,
// POST /api/v1/appointments/search, POST /api/v1/appointments/{id}/move|cancel.
"use strict";

import { api } from "../api.js";
import { t, tc, fmtTime } from "../i18n.js";
import { h, put, clear, fill, field, showError, clearErrors, formError, values, randomKey, table } from "../dom.js";

const CANCEL_REASONS = ["requested_by_person", "centre_closure", "duplicate", "rebooked", "other"];

function serviceCode(s) {
  return typeof s === "string" ? s : s.code || s.service || s.name || "";
}

// A list of free slots as radio buttons named slot_id (the first checked), or a note.
function slotPicker(res, name) {
  const slots = res.slots || [];
  if (!slots.length) return h("p", { class: "hint", text: "booking.no_free" });
  return h("fieldset", { class: "radios slots" }, h("legend", { text: "booking.free" }),
    slots.map((s, i) => {
      const id = name + "-" + i;
      return h("div", { class: "radio" },
        h("input", { type: "radio", name, id, value: s.slot_id, "data-centre": s.centre, checked: i === 0 }),
        h("label", { for: id }, fmtTime(s.start) + " · " + s.centre + " · " + t("booking.places", { n: s.free })));
    }),
    res.truncated ? h("p", { class: "hint", text: "booking.more_slots" }) : null,
    res.centres_without_language && res.centres_without_language.length
      ? h("p", { class: "hint" }, t("booking.no_language", { centres: res.centres_without_language.join(", ") })) : null);
}

export function slipView(a) {
  return h("div", { class: "slip", id: "appointment-slip" },
    h("p", { class: "done" }, t("booking.booked", { reference: a.reference || (a.appointment_id || "").slice(0, 8) })),
    a.slip && a.slip.text ? h("pre", { class: "kb-body", lang: a.slip.language || null }, a.slip.text) : null,
    a.language_available === false ? h("p", { class: "warning", text: "booking.language_unavailable" }) : null);
}

// The booking panel's body, in p. opts: {caseNo, context {call_id|contact_id}, language, ops
// {centres, slots, search}, done(appointment)}.
export async function bookingForm(p, opts) {
  let centres = [];
  if (opts.ops.centres) {
    try {
      centres = (await api("GET", "/api/v1/centres")).items || [];
    } catch (e) {
      p.append(h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }
  const services = [...new Set(centres.flatMap((c) => (c.services || []).map(serviceCode)).filter(Boolean))];
  const key = randomKey();
  const form = h("form", { id: "booking-form", novalidate: true },
    h("div", { class: "row" },
      services.length
        ? field({ name: "service", label: "booking.service", type: "select", required: true, options: services.map((s) => [s, s, true]) })
        : field({ name: "service", label: "booking.service", required: true, attrs: { autocomplete: "off" } }),
      centres.length
        ? field({ name: "centre", label: "booking.centre", type: "select", placeholder: opts.ops.slots ? "booking.any_centre" : undefined, options: centres.map((c) => [c.code, c.name || c.code, true]) })
        : field({ name: "centre", label: "booking.centre", required: true, attrs: { autocomplete: "off" } })),
    h("div", { class: "slot-list" }),
    opts.ops.slots ? h("button", { type: "button", class: "find-slots" }, t("booking.find")) : h("p", { class: "hint", text: "booking.no_slots_api" }),
    opts.ops.slots ? null : field({ name: "start", label: "booking.start", type: "datetime-local" }),
    formError(),
    h("button", { type: "submit", class: "primary" }, t("booking.submit")));
  const slotBox = form.querySelector(".slot-list");
  const result = h("div", {});

  async function findSlots(into, v, name) {
    clear(into);
    const q = { service: v.service, centre: v.centre, language: opts.language, limit: 12 };
    const res = await api("GET", "/api/v1/slots", { query: q });
    into.append(slotPicker(res, name));
  }

  if (opts.ops.slots)
    form.querySelector(".find-slots").addEventListener("click", async () => {
      clearErrors(form);
      const v = values(form);
      if (!v.service) return showError(form, { field: "service", message: t("form.required") });
      try {
        await findSlots(slotBox, v, "slot_id");
        const first = slotBox.querySelector("input");
        if (first) first.focus();
      } catch (e) {
        showError(form, e);
      }
    });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const v = values(form);
    const body = { case_no: opts.caseNo, ...opts.context, service: v.service || "" };
    const chosen = form.querySelector("input[name=slot_id]:checked");
    if (chosen) {
      body.slot_id = chosen.value;
      body.centre = chosen.dataset.centre;
    } else if (v.start) {
      body.start = new Date(v.start).getTime();
      body.centre = v.centre || "";
    } else return showError(form, { field: opts.ops.slots ? "service" : "start", message: t("booking.need_slot") });
    if (!body.centre) return showError(form, { field: "centre", message: t("form.required") });
    try {
      const appt = await api("POST", "/api/v1/appointments", { body, idem: key });
      fill(result, slipView(appt));
      form.hidden = true;
      opts.done(appt);
      if (opts.ops.search) loadAppointments();
    } catch (e) {
      showError(form, e);
    }
  });
  p.append(form, result);

  // ---------------------------------------------------------------- the person's appointments
  if (!opts.ops.search) return;
  const mine = h("div", { id: "appointments" });
  p.append(h("h3", { text: "booking.existing" }), mine);

  async function loadAppointments() {
    clear(mine);
    try {
      const res = await api("POST", "/api/v1/appointments/search", { body: { case_no: opts.caseNo } });
      const items = res.items || [];
      mine.append(table([
        ["booking.when", (a) => fmtTime(a.start)],
        ["booking.centre", (a) => a.centre],
        ["booking.service", (a) => a.service],
        ["booking.reference", (a) => a.reference],
        ["booking.status", (a) => tc("booking.status.", a.status)],
        ["booking.actions", (a) => (a.status === "booked" ? actions(a) : null)],
      ], items, { caption: "booking.existing", captionHidden: true, empty: "booking.none" }));
    } catch (e) {
      mine.append(h("p", { class: "form-error", role: "alert" }, e.message));
    }
  }

  function actions(a) {
    const box = h("div", {});
    const err = h("p", { class: "error", role: "alert" });
    const reason = h("select", { "aria-label": t("booking.cancel_reason") }, CANCEL_REASONS.map((r) => h("option", { value: r, text: "booking.cancel." + r })));
    put(box,
      opts.ops.slots ? h("button", { type: "button", class: "small", onclick: async () => {
        const pick = h("div", {});
        box.append(pick);
        try {
          await findSlots(pick, { service: a.service, centre: a.centre }, "move-" + a.appointment_id);
          if (!pick.querySelector("input")) return;
          pick.append(h("button", { type: "button", class: "small primary", onclick: async () => {
            const c = pick.querySelector("input:checked");
            try {
              const moved = await api("POST", "/api/v1/appointments/" + a.appointment_id + "/move",
                { body: { slot_id: c.value, centre: c.dataset.centre }, idem: randomKey() });
              fill(result, slipView(moved));
              loadAppointments();
            } catch (e) {
              err.textContent = e.message;
            }
          } }, t("booking.move_here")));
        } catch (e) {
          err.textContent = e.message;
        }
      } }, t("booking.move")) : null,
      h("span", { class: "inline" }, reason, h("button", { type: "button", class: "small", onclick: async () => {
        try {
          await api("POST", "/api/v1/appointments/" + a.appointment_id + "/cancel", { body: { reason: reason.value }, idem: randomKey() });
          loadAppointments();
        } catch (e) {
          err.textContent = e.message;
        }
      } }, t("booking.cancel"))),
      err);
    return box;
  }

  await loadAppointments();
}
