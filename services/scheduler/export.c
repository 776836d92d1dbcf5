/*  export — scheduler's part of a person export (a data-subject access request), answered to
    intake's bus request scheduler.person_export (docs/events.md, docs/api/retention.md
    "Other services").

    The body: {caller: {user_id, roles, units}, case_number | individual_number | phone}, exactly
    one identifier, normalised as intake normalises them (contacts: a case number is upper-case
    letters and digits, separators " -/." dropped; a phone is digits, country code first). Only
    "protection" and "admin" callers are answered (403 otherwise).

    What scheduler holds about a person, and how it is found:
      appointments      every appointment (any status) whose case number is the person's: the
                        centres' day indexes, which hold every appointment until the retention
                        purge removes its personal data, are scanned
      campaign_targets  every outbound target (any campaign, the callback list included) whose
                        case number or phone is the person's, with its attempts count, outcome
                        and answers: every campaign's target list is scanned
    Case numbers are compared with separators dropped and in upper case on both sides (bookings
    keep "ABC-123", intake exports ask "ABC123"); phones as intake normalises them, with its
    country code (GL_INTAKE_PHONE_COUNTRY_CODE, read from the same deployment configuration).
    Scheduler holds no individual numbers: that export answers empty, complete.

    The scan runs in Redis in one script, bounded by GL_SCHEDULER_EXPORT_SCAN_MAX records looked
    at; at most S_EXPORT_MAX records of each kind are answered; either bound reached answers
    complete: false. Each request is audited by a log line (the caller, the kind of identifier
    and the counts, never the identifier) and the counter greenline_scheduler_person_exports_total.
*/
#include "scheduler.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EXPORT_MAX   1000        //  records of one kind in an answer
#define S_VALUE_MAX    32          //  characters of an identifier as sent

//  ARGV: prefix, kind ("case", "phone", "none"), wanted value, country code, scan cap, centre
//  count, centre codes... Returns {scanned, cap reached 0/1, {appointment ids}, {"cid:tid"}}.
static gl_redis_script_t s_scan_lua = { .source =
    "local p, kind, want, cc = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local cap, nc = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local scanned, full, appts, targets = 0, 0, {}, {}\n"
    "local function ncase(s)\n"
    "  return string.upper((string.gsub(s, '[ %-/%.]', '')))\n"
    "end\n"
    "local function nphone(s)\n"
    "  if not s or s == '' then return '' end\n"
    "  local plus = string.sub(s, 1, 1) == '+'\n"
    "  local d = string.gsub(s, '%D', '')\n"
    "  if plus then return d end\n"
    "  if string.sub(d, 1, 2) == '00' then return string.sub(d, 3) end\n"
    "  if cc ~= '' then\n"
    "    if string.sub(d, 1, 1) == '0' then d = string.sub(d, 2) end\n"
    "    return cc .. d\n"
    "  end\n"
    "  return d\n"
    "end\n"
    "if kind == 'none' then return {0, 0, {}, {}} end\n"
    "if kind == 'case' then\n"
    "  for i = 1, nc do\n"
    "    if scanned >= cap then full = 1 break end\n"
    "    local ids = redis.call('ZRANGE', p .. 'day:' .. ARGV[6 + i], 0, cap - scanned - 1)\n"
    "    if #ids >= cap - scanned and redis.call('ZCARD', p .. 'day:' .. ARGV[6 + i]) > #ids then\n"
    "      full = 1\n"
    "    end\n"
    "    for _, id in ipairs(ids) do\n"
    "      scanned = scanned + 1\n"
    "      local c = redis.call('HGET', p .. 'appt:' .. id, 'case_no')\n"
    "      if c and c ~= '' and ncase(c) == want then appts[#appts + 1] = id end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local cids = redis.call('ZRANGE', p .. 'campaigns', 0, -1)\n"
    "local seen = {}\n"
    "cids[#cids + 1] = 'callbacks'\n"
    "for _, cid in ipairs(cids) do\n"
    "  if not seen[cid] then\n"
    "    seen[cid] = true\n"
    "    if scanned >= cap then full = 1 break end\n"
    "    local tk = p .. 'targets:' .. cid\n"
    "    local tids = redis.call('ZRANGE', tk, 0, cap - scanned - 1)\n"
    "    if #tids >= cap - scanned and redis.call('ZCARD', tk) > #tids then full = 1 end\n"
    "    for _, tid in ipairs(tids) do\n"
    "      scanned = scanned + 1\n"
    "      local f = redis.call('HMGET', p .. 'target:' .. cid .. ':' .. tid, 'case_no', 'phone')\n"
    "      local hit\n"
    "      if kind == 'case' then hit = f[1] and f[1] ~= '' and ncase(f[1]) == want\n"
    "      else hit = f[2] and f[2] ~= '' and nphone(f[2]) == want end\n"
    "      if hit then targets[#targets + 1] = cid .. ':' .. tid end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {scanned, full, appts, targets}\n" };

