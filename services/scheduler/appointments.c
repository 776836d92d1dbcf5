/*  appointments — book, move, cancel, attended, no-show, and the slip the person receives.

    An appointment is a hash (appt:<id>) with the case number it is for; the case number stays in
    scheduler's records and in no event, log line, key name or stored reply. The person's
    appointments are found through a keyed hash of the case number (person:<hash>).

    Every change is one atomic write (store.c): guards (the slot still has a place, the person
    has no overlapping appointment, the record is the version we read), the record, the slot's
    count, the indexes, the reminders, the events (appointment.* and notification.requested) and
    the stored reply to the request. A booking made before a timeout is answered again on a
    retry with the same idempotency key, even after a crash between the write and the reply.
*/
#include "scheduler.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_RETRIES 3
#define S_LIST_MAX 200

//  --------------------------------------------------------------------------------------------
//  The slip

typedef struct {
    const char *lang;
    const char *fmt;        //  ref, service, centre, address, date, time
} s_slip_t;

static const s_slip_t s_slips[] = {
    { "en", "Appointment %s: %s at %s, %s, on %s at %s (local time). Please arrive 15 minutes "
            "early and bring your registration documents. To change or cancel, call the "
            "helpline." },
    { "fr", "Rendez-vous %s : %s au %s, %s, le %s \xc3\xa0 %s (heure locale). Merci d'arriver "
            "15 minutes en avance avec vos documents d'enregistrement. Pour modifier ou annuler, "
            "appelez la ligne verte." },
    { "ar", "\xd9\x85\xd9\x88\xd8\xb9\xd8\xaf \xd8\xb1\xd9\x82\xd9\x85 %s: %s \xd9\x81\xd9\x8a "
            "%s\xd8\x8c %s\xd8\x8c \xd8\xa8\xd8\xaa\xd8\xa7\xd8\xb1\xd9\x8a\xd8\xae %s "
            "\xd8\xa7\xd9\x84\xd8\xb3\xd8\xa7\xd8\xb9\xd8\xa9 %s (\xd8\xa8\xd8\xa7\xd9\x84\xd8\xaa"
            "\xd9\x88\xd9\x82\xd9\x8a\xd8\xaa \xd8\xa7\xd9\x84\xd9\x85\xd8\xad\xd9\x84\xd9\x8a). "
            "\xd9\x8a\xd8\xb1\xd8\xac\xd9\x89 \xd8\xa7\xd9\x84\xd8\xad\xd8\xb6\xd9\x88\xd8\xb1 "
            "\xd9\x82\xd8\xa8\xd9\x84 15 \xd8\xaf\xd9\x82\xd9\x8a\xd9\x82\xd8\xa9 \xd9\x85\xd8\xb9 "
            "\xd9\x88\xd8\xab\xd8\xa7\xd8\xa6\xd9\x82 \xd8\xa7\xd9\x84\xd8\xaa\xd8\xb3\xd8\xac\xd9"
            "\x8a\xd9\x84. \xd9\x84\xd9\x84\xd8\xaa\xd8\xba\xd9\x8a\xd9\x8a\xd8\xb1 \xd8\xa3\xd9"
            "\x88 \xd8\xa7\xd9\x84\xd8\xa5\xd9\x84\xd8\xba\xd8\xa7\xd8\xa1 \xd8\xa7\xd8\xaa\xd8"
            "\xb5\xd9\x84 \xd8\xa8\xd8\xa7\xd9\x84\xd8\xae\xd8\xb7 \xd8\xa7\xd9\x84\xd8\xa3\xd8"
            "\xae\xd8\xb6\xd8\xb1." },
};

//  The reference the person quotes at the counter: the id's first 8 digits, upper case.
static void
s_reference (const char *id, char out[9])
{
    for (int i = 0; i < 8; i++)
        out[i] = (char) toupper ((unsigned char) id[i]);
    out[8] = 0;
}

