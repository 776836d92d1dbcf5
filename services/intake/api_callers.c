/*  api_callers — the HTTP side of callers (docs/api/callers.md): the extract's import and push,
    verification, reading a case, contact-detail change requests (their store, export and
    outcome), abusive flags.

    Change request lifecycle, each step one Lua script (two replicas never both take a step):
        pending --export--> sent --outcome--> applied | rejected
    Applying writes the new details into the case (as of the day it was applied), under the same
    rule as the extract: a field dated later by the registration system is not turned back.
*/
#include "audit.h"
#include "callers.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_REASON_CODES  "abusive_language, threats, harassment, prank, other"

static const char *const s_flag_reasons[]
    = { "abusive_language", "threats", "harassment", "prank", "other", NULL };
static const char *const s_outcomes[] = { "applied", "rejected", NULL };

//  Every script that makes a change also stores its event in the outbox (callers.h).

//  KEYS chg:<id>, chg_case:<ref>, chg_pending, outbox. ARGV id, ref, case_no, fields, values, by,
//  ctx, now, event id, event entry.
static gl_redis_script_t s_chg_create_lua = { .source =
    "redis.call('HSET', KEYS[1], 'id', ARGV[1], 'ref', ARGV[2], 'case_no', ARGV[3],\n"
    "           'status', 'pending', 'fields', ARGV[4], 'values', ARGV[5], 'by', ARGV[6],\n"
    "           'ctx', ARGV[7], 'created', ARGV[8])\n"
    "redis.call('ZADD', KEYS[2], ARGV[8], ARGV[1])\n"
    "redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])\n"
    "redis.call('HSET', KEYS[4], ARGV[9], ARGV[10])\n"
    "return 1\n" };

//  KEYS chg_pending, chg_sent, outbox. ARGV now, key prefix of a request, then for each request:
//  id, event id, event entry. Each request still pending becomes sent; returns their ids.
static gl_redis_script_t s_chg_send_lua = { .source =
    "local taken = {}\n"
    "for a = 3, #ARGV, 3 do\n"
    "  local id = ARGV[a]\n"
    "  if redis.call('HGET', ARGV[2] .. id, 'status') == 'pending' then\n"
    "    redis.call('HSET', ARGV[2] .. id, 'status', 'sent', 'sent', ARGV[1])\n"
    "    redis.call('ZREM', KEYS[1], id)\n"
    "    redis.call('ZADD', KEYS[2], ARGV[1], id)\n"
    "    redis.call('HSET', KEYS[3], ARGV[a + 1], ARGV[a + 2])\n"
    "    taken[#taken + 1] = id\n"
    "  end\n"
    "end\n"
    "return taken\n" };

//  KEYS chg:<id>, chg_sent, case:<ref>, outbox. ARGV status, now, reason, today, event id, event
//  entry, n, n pairs of field and value. Returns {1, status} when taken, {0, current status or
//  ""} when the request is not sent.
static gl_redis_script_t s_chg_outcome_lua = { .source =
    "local cur = redis.call('HGET', KEYS[1], 'status')\n"
    "if not cur then return {0, ''} end\n"
    "if cur ~= 'sent' then return {0, cur} end\n"
    "redis.call('HSET', KEYS[1], 'status', ARGV[1], 'done', ARGV[2], 'reason', ARGV[3])\n"
    "redis.call('ZREM', KEYS[2], redis.call('HGET', KEYS[1], 'id'))\n"
    "if ARGV[1] == 'applied' and redis.call('EXISTS', KEYS[3]) == 1 then\n"
    "  local a = 8\n"
    "  for i = 1, tonumber(ARGV[7]) do\n"
    "    local f, v = ARGV[a], ARGV[a + 1]\n"
    "    a = a + 2\n"
    "    local held = redis.call('HGET', KEYS[3], f .. ':as_of')\n"
    "    if not held or held <= ARGV[4] then\n"
    "      redis.call('HSET', KEYS[3], f, v, f .. ':as_of', ARGV[4])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])\n"
    "return {1, ARGV[1]}\n" };

//  KEYS flag:<ref>, flag_id:<id>, outbox. ARGV id, reason, kind, by, now, ref, event id, event
//  entry. 0 when already flagged.
static gl_redis_script_t s_flag_set_lua = { .source =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'id', ARGV[1], 'reason', ARGV[2], 'kind', ARGV[3],\n"
    "           'by', ARGV[4], 'at', ARGV[5])\n"
    "redis.call('SET', KEYS[2], ARGV[6])\n"
    "redis.call('HSET', KEYS[3], ARGV[7], ARGV[8])\n"
    "return 1\n" };

//  KEYS flag_id:<id>, outbox. ARGV key prefix, event id, event entry. 0 when no such flag.
static gl_redis_script_t s_flag_clear_lua = { .source =
    "local ref = redis.call('GET', KEYS[1])\n"
    "if not ref then return 0 end\n"
    "redis.call('DEL', ARGV[1] .. 'flag:' .. ref, KEYS[1])\n"
    "redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])\n"
    "return 1\n" };

//  --------------------------------------------------------------------------------------------
//  Helpers

static int
s_unavailable (http_req_t *req)
{
    return http_reply_error (req, 503, "unavailable", "cannot reach the store now; retry", NULL);
}

//  The {case_no} of the path in its normal form and its ref. 0, or answers 400 and returns -1.
static int
s_case_param (callers_t *self, http_req_t *req, char case_no[CALLERS_CASE_NO_MAX + 1],
              char ref[CALLERS_REF_LEN + 1])
{
    if (callers_case_no_norm (http_param (req, "case_no"), case_no) != 0) {
        http_reply_error (req, 400, "invalid_parameter",
                          "a case number is 1..32 of A-Z, a-z, 0-9 and -", "case_no");
        return -1;
    }
    callers_case_ref (self, case_no, ref);
    return 0;
}

