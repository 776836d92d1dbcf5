/*  gl_busmetrics — see gl_busmetrics.h. */
#include "gl/gl_busmetrics.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SUBS 8

//  One subscriber's metrics, in the order of s_sub_names, and its counters at the last update.
enum { S_RECEIVED, S_APPLIED, S_SKIPPED, S_DUPLICATES, S_GAPS, S_FETCHED, S_CONFLICTS, S_LOST,
       S_RETRIES, S_SUB_COUNTERS };
static const char *const s_sub_names[S_SUB_COUNTERS][2] = {
    { "greenline_bus_received_total", "Frames received on the SUB socket" },
    { "greenline_bus_applied_total", "Events applied (committed with their cursor)" },
    { "greenline_bus_skipped_total", "Events outside the subscribed prefixes (cursor advanced)" },
    { "greenline_bus_duplicates_total", "Frames at or behind the cursor (already applied)" },
    { "greenline_bus_gaps_total", "Gaps detected in a source's sequence" },
    { "greenline_bus_fetched_total", "Events read from the logs (replays and gaps)" },
    { "greenline_bus_conflicts_total", "Commits refused because another replica moved the cursor" },
    { "greenline_bus_lost_total", "Events trimmed from a log before this group applied them" },
    { "greenline_bus_retries_total", "Events a handler asked to retry" },
};
static const char *const s_reasons[GL_EVENT_ERR__COUNT] = { "ok", "msgpack", "shape", "type",
                                                           "version" };

typedef struct {
    const char *group;
    gl_sub_t *sub;
    gl_metric_t *counters[S_SUB_COUNTERS];
    gl_metric_t *rejected[GL_EVENT_ERR__COUNT];
    gl_metric_t *lag;
    gl_sub_stats_t last;
} s_watch_t;

struct _gl_busmetrics_t {
    char service[64];
    gl_metric_t *published, *dropped, *requests;
    gl_metric_t *refused[4];            //  malformed, unauthorized, unknown_op, expired
    gl_pub_stats_t pub_last;
    gl_rep_stats_t rep_last;
    s_watch_t subs[S_SUBS];
    size_t nsubs;
};

gl_busmetrics_t *
gl_busmetrics_new (const char *service)
{
    assert (service);
    gl_busmetrics_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->service, sizeof self->service, "%s", service);
    char labels[128];
    snprintf (labels, sizeof labels, "service=\"%s\"", service);
    self->published = gl_metrics_counter ("greenline_bus_published_total",
                                          "Events appended to this service's log and published",
                                          labels);
    self->dropped = gl_metrics_counter ("greenline_bus_pub_dropped_total",
                                        "Frames dropped at the PUB high-water mark (recovered "
                                        "from the log by subscribers)",
                                        labels);
    self->requests = gl_metrics_counter ("greenline_bus_requests_total",
                                         "Bus requests answered (any status)", labels);
    static const char *const why[4] = { "malformed", "unauthorized", "unknown_op", "expired" };
    for (int i = 0; i < 4; i++) {
        snprintf (labels, sizeof labels, "service=\"%s\",reason=\"%s\"", service, why[i]);
        self->refused[i] = gl_metrics_counter ("greenline_bus_requests_refused_total",
                                               "Bus requests refused before a handler ran",
                                               labels);
    }
    return self;
}

void
gl_busmetrics_destroy (gl_busmetrics_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

int
gl_busmetrics_watch_sub (gl_busmetrics_t *self, const char *group, gl_sub_t *sub)
{
    assert (self && group && sub);
    if (self->nsubs == S_SUBS)
        return -1;
    s_watch_t *w = &self->subs[self->nsubs++];
    memset (w, 0, sizeof *w);
    w->group = group;
    w->sub = sub;
    char labels[192];
    snprintf (labels, sizeof labels, "service=\"%s\",group=\"%s\"", self->service, group);
    for (int i = 0; i < S_SUB_COUNTERS; i++)
        w->counters[i] = gl_metrics_counter (s_sub_names[i][0], s_sub_names[i][1], labels);
    w->lag = gl_metrics_gauge ("greenline_bus_lag_events",
                               "Events behind, summed over sources, at the last tick", labels);
    for (int i = 1; i < GL_EVENT_ERR__COUNT; i++) {
        snprintf (labels, sizeof labels, "service=\"%s\",group=\"%s\",reason=\"%s\"",
                  self->service, group, s_reasons[i]);
        w->rejected[i] = gl_metrics_counter ("greenline_bus_rejected_total",
                                             "Frames dropped as malformed, by reason", labels);
    }
    return 0;
}

//  Move counter m by now - *last (never backwards), and remember now.
static void
s_move (gl_metric_t *m, uint64_t now, uint64_t *last)
{
    if (now > *last)
        gl_metric_inc (m, now - *last);
    *last = now;
}

void
gl_busmetrics_update (gl_busmetrics_t *self, gl_pub_t *pub, gl_rep_t *rep)
{
    assert (self);
    if (pub) {
        gl_pub_stats_t s = gl_pub_stats (pub);
        s_move (self->published, s.appended, &self->pub_last.appended);
        s_move (self->dropped, s.pub_dropped, &self->pub_last.pub_dropped);
    }
    if (rep) {
        gl_rep_stats_t s;
        gl_rep_stats (rep, &s);
        s_move (self->requests, s.answered, &self->rep_last.answered);
        s_move (self->refused[0], s.malformed, &self->rep_last.malformed);
        s_move (self->refused[1], s.unauthorized, &self->rep_last.unauthorized);
        s_move (self->refused[2], s.unknown_op, &self->rep_last.unknown_op);
        s_move (self->refused[3], s.expired, &self->rep_last.expired);
    }
    for (size_t i = 0; i < self->nsubs; i++) {
        s_watch_t *w = &self->subs[i];
        gl_sub_stats_t s = gl_sub_stats (w->sub);
        uint64_t now[S_SUB_COUNTERS] = { s.received, s.applied,   s.skipped,
                                         s.duplicates, s.gaps,   s.fetched,
                                         s.conflicts, s.lost,    s.retries };
        uint64_t *last[S_SUB_COUNTERS] = { &w->last.received,  &w->last.applied,
                                           &w->last.skipped,   &w->last.duplicates,
                                           &w->last.gaps,      &w->last.fetched,
                                           &w->last.conflicts, &w->last.lost,
                                           &w->last.retries };
        for (int k = 0; k < S_SUB_COUNTERS; k++)
            s_move (w->counters[k], now[k], last[k]);
        for (int k = 1; k < GL_EVENT_ERR__COUNT; k++)
            s_move (w->rejected[k], s.rejected[k], &w->last.rejected[k]);
        gl_metric_set (w->lag, (int64_t) s.lag);
    }
}
