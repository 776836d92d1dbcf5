/*  intake — see intake.h.

    The loop. One libevent event_base runs everything on the actor's thread:
      - s_on_pipe    the zactor pipe ($TERM from main)
      - s_on_rep     the ROUTER of gl_rep (bus requests: log.range, later intake's own ops)
      - s_on_tick    the publisher's lease and heartbeat (gl_pub_tick), readiness
      - evhttp       the API and console (http.c), which calls the route handlers
    A ZeroMQ socket's ZMQ_FD is edge-triggered: it becomes readable when the socket's state
    changes, not while messages wait. So each wake-up drains while ZMQ_EVENTS says ZMQ_POLLIN,
    and checks ZMQ_EVENTS again after every operation on the socket (a send can consume the
    edge of a message that arrived meanwhile). The tick also looks, in case an edge was lost.

    Everything talks to Redis synchronously (gl_redis). While Redis is down each command waits
    up to GL_REDIS_RECONNECT_MS, so intake's default is short (250 ms, not libshared's 10 s):
    the HTTP loop then answers 503 quickly instead of stalling every client.
*/
#include "intake.h"
#include "aredis.h"
#include "forward.h"
#include "board.h"
#include "audit.h"
#include "auth.h"
#include "contacts.h"
#include "agents.h"
#include "calls.h"
#include "callers.h"
#include "alerts.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_log.h"
#include "gl/gl_logrange.h"
#include "gl/gl_outbox.h"
#include "gl/gl_busmetrics.h"
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#ifndef INTAKE_VERSION
#define INTAKE_VERSION "0.0.0-dev"
#endif
#ifndef INTAKE_CONSOLE_DIR_DEFAULT
#define INTAKE_CONSOLE_DIR_DEFAULT "console"
#endif

#define S_READY_EVERY_MS    1000    //  readiness refresh
#define S_REP_BURST         64      //  requests answered per wake-up before HTTP gets a turn
#define S_MAX_REPLICAS      64      //  intake-1 .. intake-64 when GL_SOURCE is not set

//  Every concern file's routes. A new file adds one line here.
static void
s_routes (intake_t *self)
{
    api_system_routes (self);
    api_auth_routes (self);
    api_audit_routes (self);
    api_contacts_routes (self);
    api_agents_routes (self);
    api_calls_routes (self);
    api_callers_routes (self);      //  and booking (api_booking.c)
    api_complaints_routes (self);
    api_kb_routes (self);
    api_qa_routes (self);
    api_referral_routes (self);
    api_reporting_routes (self);
    api_scheduler_routes (self);
    api_notifier_routes (self);
    alerts_routes (self);           //  notifier's console alerts (alerts.h)
    api_retention_routes (self);    //  and the purge timer (retention.h)
    api_board_routes (self);        //  the live board's stream (board.h)
}

//  --------------------------------------------------------------------------------------------
//  Events of the service's own life

static int
s_publish_lifecycle (intake_t *self, const char *type)
{
    gl_event_t *ev = gl_event_new (type);
    if (!ev)
        return -1;
    json_object_set_new (ev->data, "service", json_string (INTAKE_SERVICE));
    json_object_set_new (ev->data, "instance", json_string (gl_pub_src (self->pub)));
    json_object_set_new (ev->data, "version", json_string (self->version));
    json_object_set_new (ev->data, "pid", json_integer ((json_int_t) getpid ()));
    int rc = gl_pub_send (self->pub, ev, 0);
    if (rc == 0)
        gl_info ("intake: %s published (%s seq %" PRIu64 ")", type, gl_pub_src (self->pub),
                 ev->seq);
    else
        gl_warn ("intake: %s not published: %s", type,
                 rc == GL_PUB_FENCED ? "source name taken over" : "redis unreachable");
    gl_event_destroy (&ev);
    return rc == 0 ? 0 : -1;
}

//  --------------------------------------------------------------------------------------------
//  Loop handlers

//  Stop the loop because the service cannot go on; main exits non-zero.
static void
s_fail (intake_t *self, const char *reason)
{
    gl_error ("intake: stopping: %s", reason);
    self->failed = true;
    self->ready = false;
    snprintf (self->not_ready, sizeof self->not_ready, "%s", reason);
    gl_health_set_ready (self->health, false, reason);
    event_base_loopbreak (self->base);
}