//  The call or contact the request is made in: exactly one of call_id and contact_id, from the
//  body (query false) or the query string. 0 with *ctx borrowed, or answers 400 and returns -1.
static int
s_context (http_req_t *req, bool query, const char **ctx)
{
    const char *call = NULL, *contact = NULL;
    if (query) {
        call = http_query (req, "call_id");
        contact = http_query (req, "contact_id");
        if ((call && !gl_id_valid (call)) || (contact && !gl_id_valid (contact))) {
            http_reply_error (req, 400, "invalid_parameter", "must be an id (32 hex digits)",
                              call && !gl_id_valid (call) ? "call_id" : "contact_id");
            return -1;
        }
    }
    else if (http_body_id (req, "call_id", false, &call)
             || http_body_id (req, "contact_id", false, &contact))
        return -1;
    if (!call == !contact) {
        http_reply_error (req, 400, call ? "invalid_field" : "missing_field",
                          "give the call_id or the contact_id the caller is on, one of them",
                          query ? "call_id" : "call_id");
        return -1;
    }
    *ctx = call ? call : contact;
    return 0;
}

//  Locked -> 423, no valid grant -> 403 verification_required. 0 when the caller may see the
//  case, else answered and -1.
static int
s_require_grant (callers_t *self, http_req_t *req, const char *ref, const char *ctx,
                 int64_t *until)
{
    int64_t locked_until = 0;
    int locked = callers_locked (self, ref, &locked_until);
    if (locked < 0) {
        s_unavailable (req);
        return -1;
    }
    if (locked) {
        http_reply_error (req, 423, "locked",
                          "too many failed verifications: the case is locked for a while", NULL);
        return -1;
    }
    int granted = callers_grant_check (self, http_caller (req)->user_id, ref, ctx, until);
    if (granted < 0) {
        s_unavailable (req);
        return -1;
    }
    if (!granted) {
        http_reply_error (req, 403, "verification_required",
                          "verify the caller in this call or contact first "
                          "(POST /api/v1/cases/{case_no}/verify)",
                          NULL);
        return -1;
    }
    return 0;
}

//  A string field that is null (clear), absent (not given) or a value; *out "" for null.
static int
s_nullable_str (http_req_t *req, const char *field, size_t max, const char **out)
{
    const json_t *v = json_object_get (http_body (req), field);
    if (json_is_null (v)) {
        *out = "";
        return 0;
    }
    return http_body_str (req, field, false, max, out);
}

//  --------------------------------------------------------------------------------------------
//  The extract

//  POST /api/v1/cases/import {csv}
static int
s_import (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "csv", NULL };
    const char *csv = NULL;
    if (http_body_only (req, fields) || http_body_str (req, "csv", true, SIZE_MAX, &csv))
        return -1;
    if (audit_record_req (intake, req, "import", "case_extract", "", "requested") != 0)
        return s_unavailable (req);
    json_t *result = NULL;
    char message[320];
    int rc = cases_import (intake->callers, csv, strlen (csv), &result, message, sizeof message);
    if (rc == 400)
        return http_reply_error (req, 400, "invalid_csv", message, "csv");
    if (rc != 0) {
        gl_warn ("callers: import failed: %s", message);
        return http_reply_error (req, 503, "unavailable", message, NULL);
    }
    gl_info ("callers: extract imported: %" JSON_INTEGER_FORMAT " rows",
             json_integer_value (json_object_get (result, "rows")));
    return http_reply_json (req, 200, result);
}

//  PUT /api/v1/cases/{case_no}: one case pushed by the registration system.
static int
s_put_case (intake_t *intake, http_req_t *req)
{
    callers_t *self = intake->callers;
    static const char *const allowed[]
        = { "as_of",           "registration_status", "rsd_status", "resettlement_status",
            "assistance_status", "next_appointment",  "family_size", "dob",
            "phones",          "language",            "location",   NULL };
    char case_no[CALLERS_CASE_NO_MAX + 1], ref[CALLERS_REF_LEN + 1];
    const char *as_of = NULL;
    if (http_body_only (req, allowed) || s_case_param (self, req, case_no, ref) != 0
        || http_body_str (req, "as_of", true, 10, &as_of))
        return -1;
    callers_case_in_t in = { 0 };
    snprintf (in.case_no, sizeof in.case_no, "%s", case_no);
    snprintf (in.as_of, sizeof in.as_of, "%s", as_of);
    char today[11];
    callers_today (today);
    if (!callers_date_valid (as_of))
        return http_reply_error (req, 400, "invalid_field", "not a date YYYY-MM-DD", "as_of");
    //  Text fields.
    char family[8] = "", phones[CALLERS_PHONES_MAX * (CALLERS_PHONE_MAX + 3)] = "";
    size_t given = 0;
    for (int f = 0; f < CALLERS_F__COUNT; f++) {
        const char *name = callers_field_name ((callers_field_t) f);
        const json_t *v = json_object_get (http_body (req), name);
        if (!v)
            continue;
        given++;
        if (f == CALLERS_F_FAMILY_SIZE) {
            int64_t n = 0;
            if (!json_is_null (v)) {
                if (http_body_int (req, name, false, 1, 99, &n))
                    return -1;
                snprintf (family, sizeof family, "%d", (int) n);
            }
            in.values[f] = family;
            continue;
        }
        if (f == CALLERS_F_PHONES) {
            if (!json_is_null (v)
                && (!json_is_array (v) || json_array_size (v) > CALLERS_PHONES_MAX))
                return http_reply_error (req, 400, "invalid_field",
                                         "a list of at most 3 phone numbers, or null", name);
            size_t i, n = 0;
            json_t *item;
            json_array_foreach (v, i, item) {
                char norm[CALLERS_PHONE_MAX + 2];
                if (callers_phone_norm (json_string_value (item), norm) != 0)
                    return http_reply_error (req, 400, "invalid_field", "not a phone number",
                                             name);
                n += (size_t) snprintf (phones + n, sizeof phones - n, "%s%s", n ? ";" : "", norm);
            }
            in.values[f] = phones;
            continue;
        }
        const char *text = NULL;
        if (s_nullable_str (req, name, CALLERS_STATUS_MAX, &text))
            return -1;
        const char *why = cases_value_check ((callers_field_t) f, text);
        if (why)
            return http_reply_error (req, 400, "invalid_field", why, name);
        in.values[f] = text;
    }
    if (given == 0)
        return http_reply_error (req, 400, "missing_field", "give at least one field besides as_of",
                                 NULL);
    //  The same plausibility rule as the import: not after tomorrow.
    time_t t = (time_t) ((gl_now_ms () + 86400000) / 1000);
    struct tm tm;
    char tomorrow[11];
    gmtime_r (&t, &tm);
    strftime (tomorrow, sizeof tomorrow, "%Y-%m-%d", &tm);
    if (strcmp (as_of, tomorrow) > 0)
        return http_reply_error (req, 400, "invalid_field", "in the future", "as_of");
    if (audit_record_req (intake, req, "update", "case", ref, "push") != 0)
        return s_unavailable (req);
    callers_write_t outcome;
    if (cases_write (self, &in, "push", &outcome) != 0)
        return s_unavailable (req);
    if (outcome == CALLERS_WRITE_STALE)
        return http_reply_error (req, 409, "stale",
                                 "intake holds newer data for the fields given", "as_of");
    const char *result = outcome == CALLERS_WRITE_CREATED   ? "created"
                       : outcome == CALLERS_WRITE_UPDATED   ? "updated"
                                                            : "unchanged";
    return http_reply_json (req, outcome == CALLERS_WRITE_CREATED ? 201 : 200,
                            json_pack ("{s:s}", "result", result));
}

