/*  gl_health — see gl_health.h.

    Bounding connections: libevent 2.1 has no evhttp_set_max_connections (2.2 has), and it does
    not tell us when an incoming connection is freed. It does tell us, through the bufferevent
    callback, when one is about to be set up, and every open server connection keeps a read
    event on its socket added to the base (to see the next request, or the client leaving),
    except for the moment its request is being answered, which happens inside our own callback.
    So counting the events that read a socket other than the listener (less those present with
    no connection at all) counts the open connections. When that reaches max_conns we disable
    the listener, and a 100 ms timer enables it again once a connection has closed; clients in
    between wait in the kernel's listen backlog.
*/
#include "gl/gl_health.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define S_DEFAULT_MAX_CONNS 64
#define S_DEFAULT_TIMEOUT_S 10
#define S_MAX_HEADERS_SIZE 8192
#define S_MAX_BODY_SIZE 4096
#define S_REASON_MAX 128

struct _gl_health_t {
    char service[64];
    int64_t started_ms;             //  gl_mono_ms at start, for uptime_s
    int port;

    pthread_mutex_t lock;           //  guards ready and reason
    bool ready;
    char reason[S_REASON_MAX];

    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct event *resume;           //  pending only while accepting is paused
    int max_conns;
    int baseline;                   //  socket readers other than the listener, with no connection
    bool paused;                    //  loop thread only
    gl_metric_t *paused_total;
    pthread_t thread;
};

static pthread_once_t s_threads_once = PTHREAD_ONCE_INIT;
static int s_threads_rc = -1;

//  event_base_loopexit from the destroying thread needs libevent's locking, which must be
//  switched on before the base is created.
static void
s_threads_init (void)
{
    s_threads_rc = evthread_use_pthreads ();
}