static gl_metric_t *s_m_exports;

//  The identifier of the body: 0 with kind ("case", "phone", "none") and the value compared,
//  or a 400 with err naming the field.
static int
s_identifier (json_t *body, const char **kind_name, const char **kind, char *want, size_t len,
              gl_rep_error_t *err)
{
    static const char *const names[] = { "case_number", "individual_number", "phone", NULL };
    const char *value = NULL;
    *kind_name = NULL;
    for (size_t i = 0; names[i]; i++) {
        json_t *v = json_object_get (body, names[i]);
        if (!v || json_is_null (v))
            continue;
        if (!json_is_string (v) || json_string_length (v) == 0
            || json_string_length (v) > S_VALUE_MAX
            || strlen (json_string_value (v)) != json_string_length (v))
            return gl_rep_error (err, 400, "invalid_field", names[i],
                                 "%s must be a string of 1..%d characters", names[i],
                                 S_VALUE_MAX);
        if (*kind_name)
            return gl_rep_error (err, 400, "invalid_field", names[i],
                                 "give exactly one of case_number, individual_number and phone");
        *kind_name = names[i];
        value = json_string_value (v);
    }
    if (!*kind_name)
        return gl_rep_error (err, 400, "missing_field", "case_number",
                             "give one of case_number, individual_number and phone");
    size_t n = 0;
    if (strcmp (*kind_name, "phone") == 0) {
        //  intake's normalised form: digits only, 4..15 of them
        for (const char *c = value; *c; c++)
            if (*c < '0' || *c > '9')
                return gl_rep_error (err, 400, "invalid_field", "phone",
                                     "phone must be normalised: digits, country code first");
        n = strlen (value);
        if (n < 4 || n > 15)
            return gl_rep_error (err, 400, "invalid_field", "phone",
                                 "phone must be 4..15 digits");
        snprintf (want, len, "%s", value);
        *kind = "phone";
        return 0;
    }
    //  A case or individual number: letters and digits, separators " -/." dropped, upper case.
    for (const char *c = value; *c; c++) {
        char ch = *c;
        if (ch >= 'a' && ch <= 'z')
            ch = (char) (ch - 'a' + 'A');
        if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
            want[n++] = ch;
        else if (ch != ' ' && ch != '-' && ch != '/' && ch != '.')
            return gl_rep_error (err, 400, "invalid_field", *kind_name,
                                 "%s must be letters, digits and - / . or space", *kind_name);
    }
    want[n] = 0;
    if (n == 0)
        return gl_rep_error (err, 400, "invalid_field", *kind_name, "%s has no letter or digit",
                             *kind_name);
    *kind = strcmp (*kind_name, "case_number") == 0 ? "case" : "none";
    return 0;
}

