/*  gl_busmetrics — a service's bus figures as Prometheus metrics (docs/operations.md, "Metrics"):
    events published and dropped at PUB, events received, applied, skipped, duplicated, fetched
    from the logs (replays and gaps), frames rejected by reason, commit conflicts, events lost to
    trimming, lag; requests received and refused by reason. The loop that owns the publisher,
    subscribers and request server calls gl_busmetrics_update about once a second: it reads their
    counters on that thread (they are not thread-safe) and moves the metrics by the difference,
    so counters only ever go up and the health thread reads nothing but atomics.
      greenline_bus_published_total{service}          greenline_bus_pub_dropped_total{service}
      greenline_bus_received_total{service,group}     greenline_bus_applied_total{service,group}
      greenline_bus_skipped_total{service,group}      greenline_bus_duplicates_total{service,group}
      greenline_bus_gaps_total{service,group}         greenline_bus_fetched_total{service,group}
      greenline_bus_conflicts_total{service,group}    greenline_bus_lost_total{service,group}
      greenline_bus_retries_total{service,group}      greenline_bus_lag_events{service,group}
      greenline_bus_rejected_total{service,group,reason}  (msgpack, shape, type, version)
      greenline_bus_requests_total{service}           greenline_bus_requests_refused_total{service,reason}
                                                      (malformed, unauthorized, unknown_op, expired)
*/
#ifndef GL_BUSMETRICS_H
#define GL_BUSMETRICS_H

#include "gl/gl_pub.h"
#include "gl/gl_rep.h"
#include "gl/gl_sub.h"

typedef struct _gl_busmetrics_t gl_busmetrics_t;

//  For service (a short name: [a-z0-9_]). NULL when out of memory.
gl_busmetrics_t *gl_busmetrics_new (const char *service);
void gl_busmetrics_destroy (gl_busmetrics_t **self_p);

//  Watch a subscriber of consumer group group (at most 8 per service; group borrowed: a static
//  or long-lived string). 0, or -1 when full.
int gl_busmetrics_watch_sub (gl_busmetrics_t *self, const char *group, gl_sub_t *sub);

//  Read pub, rep (either may be NULL) and the watched subscribers, and move the metrics.
void gl_busmetrics_update (gl_busmetrics_t *self, gl_pub_t *pub, gl_rep_t *rep);

#endif