//  POST /api/v1/cases/{case_no}/verify {call_id | contact_id, answers}
static int
s_verify (intake_t *intake, http_req_t *req)
{
    callers_t *self = intake->callers;
    static const char *const fields[] = { "call_id", "contact_id", "answers", NULL };
    char case_no[CALLERS_CASE_NO_MAX + 1], ref[CALLERS_REF_LEN + 1];
    const char *ctx = NULL;
    if (http_body_only (req, fields) || s_case_param (self, req, case_no, ref) != 0
        || s_context (req, false, &ctx) != 0)
        return -1;
    const json_t *answers = json_object_get (http_body (req), "answers");
    if (!answers)
        return http_reply_error (req, 400, "missing_field", "the caller's answers", "answers");
    if (!json_is_object (answers))
        return http_reply_error (req, 400, "invalid_field", "an object: question -> answer",
                                 "answers");
    return callers_verify (self, req, ref, ctx, answers);
}

//  GET /api/v1/cases/{case_no}/verify-questions: the questions to ask before the case is shown
//  (GL_INTAKE_VERIFY_QUESTIONS), never their answers. The same for every case today: the case
//  is not looked up, so the answer reveals nothing about whether it exists.
static int
s_verify_questions (intake_t *intake, http_req_t *req)
{
    callers_t *self = intake->callers;
    static const char *const none[] = { NULL };
    char case_no[CALLERS_CASE_NO_MAX + 1], ref[CALLERS_REF_LEN + 1];
    if (http_query_only (req, none) || s_case_param (self, req, case_no, ref) != 0)
        return -1;
    const char *names[CALLERS_QUESTIONS_MAX];
    size_t n = callers_verify_questions (self, names, CALLERS_QUESTIONS_MAX);
    json_t *list = json_array ();
    for (size_t i = 0; i < n; i++)
        json_array_append_new (list, json_string (names[i]));
    return http_reply_json (req, 200, json_pack ("{s:o}", "questions", list));
}

//  GET /api/v1/cases/{case_no}?call_id= | contact_id=
static int
s_get_case (intake_t *intake, http_req_t *req)
{
    callers_t *self = intake->callers;
    static const char *const params[] = { "call_id", "contact_id", NULL };
    char case_no[CALLERS_CASE_NO_MAX + 1], ref[CALLERS_REF_LEN + 1];
    const char *ctx = NULL;
    int64_t until = 0;
    if (http_query_only (req, params) || s_case_param (self, req, case_no, ref) != 0
        || s_context (req, true, &ctx) != 0 || s_require_grant (self, req, ref, ctx, &until) != 0)
        return -1;
    json_t *doc = NULL, *flag = NULL;
    int rc = cases_read (self, ref, &doc);
    if (rc < 0)
        return s_unavailable (req);
    if (rc == 1)
        return http_reply_error (req, 404, "not_found", "no such case in the extract", NULL);
    rc = callers_flag_get (self, ref, &flag);
    if (rc < 0 || audit_record_req (intake, req, "read", "case", ref, "status") != 0) {
        json_decref (doc);
        return s_unavailable (req);
    }
    json_object_set_new (doc, "abusive", rc == 0 ? flag : json_null ());
    json_object_set_new (doc, "verified_until", json_integer ((json_int_t) until));
    return http_reply_json (req, 200, doc);
}

//  --------------------------------------------------------------------------------------------
//  Change requests

