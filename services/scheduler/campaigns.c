/*  campaigns — outbound call lists ("exercises"): a supervisor creates a campaign with a script
    and, for one that collects information, a questionnaire; loads targets from CSV or from a
    query (last week's no-shows, today's abandoned calls); agents pull the next call and record
    its outcome; the answers export as CSV. Abandoned calls (call.abandoned from intake) and
    calls that left the queue asking to be called back (call.not_reached, callback_requested)
    feed the standing callback list, campaign "callbacks", by themselves.

    Keys (all under scheduler:{scheduler}:):
      campaigns                  zset created_at -> campaign id
      campaign:<cid>             hash: settings, version, counters (targets, queued, leased,
                                 done, refused, failed, attempts, o:<outcome>)
      target:<cid>:<tid>         hash: case_no, phone, language, priority, status, attempts,
                                 next_at, attempt_id, agent_id, lease_until, outcome, answers
      targets:<cid>              zset insertion order -> tid (export order)
      tkey:<cid>                 hash: keyed hash of the case number (or phone) -> tid
      q:<cid>:<lang>:<prio>      zset next_at -> tid: the queued targets (prio 1 high .. 3 low)
      qlangs:<cid>               set of the languages that have queues
      leases                     zset lease_until -> "<cid>:<tid>:<attempt id>"
      attempts                   hash attempt id -> "<cid>:<tid>"
      abandoned                  zset at -> call id; abandoned:lang hash call id -> language

    A target is worked by one agent at a time: "next" takes it off its queue and leases it until
    lease_until (GL_SCHEDULER_LEASE_MS); an outcome ends the lease; a lease that runs out on the
    business clock puts the target back (campaigns_tick). Everything is in Redis, written with
    its events in one atomic step, so a restart loses nothing.
*/
#include "scheduler.h"
#include "gl/gl_clock.h"
#include "gl/gl_csv.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_CALLBACKS       "callbacks"
#define S_ERRORS_MAX      100
#define S_QUESTIONS_MAX   50
#define S_SCRIPT_MAX      8000
#define S_EXPORT_MAX      5000
#define S_LANGS_MAX       16

static const char *const s_kinds[] = { "schedule_appointments", "collect_information",
                                       "verification", "information", "callback", NULL };
static const char *const s_outcomes[] = { "reached", "no_answer", "busy", "wrong_number",
                                          "callback", "refused", "completed", NULL };
static const char *s_day_names[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

//  --------------------------------------------------------------------------------------------
//  Helpers

static bool
s_in (const char *s, const char *const *list)
{
    for (int i = 0; s && list[i]; i++)
        if (strcmp (s, list[i]) == 0)
            return true;
    return false;
}

static char *
s_i64 (char buf[24], int64_t n)
{
    snprintf (buf, 24, "%lld", (long long) n);
    return buf;
}

static bool
s_cid_valid (const char *s)
{
    return s && (gl_id_valid (s) || strcmp (s, S_CALLBACKS) == 0);
}

static int
s_prio (const char *s)
{
    if (!s || !*s || strcmp (s, "normal") == 0 || strcmp (s, "2") == 0)
        return 2;
    if (strcmp (s, "high") == 0 || strcmp (s, "1") == 0)
        return 1;
    if (strcmp (s, "low") == 0 || strcmp (s, "3") == 0)
        return 3;
    return 0;
}

static const char *
s_prio_name (int p)
{
    return p == 1 ? "high" : p == 3 ? "low" : "normal";
}

//  The base language: "ar-SY" -> "ar".
static void
s_base_lang (const char *lang, char out[8])
{
    size_t n = strcspn (lang, "-");
    snprintf (out, 8, "%.*s", (int) (n < 7 ? n : 7), lang);
}

static void
s_qkey (char *out, size_t len, const char *cid, const char *lang, int prio)
{
    char base[8];
    s_base_lang (lang, base);
    snprintf (out, len, SCHED_PREFIX "q:%s:%s:%d", cid, base, prio);
}

//  Load a campaign named by params.id: 0 or a status.
static int
s_load_campaign (scheduler_t *self, json_t *params, json_t **rec, gl_rep_error_t *err)
{
    const char *cid = json_string_value (json_object_get (params, "id"));
    if (!s_cid_valid (cid))
        return gl_rep_error (err, 400, "invalid_parameter", "id",
                             "id must be 32 hex digits or \"callbacks\"");
    char key[128];
    snprintf (key, sizeof key, SCHED_PREFIX "campaign:%s", cid);
    bool failed = false;
    *rec = sched_hgetall (self, key, &failed);
    if (failed)
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    if (json_object_size (*rec) == 0) {
        json_decref (*rec);
        *rec = NULL;
        return gl_rep_error (err, 404, "not_found", "id", "no such campaign");
    }
    return 0;
}

static gl_event_t *
s_event (const char *type, const char *cid)
{
    gl_event_t *ev = gl_event_new (type);
    if (ev) {
        gl_event_set_corr (ev, cid);
        json_object_set_new (ev->data, "campaign_id", json_string (cid));
    }
    return ev;
}

static json_t *
s_counts (json_t *rec)
{
    json_t *outcomes = json_object ();
    for (int i = 0; s_outcomes[i]; i++) {
        char f[40];
        snprintf (f, sizeof f, "o:%s", s_outcomes[i]);
        json_object_set_new (outcomes, s_outcomes[i], json_integer (sched_jint (rec, f, 0)));
    }
    json_object_set_new (outcomes, "lease_expired",
                         json_integer (sched_jint (rec, "o:lease_expired", 0)));
    int64_t targets = sched_jint (rec, "targets", 0);
    int64_t finished = sched_jint (rec, "done", 0) + sched_jint (rec, "refused", 0)
                       + sched_jint (rec, "failed", 0);
    return json_pack ("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "targets",
                      (json_int_t) targets, "queued", (json_int_t) sched_jint (rec, "queued", 0),
                      "leased", (json_int_t) sched_jint (rec, "leased", 0), "done",
                      (json_int_t) sched_jint (rec, "done", 0), "refused",
                      (json_int_t) sched_jint (rec, "refused", 0), "failed",
                      (json_int_t) sched_jint (rec, "failed", 0), "attempts",
                      (json_int_t) sched_jint (rec, "attempts", 0), "percent_finished",
                      (json_int_t) (targets ? finished * 100 / targets : 0), "outcomes",
                      outcomes);
}

static json_t *
s_campaign_view (json_t *rec, bool full)
{
    json_t *view = json_pack (
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:s}", "campaign_id",
        sched_jstr (rec, "id", ""), "name", sched_jstr (rec, "name", ""), "kind",
        sched_jstr (rec, "kind", ""), "status", sched_jstr (rec, "status", ""), "calling_hours",
        sched_jstr (rec, "calling_hours", ""), "max_attempts",
        (json_int_t) sched_jint (rec, "max_attempts", 0), "spacing_ms",
        (json_int_t) sched_jint (rec, "spacing_ms", 0), "timezone",
        sched_jstr (rec, "timezone", ""), "priority", sched_jstr (rec, "priority", "normal"),
        "created_at", (json_int_t) sched_jint (rec, "created_at", 0), "created_by",
        sched_jstr (rec, "created_by", ""));
    json_t *days = json_array ();
    int64_t mask = sched_jint (rec, "days", 0x7f);
    for (int d = 0; d < 7; d++)
        if (mask & (1 << d))
            json_array_append_new (days, json_string (s_day_names[d]));
    json_object_set_new (view, "calling_days", days);
    json_object_set_new (view, "progress", s_counts (rec));
    if (full) {
        json_object_set_new (view, "script", json_string (sched_jstr (rec, "script", "")));
        json_t *q = json_loads (sched_jstr (rec, "questionnaire", "[]"), 0, NULL);
        json_object_set_new (view, "questionnaire", q ? q : json_array ());
    }
    return view;
}

//  Whether now is inside the campaign's calling hours (its time zone and days).
static bool
s_calling_now (json_t *rec, int64_t now)
{
    int64_t tz = sched_jint (rec, "tz", 0);
    int64_t local_min = now / 60000 + tz;
    int32_t day = (int32_t) (local_min / 1440);
    int minute = (int) (local_min % 1440);
    int64_t mask = sched_jint (rec, "days", 0x7f);
    if (!(mask & (1 << sched_weekday (day))))
        return false;
    return minute >= sched_jint (rec, "open", 0) && minute < sched_jint (rec, "close", 1440);
}

//  --------------------------------------------------------------------------------------------
//  The questionnaire

//  Check a questionnaire definition: 0 or 400.
static int
s_check_questionnaire (json_t *q, gl_rep_error_t *err)
{
    if (!json_is_array (q) || json_array_size (q) > S_QUESTIONS_MAX)
        return gl_rep_error (err, 400, "invalid_field", "questionnaire",
                             "questionnaire must be a list of at most %d questions",
                             S_QUESTIONS_MAX);
    static const char *const types[] = { "string", "int", "bool", "choice", "date", NULL };
    static const char *const keys[] = { "field", "type", "required", "options", "min", "max",
                                        "label", NULL };
    size_t i;
    json_t *item;
    json_array_foreach (q, i, item) {
        const char *field = NULL, *type = NULL, *label = NULL;
        if (!json_is_object (item))
            return gl_rep_error (err, 400, "invalid_field", "questionnaire",
                                 "question %zu is not a map", i + 1);
        int rc = sched_only_fields (item, keys, err);
        if (!rc)
            rc = sched_str_field (item, "field", true, 32, "code", &field, err);
        if (!rc)
            rc = sched_str_field (item, "type", true, 16, NULL, &type, err);
        if (!rc)
            rc = sched_str_field (item, "label", false, 200, NULL, &label, err);
        if (rc) {
            snprintf (err->field, sizeof err->field, "questionnaire");
            snprintf (err->message, sizeof err->message, "question %zu: a field, a type (string, "
                                                         "int, bool, choice, date) and an "
                                                         "optional label are expected", i + 1);
            return 400;
        }
        if (!s_in (type, types))
            return gl_rep_error (err, 400, "invalid_field", "questionnaire",
                                 "question %zu: type must be string, int, bool, choice or date",
                                 i + 1);
        json_t *req = json_object_get (item, "required");
        if (req && !json_is_boolean (req))
            return gl_rep_error (err, 400, "invalid_field", "questionnaire",
                                 "question %zu: required must be true or false", i + 1);
        json_t *opts = json_object_get (item, "options");
        if (strcmp (type, "choice") == 0) {
            if (!json_is_array (opts) || json_array_size (opts) == 0
                || json_array_size (opts) > 50)
                return gl_rep_error (err, 400, "invalid_field", "questionnaire",
                                     "question %zu: a choice needs 1..50 options", i + 1);
            size_t j;
            json_t *o;
            json_array_foreach (opts, j, o)
                if (!json_is_string (o) || !sched_code_valid (json_string_value (o), 32))
                    return gl_rep_error (err, 400, "invalid_field", "questionnaire",
                                         "question %zu: options are codes", i + 1);
        }
        else if (opts)
            return gl_rep_error (err, 400, "invalid_field", "questionnaire",
                                 "question %zu: options only go with type choice", i + 1);
        for (const char *k = "min"; k; k = strcmp (k, "min") == 0 ? "max" : NULL) {
            json_t *v = json_object_get (item, k);
            if (v && !json_is_integer (v))
                return gl_rep_error (err, 400, "invalid_field", "questionnaire",
                                     "question %zu: %s must be an integer", i + 1, k);
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp (json_string_value (json_object_get (json_array_get (q, j), "field")),
                        field)
                == 0)
                return gl_rep_error (err, 400, "invalid_field", "questionnaire",
                                     "question %zu: field '%s' given twice", i + 1, field);
    }
    return 0;
}

