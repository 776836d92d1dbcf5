/*  gl_service — one Greenline service process without an HTTP API of its own (scheduler,
    referral, reporting, notifier): configuration, logs, the health endpoint, Redis, the
    publisher under its source lease, the request server (tokens, idempotency, log.range), the
    outbox, subscribers, clients of other services, timers, and the loop, stopped by SIGINT or
    SIGTERM.
        int
        main (void)
        {
            char err[256];
            gl_service_t *svc = gl_service_new ("referral", err, sizeof err);
            if (!svc) {
                gl_error ("referral: %s", err);
                return 1;
            }
            referral_t *referral = referral_new (svc, err, sizeof err);  //  registers handlers
            if (!referral)
                gl_error ("referral: %s", err);
            int rc = referral ? gl_service_run (svc) : 1;
            referral_destroy (&referral);
            gl_service_destroy (&svc);
            return rc;
        }
    Everything runs on the thread that calls gl_service_run: request handlers, subscriber
    handlers and timers are called one at a time, so a service needs no locks.
    Configuration (environment, then the file named by GL_CONFIG), besides gl_redis's
    (GL_REDIS_*), gl_health's (GL_HEALTH_*) and gl_log's (GL_LOG_*):
      GL_SOURCE             this replica's source name (default: the first free <name>-N); a
                            restarted replica waits for its old lease to lapse and continues
      GL_BUS_BIND_PUB       PUB endpoint to bind (tcp://127.0.0.1:*)
      GL_BUS_BIND_ROUTER    ROUTER endpoint to bind (tcp://127.0.0.1:*)
      GL_BUS_PUB_ENDPOINTS  comma-separated PUB endpoints of every replica of every service;
                            subscribers connect to all of them ("" : log polling only)
      GL_BUS_TOKENS         tokens accepted on requests (comma-separated); the first one is the
                            token gl_service_client sends
      GL_BUS_IDEM_TTL_MS    how long stored replies to requests are kept (86400000)
      GL_ENDPOINT_<NAME>    ROUTER endpoint(s) of service NAME (upper case), for gl_service_client
      GL_<NAME>_TIMEOUT_MS  how long gl_service_call waits for service NAME (2000)
      GL_BUS_CURVE_CERT, GL_BUS_CURVE_ALLOW, GL_BUS_CURVE_SERVERS, GL_BUS_CURVE_VERBOSE
                            CurveZMQ on the PUB, ROUTER, SUB and request sockets (gl_curve.h);
                            with it, endpoints name their server's key ("tcp://h:7112#scheduler")
    Keys: "<name>:{<name>}:idem:" (stored replies), "<name>:{<name>}:outbox" (the outbox).
*/
#ifndef GL_SERVICE_H
#define GL_SERVICE_H

#include "gl/gl_config.h"
#include "gl/gl_health.h"
#include "gl/gl_outbox.h"
#include "gl/gl_pub.h"
#include "gl/gl_redis.h"
#include "gl/gl_rep.h"
#include "gl/gl_req.h"
#include "gl/gl_sub.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct _gl_service_t gl_service_t;

//  A timer's work. Return 0, or -1 when the service cannot go on (gl_service_run returns 1).
typedef int (gl_service_timer_fn) (gl_service_t *svc, void *arg);

//  Readiness beyond Redis answering: return true when ready, else false with the reason (what
//  is missing, no personal data) in reason.
typedef bool (gl_service_ready_fn) (void *arg, char *reason, size_t reason_len);

//  Start the process's parts: logs (service name), configuration, health endpoint, Redis, the
//  publisher, the request server and the outbox. SIGINT and SIGTERM are blocked in every
//  thread and taken by gl_service_run. NULL with the reason in err (a bad setting names its key;
//  the source name held by a live process; a bind that failed).
gl_service_t *gl_service_new (const char *name, char *err, size_t errlen);

//  Stop subscribers (leases given up), the publisher (lease released) and everything else.
void gl_service_destroy (gl_service_t **self_p);

//  The parts, borrowed (valid until gl_service_destroy), for the loop's thread only.
const char *gl_service_name (gl_service_t *self);
gl_config_t *gl_service_config (gl_service_t *self);
gl_redis_t *gl_service_redis (gl_service_t *self);
gl_pub_t *gl_service_pub (gl_service_t *self);
gl_rep_t *gl_service_rep (gl_service_t *self);
gl_outbox_t *gl_service_outbox (gl_service_t *self);
gl_health_t *gl_service_health (gl_service_t *self);

//  Answer op (e.g. "referral.inbox") with fn: gl_rep_on. 0, or -1 (bad or duplicate op).
int gl_service_on (gl_service_t *self, const char *op, gl_rep_fn *fn, void *arg);

//  Apply events from the bus as consumer group group (NULL: the service's name), taking only
//  types that start with one of prefixes (comma-separated; NULL or "": all), batch events per
//  commit (0: 1), connected to GL_BUS_PUB_ENDPOINTS. A handler that stages events in the outbox
//  (gl_outbox_stage) has them delivered right after its commit. The subscriber is the service's
//  (destroyed with it). NULL with the reason in err.
gl_sub_t *gl_service_subscribe (gl_service_t *self, const char *group, const char *prefixes,
                                int batch, gl_sub_apply_fn *fn, void *arg, char *err,
                                size_t errlen);

//  Same with every option given (opts->endpoints NULL: GL_BUS_PUB_ENDPOINTS).
gl_sub_t *gl_service_subscribe_opts (gl_service_t *self, const char *group,
                                     const gl_sub_opts_t *opts, gl_sub_apply_fn *fn, void *arg,
                                     char *err, size_t errlen);

//  Call fn every period_ms (first call one period after gl_service_run starts; the period is
//  counted on the monotonic clock; business deadlines inside fn use gl_now_ms). 0 or -1.
int gl_service_every (gl_service_t *self, int64_t period_ms, gl_service_timer_fn *fn, void *arg);

//  Add a readiness condition, checked every second with Redis's.
void gl_service_ready_check (gl_service_t *self, gl_service_ready_fn *fn, void *arg);

//  A client for service name's requests (GL_ENDPOINT_<NAME>, the first GL_BUS_TOKENS token),
//  made on first use and kept. NULL when GL_ENDPOINT_<NAME> is not set.
gl_req_t *gl_service_client (gl_service_t *self, const char *name);

//  gl_req_call to service name with its timeout (GL_<NAME>_TIMEOUT_MS). Without an endpoint it
//  answers like an unreachable server: -1 with reply->status 503 "unavailable".
int gl_service_call (gl_service_t *self, const char *name, const char *op, const char *idem_key,
                     const json_t *body, gl_reply_t *reply);

//  Run until SIGINT/SIGTERM (returns 0) or until the service cannot go on (returns 1): its source
//  name was taken over, a timer failed, or gl_service_fail was called.
int gl_service_run (gl_service_t *self);

//  Stop the loop because the service cannot go on; reason is logged (no personal data).
void gl_service_fail (gl_service_t *self, const char *reason);

//  True once gl_service_run has been asked to stop (signal or failure): long work may stop early.
bool gl_service_stopping (gl_service_t *self);

#endif