char *
appointments_slip (const sched_centre_t *centre, const sched_service_t *service,
                   const char *appointment_id, int64_t start, const char *lang,
                   const char **used_lang)
{
    const s_slip_t *slip = &s_slips[0];
    for (size_t i = 0; lang && i < sizeof s_slips / sizeof s_slips[0]; i++)
        if (strncmp (lang, s_slips[i].lang, 2) == 0)
            slip = &s_slips[i];
    char ref[9], date[11], time[6];
    s_reference (appointment_id, ref);
    sched_local_date (centre, start, date);
    sched_local_time (centre, start, time);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    if (!f)
        return NULL;
    fprintf (f, slip->fmt, ref, sched_service_name (service, slip->lang),
             sched_centre_name (centre, slip->lang), sched_centre_address (centre, slip->lang),
             date, time);
    fclose (f);
    if (used_lang)
        *used_lang = slip->lang;
    return text;
}

//  --------------------------------------------------------------------------------------------
//  Helpers

static void
s_key (char *out, size_t outlen, const char *kind, const char *a, const char *b)
{
    if (b)
        snprintf (out, outlen, SCHED_PREFIX "%s:%s:%s", kind, a, b);
    else
        snprintf (out, outlen, SCHED_PREFIX "%s:%s", kind, a);
}

static char *
s_i64 (char buf[24], int64_t n)
{
    snprintf (buf, 24, "%lld", (long long) n);
    return buf;
}

//  The appointment as callers see it (no case number): a new object.
static json_t *
s_view (scheduler_t *self, json_t *rec, bool with_slip)
{
    const char *id = sched_jstr (rec, "id", "");
    char ref[9] = "";
    if (strlen (id) >= 8)
        s_reference (id, ref);
    const char *ref_kind = sched_jstr (rec, "ref_kind", "call_id");
    json_t *view = json_pack (
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:s, s:I, s:I}", "appointment_id", id,
        "reference", ref, "centre", sched_jstr (rec, "centre", ""), "service",
        sched_jstr (rec, "service", ""), "start", (json_int_t) sched_jint (rec, "start", 0), "end",
        (json_int_t) sched_jint (rec, "end", 0), "slot_id", sched_jstr (rec, "slot_id", ""),
        "status", sched_jstr (rec, "status", ""), "version",
        (json_int_t) sched_jint (rec, "version", 0), "agent_id", sched_jstr (rec, "agent_id", ""),
        "created_at", (json_int_t) sched_jint (rec, "created_at", 0), "updated_at",
        (json_int_t) sched_jint (rec, "updated_at", 0));
    if (!view)
        return NULL;
    json_object_set_new (view, strcmp (ref_kind, "contact_id") == 0 ? "contact_id" : "call_id",
                         json_string (sched_jstr (rec, "ref", "")));
    const char *lang = sched_jstr (rec, "language", "");
    json_object_set_new (view, "language", *lang ? json_string (lang) : json_null ());
    const char *reason = sched_jstr (rec, "reason", "");
    if (*reason)
        json_object_set_new (view, "reason", json_string (reason));
    if (with_slip) {
        const sched_centre_t *centre
            = sched_config_centre (self->config, sched_jstr (rec, "centre", ""));
        const sched_service_t *service
            = sched_config_service (self->config, sched_jstr (rec, "service", ""));
        if (centre && service) {
            const char *used = "en";
            char *text = appointments_slip (centre, service, id, sched_jint (rec, "start", 0),
                                            *lang ? lang : NULL, &used);
            if (text)
                json_object_set_new (view, "slip",
                                     json_pack ("{s:s, s:s}", "language", used, "text", text));
            free (text);
            json_object_set_new (view, "language_available",
                                 json_boolean (sched_config_language_ok (centre, service,
                                                                         *lang ? lang : NULL)));
        }
    }
    return view;
}