//  Check answers against the questionnaire: 0 or 400 naming "answers.<field>".
static int
s_check_answers (json_t *q, json_t *answers, gl_rep_error_t *err)
{
    if (!json_is_object (answers))
        return gl_rep_error (err, 400, "invalid_field", "answers", "answers must be a map");
    const char *key;
    json_t *v;
    json_object_foreach (answers, key, v) {
        bool known = false;
        size_t i;
        json_t *item;
        json_array_foreach (q, i, item)
            known = known || strcmp (json_string_value (json_object_get (item, "field")), key) == 0;
        if (!known)
            return gl_rep_error (err, 400, "unknown_field", "answers",
                                 "an answer to a question the questionnaire does not ask");
    }
    size_t i;
    json_t *item;
    json_array_foreach (q, i, item) {
        const char *field = json_string_value (json_object_get (item, "field"));
        const char *type = json_string_value (json_object_get (item, "type"));
        bool required = json_is_true (json_object_get (item, "required"));
        json_t *min = json_object_get (item, "min"), *max = json_object_get (item, "max");
        char name[GL_REQ_FIELD_MAX + 1];
        snprintf (name, sizeof name, "answers.%s", field);
        v = json_object_get (answers, field);
        if (!v || json_is_null (v)) {
            if (required)
                return gl_rep_error (err, 400, "missing_field", name, "this answer is required");
            continue;
        }
        if (strcmp (type, "string") == 0) {
            size_t limit = max ? (size_t) json_integer_value (max) : 500;
            if (limit > 2000)
                limit = 2000;
            if (!json_is_string (v) || json_string_length (v) > limit
                || (required && json_string_length (v) == 0))
                return gl_rep_error (err, 400, "invalid_field", name,
                                     "a text of at most %zu bytes is expected", limit);
        }
        else if (strcmp (type, "int") == 0) {
            if (!json_is_integer (v) || (min && json_integer_value (v) < json_integer_value (min))
                || (max && json_integer_value (v) > json_integer_value (max)))
                return gl_rep_error (err, 400, "invalid_field", name,
                                     "an integer in the question's range is expected");
        }
        else if (strcmp (type, "bool") == 0) {
            if (!json_is_boolean (v))
                return gl_rep_error (err, 400, "invalid_field", name, "true or false expected");
        }
        else if (strcmp (type, "date") == 0) {
            int32_t d;
            if (!json_is_string (v) || sched_parse_date (json_string_value (v), &d) != 0)
                return gl_rep_error (err, 400, "invalid_field", name, "a YYYY-MM-DD date expected");
        }
        else {
            bool ok = false;
            size_t j;
            json_t *o;
            json_array_foreach (json_object_get (item, "options"), j, o)
                ok = ok || json_equal (o, v);
            if (!ok)
                return gl_rep_error (err, 400, "invalid_field", name,
                                     "one of the question's options expected");
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Create, list, read

static int
s_write_status (sched_write_rc_t rc, gl_rep_error_t *err)
{
    if (rc == SCHED_WRITE_OK)
        return 200;
    if (rc == SCHED_WRITE_IN_PROGRESS)
        return gl_rep_error (err, 409, "in_progress", "",
                             "a request with this idempotency key is being handled");
    if (rc == SCHED_WRITE_STALE || rc == SCHED_WRITE_GONE || rc == SCHED_WRITE_EXISTS)
        return gl_rep_error (err, 409, "conflict", "", "changed meanwhile; try again");
    return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
}

//  The campaign's record fields for the settings in body (validated): 0 or 400.
static int
s_settings (json_t *body, json_t *rec, const sched_config_t *config, gl_rep_error_t *err)
{
    const char *name = NULL, *kind = NULL, *script = NULL, *hours = NULL, *tz = NULL,
               *prio = NULL;
    int64_t max_attempts = 3, spacing = 3600000;
    int rc = sched_str_field (body, "name", true, 200, NULL, &name, err);
    if (!rc)
        rc = sched_str_field (body, "kind", true, 32, NULL, &kind, err);
    if (!rc)
        rc = sched_str_field (body, "script", true, S_SCRIPT_MAX, NULL, &script, err);
    if (!rc)
        rc = sched_str_field (body, "calling_hours", false, 11, NULL, &hours, err);
    if (!rc)
        rc = sched_str_field (body, "timezone", false, 6, NULL, &tz, err);
    if (!rc)
        rc = sched_str_field (body, "priority", false, 8, NULL, &prio, err);
    if (!rc)
        rc = sched_int_field (body, "max_attempts", false, 1, 20, &max_attempts, NULL, err);
    if (!rc)
        rc = sched_int_field (body, "spacing_ms", false, 60000, 7 * SCHED_DAY_MS, &spacing, NULL,
                              err);
    if (rc)
        return rc;
    if (!s_in (kind, s_kinds) || strcmp (kind, "callback") == 0)
        return gl_rep_error (err, 400, "invalid_field", "kind",
                             "kind must be schedule_appointments, collect_information, "
                             "verification or information");
    sched_hours_t h = { 9 * 60, 18 * 60 };
    if (hours && sched_parse_hours (hours, &h) != 0)
        return gl_rep_error (err, 400, "invalid_field", "calling_hours",
                             "calling_hours must be HH:MM-HH:MM");
    int tz_min = config->centre_count ? config->centres[0].tz_offset_min : 0;
    if (tz) {
        int hh, mm;
        if (strlen (tz) != 6 || (tz[0] != '+' && tz[0] != '-') || tz[3] != ':'
            || sscanf (tz + 1, "%2d:%2d", &hh, &mm) != 2 || hh > 14 || mm > 59)
            return gl_rep_error (err, 400, "invalid_field", "timezone",
                                 "timezone must be an offset like +03:00");
        tz_min = (tz[0] == '-' ? -1 : 1) * (hh * 60 + mm);
    }
    if (prio && !s_prio (prio))
        return gl_rep_error (err, 400, "invalid_field", "priority",
                             "priority must be high, normal or low");
    int days = 0x7f;
    json_t *dl = json_object_get (body, "calling_days");
    if (dl) {
        if (!json_is_array (dl) || json_array_size (dl) == 0 || json_array_size (dl) > 7)
            return gl_rep_error (err, 400, "invalid_field", "calling_days",
                                 "calling_days must list 1..7 weekdays");
        days = 0;
        size_t i;
        json_t *d;
        json_array_foreach (dl, i, d) {
            int k = 0;
            while (k < 7 && !(json_is_string (d) && strcmp (json_string_value (d), s_day_names[k]) == 0))
                k++;
            if (k == 7)
                return gl_rep_error (err, 400, "invalid_field", "calling_days",
                                     "weekdays are sun, mon, tue, wed, thu, fri, sat");
            days |= 1 << k;
        }
    }
    json_t *q = json_object_get (body, "questionnaire");
    if (q && (rc = s_check_questionnaire (q, err)))
        return rc;
    if (strcmp (kind, "collect_information") == 0 && (!q || json_array_size (q) == 0))
        return gl_rep_error (err, 400, "missing_field", "questionnaire",
                             "a campaign that collects information needs a questionnaire");
    char buf[24], hbuf[48], tzbuf[24];
    json_object_set_new (rec, "name", json_string (name));
    json_object_set_new (rec, "kind", json_string (kind));
    json_object_set_new (rec, "script", json_string (script));
    char *qs = q ? json_dumps (q, JSON_COMPACT) : NULL;
    json_object_set_new (rec, "questionnaire", json_string (qs ? qs : "[]"));
    free (qs);
    snprintf (hbuf, sizeof hbuf, "%02d:%02d-%02d:%02d", h.open / 60, h.open % 60, h.close / 60,
              h.close % 60);
    json_object_set_new (rec, "calling_hours", json_string (hbuf));
    json_object_set_new (rec, "open", json_string (s_i64 (buf, h.open)));
    json_object_set_new (rec, "close", json_string (s_i64 (buf, h.close)));
    json_object_set_new (rec, "days", json_string (s_i64 (buf, days)));
    json_object_set_new (rec, "tz", json_string (s_i64 (buf, tz_min)));
    int off = tz_min < 0 ? -tz_min : tz_min;
    snprintf (tzbuf, sizeof tzbuf, "%c%02d:%02d", tz_min < 0 ? '-' : '+', off / 60, off % 60);
    json_object_set_new (rec, "timezone", json_string (tzbuf));
    json_object_set_new (rec, "max_attempts", json_string (s_i64 (buf, max_attempts)));
    json_object_set_new (rec, "spacing_ms", json_string (s_i64 (buf, spacing)));
    json_object_set_new (rec, "priority", json_string (s_prio_name (s_prio (prio))));
    return 0;
}

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

int
campaigns_create (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.supervisor)
        return gl_rep_error (err, 403, "forbidden", "", "supervisors create campaigns");
    static const char *const allowed[] = { "name", "kind", "script", "questionnaire",
                                           "calling_hours", "calling_days", "timezone",
                                           "max_attempts", "spacing_ms", "priority", NULL };
    json_t *rec = json_object ();
    if ((rc = sched_only_fields (body, allowed, err))
        || (rc = s_settings (body, rec, self->config, err))) {
        json_decref (rec);
        return rc;
    }
    char cid[GL_ID_LEN + 1], buf[24], key[128];
    gl_id_new (cid);
    int64_t now = gl_now_ms ();
    json_object_set_new (rec, "id", json_string (cid));
    json_object_set_new (rec, "status", json_string ("active"));
    json_object_set_new (rec, "created_at", json_string (s_i64 (buf, now)));
    json_object_set_new (rec, "created_by", json_string (caller.user_id));
    json_object_set_new (rec, "version", json_string ("1"));
    snprintf (key, sizeof key, SCHED_PREFIX "campaign:%s", cid);
    sched_write_t *w = sched_write_new ();
    sched_write_ver (w, key, 0);
    s_hset_record (w, key, rec);
    sched_write_cmdv (w, "ZADD", SCHED_PREFIX "campaigns", s_i64 (buf, now), cid, NULL);
    gl_event_t *ev = s_event ("campaign.created", cid);
    json_object_set_new (ev->data, "kind", json_string (sched_jstr (rec, "kind", "")));
    json_object_set_new (ev->data, "max_attempts", json_integer (sched_jint (rec, "max_attempts", 0)));
    json_object_set_new (ev->data, "spacing_ms", json_integer (sched_jint (rec, "spacing_ms", 0)));
    json_object_set_new (ev->data, "questions",
                         json_integer ((json_int_t) json_array_size (json_object_get (body, "questionnaire"))));
    json_object_set_new (ev->data, "by", json_string (caller.user_id));
    sched_write_event (w, &ev);
    json_t *view = s_campaign_view (rec, true);
    sched_write_reply (w, self, req, 200, view);
    rc = s_write_status (sched_write_run (self, w), err);
    sched_write_destroy (&w);
    json_decref (rec);
    if (rc == 200) {
        *reply = view;
        gl_info ("scheduler: campaign %s created", cid);
    }
    else
        json_decref (view);
    return rc;
}

int
campaigns_list (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.supervisor && !caller.agent)
        return gl_rep_error (err, 403, "forbidden", "", "agents and supervisors only");
    static const char *const allowed[] = { "limit", NULL };
    int64_t limit;
    if ((rc = sched_only_params (query, allowed, err))
        || (rc = sched_query_int (query, "limit", 50, 1, 200, &limit, err)))
        return rc;
    redisReply *r = gl_redis_cmd (self->redis, "ZREVRANGE %s 0 %lld",
                                  SCHED_PREFIX "campaigns", (long long) limit - 1);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    json_t *items = json_array ();
    bool failed = false;
    //  The standing callback list first, when there is one.
    for (size_t i = 0; i <= r->elements && !failed; i++) {
        const char *cid = i == 0 ? S_CALLBACKS
                          : r->element[i - 1]->type == REDIS_REPLY_STRING ? r->element[i - 1]->str
                                                                          : NULL;
        if (!cid)
            continue;
        char key[128];
        snprintf (key, sizeof key, SCHED_PREFIX "campaign:%s", cid);
        json_t *rec = sched_hgetall (self, key, &failed);
        if (rec && json_object_size (rec))
            json_array_append_new (items, s_campaign_view (rec, false));
        json_decref (rec);
    }
    freeReplyObject (r);
    if (failed) {
        json_decref (items);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    *reply = json_pack ("{s:o}", "items", items);
    return 200;
}

int
campaigns_get (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body, *rec = NULL;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.supervisor && !caller.agent)
        return gl_rep_error (err, 403, "forbidden", "", "agents and supervisors only");
    if ((rc = s_load_campaign (self, params, &rec, err)))
        return rc;
    *reply = s_campaign_view (rec, true);
    json_decref (rec);
    return 200;
}

int
campaigns_progress (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body, *rec = NULL;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.supervisor)
        return gl_rep_error (err, 403, "forbidden", "", "supervisors only");
    if ((rc = s_load_campaign (self, params, &rec, err)))
        return rc;
    //  Due now: queued targets whose next_at has come, over every language queue.
    const char *cid = sched_jstr (rec, "id", "");
    char key[128];
    snprintf (key, sizeof key, SCHED_PREFIX "qlangs:%s", cid);
    redisReply *langs = gl_redis_cmd (self->redis, "SMEMBERS %s", key);
    int64_t due = 0, now = gl_now_ms ();
    for (size_t i = 0; langs && langs->type == REDIS_REPLY_ARRAY && i < langs->elements; i++)
        for (int p = 1; p <= 3; p++) {
            char q[160];
            s_qkey (q, sizeof q, cid, langs->element[i]->str, p);
            redisReply *n = gl_redis_cmd (self->redis, "ZCOUNT %s -inf %lld", q, (long long) now);
            long long c = 0;
            if (n && gl_redis_reply_int (n, &c) == 0)
                due += c;
            if (n)
                freeReplyObject (n);
        }
    if (langs)
        freeReplyObject (langs);
    json_t *counts = s_counts (rec);
    json_object_set_new (counts, "due_now", json_integer (due));
    json_object_set_new (counts, "phones_pending",
                         json_integer (sched_jint (rec, "phones_pending", 0)));
    json_object_set_new (counts, "campaign_id", json_string (cid));
    json_object_set_new (counts, "status", json_string (sched_jstr (rec, "status", "")));
    json_object_set_new (counts, "calling_now", json_boolean (s_calling_now (rec, now)));
    json_decref (rec);
    *reply = counts;
    return 200;
}

