/*  dlr — Kannel's delivery reports: a small HTTP listener (libevent evhttp, a thread of its own
    with a Redis connection of its own) for the dlr-url callbacks sms_kannel.c asks for.

        GET /dlr?d=<notification id>:sms&a=<attempt>&sig=<signature>&s=<type>

    The signature (dlr_sign, HMAC-SHA256 of "<delivery>|<attempt>" under GL_NOTIFIER_DLR_SECRET)
    was put in the URL by notifier itself, so a report for anything else is refused (403).
    A valid report is written on the delivery record (dlr, dlr_attempt, dlr_at) — a later
    attempt's report wins, a final one (1 delivered, 2 failed, 16 rejected) is not overwritten by
    an intermediate one (4 buffered, 8 accepted) — and a "delivered" report is queued for the
    loop to announce (notification.delivered). Answers: 200, 400 (malformed, naming the
    parameter), 403 (signature), 404 (no such delivery), 503 (Redis).
*/
#include "notifier.h"
#include "gl/gl_clock.h"
#include "gl/gl_health.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_QUERY_MAX 2048

struct _dlr_t {
    gl_redis_t *redis;
    char *secret;
    struct event_base *base;
    struct evhttp *http;
    struct event *tick;
    int port;
    pthread_t thread;
    bool started;
    atomic_bool stop;
};

static gl_redis_script_t s_script = {
    .source =
        "if redis.call ('EXISTS', KEYS[1]) == 0 then return 0 end\n"
        "local cur = tonumber (redis.call ('HGET', KEYS[1], 'dlr_attempt') or '0') or 0\n"
        "local prev = tonumber (redis.call ('HGET', KEYS[1], 'dlr') or '0') or 0\n"
        "local a, s = tonumber (ARGV[1]), tonumber (ARGV[2])\n"
        "if a < cur then return 1 end\n"
        "if a == cur and (prev == 1 or prev == 2 or prev == 16) and (s == 4 or s == 8) then\n"
        "  return 1 end\n"
        "redis.call ('HSET', KEYS[1], 'dlr', ARGV[2], 'dlr_attempt', ARGV[1], 'dlr_at', ARGV[3])\n"
        "if s == 1 then redis.call ('SADD', KEYS[2], ARGV[4]) end\n"
        "return 1\n",
};

//  Percent-decode src[0..n) into out (size outlen). -1 on a bad escape, a NUL, or no room.
static int
s_decode (const char *src, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= n || !isxdigit ((unsigned char) src[i + 1])
                || !isxdigit ((unsigned char) src[i + 2]))
                return -1;
            char hex[3] = { src[i + 1], src[i + 2], 0 };
            c = (char) strtol (hex, NULL, 16);
            i += 2;
        }
        else if (c == '+')
            c = ' ';
        if (c == 0 || o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    out[o] = 0;
    return 0;
}

static int
s_reason (char *reason, size_t len, const char *what)
{
    snprintf (reason, len, "%s", what);
    return -1;
}

static bool
s_int (const char *s, int min, int max, int *out)
{
    if (!*s || strlen (s) > 6)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit ((unsigned char) *p))
            return false;
    int v = atoi (s);
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

