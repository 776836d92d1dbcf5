/*  requests — the service object, its bus handlers and the helpers every handler uses to read
    outside input.

    Two kinds of requests arrive:
      - scheduler.book from intake (docs/events.md "scheduler.book"): a plain body;
      - everything else forwarded by intake's HTTP API (services/intake/forward.h): the body
        {caller:{user_id, roles, units}, params, query, body}. intake has authenticated the caller
        and checked the route's roles; each handler checks again what the caller may do.
    Every field from outside is checked here and refused with 400 naming it.
*/
#include "scheduler.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SLOT_LIMIT_DEFAULT 200
#define S_SLOT_LIMIT_MAX     2000

//  --------------------------------------------------------------------------------------------
//  Input helpers

static bool
s_charset_ok (const char *s, const char *charset)
{
    if (!charset)
        return true;
    if (strcmp (charset, "code") == 0)
        return sched_code_valid (s, 64);
    if (strcmp (charset, "id") == 0)
        return gl_id_valid (s);
    if (strcmp (charset, "lang") == 0)
        return sched_lang_valid (s);
    if (strcmp (charset, "case") == 0) {
        for (const char *c = s; *c; c++)
            if (!isalnum ((unsigned char) *c) && *c != '-')
                return false;
        return *s != 0;
    }
    return true;
}

int
sched_str_field (json_t *obj, const char *name, bool required, size_t max, const char *charset,
                 const char **out, gl_rep_error_t *err)
{
    *out = NULL;
    json_t *v = obj ? json_object_get (obj, name) : NULL;
    if (!v || json_is_null (v)) {
        if (required)
            return gl_rep_error (err, 400, "missing_field", name, "%s is required", name);
        return 0;
    }
    if (!json_is_string (v))
        return gl_rep_error (err, 400, "invalid_field", name, "%s must be a string", name);
    const char *s = json_string_value (v);
    size_t len = json_string_length (v);
    if (len == 0 && required)
        return gl_rep_error (err, 400, "missing_field", name, "%s is required", name);
    if (len > max || strlen (s) != len)
        return gl_rep_error (err, 400, "invalid_field", name, "%s is longer than %zu bytes", name,
                             max);
    if (len && !s_charset_ok (s, charset))
        return gl_rep_error (err, 400, "invalid_field", name, "%s is not a valid %s", name,
                             charset);
    *out = len ? s : NULL;
    return 0;
}

int
sched_int_field (json_t *obj, const char *name, bool required, int64_t min, int64_t max,
                 int64_t *out, bool *present, gl_rep_error_t *err)
{
    json_t *v = obj ? json_object_get (obj, name) : NULL;
    if (present)
        *present = false;
    if (!v || json_is_null (v)) {
        if (required)
            return gl_rep_error (err, 400, "missing_field", name, "%s is required", name);
        return 0;
    }
    if (!json_is_integer (v) || json_integer_value (v) < min || json_integer_value (v) > max)
        return gl_rep_error (err, 400, "invalid_field", name, "%s must be an integer in %lld..%lld",
                             name, (long long) min, (long long) max);
    *out = json_integer_value (v);
    if (present)
        *present = true;
    return 0;
}

int
sched_query_int (json_t *query, const char *name, int64_t def, int64_t min, int64_t max,
                 int64_t *out, gl_rep_error_t *err)
{
    *out = def;
    json_t *v = query ? json_object_get (query, name) : NULL;
    if (!v)
        return 0;
    const char *s = json_string_value (v);
    char *end = NULL;
    long long n = s && *s && (isdigit ((unsigned char) *s) || *s == '-') ? strtoll (s, &end, 10)
                                                                         : 0;
    if (!s || !end || *end || n < min || n > max)
        return gl_rep_error (err, 400, "invalid_parameter", name,
                             "%s must be an integer in %lld..%lld", name, (long long) min,
                             (long long) max);
    *out = n;
    return 0;
}

int
sched_only_fields (json_t *obj, const char *const *allowed, gl_rep_error_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach (obj, key, v) {
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = strcmp (key, allowed[i]) == 0;
        if (!ok) {
            char name[GL_REQ_FIELD_MAX + 1];
            //  The name is outside input: keep it printable and short.
            size_t n = 0;
            for (const char *c = key; *c && n < sizeof name - 1; c++)
                name[n++] = isprint ((unsigned char) *c) ? *c : '?';
            name[n] = 0;
            return gl_rep_error (err, 400, "unknown_field", name, "unknown field");
        }
    }
    return 0;
}