//  POST /api/v1/campaigns/{id}/status {"status": "active" | "paused" | "closed"}: a paused
//  campaign gives no next call and takes no targets until it is active again; a closed one
//  never again (its figures and export stay).
int
campaigns_status (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body, *rec = NULL;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.supervisor)
        return gl_rep_error (err, 403, "forbidden", "", "supervisors only");
    static const char *const allowed[] = { "status", NULL };
    const char *status = NULL;
    if ((rc = sched_only_fields (body, allowed, err))
        || (rc = sched_str_field (body, "status", true, 16, NULL, &status, err)))
        return rc;
    if (strcmp (status, "active") && strcmp (status, "paused") && strcmp (status, "closed"))
        return gl_rep_error (err, 400, "invalid_field", "status",
                             "status must be active, paused or closed");
    if ((rc = s_load_campaign (self, params, &rec, err)))
        return rc;
    char cid[GL_ID_LEN + 1], key[128], buf[24];
    snprintf (cid, sizeof cid, "%s", sched_jstr (rec, "id", ""));
    const char *from = sched_jstr (rec, "status", "");
    if (strcmp (from, "closed") == 0 || strcmp (cid, S_CALLBACKS) == 0) {
        rc = gl_rep_error (err, 409, strcmp (cid, S_CALLBACKS) == 0 ? "configured" : "closed",
                           "status",
                           strcmp (cid, S_CALLBACKS) == 0
                               ? "the callback list follows [callbacks] enabled in the configuration"
                               : "the campaign is closed");
        json_decref (rec);
        return rc;
    }
    snprintf (key, sizeof key, SCHED_PREFIX "campaign:%s", cid);
    int64_t version = sched_jint (rec, "version", 0);
    sched_write_t *w = sched_write_new ();
    sched_write_ver (w, key, version);
    sched_write_cmdv (w, "HSET", key, "status", status, "version", s_i64 (buf, version + 1),
                      NULL);
    gl_event_t *ev = s_event ("campaign.status_changed", cid);
    json_object_set_new (ev->data, "from", json_string (from));
    json_object_set_new (ev->data, "to", json_string (status));
    json_object_set_new (ev->data, "by", json_string (caller.user_id));
    sched_write_event (w, &ev);
    json_object_set_new (rec, "status", json_string (status));
    json_t *view = s_campaign_view (rec, false);
    sched_write_reply (w, self, req, 200, view);
    rc = s_write_status (sched_write_run (self, w), err);
    sched_write_destroy (&w);
    json_decref (rec);
    if (rc == 200) {
        *reply = view;
        gl_info ("scheduler: campaign %s %s", cid, status);
    }
    else
        json_decref (view);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Loading targets

typedef struct {
    scheduler_t *self;
    const char *cid;
    int default_prio;
    int col_case, col_phone, col_lang, col_prio;
    size_t columns;
    bool header_done;
    json_t *errors;             //  [{row, line, field, code, message}]
    size_t rejected, duplicates;
    json_t *rows;               //  good rows: [{case_no, phone, language, priority, dedup}]
    json_t *seen;               //  dedup keys seen in this file
    bool header_bad;
    char header_msg[128];
    size_t max_rows;
} s_import_t;

static void
s_row_error (s_import_t *im, size_t row, size_t line, const char *field, const char *code,
             const char *message)
{
    im->rejected++;
    if (json_array_size (im->errors) < S_ERRORS_MAX)
        json_array_append_new (im->errors, json_pack ("{s:I, s:I, s:s, s:s, s:s}", "row",
                                                      (json_int_t) row, "line", (json_int_t) line,
                                                      "field", field, "code", code, "message",
                                                      message));
}

//  Phone numbers: an optional '+' then 6..15 digits; spaces, dashes, dots and brackets are
//  dropped. 0 with the normal form in out, or -1.
static int
s_norm_phone (const char *s, char out[20])
{
    size_t n = 0;
    for (const char *c = s; *c; c++) {
        if (*c == '+' && n == 0 && c == s)
            out[n++] = '+';
        else if (isdigit ((unsigned char) *c)) {
            if (n >= 16)
                return -1;
            out[n++] = *c;
        }
        else if (!strchr (" -.()", *c))
            return -1;
    }
    out[n] = 0;
    size_t digits = n - (out[0] == '+');
    return digits >= 6 && digits <= 15 ? 0 : -1;
}