//  An appointment event: ids and codes only.
static gl_event_t *
s_event (const char *type, json_t *rec, const char *corr)
{
    gl_event_t *ev = gl_event_new (type);
    if (!ev)
        return NULL;
    gl_event_set_corr (ev, corr);
    json_t *d = ev->data;
    json_object_set_new (d, "appointment_id", json_string (sched_jstr (rec, "id", "")));
    json_object_set_new (d, "centre", json_string (sched_jstr (rec, "centre", "")));
    json_object_set_new (d, "service", json_string (sched_jstr (rec, "service", "")));
    json_object_set_new (d, "slot_id", json_string (sched_jstr (rec, "slot_id", "")));
    json_object_set_new (d, "start", json_integer (sched_jint (rec, "start", 0)));
    json_object_set_new (d, "end", json_integer (sched_jint (rec, "end", 0)));
    json_object_set_new (d, "status", json_string (sched_jstr (rec, "status", "")));
    json_object_set_new (d, "version", json_integer (sched_jint (rec, "version", 0)));
    const char *kind = sched_jstr (rec, "ref_kind", "call_id");
    json_object_set_new (d, strcmp (kind, "contact_id") == 0 ? "contact_id" : "call_id",
                         json_string (sched_jstr (rec, "ref", "")));
    return ev;
}

//  Write the record's fields (every string field of rec) as one HSET.
static void
s_hset_record (sched_write_t *w, const char *key, json_t *rec)
{
    const char *argv[64];
    int argc = 0;
    argv[argc++] = "HSET";
    argv[argc++] = key;
    const char *field;
    json_t *value;
    json_object_foreach (rec, field, value) {
        if (argc + 2 > 64 || !json_is_string (value))
            continue;
        argv[argc++] = field;
        argv[argc++] = json_string_value (value);
    }
    sched_write_cmd (w, argc, argv);
}

static void
s_set (json_t *rec, const char *field, const char *value)
{
    json_object_set_new (rec, field, json_string (value ? value : ""));
}

static void
s_seti (json_t *rec, const char *field, int64_t n)
{
    char buf[24];
    json_object_set_new (rec, field, json_string (s_i64 (buf, n)));
}

//  Read an appointment by id: 0 with *rec, or a status with err.
static int
s_load (scheduler_t *self, json_t *params, json_t **rec, gl_rep_error_t *err)
{
    const char *id = NULL;
    int rc = sched_str_field (params, "id", true, GL_ID_LEN, NULL, &id, err);
    if (rc)
        return rc;
    if (!gl_id_valid (id))
        return gl_rep_error (err, 400, "invalid_parameter", "id", "id must be 32 hex digits");
    char key[128];
    s_key (key, sizeof key, "appt", id, NULL);
    bool failed = false;
    *rec = sched_hgetall (self, key, &failed);
    if (failed)
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    if (json_object_size (*rec) == 0) {
        json_decref (*rec);
        *rec = NULL;
        return gl_rep_error (err, 404, "not_found", "id", "no such appointment");
    }
    return 0;
}