//  A change request as the API shows it; with_case adds case_no (the export).
static json_t *
s_chg_json (redisReply *r, bool with_case)
{
    const char *id = NULL, *status = "", *fields = "[]", *values = "{}", *case_no = "",
               *reason = NULL;
    long long created = 0, sent = 0, done = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (!strcmp (k, "id"))
            id = v;
        else if (!strcmp (k, "status"))
            status = v;
        else if (!strcmp (k, "fields"))
            fields = v;
        else if (!strcmp (k, "values"))
            values = v;
        else if (!strcmp (k, "case_no"))
            case_no = v;
        else if (!strcmp (k, "reason"))
            reason = *v ? v : NULL;
        else if (!strcmp (k, "created"))
            gl_redis_reply_int (r->element[i + 1], &created);
        else if (!strcmp (k, "sent"))
            gl_redis_reply_int (r->element[i + 1], &sent);
        else if (!strcmp (k, "done"))
            gl_redis_reply_int (r->element[i + 1], &done);
    }
    if (!id)
        return NULL;
    json_t *obj = json_pack (
        "{s:s, s:s, s:o, s:o, s:I, s:o, s:o, s:o}", "id", id, "status", status, "fields",
        json_loads (fields, 0, NULL), "values", json_loads (values, 0, NULL), "requested_at",
        (json_int_t) created, "sent_at", sent ? json_integer (sent) : json_null (), "decided_at",
        done ? json_integer (done) : json_null (), "reason",
        reason ? json_string (reason) : json_null ());
    if (obj && with_case)
        json_object_set_new (obj, "case_no", json_string (case_no));
    return obj;
}

static redisReply *
s_chg_load (intake_t *intake, const char *id)
{
    redisReply *r = gl_redis_cmd (intake->redis, "HGETALL %schg:%s", CALLERS_KEY_PREFIX, id);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject (r);
        r = NULL;
    }
    return r;
}

//  The event of a change request's step: {request_id, fields, status[, reason]}.
static int
s_chg_event (callers_t *self, callers_event_t *e, const char *type, const char *id,
             const char *status, const json_t *fields, const char *reason, const char *ctx)
{
    json_t *data = json_pack ("{s:s, s:O, s:s}", "request_id", id, "fields", fields, "status",
                              status);
    if (data && reason && *reason)
        json_object_set_new (data, "reason", json_string (reason));
    return callers_event_new (self, e, type, ctx, data);
}

//  POST /api/v1/cases/{case_no}/change-requests {call_id | contact_id, phones, language, location}
static int
s_chg_create (intake_t *intake, http_req_t *req)
{
    callers_t *self = intake->callers;
    static const char *const allowed[]
        = { "call_id", "contact_id", "phones", "language", "location", NULL };
    char case_no[CALLERS_CASE_NO_MAX + 1], ref[CALLERS_REF_LEN + 1];
    const char *ctx = NULL, *language = NULL, *location = NULL;
    int64_t until = 0;
    if (http_body_only (req, allowed) || s_case_param (self, req, case_no, ref) != 0
        || s_context (req, false, &ctx) != 0
        || http_body_str (req, "language", false, CALLERS_LANG_MAX, &language)
        || http_body_str (req, "location", false, CALLERS_CODE_MAX, &location))
        return -1;
    if (language && !callers_lang_valid (language))
        return http_reply_error (req, 400, "invalid_field", "not a language code (ar, en, fr-CA)",
                                 "language");
    if (location && !callers_code_valid (location))
        return http_reply_error (req, 400, "invalid_field", "not a location code", "location");
    const json_t *phones = json_object_get (http_body (req), "phones");
    json_t *norm_phones = NULL;
    if (phones) {
        if (!json_is_array (phones) || json_array_size (phones) < 1
            || json_array_size (phones) > CALLERS_PHONES_MAX)
            return http_reply_error (req, 400, "invalid_field", "a list of 1 to 3 phone numbers",
                                     "phones");
        norm_phones = json_array ();
        size_t i;
        json_t *item;
        json_array_foreach (phones, i, item) {
            char norm[CALLERS_PHONE_MAX + 2];
            if (callers_phone_norm (json_string_value (item), norm) != 0) {
                json_decref (norm_phones);
                return http_reply_error (req, 400, "invalid_field", "not a phone number",
                                         "phones");
            }
            json_array_append_new (norm_phones, json_string (norm));
        }
    }
    if (!phones && !language && !location)
        return http_reply_error (req, 400, "missing_field",
                                 "give at least one of phones, language, location", NULL);
    if (s_require_grant (self, req, ref, ctx, &until) != 0) {
        json_decref (norm_phones);
        return -1;
    }
    //  Field codes in a fixed order; values beside them.
    json_t *fields = json_array (), *values = json_object ();
    if (norm_phones) {
        json_array_append_new (fields, json_string ("phone"));
        json_object_set_new (values, "phones", norm_phones);
    }
    if (language) {
        json_array_append_new (fields, json_string ("language"));
        json_object_set_new (values, "language", json_string (language));
    }
    if (location) {
        json_array_append_new (fields, json_string ("location"));
        json_object_set_new (values, "location", json_string (location));
    }
    char id[GL_ID_LEN + 1], key[96], case_key[96], pending[96], now[24];
    gl_id_new (id);
    int64_t now_ms = gl_now_ms ();
    snprintf (key, sizeof key, "%schg:%s", CALLERS_KEY_PREFIX, id);
    snprintf (case_key, sizeof case_key, "%schg_case:%s", CALLERS_KEY_PREFIX, ref);
    snprintf (pending, sizeof pending, "%schg_pending", CALLERS_KEY_PREFIX);
    snprintf (now, sizeof now, "%" PRId64, now_ms);
    char *fields_text = json_dumps (fields, JSON_COMPACT);
    char *values_text = json_dumps (values, JSON_COMPACT);
    callers_event_t e = { 0 };
    int rc = -1;
    if (fields_text && values_text
        && s_chg_event (self, &e, "person.change_requested", id, "pending", fields, NULL, ctx) == 0
        && audit_record_req (intake, req, "create", "change_request", id, "pending") == 0) {
        const char *argv[] = { key,
                               case_key,
                               pending,
                               CALLERS_OUTBOX_KEY,
                               id,
                               ref,
                               case_no,
                               fields_text,
                               values_text,
                               http_caller (req)->user_id,
                               ctx,
                               now,
                               e.ev->id,
                               e.entry };
        redisReply *r = gl_redis_eval (intake->redis, &s_chg_create_lua, 4, 14, argv, NULL);
        rc = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
        if (r)
            freeReplyObject (r);
    }
    free (fields_text);
    free (values_text);
    if (rc != 0) {
        callers_event_drop (&e);
        json_decref (fields);
        json_decref (values);
        return s_unavailable (req);
    }
    callers_event_deliver (self, &e);
    gl_info ("callers: change request %s pending", id);
    return http_reply_json (req, 201,
                            json_pack ("{s:s, s:s, s:o, s:o, s:I}", "id", id, "status", "pending",
                                       "fields", fields, "values", values, "requested_at",
                                       (json_int_t) now_ms));
}

