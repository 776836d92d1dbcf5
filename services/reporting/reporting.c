/*  reporting — the service actor (see reporting.h).

    State and cursors move together: events are applied in memory as they come (gl_sub in manual
    checkpoint mode), and every GL_REPORTING_CHECKPOINT_MS the changed buckets and records are
    written with every cursor in one atomic step (gl_sub_checkpoint). Killed at any moment, the
    service restarts from its last checkpoint and replays the events after it: nothing is lost
    and nothing is counted twice. A checkpoint refused because another replica moved the cursors
    makes this one reload the state that goes with them.

    Scheduled reports: every morning at GL_REPORTING_REPORT_HOUR (local) for yesterday, on the
    first day of the week for last week, on the 1st for last month: a report.generated event and
    a notification.requested (template report.daily) for the supervisors, both through the
    outbox in the same atomic step as the checkpoint that records them as sent.
*/
#include "reporting.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_KEY_SCHED "reporting:{reporting}:sched"

struct _reporting_t {
    gl_service_t *svc;
    rep_conf_t conf;
    rep_agg_t *agg;
    gl_sub_t *sub;
    gl_tx_t *tx;
    bool loaded;                //  memory holds the state that goes with the cursors
    uint64_t conflicts;
    int64_t sched[3];           //  last day number reported: day, week (first day), month (first day)
    gl_metric_t *m_applied;
    gl_metric_t *m_checkpoints;
    gl_metric_t *m_ckpt_failed;
    gl_metric_t *m_ckpt_us;
};

static int
s_load (reporting_t *self)
{
    char err[256];
    if (rep_agg_load (self->agg, gl_service_redis (self->svc), err, sizeof err) != 0) {
        gl_error ("reporting: cannot load the checkpoint: %s", err);
        return -1;
    }
    redisReply *r = gl_redis_cmd (gl_service_redis (self->svc), "HMGET %s day week month", S_KEY_SCHED);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    for (int i = 0; i < 3; i++)
        self->sched[i] = r->element[i]->type == REDIS_REPLY_STRING
                             ? strtoll (r->element[i]->str, NULL, 10) : 0;
    freeReplyObject (r);
    self->loaded = true;
    self->conflicts = gl_sub_stats (self->sub).conflicts;
    size_t counters = 0;
    size_t buckets = rep_store_size (rep_agg_store (self->agg), &counters);
    gl_info ("reporting: checkpoint loaded (%zu periods, %zu counters)", buckets, counters);
    return 0;
}

static int
s_apply (void *arg, const gl_event_t *ev, gl_tx_t *tx)
{
    reporting_t *self = arg;
    //  Became active (first start or after standing by): the state of the cursors gl_sub just
    //  read is the last checkpoint's.
    if (!self->loaded && s_load (self) != 0)
        return -1;
    rep_agg_apply (self->agg, ev);
    gl_metric_inc (self->m_applied, 1);
    return 0;
}

//  ---------------------------------------------------------------------------------------------
//  Scheduled reports

//  A stable 32-hex id for a report's notification: the same report asked twice is one id.
static void
s_stable_id (const char *text, char out[33])
{
    uint64_t h1 = 1469598103934665603ULL, h2 = 0x9e3779b97f4a7c15ULL;
    for (const char *p = text; *p; p++) {
        h1 = (h1 ^ (uint8_t) *p) * 1099511628211ULL;
        h2 = (h2 ^ (uint8_t) *p) * 0x100000001b3ULL + 0x632be59bd9b4e019ULL;
        h2 ^= h2 >> 29;
    }
    snprintf (out, 33, "%016" PRIx64 "%016" PRIx64, h1, h2);
}