static int
s_write_status (sched_write_rc_t rc, gl_rep_error_t *err)
{
    switch (rc) {
        case SCHED_WRITE_OK:
            return 200;
        case SCHED_WRITE_IN_PROGRESS:
            return gl_rep_error (err, 409, "in_progress",
                                 "", "a request with this idempotency key is being handled");
        case SCHED_WRITE_FULL:
            return gl_rep_error (err, 409, "slot_taken", "slot_id",
                                 "the slot has no place left");
        case SCHED_WRITE_OVERLAP:
            return gl_rep_error (err, 409, "overlapping_appointment", "start",
                                 "the person already holds an appointment at that time");
        case SCHED_WRITE_STALE:
            return gl_rep_error (err, 409, "conflict", "",
                                 "the appointment changed meanwhile; read it again");
        default:
            return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
}

//  The slot a request names (slot_id or start) at centre for service.
static int
s_slot_from (scheduler_t *self, json_t *body, const sched_centre_t *centre,
             const sched_service_t *service, sched_slot_t *slot, gl_rep_error_t *err)
{
    const char *slot_id = NULL;
    int64_t start = 0;
    bool has_start = false;
    int rc = sched_str_field (body, "slot_id", false, SCHED_CODE_MAX, "code", &slot_id, err);
    if (!rc)
        rc = sched_int_field (body, "start", false, 1, INT64_C (253402300799000), &start,
                              &has_start, err);
    if (rc)
        return rc;
    if (!slot_id == !has_start)
        return gl_rep_error (err, 400, slot_id ? "invalid_field" : "missing_field", "slot_id",
                             "give one of slot_id and start");
    sched_slot_why_t why
        = sched_slot_resolve (centre, service, slot_id, start, gl_now_ms (), slot);
    if (why != SCHED_SLOT_OK)
        return gl_rep_error (err, why == SCHED_SLOT_NOT_OFFERED ? 404 : 422,
                             sched_slot_why_code (why), slot_id ? "slot_id" : "start", "%s",
                             sched_slot_why_message (why));
    return 0;
}

//  Queue the slot-count writes: +1 on slot.
static void
s_take (sched_write_t *w, const sched_centre_t *centre, const sched_service_t *service,
        const sched_slot_t *slot, int delta)
{
    char taken[160], idx[160], start[24], d[24];
    s_key (taken, sizeof taken, "taken", centre->code, service->code);
    s_key (idx, sizeof idx, "takenidx", centre->code, service->code);
    s_i64 (start, slot->start);
    s_i64 (d, delta);
    sched_write_cmdv (w, "HINCRBY", taken, start, d, NULL);
    if (delta > 0)
        sched_write_cmdv (w, "ZADD", idx, start, start, NULL);
}

//  The notification of a change: "appointment.booked" / "moved" / "cancelled", at once.
static void
s_notify (scheduler_t *self, sched_write_t *w, json_t *rec, const char *template_)
{
    gl_event_t *ev = reminders_notification (self, rec, template_, 0);
    if (ev)
        sched_write_event (w, &ev);
}

//  --------------------------------------------------------------------------------------------
//  scheduler.book (from intake: docs/events.md "scheduler.book")

int
appointments_book (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    json_t *body = req->body;
    static const char *const allowed[] = { "case_no", "service", "centre", "slot_id", "start",
                                           "language", "call_id", "contact_id", "agent_id",
                                           NULL };
    const char *case_no = NULL, *service_code = NULL, *centre_code = NULL, *call_id = NULL,
               *contact_id = NULL, *agent_id = NULL, *language = NULL;
    int rc = sched_only_fields (body, allowed, err);
    if (!rc)
        rc = sched_str_field (body, "case_no", true, 32, "case", &case_no, err);
    if (!rc)
        rc = sched_str_field (body, "service", true, SCHED_CODE_MAX, "code", &service_code, err);
    if (!rc)
        rc = sched_str_field (body, "centre", true, SCHED_CODE_MAX, "code", &centre_code, err);
    if (!rc)
        rc = sched_str_field (body, "call_id", false, GL_ID_LEN, "id", &call_id, err);
    if (!rc)
        rc = sched_str_field (body, "contact_id", false, GL_ID_LEN, "id", &contact_id, err);
    if (!rc)
        rc = sched_str_field (body, "agent_id", true, GL_ID_LEN, "id", &agent_id, err);
    if (!rc)
        rc = sched_str_field (body, "language", false, 16, "lang", &language, err);
    if (rc)
        return rc;
    if (!call_id == !contact_id)
        return gl_rep_error (err, 400, call_id ? "invalid_field" : "missing_field", "call_id",
                             "give one of call_id and contact_id");
    const sched_service_t *service = sched_config_service (self->config, service_code);
    if (!service)
        return gl_rep_error (err, 404, "unknown_service", "service", "no such service");
    const sched_centre_t *centre = sched_config_centre (self->config, centre_code);
    if (!centre)
        return gl_rep_error (err, 404, "unknown_centre", "centre", "no such centre");
    sched_slot_t slot;
    if ((rc = s_slot_from (self, body, centre, service, &slot, err))) {
        gl_metric_inc (self->m_refused, 1);
        return rc;
    }

    char case_norm[33], person[33], id[GL_ID_LEN + 1], buf[24];
    snprintf (case_norm, sizeof case_norm, "%s", case_no);
    for (char *c = case_norm; *c; c++)
        *c = (char) toupper ((unsigned char) *c);
    sched_person_hash (self, case_norm, person);
    gl_id_new (id);
    int64_t now = gl_now_ms ();
    const char *ref = call_id ? call_id : contact_id;

    json_t *rec = json_object ();
    s_set (rec, "id", id);
    s_set (rec, "centre", centre->code);
    s_set (rec, "service", service->code);
    s_seti (rec, "start", slot.start);
    s_seti (rec, "end", slot.end);
    s_set (rec, "slot_id", slot.slot_id);
    s_set (rec, "case_no", case_norm);
    s_set (rec, "person", person);
    s_set (rec, "language", language);
    s_set (rec, "ref_kind", call_id ? "call_id" : "contact_id");
    s_set (rec, "ref", ref);
    s_set (rec, "agent_id", agent_id);
    s_set (rec, "status", "booked");
    s_seti (rec, "created_at", now);
    s_seti (rec, "updated_at", now);
    s_seti (rec, "version", 1);
    s_seti (rec, "moves", 0);

    sched_write_t *w = sched_write_new ();
    char appt_key[128], person_key[128], day_key[128];
    s_key (appt_key, sizeof appt_key, "appt", id, NULL);
    s_key (person_key, sizeof person_key, "person", person, NULL);
    s_key (day_key, sizeof day_key, "day", centre->code, NULL);
    char taken[160];
    s_key (taken, sizeof taken, "taken", centre->code, service->code);
    sched_write_cap (w, taken, s_i64 (buf, slot.start), slot.capacity);
    sched_write_free (w, person_key, slot.start, slot.end, NULL);
    sched_write_ver (w, appt_key, 0);
    json_t *dues = json_array ();
    reminders_schedule (self, w, rec, 1, now, dues);
    s_hset_record (w, appt_key, rec);
    s_take (w, centre, service, &slot, 1);
    sched_write_cmdv (w, "ZADD", person_key, s_i64 (buf, slot.start), id, NULL);
    sched_write_cmdv (w, "ZADD", day_key, s_i64 (buf, slot.start), id, NULL);

    gl_event_t *ev = s_event ("appointment.booked", rec, ref);
    json_object_set_new (ev->data, "agent_id", json_string (agent_id));
    sched_write_event (w, &ev);
    s_notify (self, w, rec, "appointment.booked");

    json_t *view = s_view (self, rec, true);
    json_object_set_new (view, "reminders", dues);
    sched_write_reply (w, self, req, 200, view);
    sched_write_rc_t wrc = sched_write_run (self, w);
    sched_write_destroy (&w);
    json_decref (rec);
    int status = s_write_status (wrc, err);
    if (status == 200) {
        gl_info ("scheduler: appointment %s booked (%s, %s, slot %s)", id, centre->code,
                 service->code, slot.slot_id);
        gl_metric_inc (self->m_booked, 1);
        *reply = view;
    }
    else {
        if (status == 409)
            gl_metric_inc (self->m_refused, 1);
        json_decref (view);
    }
    return status;
}

//  --------------------------------------------------------------------------------------------
//  Changes to an existing appointment (forwarded from intake)

typedef enum { S_MOVE, S_CANCEL, S_ATTENDED, S_NO_SHOW } s_change_t;

static const char *const s_cancel_reasons[] = { "requested_by_person", "centre_closure",
                                                "duplicate", "rebooked", "other", NULL };

//  One attempt at a change on rec (as read). Returns a status; *view on 200.
static int
s_change_once (scheduler_t *self, const gl_rep_request_t *req, const sched_caller_t *caller,
               json_t *body, s_change_t change, json_t *rec, json_t **view, gl_rep_error_t *err)
{
    const char *id = sched_jstr (rec, "id", "");
    int64_t now = gl_now_ms ();
    int64_t version = sched_jint (rec, "version", 0);
    int64_t old_start = sched_jint (rec, "start", 0);
    const char *status = sched_jstr (rec, "status", "");
    const sched_centre_t *centre = sched_config_centre (self->config, sched_jstr (rec, "centre", ""));
    const sched_service_t *service
        = sched_config_service (self->config, sched_jstr (rec, "service", ""));
    if (!centre || !service)
        return gl_rep_error (err, 409, "configuration_changed", "",
                             "the appointment's centre or service is no longer configured");
    if (strcmp (status, "booked") != 0)
        return gl_rep_error (err, 409, "not_booked", "", "the appointment is %s", status);

    char appt_key[128], person_key[128], buf[24];
    s_key (appt_key, sizeof appt_key, "appt", id, NULL);
    s_key (person_key, sizeof person_key, "person", sched_jstr (rec, "person", ""), NULL);
    sched_write_t *w = sched_write_new ();
    sched_write_ver (w, appt_key, version);
    json_t *dues = NULL;
    const char *type = NULL, *notify = NULL;
    json_t *extra = json_object ();
    int rc = 0;

    if (change == S_MOVE) {
        const char *centre_code = NULL;
        rc = sched_str_field (body, "centre", false, SCHED_CODE_MAX, "code", &centre_code, err);
        const sched_centre_t *to_centre = centre;
        if (!rc && centre_code && !(to_centre = sched_config_centre (self->config, centre_code)))
            rc = gl_rep_error (err, 404, "unknown_centre", "centre", "no such centre");
        sched_slot_t slot;
        if (!rc)
            rc = s_slot_from (self, body, to_centre, service, &slot, err);
        if (!rc && old_start <= now)
            rc = gl_rep_error (err, 409, "already_started", "",
                               "the appointment has started; it cannot be moved");
        if (!rc && to_centre == centre && slot.start == old_start)
            rc = gl_rep_error (err, 422, "same_slot", "slot_id",
                               "the appointment is already in that slot");
        if (!rc) {
            char taken[160], old_day[128], new_day[128];
            s_key (taken, sizeof taken, "taken", to_centre->code, service->code);
            sched_write_cap (w, taken, s_i64 (buf, slot.start), slot.capacity);
            sched_write_free (w, person_key, slot.start, slot.end, id);
            sched_slot_t old = { .start = old_start };
            s_take (w, centre, service, &old, -1);
            s_take (w, to_centre, service, &slot, 1);
            s_key (old_day, sizeof old_day, "day", centre->code, NULL);
            s_key (new_day, sizeof new_day, "day", to_centre->code, NULL);
            sched_write_cmdv (w, "ZREM", old_day, id, NULL);
            sched_write_cmdv (w, "ZADD", new_day, s_i64 (buf, slot.start), id, NULL);
            sched_write_cmdv (w, "ZADD", person_key, s_i64 (buf, slot.start), id, NULL);
            reminders_unschedule (self, w, rec);
            json_object_set_new (extra, "from_start", json_integer (old_start));
            json_object_set_new (extra, "from_centre", json_string (centre->code));
            json_object_set_new (extra, "from_slot_id",
                                 json_string (sched_jstr (rec, "slot_id", "")));
            s_set (rec, "centre", to_centre->code);
            s_seti (rec, "start", slot.start);
            s_seti (rec, "end", slot.end);
            s_set (rec, "slot_id", slot.slot_id);
            s_seti (rec, "moves", sched_jint (rec, "moves", 0) + 1);
            dues = json_array ();
            reminders_schedule (self, w, rec, version + 1, now, dues);
            type = "appointment.moved";
            notify = "appointment.moved";
        }
    }
    else if (change == S_CANCEL) {
        const char *reason = NULL;
        rc = sched_str_field (body, "reason", false, 32, "code", &reason, err);
        if (!rc && reason) {
            bool known = false;
            for (int i = 0; s_cancel_reasons[i]; i++)
                known = known || strcmp (reason, s_cancel_reasons[i]) == 0;
            if (!known)
                rc = gl_rep_error (err, 400, "invalid_field", "reason",
                                   "reason must be requested_by_person, centre_closure, "
                                   "duplicate, rebooked or other");
        }
        if (!rc && old_start <= now)
            rc = gl_rep_error (err, 409, "already_started", "",
                               "the appointment has started; mark it attended or no-show");
        if (!rc) {
            sched_slot_t old = { .start = old_start };
            s_take (w, centre, service, &old, -1);
            reminders_unschedule (self, w, rec);
            s_set (rec, "status", "cancelled");
            s_set (rec, "reason", reason ? reason : "other");
            json_object_set_new (extra, "reason", json_string (reason ? reason : "other"));
            type = "appointment.cancelled";
            notify = "appointment.cancelled";
        }
    }
    else {
        //  Attended: from two hours before the start (people come early); no-show: once the
        //  appointment's end has passed.
        if (change == S_ATTENDED && now < old_start - 2 * 3600000LL)
            rc = gl_rep_error (err, 409, "too_early", "",
                               "attendance can be recorded from two hours before the start");
        if (change == S_NO_SHOW && now < sched_jint (rec, "end", 0))
            rc = gl_rep_error (err, 409, "too_early", "",
                               "a no-show can be recorded once the appointment has ended");
        if (!rc) {
            reminders_unschedule (self, w, rec);
            s_set (rec, "status", change == S_ATTENDED ? "attended" : "no_show");
            if (change == S_NO_SHOW)
                sched_write_cmdv (w, "ZADD", SCHED_PREFIX "noshow", s_i64 (buf, old_start), id,
                                  NULL);
            type = change == S_ATTENDED ? "appointment.attended" : "appointment.no_show";
        }
    }
    if (rc) {
        json_decref (extra);
        sched_write_destroy (&w);
        return rc;
    }
    s_seti (rec, "version", version + 1);
    s_seti (rec, "updated_at", now);
    s_set (rec, "updated_by", caller->user_id);
    s_hset_record (w, appt_key, rec);
    gl_event_t *ev = s_event (type, rec, id);
    json_object_update (ev->data, extra);
    json_object_set_new (ev->data, "by", json_string (caller->user_id));
    json_decref (extra);
    sched_write_event (w, &ev);
    if (notify)
        s_notify (self, w, rec, notify);
    *view = s_view (self, rec, change == S_MOVE);
    if (dues)
        json_object_set_new (*view, "reminders", dues);
    sched_write_reply (w, self, req, 200, *view);
    sched_write_rc_t wrc = sched_write_run (self, w);
    sched_write_destroy (&w);
    rc = s_write_status (wrc, err);
    if (rc != 200) {
        json_decref (*view);
        *view = NULL;
    }
    else
        gl_info ("scheduler: appointment %s %s (version %lld)", id, type + 12,
                 (long long) (version + 1));
    return wrc == SCHED_WRITE_STALE ? -1 : rc;
}

static int
s_change (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err,
          s_change_t change)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.agent && !caller.supervisor && !caller.admin
        && !(caller.api_client && (change == S_ATTENDED || change == S_NO_SHOW)))
        return gl_rep_error (err, 403, "forbidden", "", "this role may not change appointments");
    static const char *const move_fields[] = { "slot_id", "start", "centre", NULL };
    static const char *const cancel_fields[] = { "reason", NULL };
    static const char *const none[] = { NULL };
    rc = sched_only_fields (body, change == S_MOVE     ? move_fields
                                  : change == S_CANCEL ? cancel_fields
                                                       : none,
                            err);
    for (int attempt = 0; !rc && attempt < S_RETRIES; attempt++) {
        json_t *rec = NULL;
        if ((rc = s_load (self, params, &rec, err)))
            break;
        rc = s_change_once (self, req, &caller, body, change, rec, reply, err);
        json_decref (rec);
        if (rc == -1)
            rc = attempt + 1 < S_RETRIES ? 0 : gl_rep_error (err, 409, "conflict", "",
                                                              "the appointment changed meanwhile");
        else
            break;
    }
    return rc;
}