int
sched_forwarded (const gl_rep_request_t *req, sched_caller_t *caller, json_t **params,
                 json_t **query, json_t **body, gl_rep_error_t *err)
{
    memset (caller, 0, sizeof *caller);
    json_t *c = json_object_get (req->body, "caller");
    json_t *user = c ? json_object_get (c, "user_id") : NULL;
    json_t *roles = c ? json_object_get (c, "roles") : NULL;
    if (!json_is_object (c) || !json_is_string (user) || !json_is_array (roles)
        || !gl_id_valid (json_string_value (user)))
        return gl_rep_error (err, 400, "bad_request", "caller",
                             "caller {user_id (32 hex digits), roles, units} is required");
    snprintf (caller->user_id, sizeof caller->user_id, "%s", json_string_value (user));
    size_t i;
    json_t *role;
    json_array_foreach (roles, i, role) {
        const char *r = json_string_value (role);
        if (!r)
            continue;
        caller->agent |= strcmp (r, "agent") == 0;
        caller->supervisor |= strcmp (r, "supervisor") == 0;
        caller->protection |= strcmp (r, "protection") == 0;
        caller->admin |= strcmp (r, "admin") == 0;
        caller->api_client |= strcmp (r, "api_client") == 0;
    }
    static json_t *empty = NULL;
    if (!empty)
        empty = json_object ();
    *params = json_object_get (req->body, "params");
    *query = json_object_get (req->body, "query");
    *body = json_object_get (req->body, "body");
    if (*params && !json_is_object (*params))
        return gl_rep_error (err, 400, "bad_request", "params", "params must be a map");
    if (*query && !json_is_object (*query))
        return gl_rep_error (err, 400, "bad_request", "query", "query must be a map");
    if (*body && !json_is_object (*body))
        return gl_rep_error (err, 400, "bad_request", "body", "body must be a map");
    if (!*params)
        *params = empty;
    if (!*query)
        *query = empty;
    if (!*body)
        *body = empty;
    return 0;
}

int
sched_only_params (json_t *query, const char *const *allowed, gl_rep_error_t *err)
{
    int rc = sched_only_fields (query, allowed, err);
    if (rc)
        snprintf (err->code, sizeof err->code, "unknown_parameter");
    return rc;
}

json_t *
sched_hgetall (scheduler_t *self, const char *key, bool *failed)
{
    redisReply *r = gl_redis_cmd (self->redis, "HGETALL %s", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        *failed = true;
        return NULL;
    }
    json_t *obj = json_object ();
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING
            && r->element[i + 1]->type == REDIS_REPLY_STRING)
            json_object_set_new (obj, r->element[i]->str,
                                 json_stringn (r->element[i + 1]->str, r->element[i + 1]->len));
    freeReplyObject (r);
    return obj;
}

int64_t
sched_jint (json_t *obj, const char *field, int64_t def)
{
    json_t *v = obj ? json_object_get (obj, field) : NULL;
    if (json_is_integer (v))
        return json_integer_value (v);
    const char *s = json_string_value (v);
    if (!s || !*s)
        return def;
    return strtoll (s, NULL, 10);
}

const char *
sched_jstr (json_t *obj, const char *field, const char *def)
{
    const char *s = obj ? json_string_value (json_object_get (obj, field)) : NULL;
    return s ? s : def;
}

void
sched_person_hash (scheduler_t *self, const char *value, char out[33])
{
    unsigned char digest[16];
    crypto_generichash (digest, sizeof digest, (const unsigned char *) value, strlen (value),
                        self->hash_key, sizeof self->hash_key);
    for (int i = 0; i < 16; i++)
        snprintf (out + 2 * i, 3, "%02x", digest[i]);
}

//  --------------------------------------------------------------------------------------------
//  Centres and free slots