static int
s_stage_report (reporting_t *self, const char *kind, int64_t first_day)
{
    char date[11];
    int y, m, d;
    rep_civil_from_days (first_day, &y, &m, &d);
    snprintf (date, sizeof date, "%04d-%02d-%02d", y, m, d);
    rep_span_t span;
    char field[32], msg[128];
    json_t *q = json_pack ("{s:s}", "date", date);
    int rc = rep_span_parse (self->agg, kind, q, gl_now_ms (), &span, field, sizeof field, msg, sizeof msg);
    json_decref (q);
    if (rc)
        return -1;
    json_t *report = rep_report (self->agg, &span, gl_now_ms (), NULL);
    json_t *calls = json_object_get (report, "calls");
    char report_id[64], nid[33], seed[96];
    snprintf (report_id, sizeof report_id, "%s-%s", kind, span.from);
    snprintf (seed, sizeof seed, "report.daily:%s", report_id);
    s_stable_id (seed, nid);
    json_t *sl = json_object_get (json_object_get (calls, "service_level"), "20");
    json_t *asa = json_object_get (calls, "asa_ms");
    json_t *params = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "report_id", report_id, "period", kind, "from", span.from, "to", span.to,
        "calls_offered", json_integer_value (json_object_get (calls, "offered")),
        "calls_answered", json_integer_value (json_object_get (calls, "answered")),
        "calls_abandoned", json_integer_value (json_object_get (calls, "abandoned")),
        "service_level_pct", (json_int_t) (json_is_real (sl) ? json_real_value (sl) * 100 + 0.5 : 0),
        "asa_s", (json_int_t) (json_is_integer (asa) ? json_integer_value (asa) / 1000 : 0),
        "contacts", json_integer_value (json_object_get (json_object_get (report, "contacts"), "total")),
        "referrals", json_integer_value (json_object_get (json_object_get (report, "referrals"), "requested")),
        "emergencies", json_integer_value (json_object_get (json_object_get (report, "emergencies"), "raised")));
    json_decref (report);
    json_t *channels = json_array ();
    char list[64];
    snprintf (list, sizeof list, "%s", self->conf.report_channels);
    char *save = NULL;
    for (char *c = strtok_r (list, ",", &save); c; c = strtok_r (NULL, ",", &save))
        json_array_append_new (channels, json_string (c));
    gl_event_t *note = gl_event_new ("notification.requested");
    gl_event_t *done = gl_event_new ("report.generated");
    assert (note && done);
    gl_event_set_corr (note, report_id);
    gl_event_set_corr (done, report_id);
    json_object_set_new (note->data, "notification_id", json_string (nid));
    json_object_set_new (note->data, "template", json_string ("report.daily"));
    json_object_set_new (note->data, "priority", json_string ("routine"));
    json_object_set_new (note->data, "channels", channels);
    json_object_set_new (note->data, "recipient", json_pack ("{s:s, s:s}", "kind", "role", "role", "supervisor"));
    json_object_set_new (note->data, "language", json_null ());
    json_object_set_new (note->data, "params", params);
    json_object_set_new (done->data, "report_id", json_string (report_id));
    json_object_set_new (done->data, "period", json_string (kind));
    json_object_set_new (done->data, "from", json_string (span.from));
    json_object_set_new (done->data, "to", json_string (span.to));
    json_object_set_new (done->data, "notification_id", json_string (nid));
    gl_outbox_t *outbox = gl_service_outbox (self->svc);
    rc = gl_outbox_stage (outbox, self->tx, done, 0) || gl_outbox_stage (outbox, self->tx, note, 0) ? -1 : 0;
    gl_event_destroy (&note);
    gl_event_destroy (&done);
    if (rc == 0)
        gl_info ("reporting: %s report %s announced", kind, span.from);
    return rc;
}