static int
s_import_row (void *arg, const gl_csv_row_t *row)
{
    s_import_t *im = arg;
    if (!im->header_done) {
        im->header_done = true;
        im->col_case = im->col_phone = im->col_lang = im->col_prio = -1;
        im->columns = row->count;
        for (size_t i = 0; i < row->count; i++) {
            const char *h = row->fields[i];
            int *col = strcasecmp (h, "case_no") == 0    ? &im->col_case
                       : strcasecmp (h, "phone") == 0    ? &im->col_phone
                       : strcasecmp (h, "language") == 0 ? &im->col_lang
                       : strcasecmp (h, "priority") == 0 ? &im->col_prio
                                                         : NULL;
            if (!col) {
                im->header_bad = true;
                snprintf (im->header_msg, sizeof im->header_msg,
                          "column %zu: unknown column (case_no, phone, language, priority)",
                          i + 1);
                return 1;
            }
            if (*col >= 0) {
                im->header_bad = true;
                snprintf (im->header_msg, sizeof im->header_msg, "column %zu: given twice", i + 1);
                return 1;
            }
            *col = (int) i;
        }
        if (im->col_lang < 0 || (im->col_case < 0 && im->col_phone < 0)) {
            im->header_bad = true;
            snprintf (im->header_msg, sizeof im->header_msg,
                      "the header must name language and case_no or phone (or both)");
            return 1;
        }
        return 0;
    }
    if (json_array_size (im->rows) + im->rejected + im->duplicates >= im->max_rows) {
        s_row_error (im, row->row, row->line, "", "too_many_rows",
                     "more rows than one request may load; the rest were not read");
        return 1;
    }
    const char *case_no = im->col_case >= 0 ? row->fields[im->col_case] : "";
    const char *phone = im->col_phone >= 0 ? row->fields[im->col_phone] : "";
    const char *lang = row->fields[im->col_lang];
    const char *prio = im->col_prio >= 0 ? row->fields[im->col_prio] : "";
    char case_norm[33] = "", phone_norm[20] = "";
    if (*case_no) {
        size_t n = strlen (case_no);
        bool ok = n <= 32;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum ((unsigned char) case_no[i]) || case_no[i] == '-';
        if (!ok) {
            s_row_error (im, row->row, row->line, "case_no", "invalid_case_no",
                         "a case number is 1..32 of A-Z 0-9 -");
            return 0;
        }
        for (size_t i = 0; i <= n; i++)
            case_norm[i] = (char) toupper ((unsigned char) case_no[i]);
    }
    if (*phone && s_norm_phone (phone, phone_norm) != 0) {
        s_row_error (im, row->row, row->line, "phone", "invalid_phone",
                     "a phone number is an optional + and 6..15 digits");
        return 0;
    }
    if (!*case_norm && !*phone_norm) {
        s_row_error (im, row->row, row->line, "case_no", "missing_field",
                     "a row needs a case number or a phone number");
        return 0;
    }
    char lang_norm[17];
    snprintf (lang_norm, sizeof lang_norm, "%s", lang);
    for (char *c = lang_norm; *c && *c != '-'; c++)
        *c = (char) tolower ((unsigned char) *c);
    if (!sched_lang_valid (lang_norm)) {
        s_row_error (im, row->row, row->line, "language", "invalid_language",
                     "a language code (ar, fr, ar-SY) is required");
        return 0;
    }
    int p = *prio ? s_prio (prio) : im->default_prio;
    if (!p) {
        s_row_error (im, row->row, row->line, "priority", "invalid_priority",
                     "priority must be high, normal or low");
        return 0;
    }
    char dedup[33];
    sched_person_hash (im->self, *case_norm ? case_norm : phone_norm, dedup);
    if (json_object_get (im->seen, dedup)) {
        im->duplicates++;
        if (json_array_size (im->errors) < S_ERRORS_MAX)
            json_array_append_new (im->errors,
                                   json_pack ("{s:I, s:I, s:s, s:s, s:s}", "row",
                                              (json_int_t) row->row, "line",
                                              (json_int_t) row->line, "field",
                                              *case_norm ? "case_no" : "phone", "code",
                                              "duplicate", "message",
                                              "the same person is listed earlier in the file"));
        return 0;
    }
    json_object_set_new (im->seen, dedup, json_true ());
    json_array_append_new (im->rows, json_pack ("{s:s, s:s, s:s, s:i, s:s, s:s}", "case_no",
                                                case_norm, "phone", phone_norm, "language",
                                                lang_norm, "priority", p, "dedup", dedup,
                                                "source", "csv"));
    return 0;
}

//  Queue the writes that add one target (row: case_no, phone, language, priority, dedup,
//  source, and optionally person_ref, appointment_id).
static void
s_add_target (sched_write_t *w, const char *cid, json_t *row, int64_t now, int64_t seq)
{
    char tid[GL_ID_LEN + 1], key[160], q[160], buf[24], nbuf[24];
    gl_id_new (tid);
    snprintf (key, sizeof key, SCHED_PREFIX "target:%s:%s", cid, tid);
    int prio = (int) json_integer_value (json_object_get (row, "priority"));
    const char *lang = sched_jstr (row, "language", "");
    s_qkey (q, sizeof q, cid, lang, prio);
    char base[8];
    s_base_lang (lang, base);
    sched_write_cmdv (w, "HSET", key, "id", tid, "campaign_id", cid, "case_no",
                      sched_jstr (row, "case_no", ""), "phone", sched_jstr (row, "phone", ""),
                      "language", lang, "priority", s_i64 (buf, prio), "status", "queued",
                      "attempts", "0", "next_at", s_i64 (nbuf, now), "source",
                      sched_jstr (row, "source", "csv"), "person_ref",
                      sched_jstr (row, "person_ref", ""), "appointment_id",
                      sched_jstr (row, "appointment_id", ""), "version", "1", NULL);
    sched_write_cmdv (w, "ZADD", q, s_i64 (buf, now), tid, NULL);
    char idx[160], tkey[160], langs[160];
    snprintf (idx, sizeof idx, SCHED_PREFIX "targets:%s", cid);
    snprintf (tkey, sizeof tkey, SCHED_PREFIX "tkey:%s", cid);
    snprintf (langs, sizeof langs, SCHED_PREFIX "qlangs:%s", cid);
    sched_write_cmdv (w, "ZADD", idx, s_i64 (buf, seq), tid, NULL);
    sched_write_cmdv (w, "HSET", tkey, sched_jstr (row, "dedup", ""), tid, NULL);
    sched_write_cmdv (w, "SADD", langs, base, NULL);
    if (!*sched_jstr (row, "phone", "") && *sched_jstr (row, "person_ref", "")) {
        char member[128], ckey[128];
        snprintf (member, sizeof member, "%s:%s", cid, tid);
        snprintf (ckey, sizeof ckey, SCHED_PREFIX "campaign:%s", cid);
        sched_write_cmdv (w, "HSET", key, "phone_status", "pending", NULL);
        sched_write_cmdv (w, "ZADD", SCHED_PREFIX "nophone", s_i64 (buf, now), member, NULL);
        sched_write_cmdv (w, "HINCRBY", ckey, "phones_pending", "1", NULL);
    }
}

//  Rows from a query: last week's no-shows, today's abandoned calls.
static int
s_query_rows (scheduler_t *self, const char *query, json_t *campaign, int prio, json_t *rows,
              gl_rep_error_t *err)
{
    int64_t now = gl_now_ms ();
    bool noshow = strcmp (query, "no_shows_last_week") == 0;
    int64_t from;
    if (noshow)
        from = now - 7 * SCHED_DAY_MS;
    else {
        int64_t tz = sched_jint (campaign, "tz", 0) * 60000;
        from = ((now + tz) / SCHED_DAY_MS) * SCHED_DAY_MS - tz;
    }
    redisReply *r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s %lld %lld LIMIT 0 %lld",
                                  noshow ? SCHED_PREFIX "noshow" : SCHED_PREFIX "abandoned",
                                  (long long) from, (long long) now,
                                  (long long) self->csv_max_rows);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    json_t *seen = json_object ();
    bool failed = false;
    for (size_t i = 0; i < r->elements && !failed; i++) {
        const char *id = r->element[i]->str;
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        char dedup[33];
        if (noshow) {
            char key[128];
            snprintf (key, sizeof key, SCHED_PREFIX "appt:%s", id);
            json_t *appt = sched_hgetall (self, key, &failed);
            const char *case_no = sched_jstr (appt, "case_no", "");
            const char *lang = sched_jstr (appt, "language", "");
            if (*case_no) {
                sched_person_hash (self, case_no, dedup);
                if (!json_object_get (seen, dedup)) {
                    json_object_set_new (seen, dedup, json_true ());
                    json_array_append_new (
                        rows, json_pack ("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s}", "case_no",
                                         case_no, "phone", "", "language",
                                         sched_lang_valid (lang) ? lang : "und", "priority",
                                         prio, "dedup", dedup, "source", "no_show", "person_ref",
                                         //  the call or contact the booking was made in:
                                         //  intake resolves it to the verified case, and it
                                         //  may go into a notification (a case number may not)
                                         gl_id_valid (sched_jstr (appt, "ref", ""))
                                             ? sched_jstr (appt, "ref", "")
                                             : case_no,
                                         "appointment_id", id));
                }
            }
            json_decref (appt);
        }
        else {
            redisReply *l = gl_redis_cmd (self->redis, "HGET %s %s",
                                          SCHED_PREFIX "abandoned:lang", id);
            const char *lang = l && l->type == REDIS_REPLY_STRING ? l->str : "und";
            sched_person_hash (self, id, dedup);
            json_array_append_new (rows, json_pack ("{s:s, s:s, s:s, s:i, s:s, s:s, s:s}",
                                                    "case_no", "", "phone", "", "language",
                                                    lang, "priority", prio, "dedup", dedup,
                                                    "source", "abandoned_call", "person_ref", id));
            if (l)
                freeReplyObject (l);
            else
                failed = true;
        }
    }
    freeReplyObject (r);
    json_decref (seen);
    if (failed)
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    return 0;
}