//  GET /api/v1/cases/{case_no}/change-requests?call_id= | contact_id=, newest first.
static int
s_chg_list (intake_t *intake, http_req_t *req)
{
    callers_t *self = intake->callers;
    static const char *const params[] = { "call_id", "contact_id", "limit", "cursor", NULL };
    char case_no[CALLERS_CASE_NO_MAX + 1], ref[CALLERS_REF_LEN + 1];
    const char *ctx = NULL;
    int64_t until = 0;
    http_page_t page;
    if (http_query_only (req, params) || http_page (req, &page)
        || s_case_param (self, req, case_no, ref) != 0
        || s_context (req, true, &ctx) != 0 || s_require_grant (self, req, ref, ctx, &until) != 0)
        return -1;
    long offset = 0;
    if (page.has_cursor) {
        char *end = NULL;
        offset = strtol (page.cursor, &end, 10);
        if (!*page.cursor || *end || offset < 0 || offset > 1000000 || page.cursor[0] == '-')
            return http_reply_error (req, 400, "invalid_parameter", "not a cursor of this list",
                                     "cursor");
    }
    redisReply *ids = gl_redis_cmd (intake->redis, "ZREVRANGE %schg_case:%s %ld %ld",
                                    CALLERS_KEY_PREFIX, ref, offset, offset + page.limit);
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        if (ids)
            freeReplyObject (ids);
        return s_unavailable (req);
    }
    json_t *items = json_array ();
    size_t n = ids->elements > (size_t) page.limit ? (size_t) page.limit : ids->elements;
    bool more = ids->elements > (size_t) page.limit;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = s_chg_load (intake, ids->element[i]->str);
        if (!r) {
            freeReplyObject (ids);
            json_decref (items);
            return s_unavailable (req);
        }
        json_t *item = s_chg_json (r, false);
        if (item)
            json_array_append_new (items, item);
        freeReplyObject (r);
    }
    freeReplyObject (ids);
    if (audit_record_req (intake, req, "read", "case", ref, "change_requests") != 0) {
        json_decref (items);
        return s_unavailable (req);
    }
    char next[24];
    snprintf (next, sizeof next, "%ld", offset + page.limit);
    return http_reply_page (req, items, more ? next : NULL);
}

//  Add the requests of ids (a Redis array of ids) to items, with case_no. 0 or -1.
static int
s_chg_collect (intake_t *intake, redisReply *ids, json_t *items)
{
    for (size_t i = 0; i < ids->elements; i++) {
        if (ids->element[i]->type != REDIS_REPLY_STRING)
            continue;
        redisReply *r = s_chg_load (intake, ids->element[i]->str);
        if (!r)
            return -1;
        json_t *item = s_chg_json (r, true);
        freeReplyObject (r);
        if (item)
            json_array_append_new (items, item);
    }
    return 0;
}

//  Take up to want pending requests, oldest first, to sent, each with its person.change_sent
//  event; append them to items. 0 or -1.
static int
s_chg_send (intake_t *intake, int64_t want, json_t *items)
{
    callers_t *self = intake->callers;
    redisReply *ids = gl_redis_cmd (intake->redis, "ZRANGE %schg_pending 0 %" PRId64,
                                    CALLERS_KEY_PREFIX, want - 1);
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        if (ids)
            freeReplyObject (ids);
        return -1;
    }
    size_t n = ids->elements;
    json_t *found = json_array ();
    callers_event_t *events = calloc (n ? n : 1, sizeof *events);
    const char **argv = calloc (5 + 3 * n, sizeof *argv);
    int rc = found && events && argv && s_chg_collect (intake, ids, found) == 0 ? 0 : -1;
    freeReplyObject (ids);
    char now[24];
    int64_t now_ms = gl_now_ms ();
    snprintf (now, sizeof now, "%" PRId64, now_ms);
    size_t argc = 0;
    if (rc == 0) {
        argv[argc++] = CALLERS_KEY_PREFIX "chg_pending";
        argv[argc++] = CALLERS_KEY_PREFIX "chg_sent";
        argv[argc++] = CALLERS_OUTBOX_KEY;
        argv[argc++] = now;
        argv[argc++] = CALLERS_KEY_PREFIX "chg:";
    }
    size_t i;
    json_t *item;
    json_array_foreach (found, i, item) {
        if (rc != 0)
            break;
        const char *id = json_string_value (json_object_get (item, "id"));
        char ctx[GL_ID_LEN + 1] = "";
        redisReply *r = gl_redis_cmd (intake->redis, "HGET %schg:%s ctx", CALLERS_KEY_PREFIX, id);
        if (r && r->type == REDIS_REPLY_STRING)
            snprintf (ctx, sizeof ctx, "%s", r->str);
        if (r)
            freeReplyObject (r);
        if (s_chg_event (self, &events[i], "person.change_sent", id, "sent",
                         json_object_get (item, "fields"), NULL, ctx)
            != 0) {
            rc = -1;
            break;
        }
        argv[argc++] = id;
        argv[argc++] = events[i].ev->id;
        argv[argc++] = events[i].entry;
    }
    redisReply *taken = NULL;
    if (rc == 0 && argc > 5) {
        taken = gl_redis_eval (intake->redis, &s_chg_send_lua, 3, (int) argc, argv, NULL);
        if (!taken || taken->type != REDIS_REPLY_ARRAY)
            rc = -1;
    }
    //  Deliver the events of the requests taken; drop the others (taken meanwhile by another
    //  replica's export).
    json_array_foreach (found, i, item) {
        bool took = false;
        const char *id = json_string_value (json_object_get (item, "id"));
        for (size_t k = 0; rc == 0 && taken && k < taken->elements; k++)
            took = took || (taken->element[k]->type == REDIS_REPLY_STRING
                             && strcmp (taken->element[k]->str, id) == 0);
        if (!events || !events[i].ev)
            continue;
        if (!took) {
            callers_event_drop (&events[i]);
            continue;
        }
        callers_event_deliver (self, &events[i]);
        json_object_set_new (item, "status", json_string ("sent"));
        json_object_set_new (item, "sent_at", json_integer ((json_int_t) now_ms));
        json_array_append (items, item);
    }
    if (taken)
        freeReplyObject (taken);
    free (events);
    free (argv);
    json_decref (found);
    return rc;
}