static json_t *
s_centre_json (const sched_config_t *config, const sched_centre_t *c)
{
    static const char *days[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };
    json_t *weekend = json_array (), *hours = json_object (), *langs = json_array ();
    json_t *services = json_array (), *holidays = json_array (), *specials = json_array ();
    for (int d = 0; d < 7; d++) {
        if (c->weekend & (1u << d))
            json_array_append_new (weekend, json_string (days[d]));
        else if (c->hours[d].close > c->hours[d].open) {
            char h[48];
            snprintf (h, sizeof h, "%02d:%02d-%02d:%02d", c->hours[d].open / 60,
                      c->hours[d].open % 60, c->hours[d].close / 60, c->hours[d].close % 60);
            json_object_set_new (hours, days[d], json_string (h));
        }
    }
    for (size_t i = 0; i < c->language_count; i++)
        json_array_append_new (langs, json_string (c->languages[i]));
    for (size_t i = 0; i < c->service_count; i++) {
        const sched_service_t *s = sched_config_service (config, c->services[i]);
        if (s)
            json_array_append_new (
                services, json_pack ("{s:s, s:s, s:i, s:i, s:I, s:I}", "code", s->code, "name",
                                     s->name, "duration_min", s->duration_min, "capacity",
                                     sched_config_capacity (c, s), "lead_ms",
                                     (json_int_t) s->lead_ms, "horizon_ms",
                                     (json_int_t) s->horizon_ms));
    }
    for (size_t i = 0; i < c->holiday_count; i++) {
        int y, m, d;
        char date[48];
        sched_civil_from_days (c->holidays[i], &y, &m, &d);
        snprintf (date, sizeof date, "%04d-%02d-%02d", y % 10000, m, d);
        json_array_append_new (holidays, json_string (date));
    }
    for (size_t i = 0; i < c->special_count; i++) {
        const sched_special_t *s = &c->specials[i];
        int y1, m1, d1, y2, m2, d2;
        char from[16], to[16], h[48];
        sched_civil_from_days (s->from_day, &y1, &m1, &d1);
        sched_civil_from_days (s->to_day, &y2, &m2, &d2);
        snprintf (from, sizeof from, "%04d-%02d-%02d", y1 % 10000, m1, d1);
        snprintf (to, sizeof to, "%04d-%02d-%02d", y2 % 10000, m2, d2);
        snprintf (h, sizeof h, "%02d:%02d-%02d:%02d", s->hours.open / 60, s->hours.open % 60,
                  s->hours.close / 60, s->hours.close % 60);
        json_array_append_new (specials, json_pack ("{s:s, s:s, s:s, s:s}", "code", s->code,
                                                    "from", from, "to", to, "hours",
                                                    s->closed ? "closed" : h));
    }
    char tz[24];
    int off = c->tz_offset_min < 0 ? -c->tz_offset_min : c->tz_offset_min;
    snprintf (tz, sizeof tz, "%c%02d:%02d", c->tz_offset_min < 0 ? '-' : '+', off / 60, off % 60);
    return json_pack ("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "code", c->code, "name",
                      c->name, "address", c->address, "timezone", tz, "weekend", weekend, "hours",
                      hours, "languages", langs, "services", services, "holidays", holidays,
                      "special_periods", specials);
}

//  GET /api/v1/centres
int
requests_centres (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    static const char *const none[] = { NULL };
    if ((rc = sched_only_params (query, none, err)))
        return rc;
    json_t *items = json_array ();
    for (size_t i = 0; i < self->config->centre_count; i++)
        json_array_append_new (items, s_centre_json (self->config, &self->config->centres[i]));
    *reply = json_pack ("{s:o}", "items", items);
    return 200;
}

