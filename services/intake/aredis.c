/*  aredis — see aredis.h. */
#include "aredis.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdlib.h>
#include <string.h>

#define S_RECONNECT_MS  1000
#define S_WATCH_MS      250
#define S_SCRIPTS_MAX   64

//  One command in flight.
typedef struct {
    aredis_t *owner;
    aredis_fn *fn;
    void *arg;
} s_call_t;

struct _aredis_t {
    gl_redis_t *sync;
    struct event_base *base;
    int timeout_ms;
    redisAsyncContext *ac;          //  NULL while disconnected
    bool ready;                     //  connected and authenticated
    bool destroying;
    struct event *reconnect;
    struct event *watch;
    //  Send times of the commands in flight, oldest first (Redis answers in order).
    int64_t sent_at[AREDIS_INFLIGHT_MAX];
    size_t head, inflight;
    //  Scripts loaded on this connection (SCRIPT LOAD sent ahead of their first EVALSHA, so a
    //  Redis that restarted and forgot its script cache never answers NOSCRIPT here).
    const gl_redis_script_t *loaded[S_SCRIPTS_MAX];
    size_t nloaded;
    gl_metric_t *m_sent;            //  commands sent
    gl_metric_t *m_lost;            //  answered NULL: the connection went first
    gl_metric_t *m_inflight;
};

static void s_connect (aredis_t *self);

static void
s_schedule_reconnect (aredis_t *self)
{
    self->ac = NULL;
    self->ready = false;
    self->head = self->inflight = 0;
    self->nloaded = 0;
    if (self->destroying)
        return;
    struct timeval tv = { .tv_sec = S_RECONNECT_MS / 1000, .tv_usec = S_RECONNECT_MS % 1000 * 1000 };
    evtimer_add (self->reconnect, &tv);
}

static void
s_on_connect (const redisAsyncContext *ac, int status)
{
    aredis_t *self = ac->data;
    if (status != REDIS_OK) {
        gl_debug ("aredis: cannot connect (%s); the synchronous connection serves meanwhile",
                  ac->errstr);
        s_schedule_reconnect (self);    //  hiredis frees the context after this returns
        return;
    }
    const char *host, *user, *password;
    int port;
    gl_redis_peer (self->sync, &host, &port, &user, &password);
    if (!password) {
        self->ready = true;
        gl_info ("aredis: connected to %s:%d", host, port);
    }
}

static void
s_on_disconnect (const redisAsyncContext *ac, int status)
{
    aredis_t *self = ac->data;
    if (status != REDIS_OK && !self->destroying)
        gl_warn ("aredis: connection lost (%s); reconnecting", ac->errstr);
    s_schedule_reconnect (self);
}

static void
s_on_auth (redisAsyncContext *ac, void *r, void *privdata)
{
    (void) privdata;
    aredis_t *self = ac->data;
    redisReply *reply = r;
    if (!reply)
        return;                         //  disconnected meanwhile
    if (reply->type == REDIS_REPLY_ERROR) {
        gl_error ("aredis: AUTH refused (%s)", reply->str);
        redisAsyncDisconnect (ac);
        return;
    }
    self->ready = true;
    gl_info ("aredis: connected and authenticated");
}

static void
s_connect (aredis_t *self)
{
    const char *host, *user, *password;
    int port;
    gl_redis_peer (self->sync, &host, &port, &user, &password);
    redisAsyncContext *ac = redisAsyncConnect (host, port);
    if (!ac) {
        s_schedule_reconnect (self);
        return;
    }
    if (ac->err) {
        gl_debug ("aredis: cannot connect (%s)", ac->errstr);
        redisAsyncFree (ac);
        s_schedule_reconnect (self);
        return;
    }
    ac->data = self;
    if (redisLibeventAttach (ac, self->base) != REDIS_OK) {
        redisAsyncFree (ac);
        s_schedule_reconnect (self);
        return;
    }
    redisAsyncSetConnectCallback (ac, s_on_connect);
    redisAsyncSetDisconnectCallback (ac, s_on_disconnect);
    self->ac = ac;
    self->ready = false;
    if (password) {
        const char *argv[3] = { "AUTH", user ? user : password, password };
        redisAsyncCommandArgv (ac, s_on_auth, NULL, user ? 3 : 2, argv, NULL);
    }
}

