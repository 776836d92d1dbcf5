/*  api_audit — GET /api/v1/audit: the audit trail for supervisors and admins, newest first,
    filtered by record type and id, actor, action and time range (docs/api/audit.md).

    The time range is a range of stream ids (their ms part is the entry's business time), so it
    costs nothing to narrow; the other filters are applied while reading. One page reads at most
    GL_INTAKE_AUDIT_SCAN entries (default 10000): when a sparse filter runs out of that budget
    the page comes back short (even empty) with a next_cursor to go on from.
*/
#include "audit.h"
#include "auth.h"
#include "intake.h"
#include "gl/gl_log.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_AUDIT_KEY "intake:{intake}:audit"
#define S_BATCH     500

typedef struct {
    const char *record_type;
    const char *record_id;
    const char *actor;
    const char *action;
} s_filter_t;

static bool
s_code (const char *s)
{
    size_t n = strlen (s);
    if (n == 0 || n > AUDIT_CODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'
              || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

//  A stream id "ms-seq" as the API gives it out in cursors.
static bool
s_stream_id (const char *s)
{
    const char *dash = strchr (s, '-');
    size_t len = strlen (s);
    if (!dash || dash == s || len > 41 || (size_t) (dash - s) > 20 || !dash[1]
        || strlen (dash + 1) > 20)
        return false;
    for (const char *p = s; *p; p++)
        if (p != dash && (*p < '0' || *p > '9'))
            return false;
    return true;
}

//  A time bound: 0 .. 2^53 ms. 0, or answered 400 and -1; absent leaves *out.
static int
s_time_param (http_req_t *req, const char *name, int64_t *out)
{
    const char *s = http_query (req, name);
    if (!s)
        return 0;
    char *end;
    long long v = strtoll (s, &end, 10);
    if (!*s || *end || v < 0 || v > (1LL << 53) || (s[0] == '0' && s[1])) {
        http_reply_error (req, 400, "invalid_parameter",
                          "a time in unix milliseconds (a non-negative integer)", name);
        return -1;
    }
    *out = v;
    return 0;
}

static const char *
s_field (const redisReply *fields, const char *name)
{
    for (size_t i = 0; fields && i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING
            && strcmp (fields->element[i]->str, name) == 0
            && fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1]->str;
    return "";
}

static bool
s_matches (const redisReply *fields, const s_filter_t *f)
{
    return (!f->record_type || strcmp (s_field (fields, "type"), f->record_type) == 0)
           && (!f->record_id || strcmp (s_field (fields, "id"), f->record_id) == 0)
           && (!f->actor || strcmp (s_field (fields, "actor"), f->actor) == 0)
           && (!f->action || strcmp (s_field (fields, "action"), f->action) == 0);
}

static json_t *
s_item (const char *id, const redisReply *fields)
{
    json_t *roles = json_array ();
    char buf[128];
    snprintf (buf, sizeof buf, "%s", s_field (fields, "roles"));
    char *save = NULL;
    for (char *code = strtok_r (buf, ",", &save); code; code = strtok_r (NULL, ",", &save))
        json_array_append_new (roles, json_string (code));
    return json_pack ("{s:s, s:I, s:s, s:o, s:s, s:s, s:s, s:s, s:s}", "id", id, "time_ms",
                      (json_int_t) strtoll (s_field (fields, "ts"), NULL, 10), "actor",
                      s_field (fields, "actor"), "roles", roles, "action",
                      s_field (fields, "action"), "record_type", s_field (fields, "type"),
                      "record_id", s_field (fields, "id"), "detail", s_field (fields, "detail"),
                      "request_id", s_field (fields, "req"));
}

//  GET /api/v1/audit
static int
s_audit (intake_t *intake, http_req_t *req)
{
    static const char *const params[]
        = { "record_type", "record_id", "actor", "action", "from", "to", "limit", "cursor", NULL };
    http_page_t page;
    int64_t from = -1, to = -1;
    if (http_query_only (req, params) || http_page (req, &page)
        || s_time_param (req, "from", &from) || s_time_param (req, "to", &to))
        return -1;
    s_filter_t f = { http_query (req, "record_type"), http_query (req, "record_id"),
                     http_query (req, "actor"), http_query (req, "action") };
    static const char *const names[] = { "record_type", "record_id", "actor", "action" };
    const char *values[] = { f.record_type, f.record_id, f.actor, f.action };
    for (size_t i = 0; i < 4; i++)
        if (values[i] && !s_code (values[i]))
            return http_reply_error (req, 400, "invalid_parameter",
                                     "lower-case letters, digits, '.', '_' or '-'", names[i]);
    if (from >= 0 && to >= 0 && from > to)
        return http_reply_error (req, 400, "invalid_parameter", "from is after to", "from");
    if (page.has_cursor && !s_stream_id (page.cursor))
        return http_reply_error (req, 400, "invalid_parameter", "this cursor is not valid",
                                 "cursor");

    //  The read of the trail is itself on the trail.
    if (audit_record_req (intake, req, "read", "audit", "", "query") != 0)
        return http_reply_error (req, 503, "unavailable", "the audit trail cannot be reached now",
                                 NULL);
    char end[48], start[24] = "-";
    if (page.has_cursor)
        snprintf (end, sizeof end, "(%s", page.cursor);
    else if (to >= 0)
        snprintf (end, sizeof end, "%" PRId64, to);
    else
        snprintf (end, sizeof end, "+");
    if (from >= 0)
        snprintf (start, sizeof start, "%" PRId64, from);
    int64_t budget
        = gl_config_int (intake->config, "GL_INTAKE_AUDIT_SCAN", 10000, 100, 10000000);

    json_t *items = json_array ();
    char next[48] = "";
    bool done = false;
    while (!done) {
        int64_t want = budget < S_BATCH ? budget : S_BATCH;
        redisReply *r = gl_redis_cmd (intake->redis, "XREVRANGE %s %s %s COUNT %" PRId64,
                                      S_AUDIT_KEY, end, start, want);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r && r->type == REDIS_REPLY_ERROR)
                gl_error ("audit: XREVRANGE failed: %s", r->str);
            if (r)
                freeReplyObject (r);
            json_decref (items);
            return http_reply_error (req, 503, "unavailable",
                                     "the audit trail cannot be reached now", NULL);
        }
        const char *last = NULL;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2
                || e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            last = e->element[0]->str;
            budget--;
            if (s_matches (e->element[1], &f))
                json_array_append_new (items, s_item (last, e->element[1]));
            if (json_array_size (items) == (size_t) page.limit) {
                //  Full: more may follow unless this was the range's last entry.
                if (i + 1 < r->elements || r->elements == (size_t) want)
                    snprintf (next, sizeof next, "%s", last);
                done = true;
                break;
            }
        }
        if (!done && (r->elements < (size_t) want || !last))
            done = true;                //  the range is exhausted
        else if (!done && budget <= 0) {
            snprintf (next, sizeof next, "%s", last);
            done = true;
        }
        else if (!done)
            snprintf (end, sizeof end, "(%s", last);
        freeReplyObject (r);
    }
    return http_reply_page (req, items, next[0] ? next : NULL);
}

void
api_audit_routes (intake_t *intake)
{
    http_route (intake->http, "GET", "/api/v1/audit", GL_ROLE_SUPERVISOR | GL_ROLE_ADMIN,
                s_audit);
}