//  Ready when Redis answers; the publisher then holds its lease, because gl_pub_tick renews it
//  (or takes it back after an outage) every second, and a lease lost to another process stops
//  the service (s_on_tick).
static void
s_check_ready (intake_t *self)
{
    bool ready = gl_redis_ping (self->redis) == 0;
    const char *reason = ready ? "" : "redis unreachable";
    if (ready != self->ready) {
        if (ready)
            gl_info ("intake: ready");
        else
            gl_warn ("intake: not ready: %s", reason);
    }
    self->ready = ready;
    snprintf (self->not_ready, sizeof self->not_ready, "%s", reason);
    gl_health_set_ready (self->health, ready, reason);
    self->ready_checked_ms = gl_mono_ms ();
}

static void
s_on_pipe (evutil_socket_t fd, short what, void *arg)
{
    intake_t *self = arg;
    while (zsock_events (self->pipe) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv (self->pipe);
        char *command = msg ? zmsg_popstr (msg) : NULL;
        bool term = !command || streq (command, "$TERM");
        if (!term)
            gl_warn ("intake: unknown command on the actor pipe, ignored");
        zstr_free (&command);
        zmsg_destroy (&msg);
        if (term) {
            event_base_loopbreak (self->base);
            return;
        }
    }
}

static void
s_on_rep (evutil_socket_t fd, short what, void *arg)
{
    intake_t *self = arg;
    zsock_t *sock = gl_rep_sock (self->rep);
    for (int i = 0; i < S_REP_BURST; i++) {
        if (!(zsock_events (sock) & ZMQ_POLLIN) && gl_rep_pending (self->rep) == 0)
            return;
        if (gl_rep_dispatch (self->rep) != 0) {
            s_fail (self, "the request socket failed");
            return;
        }
    }
    //  More is waiting: come back after the HTTP requests that are ready too.
    event_active (self->on_rep, EV_READ, 0);
}

static void
s_on_tick (evutil_socket_t fd, short what, void *arg)
{
    intake_t *self = arg;
    int64_t next = gl_pub_tick (self->pub);
    if (next == GL_PUB_FENCED) {
        s_fail (self, "source name taken over by another process (fenced)");
        return;
    }
    int64_t since = gl_mono_ms () - self->ready_checked_ms;
    if (since >= S_READY_EVERY_MS) {
        s_check_ready (self);
        gl_busmetrics_update (self->busmetrics, self->pub, self->rep);
    }
    s_on_rep (-1, EV_READ, self);
    int64_t wait = next < S_READY_EVERY_MS ? next : S_READY_EVERY_MS;
    if (wait < 10)
        wait = 10;
    struct timeval tv = { (time_t) (wait / 1000), (suseconds_t) ((wait % 1000) * 1000) };
    evtimer_add (self->on_tick, &tv);
}

//  --------------------------------------------------------------------------------------------
//  Start and stop

static intake_t *
s_new (zsock_t *pipe, gl_config_t *config)
{
    intake_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->pipe = pipe;
    self->config = config;
    self->version = INTAKE_VERSION;
    self->started_ms = gl_mono_ms ();
    self->authenticate = http_authenticate_nobody;
    snprintf (self->not_ready, sizeof self->not_ready, "starting");
    return self;
}

static void
s_destroy (intake_t **self_p)
{
    intake_t *self = *self_p;
    if (!self)
        return;
    aredis_destroy (&self->aredis);     //  answers the requests waiting for it: http is still up
    board_destroy (&self->board);       //  ends its streams: before http_destroy
    forward_stop (self);                //  answers the forwarded requests waiting: likewise
    http_destroy (&self->http);
    auth_destroy (&self->auth);
    contacts_destroy (&self->contacts);
    calls_destroy (&self->calls);
    callers_destroy (&self->callers);
    complaints_destroy (&self->complaints);
    kb_destroy (&self->kb);
    qa_destroy (&self->qa);
    alerts_destroy (&self->alerts);
    forward_destroy (self);
    gl_outbox_destroy (&self->outbox);
    gl_busmetrics_destroy (&self->busmetrics);
    if (self->on_pipe)
        event_free (self->on_pipe);
    if (self->on_rep)
        event_free (self->on_rep);
    if (self->on_tick)
        event_free (self->on_tick);
    gl_rep_destroy (&self->rep);
    gl_pub_destroy (&self->pub);
    gl_curve_destroy (&self->curve);    //  after every socket that borrows it
    gl_redis_destroy (&self->redis);
    gl_health_destroy (&self->health);
    if (self->base)
        event_base_free (self->base);
    free (self->console_dir);
    free (self);
    *self_p = NULL;
}

