/*  gl_service — see gl_service.h. The loop is one zmq_poll over the signalfd, the request socket
    and every subscriber's socket; its timeout is the nearest of the publisher's tick, the
    subscribers' ticks, the timers, the readiness check and the outbox sweep.
*/
#include "gl/gl_service.h"
#include "gl/gl_busmetrics.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_logrange.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#ifndef GL_VERSION
#define GL_VERSION "0.1.0-dev"
#endif

#define S_MAX_SUBS      8
#define S_MAX_TIMERS    32
#define S_MAX_CHECKS    8
#define S_MAX_CLIENTS   8
#define S_MAX_REPLICAS  16
#define S_REP_BURST     64          //  requests answered before looking at the other sockets
#define S_READY_MS      1000
#define S_SWEEP_MS      2000
#define S_NAME_MAX      63

typedef struct {
    gl_sub_t *sub;
    int64_t due;                    //  gl_mono_ms of the next tick
} s_sub_t;

typedef struct {
    gl_service_timer_fn *fn;
    void *arg;
    int64_t period;
    int64_t due;
} s_timer_t;

typedef struct {
    gl_service_ready_fn *fn;
    void *arg;
} s_check_t;

typedef struct {
    char name[S_NAME_MAX + 1];
    gl_req_t *req;                  //  NULL when the endpoint is not configured
    int timeout_ms;
} s_client_t;

struct _gl_service_t {
    char name[S_NAME_MAX + 1];
    gl_config_t *config;
    gl_health_t *health;
    gl_redis_t *redis;
    gl_pub_t *pub;
    gl_rep_t *rep;
    gl_outbox_t *outbox;
    gl_busmetrics_t *metrics;
    gl_curve_t *curve;              //  NULL: the bus is plain (GL_BUS_CURVE_CERT not set)
    s_sub_t subs[S_MAX_SUBS];
    size_t nsubs;
    s_timer_t timers[S_MAX_TIMERS];
    size_t ntimers;
    s_check_t checks[S_MAX_CHECKS];
    size_t nchecks;
    s_client_t clients[S_MAX_CLIENTS];
    size_t nclients;
    char token[GL_REQ_AUTH_MAX + 1];    //  the first of GL_BUS_TOKENS, sent to other services
    char idem_prefix[S_NAME_MAX * 2 + 16];
    char outbox_key[S_NAME_MAX * 2 + 16];
    int sfd;                        //  signalfd for SIGINT/SIGTERM
    bool stopping;
    bool failed;
    bool ready;
};

//  --------------------------------------------------------------------------------------------
//  Start

static bool
s_name_valid (const char *name)
{
    size_t n = strlen (name);
    if (n == 0 || n > S_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!islower ((unsigned char) name[i]) && !isdigit ((unsigned char) name[i])
            && name[i] != '_')
            return false;
    return true;
}

