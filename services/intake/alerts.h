/*  alerts — console alerts: notifier's notification.console events, kept for the signed-in
    users they name, and shown to them by the console (docs/api/alerts.md, docs/console.md).

    intake follows the bus as consumer group "intake" (gl_sub: exactly once, the alert written in
    the same atomic step as the group's cursor), on its own libevent loop: the SUB socket's
    ZMQ_FD and a timer for gl_sub_tick. Only one replica of intake holds the group's lease and
    writes; every replica answers the endpoints from Redis.

    Redis (every key under intake's {intake} hash tag, the slot of the cursor gl:cur:{intake}):
      intake:{intake}:alert:<id>             hash: to_kind (user|unit|role), to, priority,
                                              template, title, body, language, created,
                                              notification_id, corr, and ack:<user id> = ms
      intake:{intake}:alerts:<kind>:<to>     sorted set (score 0) of "<created, 16 digits>:<id>",
                                              newest last: one recipient's alerts
    An alert's id is its event's id. A recipient keeps its newest GL_INTAKE_ALERTS_MAX alerts
    (default 200); alerts older than ALERTS_KEEP_MS on the business clock are not shown, are
    dropped from the recipient's set at its next alert, and their keys expire.
*/
#ifndef INTAKE_ALERTS_H
#define INTAKE_ALERTS_H
#include "intake.h"

#define ALERTS_GROUP    "intake"
#define ALERTS_KEEP_MS  (7 * INT64_C (86400000))     //  seven days
#define ALERTS_PREFIX   "intake:{intake}:"

typedef struct _alerts_t alerts_t;

//  Start following the bus on intake's loop (intake->base, intake->redis, intake->curve must
//  exist). Reads GL_BUS_PUB_ENDPOINTS (none: the logs are polled) and GL_INTAKE_ALERTS_MAX.
//  NULL with the reason in err (a bad setting, Redis unreachable).
alerts_t *alerts_new (intake_t *intake, char *err, size_t errlen);

//  Stop following (the lease is given up for another replica), free. NULLs *self_p.
void alerts_destroy (alerts_t **self_p);

//  Routes: GET /api/v1/alerts, POST /api/v1/alerts/{id}/ack.
void alerts_routes (intake_t *intake);

#endif