//  GET /api/v1/slots?service=&centre=&from=&to=&language=&limit=
int
requests_slots (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    sched_caller_t caller;
    json_t *params, *query, *body;
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.agent && !caller.supervisor && !caller.admin && !caller.api_client)
        return gl_rep_error (err, 403, "forbidden", "", "this role may not search slots");
    static const char *const allowed[] = { "service", "centre", "from", "to", "language",
                                           "limit", NULL };
    const char *service_code = NULL, *centre_code = NULL, *language = NULL;
    if ((rc = sched_only_params (query, allowed, err))
        || (rc = sched_str_field (query, "service", true, SCHED_CODE_MAX, "code", &service_code,
                                  err))
        || (rc = sched_str_field (query, "centre", false, SCHED_CODE_MAX, "code", &centre_code,
                                  err))
        || (rc = sched_str_field (query, "language", false, 16, "lang", &language, err)))
        return rc;
    const sched_service_t *service = sched_config_service (self->config, service_code);
    if (!service)
        return gl_rep_error (err, 404, "unknown_service", "service", "no such service");
    const sched_centre_t *centres[SCHED_CENTRES_MAX];
    size_t count = 0;
    if (centre_code) {
        centres[0] = sched_config_centre (self->config, centre_code);
        if (!centres[0])
            return gl_rep_error (err, 404, "unknown_centre", "centre", "no such centre");
        if (!sched_config_capacity (centres[0], service))
            return gl_rep_error (err, 404, "service_not_offered", "service",
                                 "the centre does not offer this service");
        count = 1;
    }
    else
        for (size_t i = 0; i < self->config->centre_count; i++)
            if (sched_config_capacity (&self->config->centres[i], service))
                centres[count++] = &self->config->centres[i];
    int64_t now = gl_now_ms (), from, to, limit;
    if ((rc = sched_query_int (query, "from", now, 0, INT64_C (253402300799000), &from, err))
        || (rc = sched_query_int (query, "to", from + 14 * SCHED_DAY_MS, 0,
                                  INT64_C (253402300799000), &to, err))
        || (rc = sched_query_int (query, "limit", (int64_t) self->slot_limit, 1,
                                  S_SLOT_LIMIT_MAX, &limit, err)))
        return rc;
    if (to <= from || to - from > SCHED_RANGE_DAYS * SCHED_DAY_MS)
        return gl_rep_error (err, 400, "invalid_parameter", "to",
                             "to must be after from, at most %d days later", SCHED_RANGE_DAYS);
    bool failed = false;
    int64_t t0 = gl_mono_us ();
    *reply = sched_slots_free (self, service, centres, count, from, to, language, (size_t) limit,
                               &failed);
    gl_metric_observe_us (self->m_slots_us, (uint64_t) (gl_mono_us () - t0));
    if (failed || !*reply)
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    return 200;
}

//  --------------------------------------------------------------------------------------------
//  The service

//  scheduler.person_export (export.c): a person's appointments and campaign targets, for
//  intake's person export (docs/events.md).
gl_rep_fn export_person;