static int
s_start_bus (gl_service_t *self, char *err, size_t errlen)
{
    gl_config_t *config = self->config;
    gl_pub_opts_t opts;
    gl_pub_opts_default (&opts);
    opts.bind = gl_config_str (config, "GL_BUS_BIND_PUB", "tcp://127.0.0.1:*");
    const char *router = gl_config_str (config, "GL_BUS_BIND_ROUTER", "tcp://127.0.0.1:*");
    const char *source = gl_config_str (config, "GL_SOURCE", NULL);
    const char *tokens = gl_config_str (config, "GL_BUS_TOKENS", NULL);
    int64_t idem_ms = gl_config_int (config, "GL_BUS_IDEM_TTL_MS", 86400000, 1000, 604800000);
    if (gl_config_error (config)) {
        snprintf (err, errlen, "%s", gl_config_error (config));
        return -1;
    }
    if (gl_curve_new_from_config (config, &self->curve, err, errlen) != 0)
        return -1;
    opts.curve = self->curve;
    if (self->curve)
        gl_info ("%s: CURVE is on: bus key %s", self->name, gl_curve_public (self->curve));
    if (source && *source) {
        //  A replica restarted after a crash waits for its old lease to lapse, so that it
        //  continues its own log rather than taking another name.
        opts.wait_ms = opts.lease_ms + 2000;
        self->pub = gl_pub_new (self->redis, source, &opts, err, errlen);
    }
    else
        self->pub = gl_pub_new_auto (self->redis, self->name, S_MAX_REPLICAS, &opts, err, errlen);
    if (!self->pub)
        return -1;

    self->rep = gl_rep_new_curve (router, self->curve);
    if (!self->rep) {
        snprintf (err, errlen, "cannot bind the request socket on %s", router);
        return -1;
    }
    if (tokens && *tokens) {
        gl_rep_set_tokens (self->rep, tokens);
        gl_req_first_token (tokens, self->token);
    }
    else
        gl_warn ("%s: GL_BUS_TOKENS is not set: bus requests are not authenticated", self->name);
    snprintf (self->idem_prefix, sizeof self->idem_prefix, "%s:{%s}:idem:", self->name,
              self->name);
    gl_rep_set_idempotency (self->rep, self->redis, self->idem_prefix, idem_ms);
    if (gl_logrange_register (self->rep, self->redis) != 0) {
        snprintf (err, errlen, "cannot register log.range");
        return -1;
    }
    snprintf (self->outbox_key, sizeof self->outbox_key, "%s:{%s}:outbox", self->name,
              self->name);
    char metrics[S_NAME_MAX + 16];
    snprintf (metrics, sizeof metrics, "greenline_%s", self->name);
    self->outbox = gl_outbox_new (self->redis, self->pub, self->outbox_key, metrics);
    self->metrics = gl_busmetrics_new (self->name);
    if (!self->outbox || !self->metrics) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

gl_service_t *
gl_service_new (const char *name, char *err, size_t errlen)
{
    assert (name && err && errlen > 0);
    err[0] = 0;
    if (!s_name_valid (name)) {
        snprintf (err, errlen, "service name must be 1..63 of a-z 0-9 _");
        return NULL;
    }
    //  SIGINT and SIGTERM are blocked in every thread (threads inherit the mask) and taken from a
    //  signalfd by the loop; CZMQ's own handler stays off.
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    signal (SIGPIPE, SIG_IGN);
    zsys_handler_set (NULL);

    gl_service_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    snprintf (self->name, sizeof self->name, "%s", name);
    self->sfd = signalfd (-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
    gl_log_init_from_env (name);
    self->config = gl_config_new_from_env (err, errlen);
    if (self->sfd < 0 || !self->config) {
        if (self->sfd < 0)
            snprintf (err, errlen, "signalfd: %s", strerror (errno));
        gl_service_destroy (&self);
        return NULL;
    }
    if (!gl_config_str (self->config, "GL_REDIS_RECONNECT_MS", NULL))
        gl_config_set (self->config, "GL_REDIS_RECONNECT_MS", "250");
    //  Read here only to check them; gl_redis_new_from_config reads them again.
    gl_config_int (self->config, "GL_REDIS_PORT", 6379, 1, 65535);
    gl_config_int (self->config, "GL_REDIS_TIMEOUT_MS", 2000, 1, 600000);
    gl_config_int (self->config, "GL_REDIS_RECONNECT_MS", 10000, 0, 3600000);
    if (gl_config_error (self->config)) {
        snprintf (err, errlen, "%s", gl_config_error (self->config));
        gl_service_destroy (&self);
        return NULL;
    }
    self->health = gl_health_new_from_config (name, self->config);
    if (!self->health) {
        snprintf (err, errlen, "%s", gl_config_error (self->config)
                                         ? gl_config_error (self->config)
                                         : "cannot start the health endpoint");
        gl_service_destroy (&self);
        return NULL;
    }
    self->redis = gl_redis_new_from_config (self->config);
    if (!self->redis) {
        snprintf (err, errlen, "cannot set up the Redis connection");
        gl_service_destroy (&self);
        return NULL;
    }
    if (s_start_bus (self, err, errlen) != 0) {
        gl_service_destroy (&self);
        return NULL;
    }
    gl_info ("%s: source %s, requests on %s, events on %s", name, gl_pub_src (self->pub),
             gl_rep_endpoint (self->rep), gl_pub_endpoint (self->pub));
    return self;
}

void
gl_service_destroy (gl_service_t **self_p)
{
    assert (self_p);
    gl_service_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nsubs; i++)
        gl_sub_destroy (&self->subs[i].sub);
    for (size_t i = 0; i < self->nclients; i++)
        gl_req_destroy (&self->clients[i].req);
    gl_outbox_destroy (&self->outbox);
    gl_busmetrics_destroy (&self->metrics);
    gl_rep_destroy (&self->rep);
    gl_pub_destroy (&self->pub);
    gl_redis_destroy (&self->redis);
    gl_health_destroy (&self->health);
    gl_curve_destroy (&self->curve);
    gl_config_destroy (&self->config);
    if (self->sfd >= 0)
        close (self->sfd);
    memset (self->token, 0, sizeof self->token);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------------------------
//  Accessors

const char *
gl_service_name (gl_service_t *self)
{
    assert (self);
    return self->name;
}

gl_config_t *
gl_service_config (gl_service_t *self)
{
    assert (self);
    return self->config;
}

gl_redis_t *
gl_service_redis (gl_service_t *self)
{
    assert (self);
    return self->redis;
}

gl_pub_t *
gl_service_pub (gl_service_t *self)
{
    assert (self);
    return self->pub;
}

gl_rep_t *
gl_service_rep (gl_service_t *self)
{
    assert (self);
    return self->rep;
}

gl_outbox_t *
gl_service_outbox (gl_service_t *self)
{
    assert (self);
    return self->outbox;
}

gl_health_t *
gl_service_health (gl_service_t *self)
{
    assert (self);
    return self->health;
}

bool
gl_service_stopping (gl_service_t *self)
{
    assert (self);
    return self->stopping;
}

//  --------------------------------------------------------------------------------------------
//  Registration

int
gl_service_on (gl_service_t *self, const char *op, gl_rep_fn *fn, void *arg)
{
    assert (self && op && fn);
    return gl_rep_on (self->rep, op, fn, arg);
}

gl_sub_t *
gl_service_subscribe_opts (gl_service_t *self, const char *group, const gl_sub_opts_t *opts,
                           gl_sub_apply_fn *fn, void *arg, char *err, size_t errlen)
{
    assert (self && opts && fn && err);
    if (self->nsubs == S_MAX_SUBS) {
        snprintf (err, errlen, "too many subscribers (at most %d)", S_MAX_SUBS);
        return NULL;
    }
    gl_sub_opts_t o = *opts;
    if (!o.endpoints)
        o.endpoints = gl_config_str (self->config, "GL_BUS_PUB_ENDPOINTS", "");
    if (!o.curve)
        o.curve = self->curve;
    gl_sub_t *sub = gl_sub_new (self->redis, group ? group : self->name, &o, fn, arg, err, errlen);
    if (!sub)
        return NULL;
    //  The metrics keep the group's name: a string that lives as long as the service.
    gl_busmetrics_watch_sub (self->metrics, group ? group : self->name, sub);
    self->subs[self->nsubs].sub = sub;
    self->subs[self->nsubs].due = 0;
    self->nsubs++;
    return sub;
}

gl_sub_t *
gl_service_subscribe (gl_service_t *self, const char *group, const char *prefixes, int batch,
                      gl_sub_apply_fn *fn, void *arg, char *err, size_t errlen)
{
    gl_sub_opts_t opts;
    gl_sub_opts_default (&opts);
    opts.endpoints = NULL;
    opts.prefixes = prefixes;
    if (batch > 0)
        opts.batch = batch;
    return gl_service_subscribe_opts (self, group, &opts, fn, arg, err, errlen);
}

int
gl_service_every (gl_service_t *self, int64_t period_ms, gl_service_timer_fn *fn, void *arg)
{
    assert (self && fn);
    if (period_ms <= 0 || self->ntimers == S_MAX_TIMERS)
        return -1;
    s_timer_t *t = &self->timers[self->ntimers++];
    t->fn = fn;
    t->arg = arg;
    t->period = period_ms;
    t->due = -1;                    //  set when the loop starts
    return 0;
}

void
gl_service_ready_check (gl_service_t *self, gl_service_ready_fn *fn, void *arg)
{
    assert (self && fn);
    assert (self->nchecks < S_MAX_CHECKS);
    self->checks[self->nchecks].fn = fn;
    self->checks[self->nchecks].arg = arg;
    self->nchecks++;
}

//  --------------------------------------------------------------------------------------------
//  Clients of other services

static s_client_t *
s_client (gl_service_t *self, const char *name)
{
    for (size_t i = 0; i < self->nclients; i++)
        if (strcmp (self->clients[i].name, name) == 0)
            return &self->clients[i];
    if (!s_name_valid (name) || self->nclients == S_MAX_CLIENTS)
        return NULL;
    s_client_t *c = &self->clients[self->nclients++];
    snprintf (c->name, sizeof c->name, "%s", name);
    char key[S_NAME_MAX + 32], upper[S_NAME_MAX + 1];
    size_t i = 0;
    for (; name[i]; i++)
        upper[i] = (char) toupper ((unsigned char) name[i]);
    upper[i] = 0;
    snprintf (key, sizeof key, "GL_%s_TIMEOUT_MS", upper);
    c->timeout_ms = (int) gl_config_int (self->config, key, 2000, 1, GL_REQ_TTL_MAX);
    snprintf (key, sizeof key, "GL_ENDPOINT_%s", upper);
    const char *endpoint = gl_config_str (self->config, key, NULL);
    if (endpoint && *endpoint) {
        c->req = gl_req_new_curve (endpoint, self->curve);
        if (!c->req)
            gl_warn ("%s: %s is not a valid endpoint list: requests to %s answer 503",
                     self->name, key, name);
        else if (*self->token && gl_req_set_auth (c->req, self->token) != 0)
            gl_warn ("%s: the first GL_BUS_TOKENS token cannot be sent (not printable ASCII)",
                     self->name);
    }
    else
        gl_warn ("%s: %s is not set: requests to %s answer 503", self->name, key, name);
    return c;
}

gl_req_t *
gl_service_client (gl_service_t *self, const char *name)
{
    assert (self && name);
    s_client_t *c = s_client (self, name);
    return c ? c->req : NULL;
}

int
gl_service_call (gl_service_t *self, const char *name, const char *op, const char *idem_key,
                 const json_t *body, gl_reply_t *reply)
{
    assert (self && name && op && reply);
    s_client_t *c = s_client (self, name);
    if (!c || !c->req) {
        gl_reply_clear (reply);
        reply->status = 503;
        reply->body = json_object ();
        reply->error_code = strdup ("unavailable");
        reply->error_message = strdup ("no endpoint is configured for this service");
        reply->error_field = strdup ("");
        return -1;
    }
    return gl_req_call (c->req, op, idem_key, body, c->timeout_ms, reply);
}

//  --------------------------------------------------------------------------------------------
//  The loop

void
gl_service_fail (gl_service_t *self, const char *reason)
{
    assert (self);
    if (!self->failed)
        gl_error ("%s: stopping: %s", self->name, reason ? reason : "failure");
    self->failed = true;
    self->stopping = true;
    gl_health_set_ready (self->health, false, reason);
}

static void
s_check_ready (gl_service_t *self)
{
    char reason[128] = "";
    bool ready = gl_redis_ping (self->redis) == 0;
    if (!ready)
        snprintf (reason, sizeof reason, "redis unreachable");
    for (size_t i = 0; ready && i < self->nchecks; i++)
        ready = self->checks[i].fn (self->checks[i].arg, reason, sizeof reason);
    if (ready != self->ready) {
        if (ready)
            gl_info ("%s: ready", self->name);
        else
            gl_warn ("%s: not ready: %s", self->name, reason);
    }
    self->ready = ready;
    gl_health_set_ready (self->health, ready, ready ? NULL : reason);
}

static void
s_lifecycle (gl_service_t *self, const char *type)
{
    gl_event_t *ev = gl_event_new (type);
    if (!ev)
        return;
    json_object_set_new (ev->data, "service", json_string (self->name));
    json_object_set_new (ev->data, "instance", json_string (gl_pub_src (self->pub)));
    json_object_set_new (ev->data, "version", json_string (GL_VERSION));
    json_object_set_new (ev->data, "pid", json_integer ((json_int_t) getpid ()));
    int rc = gl_pub_send (self->pub, ev, 0);
    if (rc != 0)
        gl_warn ("%s: %s not published: %s", self->name, type,
                 rc == GL_PUB_FENCED ? "source name taken over" : "redis unreachable");
    gl_event_destroy (&ev);
}

static void
s_sweep (gl_service_t *self)
{
    if (gl_outbox_sweep (self->outbox) < 0)
        gl_warn ("%s: outbox sweep failed (redis unreachable); will retry", self->name);
}

int
gl_service_run (gl_service_t *self)
{
    assert (self);
    s_lifecycle (self, "service.started");
    int64_t now = gl_mono_ms ();
    int64_t pub_due = now, ready_due = now, sweep_due = now;
    for (size_t i = 0; i < self->ntimers; i++)
        if (self->timers[i].due < 0)
            self->timers[i].due = now + self->timers[i].period;
    uint64_t staged = gl_outbox_staged (self->outbox);
    zmq_pollitem_t items[2 + S_MAX_SUBS];
    size_t owner[2 + S_MAX_SUBS];
    while (!self->stopping) {
        //  Sockets: the signalfd, the request socket, the active subscribers'.
        size_t n = 0;
        items[n] = (zmq_pollitem_t) { NULL, self->sfd, ZMQ_POLLIN, 0 };
        n++;
        items[n] = (zmq_pollitem_t) { zsock_resolve (gl_rep_sock (self->rep)), 0, ZMQ_POLLIN, 0 };
        n++;
        for (size_t i = 0; i < self->nsubs; i++) {
            zsock_t *sock = gl_sub_sock (self->subs[i].sub);
            if (sock) {
                owner[n] = i;
                items[n] = (zmq_pollitem_t) { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 };
                n++;
            }
        }
        //  Timeout: the nearest due time.
        now = gl_mono_ms ();
        int64_t due = pub_due < ready_due ? pub_due : ready_due;
        if (sweep_due < due)
            due = sweep_due;
        for (size_t i = 0; i < self->nsubs; i++)
            if (self->subs[i].due < due)
                due = self->subs[i].due;
        for (size_t i = 0; i < self->ntimers; i++)
            if (self->timers[i].due < due)
                due = self->timers[i].due;
        long timeout = gl_rep_pending (self->rep) ? 0 : (long) (due > now ? due - now : 0);
        if (zmq_poll (items, (int) n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            gl_service_fail (self, "poll failed");
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            struct signalfd_siginfo info;
            if (read (self->sfd, &info, sizeof info) == (ssize_t) sizeof info) {
                gl_info ("%s: %s received, stopping", self->name,
                         info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
                self->stopping = true;
                break;
            }
        }
        if ((items[1].revents & ZMQ_POLLIN) || gl_rep_pending (self->rep)) {
            zsock_t *sock = gl_rep_sock (self->rep);
            for (int i = 0; i < S_REP_BURST; i++) {
                if (!(zsock_events (sock) & ZMQ_POLLIN) && gl_rep_pending (self->rep) == 0)
                    break;
                if (gl_rep_dispatch (self->rep) != 0) {
                    gl_service_fail (self, "the request socket failed");
                    break;
                }
            }
        }
        for (size_t k = 2; k < n; k++)
            if (items[k].revents & ZMQ_POLLIN)
                gl_sub_handle (self->subs[owner[k]].sub);

        now = gl_mono_ms ();
        if (now >= pub_due) {
            int64_t next = gl_pub_tick (self->pub);
            if (next == GL_PUB_FENCED) {
                gl_service_fail (self, "source name taken over by another process (fenced)");
                break;
            }
            pub_due = now + (next > 0 ? next : 10);
        }
        for (size_t i = 0; i < self->nsubs; i++)
            if (now >= self->subs[i].due) {
                int64_t next = gl_sub_tick (self->subs[i].sub);
                self->subs[i].due = now + (next > 0 ? next : 0);
            }
        for (size_t i = 0; i < self->ntimers && !self->stopping; i++) {
            s_timer_t *t = &self->timers[i];
            if (now >= t->due) {
                t->due = now + t->period;
                if (t->fn (self, t->arg) != 0)
                    gl_service_fail (self, "a timer's work failed");
            }
        }
        //  Events that handlers staged are delivered right after their commit; the sweep, on
        //  its timer, catches whatever else is left.
        uint64_t s = gl_outbox_staged (self->outbox);
        if (s != staged) {
            staged = s;
            if (gl_outbox_settle (self->outbox) < 0)
                gl_warn ("%s: staged events not delivered now; the sweep will", self->name);
        }
        if (now >= sweep_due) {
            s_sweep (self);
            sweep_due = gl_mono_ms () + S_SWEEP_MS;
        }
        if (now >= ready_due) {
            s_check_ready (self);
            gl_busmetrics_update (self->metrics, self->pub, self->rep);
            ready_due = now + S_READY_MS;
        }
    }
    if (!self->failed)
        s_lifecycle (self, "service.stopping");
    gl_health_set_ready (self->health, false, "stopping");
    return self->failed ? 1 : 0;
}