//  The static files' folder, resolved once; a missing folder is not fatal (the API still works).
static void
s_console_dir (intake_t *self)
{
    const char *dir
        = gl_config_str (self->config, "GL_INTAKE_CONSOLE_DIR", INTAKE_CONSOLE_DIR_DEFAULT);
    self->console_dir = realpath (dir, NULL);
    if (!self->console_dir)
        gl_warn ("intake: console folder %s not found (%s): / and /console/ answer 404", dir,
                 strerror (errno));
}

//  Everything intake reads at start, read (and checked) before anything is started, so a bad
//  value stops it at once, naming the key.
typedef struct {
    http_opts_t http;
    const char *pub_bind;
    const char *router_bind;
    const char *source;
    const char *tokens;
    int64_t idem_ms;
} s_settings_t;

static int
s_settings (intake_t *self, s_settings_t *set, char *err, size_t errlen)
{
    gl_config_t *config = self->config;
    if (!gl_config_str (config, "GL_REDIS_RECONNECT_MS", NULL))
        gl_config_set (config, "GL_REDIS_RECONNECT_MS", "250");
    set->http.host = gl_config_str (config, "GL_HTTP_HOST", "127.0.0.1");
    set->http.port = (int) gl_config_int (config, "GL_HTTP_PORT", 8080, 0, 65535);
    set->http.max_body = (size_t) gl_config_int (config, "GL_HTTP_MAX_BODY", 65536, 1024, 16 << 20);
    set->http.max_headers
        = (size_t) gl_config_int (config, "GL_HTTP_MAX_HEADERS", 8192, 1024, 65536);
    set->http.timeout_s = (int) gl_config_int (config, "GL_HTTP_TIMEOUT_S", 30, 1, 3600);
    set->pub_bind = gl_config_str (config, "GL_BUS_BIND_PUB", "tcp://127.0.0.1:*");
    set->router_bind = gl_config_str (config, "GL_BUS_BIND_ROUTER", "tcp://127.0.0.1:*");
    set->source = gl_config_str (config, "GL_SOURCE", NULL);
    set->tokens = gl_config_str (config, "GL_BUS_TOKENS", NULL);
    set->idem_ms = gl_config_int (config, "GL_BUS_IDEM_TTL_MS", 86400000, 1000, 604800000);
    //  Read here only to check them; gl_redis_new_from_config reads them again.
    gl_config_int (config, "GL_REDIS_PORT", 6379, 1, 65535);
    gl_config_int (config, "GL_REDIS_TIMEOUT_MS", 2000, 1, 600000);
    gl_config_int (config, "GL_REDIS_RECONNECT_MS", 10000, 0, 3600000);
    if (gl_config_error (config)) {
        snprintf (err, errlen, "%s", gl_config_error (config));
        return -1;
    }
    return 0;
}