static void
s_on_reconnect (evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    aredis_t *self = arg;
    if (!self->ac)
        s_connect (self);
}

//  A command older than the timeout: Redis stalls (or the network does). Drop the connection,
//  which answers everything in flight with NULL.
static void
s_on_watch (evutil_socket_t fd, short what, void *arg)
{
    (void) fd;
    (void) what;
    aredis_t *self = arg;
    if (self->ac && self->inflight
        && gl_mono_ms () - self->sent_at[self->head] > self->timeout_ms) {
        gl_warn ("aredis: no answer for %d ms (%zu commands in flight); dropping the connection",
                 self->timeout_ms, self->inflight);
        //  Not redisAsyncDisconnect: it would wait for the replies that do not come.
        redisAsyncContext *ac = self->ac;
        redisAsyncFree (ac);            //  answers them NULL; s_on_disconnect reschedules
        if (self->ac == ac)
            s_schedule_reconnect (self);
    }
}

aredis_t *
aredis_new (gl_redis_t *sync, struct event_base *base, int timeout_ms)
{
    assert (sync && base);
    aredis_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->sync = sync;
    self->base = base;
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    self->reconnect = evtimer_new (base, s_on_reconnect, self);
    self->watch = event_new (base, -1, EV_PERSIST, s_on_watch, self);
    if (!self->reconnect || !self->watch) {
        aredis_destroy (&self);
        return NULL;
    }
    self->m_sent = gl_metrics_counter (
        "greenline_intake_redis_async_commands_total",
        "Writes sent over intake's asynchronous Redis connection (the others go synchronously).",
        NULL);
    self->m_lost = gl_metrics_counter (
        "greenline_intake_redis_async_lost_total",
        "Asynchronous writes whose connection was lost before the answer (answered 503).", NULL);
    self->m_inflight = gl_metrics_gauge ("greenline_intake_redis_async_inflight",
                                         "Asynchronous writes sent and not answered yet.", NULL);
    struct timeval tv = { .tv_sec = 0, .tv_usec = S_WATCH_MS * 1000 };
    event_add (self->watch, &tv);
    s_connect (self);
    return self;
}

void
aredis_destroy (aredis_t **self_p)
{
    assert (self_p);
    aredis_t *self = *self_p;
    if (!self)
        return;
    self->destroying = true;
    if (self->ac)
        redisAsyncFree (self->ac);      //  calls every callback in flight with NULL
    self->ac = NULL;
    if (self->reconnect)
        event_free (self->reconnect);
    if (self->watch)
        event_free (self->watch);
    free (self);
    *self_p = NULL;
}

static void
s_on_reply (redisAsyncContext *ac, void *r, void *privdata)
{
    s_call_t *call = privdata;
    aredis_t *self = call->owner;
    redisReply *reply = r;
    if (self->inflight) {
        self->head = (self->head + 1) % AREDIS_INFLIGHT_MAX;
        self->inflight--;
    }
    if (self->m_inflight)
        gl_metric_add (self->m_inflight, -1);
    if (!reply && self->m_lost)
        gl_metric_inc (self->m_lost, 1);
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp (reply->str, "READONLY", 8) == 0
        && self->ac == ac && !self->destroying) {
        gl_warn ("aredis: the server is a replica now; the synchronous connection takes over");
        redisAsyncDisconnect (ac);
    }
    aredis_fn *fn = call->fn;
    void *arg = call->arg;
    free (call);
    fn (reply, arg);
}