int
campaigns_targets (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body, *rec = NULL;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.supervisor)
        return gl_rep_error (err, 403, "forbidden", "", "supervisors load targets");
    static const char *const allowed[] = { "csv", "query", "priority", "all_or_nothing", NULL };
    const char *csv = NULL, *q = NULL, *prio = NULL;
    if ((rc = sched_only_fields (body, allowed, err))
        || (rc = sched_str_field (body, "csv", false, 1 << 20, NULL, &csv, err))
        || (rc = sched_str_field (body, "query", false, 32, NULL, &q, err))
        || (rc = sched_str_field (body, "priority", false, 8, NULL, &prio, err)))
        return rc;
    json_t *aon = json_object_get (body, "all_or_nothing");
    if (aon && !json_is_boolean (aon))
        return gl_rep_error (err, 400, "invalid_field", "all_or_nothing", "true or false");
    if (!csv == !q)
        return gl_rep_error (err, 400, csv ? "invalid_field" : "missing_field", "csv",
                             "give one of csv and query");
    if (q && strcmp (q, "no_shows_last_week") != 0 && strcmp (q, "abandoned_today") != 0)
        return gl_rep_error (err, 400, "invalid_field", "query",
                             "query must be no_shows_last_week or abandoned_today");
    int default_prio = s_prio (prio);
    if (!default_prio)
        return gl_rep_error (err, 400, "invalid_field", "priority",
                             "priority must be high, normal or low");
    for (int attempt = 0; attempt < 3; attempt++) {
        if ((rc = s_load_campaign (self, params, &rec, err)))
            return rc;
        if (strcmp (sched_jstr (rec, "status", ""), "active") != 0) {
            json_decref (rec);
            return gl_rep_error (err, 409, "campaign_closed", "", "the campaign is not active");
        }
        if (!prio)
            default_prio = s_prio (sched_jstr (rec, "priority", "normal"));
        const char *cid = sched_jstr (rec, "id", "");
        s_import_t im = { .self = self, .cid = cid, .default_prio = default_prio,
                          .errors = json_array (), .rows = json_array (), .seen = json_object (),
                          .max_rows = self->csv_max_rows + 1 };
        gl_csv_error_t cerr;
        int prc = 0;
        if (csv) {
            gl_csv_limits_t limits;
            gl_csv_limits_default (&limits);
            limits.max_field = 256;
            limits.max_fields = 8;
            limits.max_rows = self->csv_max_rows + 1;
            prc = gl_csv_parse (csv, strlen (csv), &limits, s_import_row, &im, &cerr);
        }
        else
            rc = s_query_rows (self, q, rec, default_prio, im.rows, err);
        json_t *out = NULL;
        if (!rc && csv && prc == -1)
            rc = gl_rep_error (err, 422, "invalid_csv", "csv", "%s; nothing was imported",
                               cerr.message);
        else if (!rc && csv && (im.header_bad || !im.header_done))
            rc = gl_rep_error (err, 422, "invalid_csv", "csv", "row 1: %s; nothing was imported",
                               im.header_bad ? im.header_msg : "the file is empty");
        //  Against the campaign: people already on it are duplicates, not new targets.
        json_t *fresh = json_array ();
        if (!rc && json_array_size (im.rows)) {
            char tkey[160];
            snprintf (tkey, sizeof tkey, SCHED_PREFIX "tkey:%s", cid);
            size_t i;
            json_t *row;
            json_array_foreach (im.rows, i, row) {
                redisReply *r = gl_redis_cmd (self->redis, "HEXISTS %s %s", tkey,
                                              sched_jstr (row, "dedup", ""));
                long long exists = 0;
                if (!r || gl_redis_reply_int (r, &exists) != 0) {
                    if (r)
                        freeReplyObject (r);
                    rc = gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
                    break;
                }
                freeReplyObject (r);
                if (exists)
                    im.duplicates++;
                else
                    json_array_append (fresh, row);
            }
        }
        bool commit = !rc && !(json_is_true (aon) && im.rejected > 0);
        if (!rc) {
            int64_t now = gl_now_ms (), seq = sched_jint (rec, "seq", 0);
            size_t n = commit ? json_array_size (fresh) : 0;
            out = json_pack ("{s:s, s:s, s:b, s:I, s:I, s:I, s:o, s:b}", "campaign_id", cid,
                             "source", csv ? "csv" : q, "committed", commit, "imported",
                             (json_int_t) n, "rejected", (json_int_t) im.rejected, "duplicates",
                             (json_int_t) im.duplicates, "errors", json_incref (im.errors),
                             "errors_truncated",
                             json_array_size (im.errors) == S_ERRORS_MAX);
            json_object_set_new (out, "message",
                                 json_string (!commit ? "nothing was imported: the file has bad "
                                                        "rows and all_or_nothing was set"
                                              : im.rejected ? "the good rows were imported; the "
                                                              "bad rows listed were not"
                                                            : "every row was imported"));
            char ckey[128], b1[24], b2[24];
            snprintf (ckey, sizeof ckey, SCHED_PREFIX "campaign:%s", cid);
            sched_write_t *w = sched_write_new ();
            sched_write_ver (w, ckey, sched_jint (rec, "version", 0));
            size_t i;
            json_t *row;
            for (i = 0; i < n; i++) {
                row = json_array_get (fresh, i);
                s_add_target (w, cid, row, now, seq + (int64_t) i + 1);
            }
            sched_write_cmdv (w, "HSET", ckey, "version",
                              s_i64 (b1, sched_jint (rec, "version", 0) + 1), "seq",
                              s_i64 (b2, seq + (int64_t) n), NULL);
            sched_write_cmdv (w, "HINCRBY", ckey, "targets", s_i64 (b1, (int64_t) n), NULL);
            sched_write_cmdv (w, "HINCRBY", ckey, "queued", s_i64 (b1, (int64_t) n), NULL);
            gl_event_t *ev = s_event ("campaign.targets_loaded", cid);
            json_object_set_new (ev->data, "source", json_string (csv ? "csv" : q));
            json_object_set_new (ev->data, "imported", json_integer ((json_int_t) n));
            json_object_set_new (ev->data, "rejected", json_integer ((json_int_t) im.rejected));
            json_object_set_new (ev->data, "duplicates",
                                 json_integer ((json_int_t) im.duplicates));
            json_object_set_new (ev->data, "committed", json_boolean (commit));
            json_object_set_new (ev->data, "by", json_string (caller.user_id));
            sched_write_event (w, &ev);
            sched_write_reply (w, self, req, 200, out);
            sched_write_rc_t wrc = sched_write_run (self, w);
            sched_write_destroy (&w);
            if (wrc == SCHED_WRITE_STALE) {
                json_decref (out);
                out = NULL;
                rc = -1;
            }
            else
                rc = s_write_status (wrc, err);
        }
        json_decref (fresh);
        json_decref (im.errors);
        json_decref (im.rows);
        json_decref (im.seen);
        json_decref (rec);
        rec = NULL;
        if (rc == -1)
            continue;           //  the campaign changed meanwhile: read it again
        if (rc == 200) {
            *reply = out;
            gl_info ("scheduler: campaign %s targets: %lld imported, %zu rejected",
                     json_string_value (json_object_get (out, "campaign_id")),
                     (long long) json_integer_value (json_object_get (out, "imported")),
                     im.rejected);
        }
        else
            json_decref (out);
        return rc;
    }
    return gl_rep_error (err, 409, "conflict", "", "the campaign kept changing; try again");
}

//  --------------------------------------------------------------------------------------------
//  The next call

//  Take the first due target: by priority, then the earliest due, over the given languages.
//  KEYS[1] outbox; ARGV: prefix, cid, now, lease_until, agent, attempt id, event id, entry,
//  nlangs, langs...
static gl_redis_script_t s_next = { .source =
    "local p, cid, now = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local nl = tonumber(ARGV[9])\n"
    "local langs = {}\n"
    "for i = 1, nl do langs[i] = ARGV[9 + i] end\n"
    "if nl == 0 then langs = redis.call('SMEMBERS', p .. 'qlangs:' .. cid) end\n"
    "for prio = 1, 3 do\n"
    "  local best, bestq, bests = nil, nil, nil\n"
    "  for _, l in ipairs(langs) do\n"
    "    local q = p .. 'q:' .. cid .. ':' .. l .. ':' .. prio\n"
    "    local r = redis.call('ZRANGEBYSCORE', q, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)\n"
    "    if r[1] and (not bests or tonumber(r[2]) < bests) then\n"
    "      best, bestq, bests = r[1], q, tonumber(r[2])\n"
    "    end\n"
    "  end\n"
    "  if best then\n"
    "    local t = p .. 'target:' .. cid .. ':' .. best\n"
    "    local c = p .. 'campaign:' .. cid\n"
    "    redis.call('ZREM', bestq, best)\n"
    "    local n = redis.call('HINCRBY', t, 'attempts', 1)\n"
    "    redis.call('HINCRBY', t, 'version', 1)\n"
    "    redis.call('HSET', t, 'status', 'leased', 'attempt_id', ARGV[6], 'agent_id', ARGV[5],\n"
    "               'lease_until', ARGV[4], 'leased_at', ARGV[3])\n"
    "    redis.call('HINCRBY', c, 'queued', -1)\n"
    "    redis.call('HINCRBY', c, 'leased', 1)\n"
    "    redis.call('HINCRBY', c, 'attempts', 1)\n"
    "    redis.call('ZADD', p .. 'leases', ARGV[4], cid .. ':' .. best .. ':' .. ARGV[6])\n"
    "    redis.call('HSET', p .. 'attempts', ARGV[6], cid .. ':' .. best)\n"
    "    local e = ARGV[8]\n"
    "    e = string.sub(e, 1, #e - 2) .. ',\"target_id\":\"' .. best .. '\",\"attempt\":' .. n .. '}}'\n"
    "    redis.call('HSET', KEYS[1], ARGV[7], e)\n"
    "    return {best, n}\n"
    "  end\n"
    "end\n"
    "return {}\n" };

//  The earliest next_at over the campaign's queues (for "nothing due now: next at ..."); -1.
static int64_t
s_next_due (scheduler_t *self, const char *cid, json_t *langs)
{
    int64_t best = -1;
    size_t i;
    json_t *l;
    json_t *list = langs;
    if (json_array_size (langs) == 0) {
        char key[128];
        snprintf (key, sizeof key, SCHED_PREFIX "qlangs:%s", cid);
        redisReply *r = gl_redis_cmd (self->redis, "SMEMBERS %s", key);
        list = json_array ();
        for (size_t k = 0; r && r->type == REDIS_REPLY_ARRAY && k < r->elements; k++)
            json_array_append_new (list, json_string (r->element[k]->str));
        if (r)
            freeReplyObject (r);
    }
    else
        json_incref (list);
    json_array_foreach (list, i, l)
        for (int p = 1; p <= 3; p++) {
            char q[160];
            s_qkey (q, sizeof q, cid, json_string_value (l), p);
            redisReply *r = gl_redis_cmd (self->redis, "ZRANGE %s 0 0 WITHSCORES", q);
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
                int64_t s = strtoll (r->element[1]->str, NULL, 10);
                if (best < 0 || s < best)
                    best = s;
            }
            if (r)
                freeReplyObject (r);
        }
    json_decref (list);
    return best;
}