//  GET /api/v1/change-requests/export?limit=&include_sent=: the oldest pending requests, now
//  sent. With include_sent=true, the requests sent before and still waiting for an outcome come
//  first (a client that lost an answer takes them again).
static int
s_chg_export_route (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "limit", "include_sent", NULL };
    if (http_query_only (req, params))
        return -1;
    int64_t limit = HTTP_PAGE_DEFAULT;
    const char *text = http_query (req, "limit");
    if (text) {
        char *end = NULL;
        limit = strtol (text, &end, 10);
        if (!*text || *end || limit < 1 || limit > HTTP_PAGE_MAX)
            return http_reply_error (req, 400, "invalid_parameter", "an integer 1..200", "limit");
    }
    const char *inc = http_query (req, "include_sent");
    if (inc && strcmp (inc, "true") && strcmp (inc, "false"))
        return http_reply_error (req, 400, "invalid_parameter", "true or false", "include_sent");
    if (audit_record_req (intake, req, "export", "change_request", "", "") != 0)
        return s_unavailable (req);
    json_t *items = json_array ();
    int rc = 0;
    if (inc && !strcmp (inc, "true")) {
        redisReply *ids = gl_redis_cmd (intake->redis, "ZRANGE %schg_sent 0 %" PRId64,
                                        CALLERS_KEY_PREFIX, limit - 1);
        rc = ids && ids->type == REDIS_REPLY_ARRAY ? s_chg_collect (intake, ids, items) : -1;
        if (ids)
            freeReplyObject (ids);
    }
    int64_t want = limit - (int64_t) json_array_size (items);
    if (rc == 0 && want > 0)
        rc = s_chg_send (intake, want, items);
    long long left = 0;
    redisReply *r = gl_redis_cmd (intake->redis, "ZCARD %schg_pending", CALLERS_KEY_PREFIX);
    if (rc == 0 && gl_redis_reply_int (r, &left) != 0)
        rc = -1;
    if (r)
        freeReplyObject (r);
    if (rc != 0) {
        json_decref (items);
        return s_unavailable (req);
    }
    return http_reply_json (req, 200,
                            json_pack ("{s:o, s:I}", "items", items, "pending", (json_int_t) left));
}