//  Send av/al (complete, lengths set). 0, -1 or -2 as aredis_eval.
static int
s_send (aredis_t *self, int argc, const char **av, const size_t *al, aredis_fn *fn, void *arg)
{
    if (!self->ac || !self->ready)
        return -1;
    if (self->inflight >= AREDIS_INFLIGHT_MAX)
        return -2;
    s_call_t *call = malloc (sizeof *call);
    if (!call)
        return -2;
    *call = (s_call_t) { .owner = self, .fn = fn, .arg = arg };
    if (redisAsyncCommandArgv (self->ac, s_on_reply, call, argc, av, al) != REDIS_OK) {
        free (call);
        return -1;
    }
    self->sent_at[(self->head + self->inflight) % AREDIS_INFLIGHT_MAX] = gl_mono_ms ();
    self->inflight++;
    if (self->m_sent)
        gl_metric_inc (self->m_sent, 1);
    if (self->m_inflight)
        gl_metric_add (self->m_inflight, 1);
    return 0;
}

static void
s_on_loaded (redisReply *reply, void *arg)
{
    (void) arg;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        gl_error ("aredis: SCRIPT LOAD refused (%s)", reply->str);
}

//  Make sure script is loaded on this connection: SCRIPT LOAD goes first, in order, the first
//  time. 0, or -1 (not connected, or too many scripts: use the synchronous connection).
static int
s_load (aredis_t *self, const gl_redis_script_t *script)
{
    for (size_t i = 0; i < self->nloaded; i++)
        if (self->loaded[i] == script)
            return 0;
    if (self->nloaded >= S_SCRIPTS_MAX)
        return -1;
    const char *av[3] = { "SCRIPT", "LOAD", script->source };
    size_t al[3] = { 6, 4, strlen (script->source) };
    if (s_send (self, 3, av, al, s_on_loaded, NULL) != 0)
        return -1;
    self->loaded[self->nloaded++] = script;
    return 0;
}

int
aredis_eval (aredis_t *self, gl_redis_script_t *script, int nkeys, int argc,
             const char **argv, const size_t *lens, aredis_fn *fn, void *arg)
{
    assert (self && script && argv && fn && argc >= nkeys);
    if (!script->sha[0])
        return -1;
    if (s_load (self, script) != 0)
        return -1;
    const char **av = malloc (sizeof *av * (size_t) (argc + 3));
    size_t *al = malloc (sizeof *al * (size_t) (argc + 3));
    if (!av || !al) {
        free (av);
        free (al);
        return -2;
    }
    char nk[16];
    snprintf (nk, sizeof nk, "%d", nkeys);
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = script->sha;
    al[1] = 40;
    av[2] = nk;
    al[2] = strlen (nk);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = lens ? lens[i] : strlen (argv[i]);
    }
    int rc = s_send (self, argc + 3, av, al, fn, arg);
    free (av);
    free (al);
    return rc;
}

int
aredis_cmdargv (aredis_t *self, int argc, const char **argv, const size_t *lens,
                aredis_fn *fn, void *arg)
{
    assert (self && argv && argc > 0 && fn);
    size_t *al = malloc (sizeof *al * (size_t) argc);
    if (!al)
        return -2;
    for (int i = 0; i < argc; i++)
        al[i] = lens ? lens[i] : strlen (argv[i]);
    int rc = s_send (self, argc, argv, al, fn, arg);
    free (al);
    return rc;
}

redisReply *
aredis_settle (aredis_t *self, redisReply *reply, gl_redis_script_t *script, int nkeys, int argc,
               const char **argv, const size_t *lens, redisReply **owned)
{
    assert (self && script && argv && owned);
    *owned = NULL;
    if (reply && (gl_redis_reply_is_error (reply, "READONLY")
                  || gl_redis_reply_is_error (reply, "NOSCRIPT")))
        reply = *owned = gl_redis_eval (self->sync, script, nkeys, argc, argv, lens);
    return reply;
}

size_t
aredis_inflight (aredis_t *self)
{
    assert (self);
    return self->inflight;
}

bool
aredis_ready (aredis_t *self)
{
    assert (self);
    return self->ac && self->ready;
}