static int
s_start_bus (intake_t *self, const s_settings_t *set, char *err, size_t errlen)
{
    gl_pub_opts_t opts;
    gl_pub_opts_default (&opts);
    opts.bind = set->pub_bind;
    //  CurveZMQ, when GL_BUS_CURVE_CERT is set (gl_curve.h; docs/operations.md ("Deploying Greenline")).
    if (gl_curve_new_from_config (self->config, &self->curve, err, errlen) != 0)
        return -1;
    opts.curve = self->curve;
    if (self->curve)
        gl_info ("intake: CURVE is on: bus key %s", gl_curve_public (self->curve));
    if (set->source && *set->source) {
        //  A replica restarted after a crash waits for its old lease to expire, so that it
        //  continues its own log rather than taking another name.
        opts.wait_ms = opts.lease_ms + 2000;
        self->pub = gl_pub_new (self->redis, set->source, &opts, err, errlen);
    }
    else
        self->pub = gl_pub_new_auto (self->redis, INTAKE_SERVICE, S_MAX_REPLICAS, &opts, err,
                                     errlen);
    if (!self->pub)
        return -1;

    self->rep = gl_rep_new_curve (set->router_bind, self->curve);
    if (!self->rep) {
        snprintf (err, errlen, "cannot bind the request socket on %s", set->router_bind);
        return -1;
    }
    if (set->tokens && *set->tokens)
        gl_rep_set_tokens (self->rep, set->tokens);
    else
        gl_warn ("intake: GL_BUS_TOKENS is not set: bus requests are not authenticated");
    gl_rep_set_idempotency (self->rep, self->redis, "intake:{intake}:idem:", set->idem_ms);
    if (gl_logrange_register (self->rep, self->redis) != 0) {
        snprintf (err, errlen, "cannot register log.range");
        return -1;
    }
    self->outbox = gl_outbox_new (self->redis, self->pub, "intake:{intake}:outbox",
                                  "greenline_intake");
    self->busmetrics = gl_busmetrics_new (INTAKE_SERVICE);
    if (!self->outbox || !self->busmetrics) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int
s_start_http (intake_t *self, const s_settings_t *set, char *err, size_t errlen)
{
    self->http = http_new (self);
    if (!self->http) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    s_routes (self);
    self->auth = auth_new (self, err, errlen);
    if (!self->auth)
        return -1;
    self->contacts = contacts_new (self, err, errlen);
    if (!self->contacts)
        return -1;
    self->calls = calls_new (self, err, errlen);
    if (!self->calls)
        return -1;
    self->callers = callers_new (self, err, errlen);
    if (!self->callers)
        return -1;
    self->complaints = complaints_new (self, err, errlen);
    if (!self->complaints)
        return -1;
    self->kb = kb_new (self, err, errlen);
    if (!self->kb)
        return -1;
    self->qa = qa_new (self, err, errlen);
    if (!self->qa)
        return -1;
    self->board = board_new (self, err, errlen);
    if (!self->board)
        return -1;
    //  The hot writes' asynchronous connection (aredis.h); off, everything is synchronous.
    if (gl_config_bool (self->config, "GL_INTAKE_ASYNC_REDIS", true)) {
        self->aredis = aredis_new (self->redis, self->base,
                                   (int) gl_config_int (self->config, "GL_REDIS_TIMEOUT_MS", 2000,
                                                        100, 600000));
        if (!self->aredis) {
            snprintf (err, errlen, "out of memory");
            return -1;
        }
    }
    return http_listen (self->http, self->base, &set->http, err, errlen);
}

static int
s_start_loop (intake_t *self, char *err, size_t errlen)
{
    self->on_pipe = event_new (self->base, zsock_fd (self->pipe), EV_READ | EV_PERSIST, s_on_pipe,
                               self);
    self->on_rep = event_new (self->base, zsock_fd (gl_rep_sock (self->rep)),
                              EV_READ | EV_PERSIST, s_on_rep, self);
    self->on_tick = evtimer_new (self->base, s_on_tick, self);
    if (!self->on_pipe || !self->on_rep || !self->on_tick || event_add (self->on_pipe, NULL)
        || event_add (self->on_rep, NULL)) {
        snprintf (err, errlen, "cannot set up the event loop");
        return -1;
    }
    //  Messages may have arrived before the events existed: their edge is gone, so look now.
    event_active (self->on_pipe, EV_READ, 0);
    event_active (self->on_rep, EV_READ, 0);
    event_active (self->on_tick, EV_TIMEOUT, 0);
    return 0;
}

static int
s_start (intake_t *self, char *err, size_t errlen)
{
    s_settings_t set;
    if (s_settings (self, &set, err, errlen) != 0)
        return -1;
    //  gl_health turns libevent's pthreads locking on; our base is made after it.
    self->health = gl_health_new_from_config (INTAKE_SERVICE, self->config);
    if (!self->health) {
        snprintf (err, errlen, "cannot start the health endpoint");
        return -1;
    }
    self->base = event_base_new ();
    self->redis = gl_redis_new_from_config (self->config);
    if (!self->base || !self->redis) {
        snprintf (err, errlen, "out of memory");
        return -1;
    }
    s_console_dir (self);
    if (s_start_bus (self, &set, err, errlen) != 0 || s_start_http (self, &set, err, errlen) != 0
        || s_start_loop (self, err, errlen) != 0)
        return -1;
    self->alerts = alerts_new (self, err, errlen);
    if (!self->alerts)
        return -1;
    if (s_publish_lifecycle (self, "service.started") != 0) {
        snprintf (err, errlen, "cannot publish service.started");
        return -1;
    }
    s_check_ready (self);
    gl_info ("intake: %s version %s started: http %d, health %d, pub %s, router %s",
             gl_pub_src (self->pub), self->version, http_port (self->http),
             gl_health_port (self->health), gl_pub_endpoint (self->pub),
             gl_rep_endpoint (self->rep));
    return 0;
}

//  After a failure: tell main, then wait for $TERM as zactor_destroy expects.
static void
s_wait_term (zsock_t *pipe)
{
    zstr_send (pipe, "STOPPED");
    while (true) {
        char *command = zstr_recv (pipe);
        bool term = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (term)
            return;
    }
}

//  Run the loop for at most ms (what is due meanwhile runs: replies are written, answers come).
static void
s_run_for (intake_t *self, int64_t ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    event_base_loopexit (self->base, &tv);
    event_base_dispatch (self->base);
}

//  A graceful stop: no new connections; the board's streams end; the requests in flight (their
//  Redis script or bus request sent already) get their real answers within GL_INTAKE_DRAIN_MS;
//  whatever still waits then is answered 503; and the loop runs a little longer so that those
//  answers are written before the connections close.
static void
s_drain (intake_t *self)
{
    if (!self->http)
        return;
    http_stop_listening (self->http);
    board_destroy (&self->board);
    int64_t drain_ms = gl_config_int (self->config, "GL_INTAKE_DRAIN_MS", 3000, 0, 60000);
    int64_t until = gl_mono_ms () + drain_ms;
    while (http_waiting (self->http) > 0 && gl_mono_ms () < until)
        s_run_for (self, 20);
    size_t left = http_waiting (self->http);
    if (left > 0)
        gl_warn ("intake: %zu requests still waiting after %" PRId64 " ms: answered 503", left,
                 drain_ms);
    forward_stop (self);
    aredis_destroy (&self->aredis);
    s_run_for (self, 100);
}

void
intake_actor (zsock_t *pipe, void *config)
{
    assert (pipe && config);
    zsock_signal (pipe, 0);
    intake_t *self = s_new (pipe, config);
    char err[256] = "out of memory";
    bool started = self && s_start (self, err, sizeof err) == 0;
    if (!started) {
        gl_error ("intake: cannot start: %s", err);
        s_destroy (&self);
        s_wait_term (pipe);
        return;
    }
    event_base_dispatch (self->base);
    bool failed = self->failed;
    //  Stop taking requests, let those in flight finish, then say goodbye while the lease is
    //  still ours.
    s_drain (self);
    http_destroy (&self->http);
    if (!failed)
        s_publish_lifecycle (self, "service.stopping");
    s_destroy (&self);
    gl_info ("intake: stopped");
    if (failed)
        s_wait_term (pipe);
}

int
intake_wait (zactor_t *actor, const sigset_t *signals)
{
    assert (actor && signals);
    int sfd = signalfd (-1, signals, SFD_CLOEXEC);
    if (sfd < 0)
        return -1;
    zmq_pollitem_t items[] = { { zsock_resolve (actor), 0, ZMQ_POLLIN, 0 },
                               { NULL, sfd, ZMQ_POLLIN, 0 } };
    int result = -1;
    while (result < 0) {
        if (zmq_poll (items, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            struct signalfd_siginfo info;
            if (read (sfd, &info, sizeof info) == (ssize_t) sizeof info)
                result = (int) info.ssi_signo;
        }
        else if (items[0].revents & ZMQ_POLLIN) {
            char *message = zstr_recv (actor);
            if (!message || streq (message, "STOPPED"))
                result = 0;
            zstr_free (&message);
        }
    }
    close (sfd);
    return result;
}

int
intake_print_routes (FILE *out)
{
    intake_t *self = s_new (NULL, NULL);
    if (!self)
        return -1;
    self->http = http_new (self);
    if (!self->http) {
        s_destroy (&self);
        return -1;
    }
    s_routes (self);
    http_print_routes (self->http, out);
    s_destroy (&self);
    return 0;
}
