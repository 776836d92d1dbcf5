/*  requests — what notifier answers on the bus (docs/events.md, "Requests"), for
    intake's forwarded admin API (docs/api/notifier.md): a notification's status, the dead
    letters, and replaying one. Every body is the forwarded shape
    {caller:{user_id, roles, units}, params, query, body}; only admins and supervisors are
    answered. Nothing answered carries personal data: ids, codes, counts and times.
*/
#include "notifier.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <ctype.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_LIST_DEFAULT 50
#define S_LIST_MAX     200

static bool
s_allowed (const json_t *body)
{
    json_t *roles = json_object_get (json_object_get (body, "caller"), "roles");
    size_t i;
    json_t *r;
    json_array_foreach (roles, i, r) {
        const char *s = json_string_value (r);
        if (s && (strcmp (s, "admin") == 0 || strcmp (s, "supervisor") == 0))
            return true;
    }
    return false;
}

static const char *
s_param (const json_t *body, const char *where, const char *name)
{
    return json_string_value (json_object_get (json_object_get (body, where), name));
}

static bool
s_stream_id (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n < 3 || n >= GL_WQ_ID_MAX)
        return false;
    int dashes = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-')
            dashes++;
        else if (!isdigit ((unsigned char) s[i]))
            return false;
    }
    return dashes == 1 && s[0] != '-' && s[n - 1] != '-';
}

static json_t *
s_int_or_null (const char *s)
{
    if (!s || !*s || strcmp (s, "0") == 0)
        return json_null ();
    return json_integer (strtoll (s, NULL, 10));
}

//  notifier.status: params.id = notification id.
static int
s_on_status (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    notifier_t *self = arg;
    if (!s_allowed (req->body))
        return gl_rep_error (err, 403, "forbidden", "", "admins and supervisors only");
    const char *id = s_param (req->body, "params", "id");
    if (!id || !gl_id_valid (id))
        return gl_rep_error (err, 400, "bad_request", "id", "id must be 32 lowercase hex digits");
    redisReply *r = gl_redis_cmd (self->redis, "HMGET " NOTIFIER_PREFIX "n:%s template priority "
                                  "corr channels requested_at", id);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
        if (r)
            freeReplyObject (r);
        return gl_rep_error (err, 503, "unavailable", "", "Redis cannot be reached");
    }
    if (!r->element[0]->str) {
        freeReplyObject (r);
        return gl_rep_error (err, 404, "not_found", "id", "no such notification");
    }
    json_t *out = json_pack ("{s:s, s:s, s:s, s:s, s:o}", "notification_id", id, "template",
                             r->element[0]->str, "priority",
                             r->element[1]->str ? r->element[1]->str : "", "corr",
                             r->element[2]->str ? r->element[2]->str : "", "requested_at",
                             s_int_or_null (r->element[4]->str));
    char channels[64];
    snprintf (channels, sizeof channels, "%s", r->element[3]->str ? r->element[3]->str : "");
    freeReplyObject (r);
    json_t *list = json_array ();
    for (char *save = NULL, *ch = strtok_r (channels, ",", &save); ch;
         ch = strtok_r (NULL, ",", &save)) {
        redisReply *d = gl_redis_cmd (self->redis, "HMGET " NOTIFIER_PREFIX "d:%s:%s state "
                                      "attempts total reason sent_at delivered_at next_at lang dlr",
                                      id, ch);
        if (!d || d->type != REDIS_REPLY_ARRAY || d->elements != 9) {
            if (d)
                freeReplyObject (d);
            json_decref (list);
            json_decref (out);
            return gl_rep_error (err, 503, "unavailable", "", "Redis cannot be reached");
        }
#define S_E(i) (d->element[i]->str ? d->element[i]->str : "")
        json_array_append_new (
            list, json_pack ("{s:s, s:s, s:I, s:I, s:s, s:o, s:o, s:o, s:s, s:o}", "channel", ch,
                             "state", *S_E (0) ? S_E (0) : "queued", "attempts",
                             (json_int_t) atoll (S_E (1)), "total_attempts",
                             (json_int_t) atoll (S_E (2)), "reason", S_E (3), "sent_at",
                             s_int_or_null (S_E (4)), "delivered_at", s_int_or_null (S_E (5)),
                             "next_at", s_int_or_null (S_E (6)), "language", S_E (7),
                             "report", s_int_or_null (S_E (8))));
#undef S_E
        freeReplyObject (d);
    }
    json_object_set_new (out, "deliveries", list);
    *reply = out;
    return 200;
}

