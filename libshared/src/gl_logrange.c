/*  gl_logrange — see gl_logrange.h. */
#include "gl/gl_logrange.h"
#include "gl/gl_buslog.h"
#include "gl/gl_event.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <string.h>

typedef struct {
    json_t *events;
    uint64_t bad;
} s_collect_t;

static json_t *
s_event_json (const gl_event_t *ev)
{
    return json_pack ("{s:i, s:s, s:s, s:s, s:I, s:I, s:s, s:O}", "v", (int) ev->v, "id", ev->id,
                      "type", ev->type, "src", ev->src, "seq", (json_int_t) ev->seq, "ts",
                      (json_int_t) ev->ts, "corr", ev->corr, "data", ev->data);
}

static int
s_collect (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    s_collect_t *c = arg;
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    if (!ev) {
        c->bad++;
        return 0;
    }
    json_t *j = s_event_json (ev);
    gl_event_destroy (&ev);
    if (j)
        json_array_append_new (c->events, j);
    return 0;
}

static int
s_field_error (gl_rep_error_t *err, const char *field, const char *message)
{
    snprintf (err->code, sizeof err->code, "invalid");
    snprintf (err->field, sizeof err->field, "%s", field);
    snprintf (err->message, sizeof err->message, "%s", message);
    return 400;
}

//  An unsigned field in [min, max]; absent gives def. Returns 0 or -1 (wrong type or range).
static int
s_uint (const json_t *body, const char *key, uint64_t min, uint64_t max, uint64_t def,
        uint64_t *out)
{
    json_t *v = json_object_get (body, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_integer (v) || json_integer_value (v) < 0
        || (uint64_t) json_integer_value (v) < min || (uint64_t) json_integer_value (v) > max)
        return -1;
    *out = (uint64_t) json_integer_value (v);
    return 0;
}

static int
s_on_range (void *arg, const gl_rep_request_t *req, json_t **reply_body, gl_rep_error_t *err)
{
    gl_redis_t *redis = arg;
    const char *src = json_string_value (json_object_get (req->body, "src"));
    uint64_t from, to, max;
    const char *key;
    json_t *value;
    json_object_foreach (req->body, key, value)
        if (strcmp (key, "src") && strcmp (key, "from") && strcmp (key, "to") && strcmp (key, "max"))
            return s_field_error (err, key, "unknown field");
    if (!src || !gl_event_src_valid (src))
        return s_field_error (err, "src", "src must be a source name such as intake-1");
    if (!json_object_get (req->body, "from")
        || s_uint (req->body, "from", 1, INT64_MAX, 1, &from) != 0)
        return s_field_error (err, "from", "from must be an integer >= 1");
    if (s_uint (req->body, "to", 0, INT64_MAX, 0, &to) != 0 || (to && to < from))
        return s_field_error (err, "to", "to must be 0 (the end) or an integer >= from");
    if (s_uint (req->body, "max", 1, GL_LOGRANGE_MAX, 500, &max) != 0)
        return s_field_error (err, "max", "max must be an integer from 1 to 1000");

    gl_srcinfo_t info;
    if (gl_srcinfo_read (redis, src, &info) != 0) {
        snprintf (err->code, sizeof err->code, "unavailable");
        snprintf (err->message, sizeof err->message, "the event store is unreachable");
        return 503;
    }
    if (info.seq == 0) {
        snprintf (err->code, sizeof err->code, "unknown_source");
        snprintf (err->field, sizeof err->field, "src");
        snprintf (err->message, sizeof err->message, "no events from this source");
        return 404;
    }
    s_collect_t c = { json_array (), 0 };
    uint64_t first_avail = 0;
    if (gl_log_read (redis, src, from, to, max, s_collect, &c, &first_avail) < 0) {
        json_decref (c.events);
        snprintf (err->code, sizeof err->code, "unavailable");
        snprintf (err->message, sizeof err->message, "the event store is unreachable");
        return 503;
    }
    if (c.bad)
        gl_error ("log.range: %llu unreadable entries in the log of %s",
                  (unsigned long long) c.bad, src);
    *reply_body = json_pack ("{s:s, s:o, s:I, s:I, s:I}", "src", src, "events", c.events,
                             "first_avail", (json_int_t) first_avail, "head",
                             (json_int_t) info.seq, "epoch", (json_int_t) info.epoch);
    return 200;
}

int
gl_logrange_register (gl_rep_t *rep, gl_redis_t *redis)
{
    assert (rep && redis);
    return gl_rep_on (rep, "log.range", s_on_range, redis);
}

int
gl_logrange_fetch (gl_req_t *client, const char *src, uint64_t from, uint64_t to, size_t max,
                   int timeout_ms, gl_reply_t *reply)
{
    json_t *body = json_pack ("{s:s, s:I, s:I, s:I}", "src", src, "from", (json_int_t) from, "to",
                              (json_int_t) to, "max", (json_int_t) max);
    int rc = gl_req_call (client, "log.range", "", body, timeout_ms, reply);
    json_decref (body);
    return rc == 0 && reply->status == 200 ? 0 : -1;
}