int
dlr_parse (const char *query, const char *secret, dlr_report_t *out, char *reason,
           size_t reasonlen)
{
    memset (out, 0, sizeof *out);
    if (!query)
        return s_reason (reason, reasonlen, "no query");
    size_t qlen = strlen (query);
    if (qlen > S_QUERY_MAX)
        return s_reason (reason, reasonlen, "query too long");
    char d[80] = "", a[16] = "", s[16] = "", sig[48] = "";
    bool have_d = false, have_a = false, have_s = false, have_sig = false;
    const char *p = query, *end = query + qlen;
    while (p < end) {
        const char *amp = memchr (p, '&', (size_t) (end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr (p, '=', (size_t) (stop - p));
        if (eq) {
            size_t klen = (size_t) (eq - p);
            char *dst = NULL;
            size_t dstlen = 0;
            bool *have = NULL;
            if (klen == 1 && *p == 'd')
                dst = d, dstlen = sizeof d, have = &have_d;
            else if (klen == 1 && *p == 'a')
                dst = a, dstlen = sizeof a, have = &have_a;
            else if (klen == 1 && *p == 's')
                dst = s, dstlen = sizeof s, have = &have_s;
            else if (klen == 3 && memcmp (p, "sig", 3) == 0)
                dst = sig, dstlen = sizeof sig, have = &have_sig;
            if (dst) {
                if (*have)
                    return s_reason (reason, reasonlen, "parameter given twice");
                if (s_decode (eq + 1, (size_t) (stop - eq - 1), dst, dstlen) != 0)
                    return s_reason (reason, reasonlen, "parameter malformed");
                *have = true;
            }
        }
        p = amp ? amp + 1 : end;
    }
    if (!have_d || strlen (d) != GL_ID_LEN + 4 || strcmp (d + GL_ID_LEN, ":sms") != 0)
        return s_reason (reason, reasonlen, "d");
    char id[GL_ID_LEN + 1];
    memcpy (id, d, GL_ID_LEN);
    id[GL_ID_LEN] = 0;
    if (!gl_id_valid (id))
        return s_reason (reason, reasonlen, "d");
    if (!have_a || !s_int (a, 1, 1000, &out->attempt))
        return s_reason (reason, reasonlen, "a");
    if (!have_s || !s_int (s, 1, 16, &out->status)
        || !(out->status == 1 || out->status == 2 || out->status == 4 || out->status == 8
             || out->status == 16))
        return s_reason (reason, reasonlen, "s");
    char want[33];
    dlr_sign (secret, d, out->attempt, want);
    if (!have_sig || strlen (sig) != 32 || sodium_memcmp (sig, want, 32) != 0)
        return s_reason (reason, reasonlen, "sig");
    snprintf (out->delivery, sizeof out->delivery, "%s", d);
    return 0;
}

static void
s_answer (struct evhttp_request *req, int code, const char *text)
{
    struct evbuffer *b = evbuffer_new ();
    if (b)
        evbuffer_add_printf (b, "%s\n", text);
    evhttp_add_header (evhttp_request_get_output_headers (req), "Content-Type", "text/plain");
    evhttp_send_reply (req, code, code == 200 ? "OK" : "Refused", b);
    if (b)
        evbuffer_free (b);
}

static void
s_on_request (struct evhttp_request *req, void *arg)
{
    dlr_t *self = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri (req);
    const char *path = uri ? evhttp_uri_get_path (uri) : NULL;
    if (evhttp_request_get_command (req) != EVHTTP_REQ_GET || !path || strcmp (path, "/dlr") != 0) {
        s_answer (req, 404, "not found");
        return;
    }
    dlr_report_t rep;
    char reason[64];
    if (dlr_parse (evhttp_uri_get_query (uri), self->secret, &rep, reason, sizeof reason) != 0) {
        gl_warn ("notifier: delivery report refused: %s", reason);
        s_answer (req, strcmp (reason, "sig") == 0 ? 403 : 400, reason);
        return;
    }
    char key[160], att[16], st[16], now[24];
    snprintf (key, sizeof key, NOTIFIER_PREFIX "d:%s", rep.delivery);
    snprintf (att, sizeof att, "%d", rep.attempt);
    snprintf (st, sizeof st, "%d", rep.status);
    snprintf (now, sizeof now, "%" PRId64, gl_now_ms ());
    const char *argv[] = { key, NOTIFIER_PREFIX "dlrnew", att, st, now, rep.delivery };
    redisReply *r = gl_redis_eval (self->redis, &s_script, 2, 6, argv, NULL);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (r)
            freeReplyObject (r);
        s_answer (req, 503, "unavailable");
        return;
    }
    long long found = r->integer;
    freeReplyObject (r);
    if (!found) {
        s_answer (req, 404, "no such delivery");
        return;
    }
    gl_debug ("notifier: report %d for %s attempt %d", rep.status, rep.delivery, rep.attempt);
    s_answer (req, 200, "ok");
}

static void
s_on_tick (evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    dlr_t *self = arg;
    if (atomic_load (&self->stop))
        event_base_loopbreak (self->base);
}

static void *
s_run (void *arg)
{
    dlr_t *self = arg;
    event_base_dispatch (self->base);
    return NULL;
}

dlr_t *
dlr_new (gl_config_t *config, const char *host, int port, const char *secret, char *err,
         size_t errlen)
{
    assert (config && host && secret);
    dlr_t *self = calloc (1, sizeof (dlr_t));
    if (!self)
        return NULL;
    atomic_init (&self->stop, false);
    self->secret = strdup (secret);
    self->redis = gl_redis_new_from_config (config);
    self->base = event_base_new ();
    self->http = self->base ? evhttp_new (self->base) : NULL;
    if (!self->secret || !self->redis || !self->http) {
        snprintf (err, errlen, "delivery reports: could not start");
        dlr_destroy (&self);
        return NULL;
    }
    evhttp_set_max_headers_size (self->http, 8192);
    evhttp_set_max_body_size (self->http, 1024);
    evhttp_set_timeout (self->http, 10);
    evhttp_set_allowed_methods (self->http, EVHTTP_REQ_GET);
    evhttp_set_gencb (self->http, s_on_request, self);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle (self->http, host,
                                                                        (ev_uint16_t) port);
    if (!bound) {
        snprintf (err, errlen, "delivery reports: cannot listen on %s:%d", host, port);
        dlr_destroy (&self);
        return NULL;
    }
    self->port = gl_health_bound_port (bound);
    self->tick = event_new (self->base, -1, EV_PERSIST, s_on_tick, self);
    struct timeval tv = { 0, 100000 };
    event_add (self->tick, &tv);
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        snprintf (err, errlen, "delivery reports: no thread");
        dlr_destroy (&self);
        return NULL;
    }
    self->started = true;
    gl_info ("notifier: delivery reports on %s:%d", host, self->port);
    return self;
}

void
dlr_destroy (dlr_t **self_p)
{
    assert (self_p);
    dlr_t *self = *self_p;
    if (!self)
        return;
    if (self->started) {
        atomic_store (&self->stop, true);
        pthread_join (self->thread, NULL);
    }
    if (self->tick)
        event_free (self->tick);
    if (self->http)
        evhttp_free (self->http);
    if (self->base)
        event_base_free (self->base);
    gl_redis_destroy (&self->redis);
    if (self->secret)
        sodium_memzero (self->secret, strlen (self->secret));
    free (self->secret);
    free (self);
    *self_p = NULL;
}

int
dlr_port (dlr_t *self)
{
    return self->port;
}