//  POST /api/v1/change-requests/{id}/outcome {status: applied | rejected, reason}
static int
s_chg_outcome_route (intake_t *intake, http_req_t *req)
{
    static const char *const allowed[] = { "status", "reason", NULL };
    const char *status = NULL, *reason = NULL;
    const char *id = http_param (req, "id");
    if (http_body_only (req, allowed) || http_body_enum (req, "status", true, s_outcomes, &status)
        || http_body_str (req, "reason", false, CALLERS_CODE_MAX, &reason))
        return -1;
    bool rejected = strcmp (status, "rejected") == 0;
    if (rejected && !reason)
        return http_reply_error (req, 400, "missing_field", "a rejection needs a reason code",
                                 "reason");
    if (!rejected && reason)
        return http_reply_error (req, 400, "invalid_field", "only a rejection has a reason",
                                 "reason");
    if (reason && !callers_code_valid (reason))
        return http_reply_error (req, 400, "invalid_field", "a code: 1..32 of A-Z a-z 0-9 _ . -",
                                 "reason");
    if (!gl_id_valid (id))
        return http_reply_error (req, 404, "not_found", "no such change request", NULL);
    redisReply *r = s_chg_load (intake, id);
    if (!r)
        return s_unavailable (req);
    if (r->elements == 0) {
        freeReplyObject (r);
        return http_reply_error (req, 404, "not_found", "no such change request", NULL);
    }
    json_t *item = s_chg_json (r, false);
    char ref[CALLERS_REF_LEN + 1] = "", ctx[GL_ID_LEN + 1] = "";
    for (size_t k = 0; k + 1 < r->elements; k += 2) {
        if (!strcmp (r->element[k]->str, "ref"))
            snprintf (ref, sizeof ref, "%s", r->element[k + 1]->str);
        if (!strcmp (r->element[k]->str, "ctx"))
            snprintf (ctx, sizeof ctx, "%s", r->element[k + 1]->str);
    }
    freeReplyObject (r);
    if (!item)
        return s_unavailable (req);
    if (audit_record_req (intake, req, "update", "change_request", id, status) != 0) {
        json_decref (item);
        return s_unavailable (req);
    }
    callers_event_t e;
    if (s_chg_event (intake->callers, &e,
                     rejected ? "person.change_rejected" : "person.change_applied", id, status,
                     json_object_get (item, "fields"), reason, ctx)
        != 0) {
        json_decref (item);
        return s_unavailable (req);
    }
    //  The new values, as the case stores them.
    const char *argv[32];
    char keys[3][96], now[24], today[11], n[8];
    char phones[CALLERS_PHONES_MAX * (CALLERS_PHONE_MAX + 3)] = "";
    snprintf (keys[0], sizeof keys[0], "%schg:%s", CALLERS_KEY_PREFIX, id);
    snprintf (keys[1], sizeof keys[1], "%schg_sent", CALLERS_KEY_PREFIX);
    snprintf (keys[2], sizeof keys[2], "%scase:%s", CALLERS_KEY_PREFIX, ref);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    callers_today (today);
    int argc = 0;
    argv[argc++] = keys[0];
    argv[argc++] = keys[1];
    argv[argc++] = keys[2];
    argv[argc++] = CALLERS_OUTBOX_KEY;
    argv[argc++] = status;
    argv[argc++] = now;
    argv[argc++] = reason ? reason : "";
    argv[argc++] = today;
    argv[argc++] = e.ev->id;
    argv[argc++] = e.entry;
    argv[argc++] = n;
    int pairs = 0;
    const json_t *values = json_object_get (item, "values");
    size_t i, len = 0;
    json_t *p;
    json_array_foreach (json_object_get (values, "phones"), i, p)
        len += (size_t) snprintf (phones + len, sizeof phones - len, "%s%s", len ? ";" : "",
                                  json_string_value (p));
    if (json_object_get (values, "phones")) {
        argv[argc++] = "phones";
        argv[argc++] = phones;
        pairs++;
    }
    static const char *const singles[] = { "language", "location" };
    for (size_t k = 0; k < 2; k++) {
        const char *v = json_string_value (json_object_get (values, singles[k]));
        if (v) {
            argv[argc++] = singles[k];
            argv[argc++] = v;
            pairs++;
        }
    }
    snprintf (n, sizeof n, "%d", pairs);
    redisReply *res = gl_redis_eval (intake->redis, &s_chg_outcome_lua, 4, argc, argv, NULL);
    json_decref (item);
    long long taken = 0;
    char current[16] = "";
    bool ok = res && res->type == REDIS_REPLY_ARRAY && res->elements == 2
           && gl_redis_reply_int (res->element[0], &taken) == 0;
    if (ok && res->element[1]->type == REDIS_REPLY_STRING)
        snprintf (current, sizeof current, "%s", res->element[1]->str);
    if (res)
        freeReplyObject (res);
    if (!ok || !taken) {
        callers_event_drop (&e);
        if (!ok)
            return s_unavailable (req);
        char message[128];
        snprintf (message, sizeof message,
                  "the change request is %s: only a sent request can be applied or rejected",
                  current);
        return http_reply_error (req, 409, "invalid_transition", message, "status");
    }
    callers_event_deliver (intake->callers, &e);
    return http_reply_json (req, 200, json_pack ("{s:s, s:s}", "id", id, "status", status));
}

//  --------------------------------------------------------------------------------------------
//  Abusive flags

//  The caller named by exactly one of case_no and phone: its ref and kind. 0, or answered -1.
static int
s_caller_ref (callers_t *self, http_req_t *req, char ref[CALLERS_REF_LEN + 1], const char **kind)
{
    const char *case_no = NULL, *phone = NULL;
    if (http_body_str (req, "case_no", false, 64, &case_no)
        || http_body_str (req, "phone", false, 64, &phone))
        return -1;
    if (!case_no == !phone) {
        http_reply_error (req, 400, case_no ? "invalid_field" : "missing_field",
                          "name the caller by case_no or by phone, one of them", "case_no");
        return -1;
    }
    if (case_no) {
        char norm[CALLERS_CASE_NO_MAX + 1];
        if (callers_case_no_norm (case_no, norm) != 0) {
            http_reply_error (req, 400, "invalid_field",
                              "a case number is 1..32 of A-Z, a-z, 0-9 and -", "case_no");
            return -1;
        }
        callers_case_ref (self, norm, ref);
        *kind = "case";
        return 0;
    }
    char norm[CALLERS_PHONE_MAX + 2];
    if (callers_phone_norm (phone, norm) != 0) {
        http_reply_error (req, 400, "invalid_field", "not a phone number", "phone");
        return -1;
    }
    callers_phone_ref (self, norm, ref);
    *kind = "phone";
    return 0;
}