int
requests_register (scheduler_t *self)
{
    struct {
        const char *op;
        gl_rep_fn *fn;
    } ops[] = {
        { "scheduler.book", appointments_book },
        { "scheduler.slots", requests_slots },
        { "scheduler.centres", requests_centres },
        { "scheduler.appointments", appointments_list },
        { "scheduler.appointment", appointments_get },
        { "scheduler.search", appointments_search },
        { "scheduler.move", appointments_move },
        { "scheduler.cancel", appointments_cancel },
        { "scheduler.attended", appointments_attended },
        { "scheduler.no_show", appointments_no_show },
        { "scheduler.campaign_create", campaigns_create },
        { "scheduler.campaigns", campaigns_list },
        { "scheduler.campaign", campaigns_get },
        { "scheduler.campaign_targets", campaigns_targets },
        { "scheduler.next", campaigns_next },
        { "scheduler.outcome", campaigns_outcome },
        { "scheduler.progress", campaigns_progress },
        { "scheduler.export", campaigns_export },
        { "scheduler.campaign_status", campaigns_status },
        { "scheduler.person_export", export_person },
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (gl_service_on (self->svc, ops[i].op, ops[i].fn, self) != 0)
            return -1;
    return 0;
}

scheduler_t *
scheduler_new (gl_service_t *svc, char *err, size_t errlen)
{
    gl_config_t *config = gl_service_config (svc);
    const char *path = gl_config_str (config, "GL_SCHEDULER_CONFIG", "config/scheduler.conf");
    sched_config_t *sc = sched_config_load (path, err, errlen);
    if (!sc)
        return NULL;
    scheduler_t *self = calloc (1, sizeof *self);
    if (!self) {
        sched_config_destroy (&sc);
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->svc = svc;
    self->config = sc;
    self->redis = gl_service_redis (svc);
    self->outbox = gl_service_outbox (svc);
    self->rep = gl_service_rep (svc);
    self->lease_ms = gl_config_int (config, "GL_SCHEDULER_LEASE_MS", 600000, 10000, 86400000);
    self->slot_limit = (size_t) gl_config_int (config, "GL_SCHEDULER_SLOT_LIMIT",
                                               S_SLOT_LIMIT_DEFAULT, 1, S_SLOT_LIMIT_MAX);
    self->csv_max_rows = (size_t) gl_config_int (config, "GL_SCHEDULER_CSV_MAX_ROWS", 5000, 1,
                                                 100000);
    self->reminder_batch = gl_config_int (config, "GL_SCHEDULER_REMINDER_BATCH", 200, 1, 10000);
    self->retain_ms = gl_config_int (config, "GL_SCHEDULER_RETAIN_DAYS", 365, 1, 3650)
                      * SCHED_DAY_MS;
    int64_t tick_ms = gl_config_int (config, "GL_SCHEDULER_TICK_MS", 1000, 10, 60000);
    //  Phone lookups at intake are small; while one waits, a request intake forwards here waits
    //  too (intake's loop blocks on it), so keep the wait short unless told otherwise.
    if (!gl_config_str (config, "GL_INTAKE_TIMEOUT_MS", NULL))
        gl_config_set (config, "GL_INTAKE_TIMEOUT_MS", "500");
    //  The key of the hash that turns case numbers and phones into key names. Deployments set
    //  it (64 hex digits); without it a fixed development key is used, and said so.
    const char *hk = gl_config_str (config, "GL_SCHEDULER_HASH_KEY", "");
    if (*hk) {
        size_t len = 0;
        if (strlen (hk) != 64
            || sodium_hex2bin (self->hash_key, sizeof self->hash_key, hk, 64, NULL, &len, NULL)
                   != 0
            || len != 32) {
            snprintf (err, errlen, "GL_SCHEDULER_HASH_KEY must be 64 hex digits");
            scheduler_destroy (&self);
            return NULL;
        }
    }
    else {
        gl_warn ("scheduler: GL_SCHEDULER_HASH_KEY is not set; using the development key");
        crypto_generichash (self->hash_key, sizeof self->hash_key,
                            (const unsigned char *) "greenline-scheduler-dev", 23, NULL, 0);
    }
    if (gl_config_error (config)) {
        snprintf (err, errlen, "%s", gl_config_error (config));
        scheduler_destroy (&self);
        return NULL;
    }
    self->m_booked = gl_metrics_counter ("greenline_scheduler_bookings_total",
                                         "Appointments booked", NULL);
    self->m_refused = gl_metrics_counter ("greenline_scheduler_booking_refusals_total",
                                          "Bookings refused (slot full, overlap, rules)", NULL);
    self->m_reminders = gl_metrics_counter ("greenline_scheduler_reminders_sent_total",
                                            "Reminders requested from notifier", NULL);
    self->m_leases = gl_metrics_counter ("greenline_scheduler_leases_expired_total",
                                         "Outbound targets whose agent lease ran out", NULL);
    self->m_outcomes = gl_metrics_counter ("greenline_scheduler_outcomes_total",
                                           "Outbound call outcomes recorded", NULL);
    self->m_slots_us = gl_metrics_histogram ("greenline_scheduler_slot_query_seconds",
                                             "Free-slot searches, time in the handler", NULL);
    if (requests_register (self) != 0 || campaigns_start (self, err, errlen) != 0
        || gl_service_every (svc, tick_ms, reminders_tick, self) != 0
        || gl_service_every (svc, tick_ms, campaigns_tick, self) != 0
        || gl_service_every (svc, tick_ms, campaigns_resolve_tick, self) != 0
        || gl_service_every (svc, tick_ms, retention_tick, self) != 0) {
        if (!*err)
            snprintf (err, errlen, "cannot register handlers");
        scheduler_destroy (&self);
        return NULL;
    }
    gl_info ("scheduler: %zu centres, %zu services, %zu reminders, callbacks %s", sc->centre_count,
             sc->service_count, sc->reminder_count, sc->callbacks ? "on" : "off");
    return self;
}

void
scheduler_destroy (scheduler_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    scheduler_t *self = *self_p;
    sched_config_destroy (&self->config);
    sodium_memzero (self->hash_key, sizeof self->hash_key);
    free (self);
    *self_p = NULL;
}