int
appointments_move (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    return s_change (arg, req, reply, err, S_MOVE);
}

int
appointments_cancel (void *arg, const gl_rep_request_t *req, json_t **reply,
                     gl_rep_error_t *err)
{
    return s_change (arg, req, reply, err, S_CANCEL);
}

int
appointments_attended (void *arg, const gl_rep_request_t *req, json_t **reply,
                       gl_rep_error_t *err)
{
    return s_change (arg, req, reply, err, S_ATTENDED);
}

int
appointments_no_show (void *arg, const gl_rep_request_t *req, json_t **reply,
                      gl_rep_error_t *err)
{
    return s_change (arg, req, reply, err, S_NO_SHOW);
}

//  --------------------------------------------------------------------------------------------
//  Reading

static json_t *
s_items (scheduler_t *self, redisReply *ids, bool *failed)
{
    json_t *items = json_array ();
    for (size_t i = 0; i < ids->elements && !*failed; i++) {
        if (ids->element[i]->type != REDIS_REPLY_STRING)
            continue;
        char key[128];
        s_key (key, sizeof key, "appt", ids->element[i]->str, NULL);
        json_t *rec = sched_hgetall (self, key, failed);
        if (rec && json_object_size (rec))
            json_array_append_new (items, s_view (self, rec, false));
        json_decref (rec);
    }
    return items;
}

