/*  reporting — the service: consumes every event (gl_sub in manual checkpoint mode), keeps the
    aggregates in memory (rep_agg), checkpoints them with the bus cursors, answers the report,
    wallboard, trend and export requests, and announces the scheduled reports.
*/
#ifndef REPORTING_H
#define REPORTING_H
#include "aggregates.h"
#include "metrics.h"
#include "gl/gl_service.h"

typedef struct _reporting_t reporting_t;

//  Read the settings, load the last checkpoint, subscribe, register requests and timers.
//  NULL with the reason in err.
reporting_t *reporting_new (gl_service_t *svc, char *err, size_t errlen);

//  Write a last checkpoint (when active) and free.
void reporting_destroy (reporting_t **self_p);

//  The state (borrowed), for the request handlers.
rep_agg_t *reporting_agg (reporting_t *self);

//  Register the request handlers (requests.c). 0 or -1.
int reporting_requests (reporting_t *self, gl_service_t *svc);

//  Recompute every aggregate from the event logs and archives (rebuild.c) and store the result
//  with the cursors it reached, replacing the checkpoint. The service must be stopped (its lease
//  is taken for the duration). 0, or -1 with the reason in err. events (may be NULL) receives the
//  number of events applied.
int reporting_rebuild (gl_config_t *config, char *err, size_t errlen, uint64_t *events);

#endif
