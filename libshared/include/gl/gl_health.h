/*  gl_health — the health, readiness and metrics HTTP endpoint every service exposes.

    A small libevent evhttp server in a thread of its own, bound to loopback by default:
      GET /health   200 {"status":"ok","service":"<name>","uptime_s":N}   (the process runs)
      GET /ready    200 {"status":"ready"}, or
                    503 {"status":"not ready","reason":"..."}  (as set by gl_health_set_ready)
      GET /metrics  200 text/plain; version=0.0.4 — gl_metrics_render()
      other paths   404 {"error":{"code":"not_found","message":"...","field":null}}
      other methods 405 {"error":{"code":"method_not_allowed",...}} with "Allow: GET, HEAD",
                    whatever the path. HEAD answers like GET without the body.
    Malformed requests get libevent's own 400 (or the connection is closed); request lines and
    headers over 8 KiB and bodies over 4 KiB are refused. Idle connections are closed after the
    timeout, and the server stops accepting while max_conns connections are open (further
    clients wait in the kernel's listen backlog until one closes). The service starts "not
    ready" with the reason "starting".

    The server thread only reads: readiness is handed over under a mutex, metrics are atomics.
    It blocks every signal but faults, so SIGINT/SIGTERM reach the service's own threads.
    The first gl_health_new switches libevent's pthreads locking on (evthread_use_pthreads);
    a service with an event_base of its own should create it after that, or call
    evthread_use_pthreads itself first.
*/
#ifndef GL_HEALTH_H
#define GL_HEALTH_H
#include "gl/gl_config.h"
#include <stdbool.h>

typedef struct _gl_health_t gl_health_t;

//  Start serving on host:port (host NULL = 127.0.0.1; port 0 = an ephemeral port, see
//  gl_health_port) with the defaults max_conns 64 and an idle timeout of 10 s. service names the
//  process in /health ([A-Za-z0-9._-], 1..63 characters). Returns NULL, with the reason logged,
//  when an argument is invalid or the address cannot be bound.
gl_health_t *gl_health_new (const char *service, const char *host, int port);

//  Same from configuration:
//    GL_HEALTH_HOST       address to bind (127.0.0.1)
//    GL_HEALTH_PORT       TCP port, 0..65535 (0: an ephemeral port, logged at info level; lets the
//                         launcher and tests run many services on one host without clashes —
//                         deployments set a fixed port per service)
//    GL_HEALTH_MAX_CONNS  open connections before accepting pauses, 1..4096 (64)
//    GL_HEALTH_TIMEOUT_S  idle / read / write timeout per connection, 1..3600 (10)
//  There is no "off": every service serves its health endpoint. A malformed value is recorded on
//  config (gl_config_error names the key) and NULL is returned.
gl_health_t *gl_health_new_from_config (const char *service, gl_config_t *config);

//  Stop the server thread, close every connection and free everything. NULLs *self_p.
void gl_health_destroy (gl_health_t **self_p);

//  The TCP port actually bound (useful after port 0).
int gl_health_port (gl_health_t *self);

//  Set readiness from any thread. reason (may be NULL) is shown by /ready while not ready; it is
//  copied, cut to 127 bytes, bytes outside printable ASCII replaced by '?'. It must say what is
//  missing ("redis unreachable", "replaying event log"), never carry personal data.
void gl_health_set_ready (gl_health_t *self, bool ready, const char *reason);

//  The TCP port an evhttp socket is bound to (after binding port 0), or -1. Shared with every
//  evhttp server in Greenline (intake's API).
struct evhttp_bound_socket;
int gl_health_bound_port (struct evhttp_bound_socket *bound);

#endif