int
campaigns_next (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body, *rec = NULL;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.agent && !caller.supervisor)
        return gl_rep_error (err, 403, "forbidden", "", "agents and supervisors only");
    static const char *const allowed[] = { "languages", NULL };
    if ((rc = sched_only_fields (body, allowed, err)))
        return rc;
    json_t *langs = json_object_get (body, "languages");
    if (langs && (!json_is_array (langs) || json_array_size (langs) > S_LANGS_MAX))
        return gl_rep_error (err, 400, "invalid_field", "languages",
                             "languages must be a list of at most %d codes", S_LANGS_MAX);
    const char *lang_argv[S_LANGS_MAX];
    char bases[S_LANGS_MAX][8];
    size_t nl = 0, i;
    json_t *l;
    json_array_foreach (langs, i, l) {
        if (!json_is_string (l) || !sched_lang_valid (json_string_value (l)))
            return gl_rep_error (err, 400, "invalid_field", "languages",
                                 "languages are codes such as ar, fr, ar-SY");
        s_base_lang (json_string_value (l), bases[nl]);
        lang_argv[nl] = bases[nl];
        nl++;
    }
    if ((rc = s_load_campaign (self, params, &rec, err)))
        return rc;
    char cid[GL_ID_LEN + 1];
    snprintf (cid, sizeof cid, "%s", sched_jstr (rec, "id", ""));
    int64_t now = gl_now_ms ();
    if (strcmp (sched_jstr (rec, "status", ""), "active") != 0) {
        json_decref (rec);
        return gl_rep_error (err, 409, "campaign_closed", "", "the campaign is not active");
    }
    if (!s_calling_now (rec, now)) {
        rc = gl_rep_error (err, 409, "outside_calling_hours", "",
                           "outside the campaign's calling hours (%s, %s, days per "
                           "calling_days)",
                           sched_jstr (rec, "calling_hours", ""), sched_jstr (rec, "timezone", ""));
        json_decref (rec);
        return rc;
    }
    char aid[GL_ID_LEN + 1], sn[24], su[24], nls[24];
    gl_id_new (aid);
    int64_t lease_until = now + self->lease_ms;
    gl_event_t *ev = s_event ("outbound.attempt_started", cid);
    json_object_set_new (ev->data, "attempt_id", json_string (aid));
    json_object_set_new (ev->data, "agent_id", json_string (caller.user_id));
    json_object_set_new (ev->data, "lease_until", json_integer (lease_until));
    char *entry = gl_outbox_entry (self->outbox, ev, 0);
    const char *argv[10 + S_LANGS_MAX];
    int argc = 0;
    argv[argc++] = gl_outbox_key (self->outbox);
    argv[argc++] = SCHED_PREFIX;
    argv[argc++] = cid;
    argv[argc++] = s_i64 (sn, now);
    argv[argc++] = s_i64 (su, lease_until);
    argv[argc++] = caller.user_id;
    argv[argc++] = aid;
    argv[argc++] = ev->id;
    argv[argc++] = entry ? entry : "";
    argv[argc++] = s_i64 (nls, (int64_t) nl);
    for (size_t k = 0; k < nl; k++)
        argv[argc++] = lang_argv[k];
    redisReply *r = entry ? gl_redis_eval (self->redis, &s_next, 1, argc, argv, NULL) : NULL;
    free (entry);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            gl_warn ("scheduler: next failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
        if (r)
            freeReplyObject (r);
        gl_event_destroy (&ev);
        json_decref (rec);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    if (r->elements < 2) {
        freeReplyObject (r);
        gl_event_destroy (&ev);
        int64_t due = s_next_due (self, cid, langs);
        *reply = json_pack ("{s:n, s:s}", "attempt", "campaign_id", cid);
        json_object_set_new (*reply, "next_due", due >= 0 ? json_integer (due) : json_null ());
        json_decref (rec);
        return 200;
    }
    char tid[GL_ID_LEN + 1];
    snprintf (tid, sizeof tid, "%s", r->element[0]->str);
    long long attempt = r->element[1]->integer;
    freeReplyObject (r);
    json_object_set_new (ev->data, "target_id", json_string (tid));
    json_object_set_new (ev->data, "attempt", json_integer (attempt));
    gl_outbox_deliver (self->outbox, ev, 0);
    gl_event_destroy (&ev);

    char key[160];
    snprintf (key, sizeof key, SCHED_PREFIX "target:%s:%s", cid, tid);
    bool failed = false;
    json_t *t = sched_hgetall (self, key, &failed);
    json_t *questionnaire = json_loads (sched_jstr (rec, "questionnaire", "[]"), 0, NULL);
    json_t *out = json_pack (
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:o}", "attempt_id", aid,
        "campaign_id", cid, "target_id", tid, "kind", sched_jstr (rec, "kind", ""), "attempt",
        (json_int_t) attempt, "max_attempts", (json_int_t) sched_jint (rec, "max_attempts", 0),
        "lease_until", (json_int_t) lease_until, "language", sched_jstr (t, "language", ""),
        "priority", s_prio_name ((int) sched_jint (t, "priority", 2)), "script",
        sched_jstr (rec, "script", ""), "questionnaire",
        questionnaire ? questionnaire : json_array ());
    const char *case_no = sched_jstr (t, "case_no", ""), *phone = sched_jstr (t, "phone", "");
    json_object_set_new (out, "case_no", *case_no ? json_string (case_no) : json_null ());
    json_object_set_new (out, "source", json_string (sched_jstr (t, "source", "")));
    const char *pref = sched_jstr (t, "person_ref", "");
    json_object_set_new (out, "person_ref", *pref ? json_string (pref) : json_null ());
    //  No number on the list (a no-show, an abandoned call): campaigns_resolve_tick asks
    //  intake for it in the background (never from inside a request intake is waiting on).
    json_object_set_new (out, "phone", *phone ? json_string (phone) : json_null ());
    json_object_set_new (out, "phone_status",
                         json_string (*sched_jstr (t, "phone_status", "")
                                          ? sched_jstr (t, "phone_status", "")
                                          : *phone ? "list" : "unknown"));
    json_decref (t);
    json_decref (rec);
    *reply = out;
    gl_info ("scheduler: campaign %s attempt %s on target %s (attempt %lld)", cid, aid, tid,
             attempt);
    return 200;
}

//  --------------------------------------------------------------------------------------------
//  Outcomes

int
campaigns_outcome (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.agent && !caller.supervisor)
        return gl_rep_error (err, 403, "forbidden", "", "agents and supervisors only");
    static const char *const allowed[] = { "outcome", "callback_at", "answers", NULL };
    const char *aid = json_string_value (json_object_get (params, "id"));
    const char *outcome = NULL;
    int64_t callback_at = 0;
    bool has_cb = false;
    if (!aid || !gl_id_valid (aid))
        return gl_rep_error (err, 400, "invalid_parameter", "id", "id must be 32 hex digits");
    if ((rc = sched_only_fields (body, allowed, err))
        || (rc = sched_str_field (body, "outcome", true, 32, NULL, &outcome, err))
        || (rc = sched_int_field (body, "callback_at", false, 1, INT64_C (253402300799000),
                                  &callback_at, &has_cb, err)))
        return rc;
    if (!s_in (outcome, s_outcomes))
        return gl_rep_error (err, 400, "invalid_field", "outcome",
                             "outcome must be reached, no_answer, busy, wrong_number, callback, "
                             "refused or completed");
    int64_t now = gl_now_ms ();
    if (strcmp (outcome, "callback") == 0) {
        if (!has_cb)
            return gl_rep_error (err, 400, "missing_field", "callback_at",
                                 "a callback needs callback_at (unix ms)");
        if (callback_at <= now || callback_at > now + 30 * SCHED_DAY_MS)
            return gl_rep_error (err, 400, "invalid_field", "callback_at",
                                 "callback_at must be in the next 30 days");
    }
    else if (has_cb)
        return gl_rep_error (err, 400, "invalid_field", "callback_at",
                             "callback_at only goes with outcome callback");
    json_t *answers = json_object_get (body, "answers");
    if (answers && strcmp (outcome, "completed") != 0)
        return gl_rep_error (err, 400, "invalid_field", "answers",
                             "answers only go with outcome completed");

    redisReply *r = gl_redis_cmd (self->redis, "HGET %s %s", SCHED_PREFIX "attempts", aid);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        if (r)
            freeReplyObject (r);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    char cid[64] = "", tid[64] = "";
    if (r->type == REDIS_REPLY_STRING)
        sscanf (r->str, "%63[^:]:%63s", cid, tid);
    freeReplyObject (r);
    if (!*cid || !*tid)
        return gl_rep_error (err, 409, "lease_expired", "id",
                             "no open attempt with this id: it was recorded already or its "
                             "lease ran out");
    char ckey[128], tkey[200];
    snprintf (ckey, sizeof ckey, SCHED_PREFIX "campaign:%s", cid);
    snprintf (tkey, sizeof tkey, SCHED_PREFIX "target:%s:%s", cid, tid);
    bool failed = false;
    json_t *camp = sched_hgetall (self, ckey, &failed);
    json_t *t = failed ? NULL : sched_hgetall (self, tkey, &failed);
    if (failed) {
        json_decref (camp);
        json_decref (t);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    rc = 0;
    if (strcmp (sched_jstr (t, "status", ""), "leased") != 0
        || strcmp (sched_jstr (t, "attempt_id", ""), aid) != 0)
        rc = gl_rep_error (err, 409, "lease_expired", "id", "the attempt is no longer open");
    else if (!caller.supervisor && strcmp (sched_jstr (t, "agent_id", ""), caller.user_id) != 0)
        rc = gl_rep_error (err, 403, "forbidden", "id", "another agent holds this call");
    else if (sched_jint (t, "lease_until", 0) <= now)
        rc = gl_rep_error (err, 409, "lease_expired", "id",
                           "the lease ran out; the target went back to the list");
    json_t *q = json_loads (sched_jstr (camp, "questionnaire", "[]"), 0, NULL);
    if (!rc && strcmp (outcome, "completed") == 0 && json_array_size (q))
        rc = s_check_answers (q, answers ? answers : json_object_get (body, "answers"), err);
    json_decref (q);
    if (rc) {
        json_decref (camp);
        json_decref (t);
        return rc;
    }
    //  What happens next.
    int64_t attempts = sched_jint (t, "attempts", 0);
    int64_t max_attempts = sched_jint (camp, "max_attempts", 3);
    const char *status;
    int64_t next_at = 0;
    if (strcmp (outcome, "reached") == 0 || strcmp (outcome, "completed") == 0)
        status = "done";
    else if (strcmp (outcome, "refused") == 0)
        status = "refused";
    else if (strcmp (outcome, "wrong_number") == 0)
        status = "failed";
    else if (strcmp (outcome, "callback") == 0) {
        status = "queued";          //  the person asked: not limited by max_attempts
        next_at = callback_at;
    }
    else if (attempts < max_attempts) {
        status = "queued";
        next_at = now + sched_jint (camp, "spacing_ms", 3600000);
    }
    else
        status = "failed";          //  no answer max_attempts times

    char buf[24], b2[24], o[48], member[200];
    sched_write_t *w = sched_write_new ();
    sched_write_ver (w, tkey, sched_jint (t, "version", 0));
    sched_write_cmdv (w, "HSET", tkey, "status", status, "outcome", outcome, "attempt_id", "",
                      "lease_until", "0", "version",
                      s_i64 (buf, sched_jint (t, "version", 0) + 1), "updated_at",
                      s_i64 (b2, now), NULL);
    if (answers) {
        char *a = json_dumps (answers, JSON_COMPACT | JSON_SORT_KEYS);
        sched_write_cmdv (w, "HSET", tkey, "answers", a ? a : "{}", NULL);
        free (a);
    }
    if (strcmp (status, "queued") == 0) {
        char qk[160];
        s_qkey (qk, sizeof qk, cid, sched_jstr (t, "language", "und"),
                (int) sched_jint (t, "priority", 2));
        sched_write_cmdv (w, "HSET", tkey, "next_at", s_i64 (buf, next_at), NULL);
        sched_write_cmdv (w, "ZADD", qk, s_i64 (buf, next_at), tid, NULL);
    }
    else {
        char fin[200];
        snprintf (fin, sizeof fin, "%s:%s", cid, tid);
        sched_write_cmdv (w, "HSET", tkey, "finished_at", s_i64 (buf, now), NULL);
        //  its personal data goes GL_SCHEDULER_RETAIN_DAYS from now (retention.c)
        sched_write_cmdv (w, "ZADD", SCHED_PREFIX "finished", buf, fin, NULL);
    }
    snprintf (member, sizeof member, "%s:%s:%s", cid, tid, aid);
    sched_write_cmdv (w, "ZREM", SCHED_PREFIX "leases", member, NULL);
    sched_write_cmdv (w, "HDEL", SCHED_PREFIX "attempts", aid, NULL);
    sched_write_cmdv (w, "HINCRBY", ckey, "leased", "-1", NULL);
    sched_write_cmdv (w, "HINCRBY", ckey, status, "1", NULL);
    snprintf (o, sizeof o, "o:%s", outcome);
    sched_write_cmdv (w, "HINCRBY", ckey, o, "1", NULL);
    gl_event_t *ev = s_event ("outbound.outcome", cid);
    json_object_set_new (ev->data, "target_id", json_string (tid));
    json_object_set_new (ev->data, "attempt_id", json_string (aid));
    json_object_set_new (ev->data, "outcome", json_string (outcome));
    json_object_set_new (ev->data, "attempt", json_integer (attempts));
    json_object_set_new (ev->data, "status", json_string (status));
    json_object_set_new (ev->data, "next_at", next_at ? json_integer (next_at) : json_null ());
    json_object_set_new (ev->data, "agent_id", json_string (caller.user_id));
    json_object_set_new (ev->data, "answered", json_boolean (answers != NULL));
    sched_write_event (w, &ev);
    //  "We will call you back at ...": only to a person known by a call or contact id (a case
    //  number never goes into an event).
    const char *pref = sched_jstr (t, "person_ref", "");
    if (strcmp (outcome, "callback") == 0 && gl_id_valid (pref)) {
        gl_event_t *n = gl_event_new ("notification.requested");
        char nid[GL_ID_LEN + 1];
        gl_id_new (nid);
        gl_event_set_corr (n, tid);
        json_t *channels = json_array ();
        char list[64];
        snprintf (list, sizeof list, "%s", self->config->channels);
        char *save = NULL;
        for (char *c = strtok_r (list, ",", &save); c; c = strtok_r (NULL, ",", &save))
            json_array_append_new (channels, json_string (c));
        const char *lang = sched_jstr (t, "language", "");
        json_object_set_new (n->data, "notification_id", json_string (nid));
        json_object_set_new (n->data, "template", json_string ("callback.scheduled"));
        json_object_set_new (n->data, "priority", json_string ("routine"));
        json_object_set_new (n->data, "channels", channels);
        json_object_set_new (n->data, "recipient",
                             json_pack ("{s:s, s:s}", "kind", "person", "ref", pref));
        json_object_set_new (n->data, "language",
                             sched_lang_valid (lang) && strcmp (lang, "und") != 0
                                 ? json_string (lang)
                                 : json_null ());
        json_object_set_new (n->data, "params",
                             json_pack ("{s:I, s:s, s:s}", "at", (json_int_t) callback_at,
                                        "campaign_id", cid, "target_id", tid));
        sched_write_event (w, &n);
    }
    json_t *out = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "attempt_id", aid,
                             "campaign_id", cid, "target_id", tid, "outcome", outcome, "status",
                             status, "attempt", (json_int_t) attempts, "max_attempts",
                             (json_int_t) max_attempts);
    json_object_set_new (out, "next_at", next_at ? json_integer (next_at) : json_null ());
    sched_write_reply (w, self, req, 200, out);
    rc = s_write_status (sched_write_run (self, w), err);
    sched_write_destroy (&w);
    json_decref (camp);
    json_decref (t);
    if (rc == 200) {
        *reply = out;
        gl_metric_inc (self->m_outcomes, 1);
        gl_info ("scheduler: attempt %s: %s -> %s", aid, outcome, status);
    }
    else
        json_decref (out);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Export