//  POST /api/v1/appointments/search {"case_no"}: a person's appointments, newest first. The
//  case number comes in the body, never in a URL.
int
appointments_search (void *arg, const gl_rep_request_t *req, json_t **reply,
                     gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.agent && !caller.supervisor)
        return gl_rep_error (err, 403, "forbidden", "", "agents and supervisors only");
    static const char *const allowed[] = { "case_no", NULL };
    const char *case_no = NULL;
    if ((rc = sched_only_fields (body, allowed, err))
        || (rc = sched_str_field (body, "case_no", true, 32, "case", &case_no, err)))
        return rc;
    char norm[33], person[33], key[128];
    snprintf (norm, sizeof norm, "%s", case_no);
    for (char *c = norm; *c; c++)
        *c = (char) toupper ((unsigned char) *c);
    sched_person_hash (self, norm, person);
    s_key (key, sizeof key, "person", person, NULL);
    redisReply *r = gl_redis_cmd (self->redis, "ZREVRANGE %s 0 %d", key, S_LIST_MAX - 1);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    bool failed = false;
    json_t *items = s_items (self, r, &failed);
    freeReplyObject (r);
    if (failed) {
        json_decref (items);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    *reply = json_pack ("{s:o}", "items", items);
    return 200;
}

//  GET /api/v1/appointments?centre=&from=&to=: a centre's appointments in a range (default:
//  today, centre time), in time order.
int
appointments_list (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.agent && !caller.supervisor && !caller.admin && !caller.api_client)
        return gl_rep_error (err, 403, "forbidden", "", "this role may not list appointments");
    static const char *const allowed[] = { "centre", "from", "to", "limit", NULL };
    const char *centre_code = NULL;
    if ((rc = sched_only_params (query, allowed, err))
        || (rc = sched_str_field (query, "centre", true, SCHED_CODE_MAX, "code", &centre_code,
                                  err)))
        return rc;
    const sched_centre_t *centre = sched_config_centre (self->config, centre_code);
    if (!centre)
        return gl_rep_error (err, 404, "unknown_centre", "centre", "no such centre");
    int64_t now = gl_now_ms (), from, to, limit;
    int64_t tz = (int64_t) centre->tz_offset_min * 60000;
    int64_t day_start = ((now + tz) / SCHED_DAY_MS) * SCHED_DAY_MS - tz;
    if ((rc = sched_query_int (query, "from", day_start, 0, INT64_C (253402300799000), &from,
                               err))
        || (rc = sched_query_int (query, "to", from + SCHED_DAY_MS, 0,
                                  INT64_C (253402300799000), &to, err))
        || (rc = sched_query_int (query, "limit", 100, 1, S_LIST_MAX, &limit, err)))
        return rc;
    if (to <= from || to - from > SCHED_RANGE_DAYS * SCHED_DAY_MS)
        return gl_rep_error (err, 400, "invalid_parameter", "to",
                             "to must be after from, at most %d days later", SCHED_RANGE_DAYS);
    char key[128];
    s_key (key, sizeof key, "day", centre->code, NULL);
    redisReply *r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s %lld (%lld LIMIT 0 %lld", key,
                                  (long long) from, (long long) to, (long long) limit);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    bool failed = false;
    json_t *items = s_items (self, r, &failed);
    freeReplyObject (r);
    if (failed) {
        json_decref (items);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    *reply = json_pack ("{s:o}", "items", items);
    return 200;
}

//  GET /api/v1/appointments/{id}: one appointment, with its slip.
int
appointments_get (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.agent && !caller.supervisor && !caller.admin && !caller.api_client)
        return gl_rep_error (err, 403, "forbidden", "", "this role may not read appointments");
    json_t *rec = NULL;
    if ((rc = s_load (self, params, &rec, err)))
        return rc;
    *reply = s_view (self, rec, true);
    json_decref (rec);
    return 200;
}