static bool
s_service_valid (const char *service)
{
    size_t len = strlen (service);
    if (len == 0 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = service[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

typedef struct {
    evutil_socket_t listener_fd;
    int readers;
} s_tally_t;

static int
s_tally_reader (const struct event_base *base, const struct event *ev, void *arg)
{
    s_tally_t *tally = arg;
    evutil_socket_t fd = event_get_fd (ev);
    if ((event_get_events (ev) & EV_READ) && fd >= 0 && fd != tally->listener_fd)
        tally->readers++;
    return 0;
}

//  Events reading a socket other than the listener (see the comment at the top).
static int
s_readers (gl_health_t *self)
{
    s_tally_t tally = { evconnlistener_get_fd (self->listener), 0 };
    event_base_foreach_event (self->base, s_tally_reader, &tally);
    return tally.readers;
}

static int
s_open_connections (gl_health_t *self)
{
    int open = s_readers (self) - self->baseline;
    return open < 0 ? 0 : open;
}

static void
s_pause (gl_health_t *self)
{
    evconnlistener_disable (self->listener);
    self->paused = true;
    //  A flood would pause and resume ten times a second: warn once, count every time.
    if (gl_metric_value (self->paused_total) == 0)
        gl_warn ("health: %d connections open, accepting paused (counted in "
                 "greenline_health_accept_paused_total)", self->max_conns);
    gl_metric_inc (self->paused_total, 1);
    struct timeval tick = { 0, 100 * 1000 };
    event_add (self->resume, &tick);
}

static void
s_on_resume_tick (evutil_socket_t fd, short what, void *arg)
{
    gl_health_t *self = arg;
    if (s_open_connections (self) < self->max_conns) {
        self->paused = false;
        evconnlistener_enable (self->listener);
        return;
    }
    struct timeval tick = { 0, 100 * 1000 };
    event_add (self->resume, &tick);
}

//  Called by evhttp for each accepted connection before it is set up; NULL lets evhttp make its
//  usual socket bufferevent. The new connection is not counted yet.
static struct bufferevent *
s_on_accept (struct event_base *base, void *arg)
{
    gl_health_t *self = arg;
    if (!self->paused && s_open_connections (self) + 1 >= self->max_conns)
        s_pause (self);
    return NULL;
}

static void
s_send (struct evhttp_request *req, int code, const char *phrase, const char *content_type,
        const char *body)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers (req);
    evhttp_add_header (headers, "Content-Type", content_type);
    evhttp_add_header (headers, "Cache-Control", "no-store");
    //  libevent 2.1 writes the output buffer even for HEAD: give HEAD the length, not the body.
    if (evhttp_request_get_command (req) == EVHTTP_REQ_HEAD) {
        char length[24];
        snprintf (length, sizeof length, "%zu", strlen (body));
        evhttp_add_header (headers, "Content-Length", length);
    }
    else
        evbuffer_add (evhttp_request_get_output_buffer (req), body, strlen (body));
    evhttp_send_reply (req, code, phrase, NULL);
}

//  Send a JSON object built by the caller (stolen). Out of memory becomes a bare 500.
static void
s_send_json (struct evhttp_request *req, int code, const char *phrase, json_t *json)
{
    char *body = json ? json_dumps (json, JSON_COMPACT) : NULL;
    json_decref (json);
    if (!body) {
        evhttp_send_error (req, 500, NULL);
        return;
    }
    s_send (req, code, phrase, "application/json", body);
    free (body);
}

static void
s_send_error (struct evhttp_request *req, int code, const char *phrase, const char *error,
              const char *message)
{
    s_send_json (req, code, phrase,
                 json_pack ("{s:{s:s,s:s,s:n}}", "error", "code", error, "message", message,
                            "field"));
}

static void
s_on_health (gl_health_t *self, struct evhttp_request *req)
{
    json_int_t uptime = (json_int_t) ((gl_mono_ms () - self->started_ms) / 1000);
    s_send_json (req, 200, "OK",
                 json_pack ("{s:s,s:s,s:I}", "status", "ok", "service", self->service,
                            "uptime_s", uptime));
}

static void
s_on_ready (gl_health_t *self, struct evhttp_request *req)
{
    pthread_mutex_lock (&self->lock);
    bool ready = self->ready;
    char reason[S_REASON_MAX];
    memcpy (reason, self->reason, sizeof reason);
    pthread_mutex_unlock (&self->lock);
    if (ready)
        s_send_json (req, 200, "OK", json_pack ("{s:s}", "status", "ready"));
    else
        s_send_json (req, 503, "Service Unavailable",
                     json_pack ("{s:s,s:s}", "status", "not ready", "reason", reason));
}

static void
s_on_metrics (struct evhttp_request *req)
{
    char *text = gl_metrics_render ();
    if (!text) {
        s_send_error (req, 500, "Internal Server Error", "internal", "out of memory");
        return;
    }
    s_send (req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text);
    free (text);
}

static void
s_on_request (struct evhttp_request *req, void *arg)
{
    gl_health_t *self = arg;
    enum evhttp_cmd_type method = evhttp_request_get_command (req);
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header (evhttp_request_get_output_headers (req), "Allow", "GET, HEAD");
        s_send_error (req, 405, "Method Not Allowed", "method_not_allowed",
                      "only GET and HEAD are served here");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri (req);
    const char *path = uri ? evhttp_uri_get_path (uri) : NULL;
    if (path && strcmp (path, "/health") == 0)
        s_on_health (self, req);
    else if (path && strcmp (path, "/ready") == 0)
        s_on_ready (self, req);
    else if (path && strcmp (path, "/metrics") == 0)
        s_on_metrics (req);
    else
        //  The path is not echoed: it is outside input and could carry anything.
        s_send_error (req, 404, "Not Found", "not_found",
                      "no such endpoint; served: /health, /ready, /metrics");
}

static void *
s_run (void *arg)
{
    gl_health_t *self = arg;
    if (event_base_dispatch (self->base) < 0)
        gl_error ("health: event loop failed");
    return NULL;
}

//  Free what s_new set up; the thread is not running.
static void
s_free (gl_health_t *self)
{
    if (self->http)
        evhttp_free (self->http);
    if (self->resume)
        event_free (self->resume);
    if (self->base)
        event_base_free (self->base);
    pthread_mutex_destroy (&self->lock);
    free (self);
}

int
gl_health_bound_port (struct evhttp_bound_socket *bound)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (getsockname (evhttp_bound_socket_get_fd (bound), (struct sockaddr *) &addr, &len) != 0)
        return -1;
    if (addr.ss_family == AF_INET)
        return ntohs (((struct sockaddr_in *) &addr)->sin_port);
    if (addr.ss_family == AF_INET6)
        return ntohs (((struct sockaddr_in6 *) &addr)->sin6_port);
    return -1;
}

static gl_health_t *
s_new (const char *service, const char *host, int port, int max_conns, int timeout_s)
{
    assert (service);
    if (!host)
        host = "127.0.0.1";
    if (!s_service_valid (service) || port < 0 || port > 65535 || max_conns < 1 || timeout_s < 1) {
        gl_error ("health: invalid service name, port, connection limit or timeout");
        return NULL;
    }
    pthread_once (&s_threads_once, s_threads_init);
    if (s_threads_rc != 0) {
        gl_error ("health: libevent has no pthreads support");
        return NULL;
    }
    gl_health_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->service, sizeof self->service, "%s", service);
    snprintf (self->reason, sizeof self->reason, "starting");
    self->started_ms = gl_mono_ms ();
    self->max_conns = max_conns;
    pthread_mutex_init (&self->lock, NULL);
    self->paused_total = gl_metrics_counter (
        "greenline_health_accept_paused_total",
        "Times the health endpoint stopped accepting because GL_HEALTH_MAX_CONNS were open.", NULL);

    self->base = event_base_new ();
    self->http = self->base ? evhttp_new (self->base) : NULL;
    self->resume = self->base ? evtimer_new (self->base, s_on_resume_tick, self) : NULL;
    if (!self->http || !self->resume) {
        gl_error ("health: cannot set up libevent");
        s_free (self);
        return NULL;
    }
    evhttp_set_timeout (self->http, timeout_s);
    evhttp_set_max_headers_size (self->http, S_MAX_HEADERS_SIZE);
    evhttp_set_max_body_size (self->http, S_MAX_BODY_SIZE);
    //  Let every method reach s_on_request, so the 405 has our JSON shape.
    evhttp_set_allowed_methods (self->http,
                                EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT
                                    | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE
                                    | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb (self->http, s_on_request, self);
    evhttp_set_bevcb (self->http, s_on_accept, self);

    struct evhttp_bound_socket *bound
        = evhttp_bind_socket_with_handle (self->http, host, (ev_uint16_t) port);
    if (!bound) {
        gl_error ("health: cannot bind %s:%d", host, port);
        s_free (self);
        return NULL;
    }
    self->listener = evhttp_bound_socket_get_listener (bound);
    self->port = gl_health_bound_port (bound);
    if (self->port < 0) {
        gl_error ("health: cannot read the bound port");
        s_free (self);
        return NULL;
    }
    self->baseline = s_readers (self);

    //  The thread inherits a full signal mask: a signal meant for the service (SIGTERM) must not
    //  land here, and a SIGPIPE from writing to a vanished client stays pending instead of
    //  killing the process. Faults stay unblocked so a crash is still reported as one.
    sigset_t all, old;
    sigfillset (&all);
    int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset (&all, faults[i]);
    pthread_sigmask (SIG_SETMASK, &all, &old);
    int rc = pthread_create (&self->thread, NULL, s_run, self);
    pthread_sigmask (SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        gl_error ("health: cannot start the server thread");
        s_free (self);
        return NULL;
    }
    gl_info ("health: serving /health, /ready and /metrics on %s:%d", host, self->port);
    return self;
}

gl_health_t *
gl_health_new (const char *service, const char *host, int port)
{
    return s_new (service, host, port, S_DEFAULT_MAX_CONNS, S_DEFAULT_TIMEOUT_S);
}

gl_health_t *
gl_health_new_from_config (const char *service, gl_config_t *config)
{
    assert (config);
    //  gl_config keeps the first error only: compare before and after to know it is ours.
    bool had_error = gl_config_error (config) != NULL;
    const char *host = gl_config_str (config, "GL_HEALTH_HOST", "127.0.0.1");
    int port = (int) gl_config_int (config, "GL_HEALTH_PORT", 0, 0, 65535);
    int max_conns = (int) gl_config_int (config, "GL_HEALTH_MAX_CONNS", S_DEFAULT_MAX_CONNS, 1, 4096);
    int timeout_s = (int) gl_config_int (config, "GL_HEALTH_TIMEOUT_S", S_DEFAULT_TIMEOUT_S, 1, 3600);
    if (!had_error && gl_config_error (config)) {
        gl_error ("health: %s", gl_config_error (config));
        return NULL;
    }
    return s_new (service, host, port, max_conns, timeout_s);
}

void
gl_health_destroy (gl_health_t **self_p)
{
    assert (self_p);
    gl_health_t *self = *self_p;
    if (!self)
        return;
    //  loopexit is safe from this thread because locking was on when the base was made; if the
    //  loop has not started yet, the exit event waits for it and ends the first iteration.
    event_base_loopexit (self->base, NULL);
    pthread_join (self->thread, NULL);
    s_free (self);
    *self_p = NULL;
}

int
gl_health_port (gl_health_t *self)
{
    assert (self);
    return self->port;
}

void
gl_health_set_ready (gl_health_t *self, bool ready, const char *reason)
{
    assert (self);
    char copy[S_REASON_MAX];
    size_t n = 0;
    for (; reason && reason[n] && n + 1 < sizeof copy; n++)
        copy[n] = (reason[n] >= 0x20 && reason[n] < 0x7f) ? reason[n] : '?';
    copy[n] = 0;
    if (!ready && n == 0)
        snprintf (copy, sizeof copy, "unspecified");
    pthread_mutex_lock (&self->lock);
    self->ready = ready;
    memcpy (self->reason, copy, sizeof copy);
    pthread_mutex_unlock (&self->lock);
}