static void
s_csv_field (FILE *f, const char *s, bool first)
{
    if (!first)
        fputc (',', f);
    //  A leading = + - @ would be a formula in a spreadsheet: quote it away.
    bool formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t'
                   || s[0] == '\r';
    bool quote = formula || strpbrk (s, ",\"\r\n") != NULL;
    if (!quote) {
        fputs (s, f);
        return;
    }
    fputc ('"', f);
    if (formula)
        fputc ('\'', f);
    for (const char *c = s; *c; c++) {
        if (*c == '"')
            fputc ('"', f);
        fputc (*c, f);
    }
    fputc ('"', f);
}

int
campaigns_export (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body, *rec = NULL;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.supervisor)
        return gl_rep_error (err, 403, "forbidden", "", "supervisors export campaigns");
    static const char *const allowed[] = { "offset", "limit", NULL };
    int64_t offset, limit;
    if ((rc = sched_only_params (query, allowed, err))
        || (rc = sched_query_int (query, "offset", 0, 0, 10000000, &offset, err))
        || (rc = sched_query_int (query, "limit", 1000, 1, S_EXPORT_MAX, &limit, err)))
        return rc;
    if ((rc = s_load_campaign (self, params, &rec, err)))
        return rc;
    char cid[GL_ID_LEN + 1];
    snprintf (cid, sizeof cid, "%s", sched_jstr (rec, "id", ""));
    json_t *q = json_loads (sched_jstr (rec, "questionnaire", "[]"), 0, NULL);
    char idx[160];
    snprintf (idx, sizeof idx, SCHED_PREFIX "targets:%s", cid);
    redisReply *r = gl_redis_cmd (self->redis, "ZRANGE %s %lld %lld", idx, (long long) offset,
                                  (long long) (offset + limit - 1));
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        json_decref (q);
        json_decref (rec);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream (&text, &size);
    const char *fixed[] = { "target_id", "case_no", "language", "source", "status", "attempts",
                            "outcome", "finished_at" };
    for (size_t i = 0; i < 8; i++)
        s_csv_field (f, fixed[i], i == 0);
    size_t i;
    json_t *item;
    json_array_foreach (q, i, item)
        s_csv_field (f, json_string_value (json_object_get (item, "field")), false);
    fputs ("\r\n", f);
    bool failed = false;
    size_t rows = 0;
    for (size_t k = 0; k < r->elements && !failed; k++) {
        char key[200];
        snprintf (key, sizeof key, SCHED_PREFIX "target:%s:%s", cid, r->element[k]->str);
        json_t *t = sched_hgetall (self, key, &failed);
        if (!t || !json_object_size (t)) {
            json_decref (t);
            continue;
        }
        for (size_t c = 0; c < 8; c++)
            s_csv_field (f, sched_jstr (t, c == 0 ? "id" : fixed[c], ""), c == 0);
        json_t *a = json_loads (sched_jstr (t, "answers", "{}"), 0, NULL);
        json_array_foreach (q, i, item) {
            json_t *v = json_object_get (a, json_string_value (json_object_get (item, "field")));
            char num[32];
            const char *s = "";
            if (json_is_string (v))
                s = json_string_value (v);
            else if (json_is_integer (v))
                s = s_i64 (num, json_integer_value (v));
            else if (json_is_boolean (v))
                s = json_is_true (v) ? "true" : "false";
            s_csv_field (f, s, false);
        }
        json_decref (a);
        fputs ("\r\n", f);
        json_decref (t);
        rows++;
    }
    fclose (f);
    bool more = r->elements == (size_t) limit;
    freeReplyObject (r);
    json_decref (q);
    json_decref (rec);
    if (failed) {
        free (text);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    *reply = json_pack ("{s:s, s:s, s:I, s:s%}", "campaign_id", cid, "content_type", "text/csv",
                        "rows", (json_int_t) rows, "csv", text, size);
    json_object_set_new (*reply, "next_offset",
                         more ? json_integer (offset + limit) : json_null ());
    free (text);
    gl_info ("scheduler: campaign %s exported (%zu rows)", cid, rows);
    return 200;
}

//  --------------------------------------------------------------------------------------------
//  Leases that ran out, and the callback list

//  One expired lease: put the target back in its queue.
static int
s_expire (scheduler_t *self, const char *member, int64_t now)
{
    char cid[64] = "", tid[64] = "", aid[64] = "";
    if (sscanf (member, "%63[^:]:%63[^:]:%63s", cid, tid, aid) != 3) {
        redisReply *r = gl_redis_cmd (self->redis, "ZREM %s %s", SCHED_PREFIX "leases", member);
        if (r)
            freeReplyObject (r);
        return r ? 0 : -1;
    }
    char tkey[200], ckey[128], buf[24], b2[24];
    snprintf (tkey, sizeof tkey, SCHED_PREFIX "target:%s:%s", cid, tid);
    snprintf (ckey, sizeof ckey, SCHED_PREFIX "campaign:%s", cid);
    bool failed = false;
    json_t *t = sched_hgetall (self, tkey, &failed);
    if (failed) {
        json_decref (t);
        return -1;
    }
    sched_write_t *w = sched_write_new ();
    sched_write_zhas (w, SCHED_PREFIX "leases", member);
    sched_write_cmdv (w, "ZREM", SCHED_PREFIX "leases", member, NULL);
    bool open = strcmp (sched_jstr (t, "status", ""), "leased") == 0
                && strcmp (sched_jstr (t, "attempt_id", ""), aid) == 0;
    if (open) {
        char qk[160];
        sched_write_ver (w, tkey, sched_jint (t, "version", 0));
        s_qkey (qk, sizeof qk, cid, sched_jstr (t, "language", "und"),
                (int) sched_jint (t, "priority", 2));
        //  The attempt did not count: nobody recorded a call.
        sched_write_cmdv (w, "HSET", tkey, "status", "queued", "attempt_id", "", "next_at",
                          s_i64 (buf, now), "version",
                          s_i64 (b2, sched_jint (t, "version", 0) + 1), NULL);
        sched_write_cmdv (w, "HINCRBY", tkey, "attempts", "-1", NULL);
        sched_write_cmdv (w, "ZADD", qk, s_i64 (buf, now), tid, NULL);
        sched_write_cmdv (w, "HDEL", SCHED_PREFIX "attempts", aid, NULL);
        sched_write_cmdv (w, "HINCRBY", ckey, "leased", "-1", NULL);
        sched_write_cmdv (w, "HINCRBY", ckey, "queued", "1", NULL);
        sched_write_cmdv (w, "HINCRBY", ckey, "o:lease_expired", "1", NULL);
        gl_event_t *ev = s_event ("outbound.lease_expired", cid);
        json_object_set_new (ev->data, "target_id", json_string (tid));
        json_object_set_new (ev->data, "attempt_id", json_string (aid));
        json_object_set_new (ev->data, "agent_id", json_string (sched_jstr (t, "agent_id", "")));
        sched_write_event (w, &ev);
    }
    sched_write_rc_t rc = sched_write_run (self, w);
    sched_write_destroy (&w);
    json_decref (t);
    if (rc == SCHED_WRITE_OK && open) {
        self->leases_expired++;
        gl_metric_inc (self->m_leases, 1);
        gl_info ("scheduler: lease of attempt %s ran out; target %s back on the list", aid, tid);
    }
    return rc == SCHED_WRITE_ERROR ? -1 : 0;
}