//  Read the records of ids (appt:<id> or target:<cid>:<tid>) into list. Internal fields go:
//  the keyed person hash of an appointment. A target's answers become an object.
static int
s_read (scheduler_t *self, redisReply *ids, const char *kind, json_t *list, bool *partial)
{
    for (size_t i = 0; i < ids->elements; i++) {
        if (ids->element[i]->type != REDIS_REPLY_STRING)
            continue;
        if (json_array_size (list) >= S_EXPORT_MAX) {
            *partial = true;
            break;
        }
        char key[200];
        snprintf (key, sizeof key, SCHED_PREFIX "%s:%s", kind, ids->element[i]->str);
        bool failed = false;
        json_t *rec = sched_hgetall (self, key, &failed);
        if (failed) {
            json_decref (rec);
            return -1;
        }
        if (!rec || json_object_size (rec) == 0) {
            json_decref (rec);
            continue;
        }
        json_object_del (rec, "person");
        const char *answers = sched_jstr (rec, "answers", NULL);
        if (answers) {
            json_t *a = json_loads (answers, 0, NULL);
            if (a)
                json_object_set_new (rec, "answers", a);
        }
        json_array_append_new (list, rec);
    }
    return 0;
}

//  scheduler.person_export
int
export_person (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    scheduler_t *self = arg;
    if (!s_m_exports)
        s_m_exports = gl_metrics_counter ("greenline_scheduler_person_exports_total",
                                          "Person exports answered (scheduler.person_export)",
                                          NULL);
    if (!json_is_object (req->body))
        return gl_rep_error (err, 400, "bad_request", "body", "the body must be a map");
    sched_caller_t caller;
    json_t *params, *query, *body;
    //  The caller is parsed as in a forwarded request; the identifier is at the top level.
    int rc = sched_forwarded (req, &caller, &params, &query, &body, err);
    if (rc)
        return rc;
    if (!caller.protection && !caller.admin)
        return gl_rep_error (err, 403, "forbidden", "",
                             "person exports are for protection staff and admins");
    static const char *const allowed[] = { "caller", "case_number", "individual_number", "phone",
                                           NULL };
    char want[S_VALUE_MAX + 1];
    const char *kind_name = NULL, *kind = NULL;
    if ((rc = sched_only_fields (req->body, allowed, err))
        || (rc = s_identifier (req->body, &kind_name, &kind, want, sizeof want, err)))
        return rc;
    gl_config_t *config = gl_service_config (self->svc);
    const char *country = gl_config_str (config, "GL_INTAKE_PHONE_COUNTRY_CODE", "");
    int64_t cap = gl_config_int (config, "GL_SCHEDULER_EXPORT_SCAN_MAX", 200000, 100, 10000000);
    char capbuf[24], ncbuf[24];
    snprintf (capbuf, sizeof capbuf, "%lld", (long long) cap);
    snprintf (ncbuf, sizeof ncbuf, "%zu", self->config->centre_count);
    const char *argv[6 + SCHED_CENTRES_MAX];
    int argc = 0;
    argv[argc++] = SCHED_PREFIX;
    argv[argc++] = kind;
    argv[argc++] = want;
    argv[argc++] = country;
    argv[argc++] = capbuf;
    argv[argc++] = ncbuf;
    for (size_t i = 0; i < self->config->centre_count && argc < 6 + SCHED_CENTRES_MAX; i++)
        argv[argc++] = self->config->centres[i].code;
    redisReply *r = gl_redis_eval (self->redis, &s_scan_lua, 0, argc, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4
        || r->element[2]->type != REDIS_REPLY_ARRAY || r->element[3]->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    bool partial = r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer != 0;
    long long scanned = r->element[0]->type == REDIS_REPLY_INTEGER ? r->element[0]->integer : 0;
    json_t *appts = json_array (), *targets = json_array ();
    if (s_read (self, r->element[2], "appt", appts, &partial) != 0
        || s_read (self, r->element[3], "target", targets, &partial) != 0) {
        freeReplyObject (r);
        json_decref (appts);
        json_decref (targets);
        return gl_rep_error (err, 503, "unavailable", "", "redis is unreachable");
    }
    freeReplyObject (r);
    gl_metric_inc (s_m_exports, 1);
    gl_info ("scheduler: person export by %s (%s): %zu appointments, %zu campaign targets, "
             "%lld records looked at%s",
             caller.user_id, kind_name, json_array_size (appts), json_array_size (targets),
             scanned, partial ? ", partial" : "");
    *reply = json_pack ("{s:{s:o, s:o}, s:b, s:I}", "records", "appointments", appts,
                        "campaign_targets", targets, "complete", !partial, "scanned",
                        (json_int_t) scanned);
    return 200;
}