//  Which scheduled reports are due now; staged into self->tx. Fills next[] with the values to
//  record once the checkpoint holding them is written.
static void
s_schedule (reporting_t *self, int64_t next[3])
{
    memcpy (next, self->sched, sizeof self->sched);
    int64_t now = gl_now_ms ();
    time_t t = (time_t) (now / 1000);
    struct tm tm;
    localtime_r (&t, &tm);
    if (tm.tm_hour < self->conf.report_hour)
        return;
    int64_t today = rep_days_from_civil (tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    int64_t yesterday = today - 1;
    int back = (tm.tm_wday - self->conf.week_start + 7) % 7;
    int64_t last_week = today - back - 7;
    int y = tm.tm_year + 1900, m = tm.tm_mon + 1;
    int64_t last_month = rep_days_from_civil (m == 1 ? y - 1 : y, m == 1 ? 12 : m - 1, 1);
    //  A first start announces only yesterday's report, not the past week and month.
    if (self->sched[0] == 0) {
        next[1] = last_week;
        next[2] = last_month;
    }
    if (next[0] < yesterday && s_stage_report (self, "day", yesterday) == 0)
        next[0] = yesterday;
    if (next[1] < last_week && s_stage_report (self, "week", last_week) == 0)
        next[1] = last_week;
    if (next[2] < last_month && s_stage_report (self, "month", last_month) == 0)
        next[2] = last_month;
}

//  ---------------------------------------------------------------------------------------------
//  Checkpoints

static int
s_checkpoint (reporting_t *self)
{
    if (!gl_sub_active (self->sub)) {
        //  Standing by: whatever is in memory is not ours to write; reload when active again.
        self->loaded = false;
        return 0;
    }
    if (!self->loaded)
        return s_load (self) == 0 ? 0 : 0;
    int64_t started = gl_mono_us ();
    gl_tx_reset (self->tx);
    rep_agg_checkpoint (self->agg, rep_sink_tx, self->tx);
    int64_t next[3];
    s_schedule (self, next);
    if (memcmp (next, self->sched, sizeof next) != 0)
        gl_tx_cmdf (self->tx, "HSET %s day %lld week %lld month %lld", S_KEY_SCHED,
                    (long long) next[0], (long long) next[1], (long long) next[2]);
    int rc = gl_sub_checkpoint (self->sub, self->tx);
    if (rc != 0) {
        gl_metric_inc (self->m_ckpt_failed, 1);
        rep_agg_checkpoint_failed (self->agg);
        gl_tx_reset (self->tx);
        uint64_t conflicts = gl_sub_stats (self->sub).conflicts;
        if (conflicts != self->conflicts) {
            gl_warn ("reporting: another replica moved the cursors; reloading its checkpoint");
            self->loaded = false;
            self->conflicts = conflicts;
        }
        else
            gl_warn ("reporting: checkpoint failed (redis unreachable?); will retry");
        return 0;
    }
    memcpy (self->sched, next, sizeof next);
    gl_metric_inc (self->m_checkpoints, 1);
    gl_metric_observe_us (self->m_ckpt_us, (uint64_t) (gl_mono_us () - started));
    return 0;
}

static int
s_on_timer (gl_service_t *svc, void *arg)
{
    return s_checkpoint ((reporting_t *) arg);
}

static bool
s_ready (void *arg, char *reason, size_t reason_len)
{
    reporting_t *self = arg;
    if (gl_sub_active (self->sub) && !self->loaded) {
        snprintf (reason, reason_len, "checkpoint not loaded");
        return false;
    }
    return true;
}

reporting_t *
reporting_new (gl_service_t *svc, char *err, size_t errlen)
{
    reporting_t *self = calloc (1, sizeof *self);
    assert (self);
    self->svc = svc;
    gl_config_t *config = gl_service_config (svc);
    if (rep_conf_load (&self->conf, config, err, errlen) != 0) {
        free (self);
        return NULL;
    }
    int64_t every = gl_config_int (config, "GL_REPORTING_CHECKPOINT_MS", 1000, 10, 600000);
    int batch = (int) gl_config_int (config, "GL_REPORTING_BATCH", 1000, 1, 100000);
    if (gl_config_error (config)) {
        snprintf (err, errlen, "%s", gl_config_error (config));
        free (self);
        return NULL;
    }
    self->agg = rep_agg_new (&self->conf);
    self->tx = gl_tx_new ();
    self->m_applied = gl_metrics_counter ("reporting_events_applied_total", "Events applied to the aggregates", NULL);
    self->m_checkpoints = gl_metrics_counter ("reporting_checkpoints_total", "Checkpoints written", NULL);
    self->m_ckpt_failed = gl_metrics_counter ("reporting_checkpoint_failures_total", "Checkpoints refused or failed", NULL);
    self->m_ckpt_us = gl_metrics_histogram ("reporting_checkpoint_seconds", "Time to write a checkpoint", NULL);
    gl_sub_opts_t opts;
    gl_sub_opts_default (&opts);
    opts.manual_checkpoint = true;
    opts.batch = batch;
    self->sub = gl_service_subscribe_opts (svc, "reporting", &opts, s_apply, self, err, errlen);
    if (!self->sub) {
        reporting_destroy (&self);
        return NULL;
    }
    //  Take the consumer group's lease now if it is free: the state loaded then goes with the
    //  cursors gl_sub read when it became active. A standby loads too (to answer requests) but
    //  loads again when it becomes active (s_apply), since the active replica moves on meanwhile.
    gl_sub_tick (self->sub);
    if (!self->loaded && s_load (self) != 0) {
        snprintf (err, errlen, "cannot load the checkpoint from redis");
        reporting_destroy (&self);
        return NULL;
    }
    if (!gl_sub_active (self->sub))
        self->loaded = false;
    if (gl_service_every (svc, every, s_on_timer, self) != 0 || reporting_requests (self, svc) != 0) {
        snprintf (err, errlen, "cannot register timers or requests");
        reporting_destroy (&self);
        return NULL;
    }
    gl_service_ready_check (svc, s_ready, self);
    return self;
}

void
reporting_destroy (reporting_t **self_p)
{
    assert (self_p);
    reporting_t *self = *self_p;
    if (!self)
        return;
    if (self->sub && self->loaded && gl_sub_active (self->sub)) {
        //  A last checkpoint on a clean stop: the successor replays nothing.
        gl_tx_reset (self->tx);
        rep_agg_checkpoint (self->agg, rep_sink_tx, self->tx);
        if (gl_sub_checkpoint (self->sub, self->tx) != 0)
            gl_warn ("reporting: last checkpoint failed; the successor replays from the previous one");
    }
    rep_agg_destroy (&self->agg);
    gl_tx_destroy (&self->tx);
    free (self);
    *self_p = NULL;
}

rep_agg_t *
reporting_agg (reporting_t *self)
{
    return self->agg;
}