int
campaigns_tick (gl_service_t *svc, void *arg)
{
    (void) svc;
    scheduler_t *self = arg;
    int64_t now = gl_now_ms ();
    redisReply *r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 100",
                                  SCHED_PREFIX "leases", (long long) now);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return 0;
    }
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING
            && s_expire (self, r->element[i]->str, now) != 0)
            break;
    freeReplyObject (r);
    return 0;
}

//  Phone numbers of targets that came without one (no-shows, abandoned calls), asked from
//  intake (intake.delivery_details, audited there) on a timer. Never from a request handler:
//  intake waits on its loop thread for the answer to a forwarded request, so a handler asking
//  intake back would stall both until a timeout. A lookup that fails for want of intake is
//  tried again a minute later (business time).
static void
s_resolved (scheduler_t *self, const char *member, const char *cid, const char *tkey,
            const char *phone, const char *status)
{
    redisReply *r;
    if (phone)
        r = gl_redis_cmd (self->redis, "HSET %s phone %s phone_status %s",
                          tkey, phone, status);
    else
        r = gl_redis_cmd (self->redis, "HSET %s phone_status %s", tkey, status);
    if (r)
        freeReplyObject (r);
    r = gl_redis_cmd (self->redis, "ZREM %s %s", SCHED_PREFIX "nophone", member);
    long long removed = 0;
    if (r && gl_redis_reply_int (r, &removed) == 0 && removed) {
        freeReplyObject (r);
        r = gl_redis_cmd (self->redis, "HINCRBY %scampaign:%s phones_pending -1", SCHED_PREFIX,
                          cid);
    }
    if (r)
        freeReplyObject (r);
}

int
campaigns_resolve_tick (gl_service_t *svc, void *arg)
{
    scheduler_t *self = arg;
    if (!gl_service_client (svc, "intake"))
        return 0;               //  no intake configured: the agent sees phone_status "pending"
    int64_t now = gl_now_ms ();
    redisReply *r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 10",
                                  SCHED_PREFIX "nophone", (long long) now);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return 0;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const char *member = r->element[i]->str;
        char cid[64] = "", tid[64] = "", tkey[200];
        if (r->element[i]->type != REDIS_REPLY_STRING
            || sscanf (member, "%63[^:]:%63s", cid, tid) != 2)
            continue;
        snprintf (tkey, sizeof tkey, SCHED_PREFIX "target:%s:%s", cid, tid);
        bool failed = false;
        json_t *t = sched_hgetall (self, tkey, &failed);
        const char *ref = sched_jstr (t, "person_ref", "");
        if (failed || !*ref) {
            if (!failed)
                s_resolved (self, member, cid, tkey, NULL, "unknown");
            json_decref (t);
            continue;
        }
        json_t *q = json_pack ("{s:s, s:s, s:s}", "person_ref", ref, "purpose", "callback",
                               "requester", "scheduler");
        gl_reply_t reply = { 0 };
        int rc = gl_service_call (svc, "intake", "intake.delivery_details", NULL, q, &reply);
        json_decref (q);
        json_decref (t);
        const char *phone = json_string_value (json_object_get (reply.body, "phone"));
        bool stop = false;
        if (rc == 0 && reply.status == 200)
            s_resolved (self, member, cid, tkey, phone, phone ? "from_intake" : "unknown");
        else if (rc == 0 && (reply.status == 404 || reply.status == 400))
            s_resolved (self, member, cid, tkey, NULL, "unknown");
        else {
            //  intake away or busy: later, and not the others now
            redisReply *z = gl_redis_cmd (self->redis, "ZADD %s XX %lld %s",
                                          SCHED_PREFIX "nophone", (long long) (now + 60000),
                                          member);
            if (z)
                freeReplyObject (z);
            stop = true;
        }
        gl_reply_clear (&reply);
        if (stop)
            break;
    }
    freeReplyObject (r);
    return 0;
}

//  call.abandoned / call.not_reached (callback_requested) -> a target on the callback list, in
//  the same atomic step as the subscriber's cursor.
int
campaigns_on_event (void *arg, const gl_event_t *ev, gl_tx_t *tx)
{
    scheduler_t *self = arg;
    bool abandoned = strcmp (ev->type, "call.abandoned") == 0;
    bool asked = strcmp (ev->type, "call.not_reached") == 0
                 && strcmp (gl_event_str (ev, "reason", ""), "callback_requested") == 0;
    if (!abandoned && !asked)
        return 0;
    const char *call_id = gl_event_str (ev, "call_id", "");
    if (!gl_id_valid (call_id))
        return 0;               //  not a call we can name: nothing to do
    int64_t at = gl_event_int (ev, "at", ev->ts);
    const char *lang = gl_event_str (ev, "language", "");
    if (!sched_lang_valid (lang))
        lang = "und";
    //  Remembered for the "abandoned_today" query either way.
    if (abandoned) {
        gl_tx_cmdf (tx, "ZADD %s %lld %s", SCHED_PREFIX "abandoned", (long long) at, call_id);
        gl_tx_cmdf (tx, "HSET %s %s %s", SCHED_PREFIX "abandoned:lang", call_id, lang);
    }
    if (!self->config->callbacks)
        return 0;
    //  Short abandons (the caller hung up at once) are not called back.
    if (abandoned && gl_event_int (ev, "wait_ms", 0) < self->config->callback_min_wait_ms)
        return 0;
    char tid[GL_ID_LEN + 1], dedup[33], key[160], q[160], langs[160], base[8];
    gl_id_new (tid);
    sched_person_hash (self, call_id, dedup);
    //  The same call twice (an event delivered again after an outbox sweep adopted it): one
    //  target. One replica applies events, one at a time, so reading first is enough.
    redisReply *seen = gl_redis_cmd (self->redis, "HEXISTS %stkey:%s %s", SCHED_PREFIX,
                                     S_CALLBACKS, dedup);
    long long exists = 0;
    if (!seen || gl_redis_reply_int (seen, &exists) != 0) {
        if (seen)
            freeReplyObject (seen);
        return -1;              //  Redis away: retried later
    }
    freeReplyObject (seen);
    if (exists)
        return 0;
    int prio = asked ? 1 : 2;
    const char *cid = S_CALLBACKS;
    snprintf (key, sizeof key, SCHED_PREFIX "target:%s:%s", cid, tid);
    s_qkey (q, sizeof q, cid, lang, prio);
    s_base_lang (lang, base);
    snprintf (langs, sizeof langs, SCHED_PREFIX "qlangs:%s", cid);
    int64_t now = gl_now_ms ();
    gl_tx_cmdf (tx, "HSET %s id %s campaign_id %s case_no %s phone %s language %s priority %d "
                    "status queued attempts 0 next_at %lld source %s person_ref %s version 1",
                key, tid, cid, "", "", lang, prio, (long long) now,
                asked ? "callback_requested" : "abandoned_call", call_id);
    gl_tx_cmdf (tx, "ZADD %s %lld %s", q, (long long) now, tid);
    gl_tx_cmdf (tx, "SADD %s %s", langs, base);
    gl_tx_cmdf (tx, "ZADD %s%s:%s %lld %s", SCHED_PREFIX, "targets", cid, (long long) now, tid);
    gl_tx_cmdf (tx, "HSET %stkey:%s %s %s", SCHED_PREFIX, cid, dedup, tid);
    gl_tx_cmdf (tx, "HINCRBY %scampaign:%s targets 1", SCHED_PREFIX, cid);
    gl_tx_cmdf (tx, "HINCRBY %scampaign:%s queued 1", SCHED_PREFIX, cid);
    gl_tx_cmdf (tx, "HINCRBY %scampaign:%s version 1", SCHED_PREFIX, cid);
    //  The caller's number stays with intake: looked up in the background.
    gl_tx_cmdf (tx, "HSET %s phone_status pending", key);
    gl_tx_cmdf (tx, "ZADD %snophone %lld %s:%s", SCHED_PREFIX, (long long) now, cid, tid);
    gl_tx_cmdf (tx, "HINCRBY %scampaign:%s phones_pending 1", SCHED_PREFIX, cid);
    gl_event_t *out = s_event ("outbound.target_added", cid);
    json_object_set_new (out->data, "target_id", json_string (tid));
    json_object_set_new (out->data, "source", json_string (asked ? "callback_requested"
                                                                 : "abandoned_call"));
    json_object_set_new (out->data, "call_id", json_string (call_id));
    json_object_set_new (out->data, "priority", json_string (s_prio_name (prio)));
    int rc = gl_outbox_stage (self->outbox, tx, out, 0);
    gl_event_destroy (&out);
    return rc == 0 ? 0 : -1;
}

//  The standing callback list (created once) and the subscriber that feeds it.
int
campaigns_start (scheduler_t *self, char *err, size_t errlen)
{
    const sched_config_t *c = self->config;
    char hours[48], tz[24], buf[24], ca[24], cm[24], cs[24], co[24], cc[24], cd[24], ctz[24];
    snprintf (hours, sizeof hours, "%02d:%02d-%02d:%02d", c->callback_hours.open / 60,
              c->callback_hours.open % 60, c->callback_hours.close / 60,
              c->callback_hours.close % 60);
    int off = c->callback_tz_offset_min < 0 ? -c->callback_tz_offset_min
                                            : c->callback_tz_offset_min;
    snprintf (tz, sizeof tz, "%c%02d:%02d", c->callback_tz_offset_min < 0 ? '-' : '+', off / 60,
              off % 60);
    //  Settings follow the configuration at every start; counters and version are kept.
    redisReply *r = gl_redis_cmd (
        self->redis,
        "HSET %s id %s name %s kind callback script %s questionnaire [] status %s "
        "calling_hours %s open %s close %s days %s tz %s timezone %s max_attempts %s "
        "spacing_ms %s priority normal",
        SCHED_PREFIX "campaign:" S_CALLBACKS, S_CALLBACKS, "Callbacks (abandoned calls)",
        "Introduce yourself as the helpline returning the person's call; verify the caller "
        "before discussing the case.",
        c->callbacks ? "active" : "paused", hours, s_i64 (co, c->callback_hours.open),
        s_i64 (cc, c->callback_hours.close), s_i64 (cd, c->callback_days),
        s_i64 (ctz, c->callback_tz_offset_min), tz, s_i64 (cm, c->callback_max_attempts),
        s_i64 (cs, c->callback_spacing_ms));
    (void) ca;
    (void) buf;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf (err, errlen, "redis: cannot write the callback list");
        if (r)
            freeReplyObject (r);
        return -1;
    }
    freeReplyObject (r);
    r = gl_redis_cmd (self->redis, "HSETNX %s created_at %lld",
                      SCHED_PREFIX "campaign:" S_CALLBACKS, (long long) gl_now_ms ());
    if (r)
        freeReplyObject (r);
    self->sub = gl_service_subscribe (self->svc, NULL, "call.abandoned,call.not_reached", 1,
                                      campaigns_on_event, self, err, errlen);
    return self->sub ? 0 : -1;
}