//  notifier.dead_list: query.after (a dead-letter id), query.limit (1..200).
static int
s_on_dead_list (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    notifier_t *self = arg;
    if (!s_allowed (req->body))
        return gl_rep_error (err, 403, "forbidden", "", "admins and supervisors only");
    const char *after = s_param (req->body, "query", "after");
    const char *limit_s = s_param (req->body, "query", "limit");
    if (after && *after && !s_stream_id (after))
        return gl_rep_error (err, 400, "bad_request", "after", "after must be a dead-letter id");
    int limit = S_LIST_DEFAULT;
    if (limit_s) {
        char *end;
        long v = strtol (limit_s, &end, 10);
        if (!*limit_s || *end || v < 1 || v > S_LIST_MAX)
            return gl_rep_error (err, 400, "bad_request", "limit", "limit must be 1..%d",
                                 S_LIST_MAX);
        limit = (int) v;
    }
    gl_wq_dead_t *entries[S_LIST_MAX];
    int n = 0;
    if (gl_wq_dead_list (self->wq, after, limit, entries, &n) != 0)
        return gl_rep_error (err, 503, "unavailable", "", "Redis cannot be reached");
    json_t *items = json_array ();
    for (int i = 0; i < n; i++) {
        gl_wq_dead_t *e = entries[i];
        size_t plen = 0;
        const void *p = gl_wq_dead_payload (e, &plen);
        json_t *payload = p ? json_loadb (p, plen, 0, NULL) : NULL;
        const char *error = gl_wq_dead_error (e);
        json_array_append_new (
            items,
            json_pack ("{s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:s?, s:I, s:I}", "id",
                       gl_wq_dead_id (e), "notification_id",
                       json_string_value (json_object_get (payload, "notification_id")),
                       "channel", json_string_value (json_object_get (payload, "channel")),
                       "template", json_string_value (json_object_get (payload, "template")),
                       "priority", json_string_value (json_object_get (payload, "priority")),
                       "reason", gl_wq_dead_reason (e) ? gl_wq_dead_reason (e) : "", "error",
                       error, "deliveries", (json_int_t) gl_wq_dead_deliveries (e), "dead_at",
                       (json_int_t) gl_wq_dead_when (e)));
        json_decref (payload);
    }
    json_t *next = n == limit && n > 0 ? json_string (gl_wq_dead_id (entries[n - 1]))
                                       : json_null ();
    for (int i = 0; i < n; i++)
        gl_wq_dead_free (&entries[i]);
    *reply = json_pack ("{s:o, s:o}", "items", items, "next", next);
    return 200;
}

//  notifier.dead_replay: params.id = the dead letter's id.
static int
s_on_replay (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    notifier_t *self = arg;
    if (!s_allowed (req->body))
        return gl_rep_error (err, 403, "forbidden", "", "admins and supervisors only");
    const char *id = s_param (req->body, "params", "id");
    if (!s_stream_id (id))
        return gl_rep_error (err, 400, "bad_request", "id", "id must be a dead-letter id");
    //  Does it exist? gl_wq_dead_replay answers -1 for "no such" and for Redis failures alike.
    gl_wq_dead_t *e[1];
    int n = 0;
    char before[GL_WQ_ID_MAX + 4];
    const char *dash = strchr (id, '-');
    long long seq = atoll (dash + 1);
    if (seq > 0)
        snprintf (before, sizeof before, "%.*s-%lld", (int) (dash - id), id, seq - 1);
    else
        snprintf (before, sizeof before, "%lld-18446744073709551615", atoll (id) - 1);
    if (gl_wq_dead_list (self->wq, atoll (id) > 0 || seq > 0 ? before : NULL, 1, e, &n) != 0)
        return gl_rep_error (err, 503, "unavailable", "", "Redis cannot be reached");
    bool found = n == 1 && strcmp (gl_wq_dead_id (e[0]), id) == 0;
    if (n == 1)
        gl_wq_dead_free (&e[0]);
    if (!found)
        return gl_rep_error (err, 404, "not_found", "id", "no such dead letter");
    char newid[GL_WQ_ID_MAX];
    int rc = gl_wq_dead_replay (self->wq, id, newid);
    if (rc == GL_WQ_DUPLICATE)
        return gl_rep_error (err, 409, "conflict", "id",
                             "that notification is queued or done again already");
    if (rc != 0)
        return gl_rep_error (err, 503, "unavailable", "", "the dead letter could not be replayed");
    const char *user = s_param (req->body, "caller", "user_id");
    gl_info ("notifier: dead letter %s replayed by user %s", id, user ? user : "?");
    *reply = json_pack ("{s:s, s:s, s:b}", "id", id, "queued_as", newid, "replayed", 1);
    return 200;
}

int
requests_init (notifier_t *self)
{
    if (gl_service_on (self->svc, "notifier.status", s_on_status, self) != 0
        || gl_service_on (self->svc, "notifier.dead_list", s_on_dead_list, self) != 0
        || gl_service_on (self->svc, "notifier.dead_replay", s_on_replay, self) != 0)
        return -1;
    return 0;
}