//  POST /api/v1/callers/flags {case_no | phone, reason}
static int
s_flag_set_route (intake_t *intake, http_req_t *req)
{
    static const char *const allowed[] = { "case_no", "phone", "reason", NULL };
    const char *reason = NULL, *kind = NULL;
    char ref[CALLERS_REF_LEN + 1];
    if (http_body_only (req, allowed)
        || http_body_enum (req, "reason", true, s_flag_reasons, &reason)
        || s_caller_ref (intake->callers, req, ref, &kind) != 0)
        return -1;
    char id[GL_ID_LEN + 1], flag[96], flag_id[96], now[24];
    gl_id_new (id);
    int64_t now_ms = gl_now_ms ();
    snprintf (flag, sizeof flag, "%sflag:%s", CALLERS_KEY_PREFIX, ref);
    snprintf (flag_id, sizeof flag_id, "%sflag_id:%s", CALLERS_KEY_PREFIX, id);
    snprintf (now, sizeof now, "%" PRId64, now_ms);
    callers_event_t e;
    if (callers_event_new (intake->callers, &e, "person.flagged", NULL,
                           json_pack ("{s:s, s:s, s:s}", "flag_id", id, "kind", kind, "reason",
                                      reason))
        != 0)
        return s_unavailable (req);
    if (audit_record_req (intake, req, "create", "caller_flag", id, reason) != 0) {
        callers_event_drop (&e);
        return s_unavailable (req);
    }
    const char *argv[] = { flag, flag_id, CALLERS_OUTBOX_KEY, id,       reason,
                           kind, http_caller (req)->user_id, now, ref, e.ev->id, e.entry };
    redisReply *r = gl_redis_eval (intake->redis, &s_flag_set_lua, 3, 11, argv, NULL);
    long long done = -1;
    if (!r || gl_redis_reply_int (r, &done) != 0)
        done = -1;
    if (r)
        freeReplyObject (r);
    if (done != 1) {
        callers_event_drop (&e);
        if (done < 0)
            return s_unavailable (req);
        return http_reply_error (req, 409, "already_flagged",
                                 "this caller is flagged already; clear the flag to change it",
                                 NULL);
    }
    callers_event_deliver (intake->callers, &e);
    return http_reply_json (req, 201,
                            json_pack ("{s:s, s:s, s:s, s:I}", "id", id, "kind", kind, "reason",
                                       reason, "flagged_at", (json_int_t) now_ms));
}

//  DELETE /api/v1/callers/flags/{id}
static int
s_flag_clear_route (intake_t *intake, http_req_t *req)
{
    const char *id = http_param (req, "id");
    if (!gl_id_valid (id))
        return http_reply_error (req, 404, "not_found", "no such flag", NULL);
    callers_event_t e;
    if (callers_event_new (intake->callers, &e, "person.unflagged", NULL,
                           json_pack ("{s:s}", "flag_id", id))
        != 0)
        return s_unavailable (req);
    if (audit_record_req (intake, req, "delete", "caller_flag", id, "") != 0) {
        callers_event_drop (&e);
        return s_unavailable (req);
    }
    char flag_id[96];
    snprintf (flag_id, sizeof flag_id, "%sflag_id:%s", CALLERS_KEY_PREFIX, id);
    const char *argv[] = { flag_id, CALLERS_OUTBOX_KEY, CALLERS_KEY_PREFIX, e.ev->id, e.entry };
    redisReply *r = gl_redis_eval (intake->redis, &s_flag_clear_lua, 2, 5, argv, NULL);
    long long done = -1;
    if (!r || gl_redis_reply_int (r, &done) != 0)
        done = -1;
    if (r)
        freeReplyObject (r);
    if (done != 1) {
        callers_event_drop (&e);
        if (done < 0)
            return s_unavailable (req);
        return http_reply_error (req, 404, "not_found", "no such flag", NULL);
    }
    callers_event_deliver (intake->callers, &e);
    return http_reply_json (req, 200, json_pack ("{s:s, s:s}", "id", id, "status", "cleared"));
}

//  POST /api/v1/callers/lookup {case_no | phone}: is this caller flagged? (Before verification:
//  the flag is about the caller's conduct, not their case.)
static int
s_lookup (intake_t *intake, http_req_t *req)
{
    static const char *const allowed[] = { "case_no", "phone", NULL };
    const char *kind = NULL;
    char ref[CALLERS_REF_LEN + 1];
    if (http_body_only (req, allowed) || s_caller_ref (intake->callers, req, ref, &kind) != 0)
        return -1;
    json_t *flag = NULL;
    int rc = callers_flag_get (intake->callers, ref, &flag);
    if (rc < 0 || audit_record_req (intake, req, "read", "caller_flag", ref, kind) != 0) {
        json_decref (flag);
        return s_unavailable (req);
    }
    return http_reply_json (req, 200,
                            json_pack ("{s:o}", "abusive", rc == 0 ? flag : json_null ()));
}

void
api_callers_routes (intake_t *intake)
{
    http_t *http = intake->http;
    uint32_t desk = GL_ROLE_AGENT | GL_ROLE_SUPERVISOR;
    http_route (http, "POST", "/api/v1/cases/import", GL_ROLE_ADMIN | GL_ROLE_API_CLIENT, s_import);
    http_route (http, "PUT", "/api/v1/cases/{case_no}", GL_ROLE_API_CLIENT, s_put_case);
    http_route (http, "GET", "/api/v1/cases/{case_no}", desk, s_get_case);
    http_route (http, "POST", "/api/v1/cases/{case_no}/verify", desk, s_verify);
    http_route (http, "GET", "/api/v1/cases/{case_no}/verify-questions", desk,
                s_verify_questions);
    http_route (http, "POST", "/api/v1/cases/{case_no}/change-requests", desk, s_chg_create);
    http_route (http, "GET", "/api/v1/cases/{case_no}/change-requests", desk, s_chg_list);
    http_route (http, "GET", "/api/v1/change-requests/export", GL_ROLE_API_CLIENT,
                s_chg_export_route);
    http_route (http, "POST", "/api/v1/change-requests/{id}/outcome", GL_ROLE_API_CLIENT,
                s_chg_outcome_route);
    http_route (http, "POST", "/api/v1/callers/flags", GL_ROLE_SUPERVISOR, s_flag_set_route);
    http_route (http, "DELETE", "/api/v1/callers/flags/{id}", GL_ROLE_SUPERVISOR,
                s_flag_clear_route);
    http_route (http, "POST", "/api/v1/callers/lookup", desk, s_lookup);
    api_booking_routes (intake);
}
