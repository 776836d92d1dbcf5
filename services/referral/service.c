/*  service — the referral service object: its configuration, the subscriber that takes
    intake's referral.requested and emergency.raised (and notifier's delivery reports of the
    alarms), the escalation timer and the request handlers, all on gl_service's one thread.
*/
#include "referral.h"
#include "gl/gl_log.h"
#include <stdlib.h>
#include <string.h>

#ifdef REFERRAL_CONFIG_DEFAULT
#define S_CONFIG_DEFAULT REFERRAL_CONFIG_DEFAULT
#else
#define S_CONFIG_DEFAULT "config/referral.conf"
#endif

//  Events are taken from intake's replicas only: a referral or emergency comes from intake's
//  API, never from another service's log.
static bool
s_from_intake (const gl_event_t *ev)
{
    return strncmp (ev->src, "intake-", 7) == 0;
}

static int
s_apply (void *arg, const gl_event_t *ev, gl_tx_t *tx)
{
    referral_t *self = arg;
    if (strncmp (ev->type, "notification.", 13) == 0)
        return rf_emergency_notification (self, ev, tx);
    if (!s_from_intake (ev)) {
        gl_warn ("referral: %s %s from %s ignored (only intake raises them)", ev->type, ev->id,
                 ev->src);
        return 0;
    }
    if (strcmp (ev->type, "referral.requested") == 0)
        return rf_referral_requested (self, ev, tx);
    if (strcmp (ev->type, "emergency.raised") == 0)
        return rf_emergency_raised (self, ev, tx);
    return 0;
}

referral_t *
referral_new (gl_service_t *svc, char *err, size_t errlen)
{
    gl_config_t *config = gl_service_config (svc);
    referral_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->svc = svc;
    self->redis = gl_service_redis (svc);
    self->outbox = gl_service_outbox (svc);
    self->tick_ms = gl_config_int (config, "GL_REFERRAL_TICK_MS", 1000, 10, 60000);
    self->list_max = (size_t) gl_config_int (config, "GL_REFERRAL_LIST_MAX", 200, 1, 1000);
    self->comments_max = (size_t) gl_config_int (config, "GL_REFERRAL_COMMENTS_MAX", 200, 1, 10000);
    self->retention_ms = gl_config_int (config, "GL_REFERRAL_RETENTION_DAYS", 365, 1, 3650)
                         * INT64_C(86400000);
    self->m_unacked = gl_metrics_gauge ("greenline_referral_emergencies_unacknowledged",
                                        "Emergencies no person has acknowledged yet", NULL);
    self->m_overdue = gl_metrics_gauge ("greenline_referral_overdue_acknowledgements",
                                        "Open referrals past their acknowledgement deadline", NULL);
    self->m_ref_steps = gl_metrics_counter ("greenline_referral_escalations_total",
                                            "Escalation steps fired", "kind=\"referral\"");
    self->m_emg_steps = gl_metrics_counter ("greenline_referral_escalations_total",
                                            "Escalation steps fired", "kind=\"emergency\"");
    const char *path = gl_config_str (config, "GL_REFERRAL_CONFIG", S_CONFIG_DEFAULT);
    const char *key = gl_config_str (config, "GL_REFERRAL_SIGNING_KEY", NULL);
    if (gl_config_error (config)) {
        snprintf (err, errlen, "%s", gl_config_error (config));
        referral_destroy (&self);
        return NULL;
    }
    self->cfg = rf_config_load (path, err, errlen);
    if (!self->cfg) {
        referral_destroy (&self);
        return NULL;
    }
    if (key) {
        size_t n = strlen (key);
        if (n < 32 || n >= sizeof self->cfg->signing_key) {
            snprintf (err, errlen, "GL_REFERRAL_SIGNING_KEY must have 32..128 characters");
            referral_destroy (&self);
            return NULL;
        }
        memcpy (self->cfg->signing_key, key, n + 1);
    }
    if (strstr (self->cfg->signing_key, "change-me"))
        gl_warn ("referral: the sample signing key is in use: set GL_REFERRAL_SIGNING_KEY");
    if (self->cfg->n_partners && strlen (self->cfg->signing_key) < 32) {
        snprintf (err, errlen, "%s:0: partners need a signing_key line or GL_REFERRAL_SIGNING_KEY",
                  path);
        referral_destroy (&self);
        return NULL;
    }
    if (!gl_service_subscribe (svc, "referral",
                               "referral.requested,emergency.raised,notification.sent,"
                               "notification.delivered,notification.failed,notification.dead",
                               1, s_apply, self, err, errlen)
        || gl_service_every (svc, self->tick_ms, rf_escalation_tick, self) < 0
        || rf_requests_register (self) < 0) {
        if (!*err)
            snprintf (err, errlen, "cannot register handlers");
        referral_destroy (&self);
        return NULL;
    }
    gl_info ("referral: %zu units, %zu partners, %zu rules, %zu roster lines from %s",
             self->cfg->n_units, self->cfg->n_partners, self->cfg->n_rules, self->cfg->n_roster,
             path);
    return self;
}

void
referral_destroy (referral_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    referral_t *self = *self_p;
    rf_config_destroy (&self->cfg);
    free (self);
    *self_p = NULL;
}

int
rf_events_add (referral_t *self, rf_events_t *evs, rf_ops_t *ops, gl_event_t *ev, int flags)
{
    if (!ev)
        return -1;
    if (evs->n == sizeof evs->evs / sizeof evs->evs[0]) {
        gl_event_destroy (&ev);
        return -1;
    }
    if (ops) {
        char *entry = gl_outbox_entry (self->outbox, ev, flags);
        if (!entry) {
            gl_event_destroy (&ev);
            return -1;
        }
        rf_ops_add (ops, 4, "HSET", gl_outbox_key (self->outbox), ev->id, entry);
        free (entry);
    }
    evs->flags[evs->n] = flags;
    evs->evs[evs->n++] = ev;
    return 0;
}

int
rf_events_stage (referral_t *self, rf_events_t *evs, gl_tx_t *tx)
{
    int rc = 0;
    for (size_t i = 0; i < evs->n; i++) {
        if (rc == 0 && gl_outbox_stage (self->outbox, tx, evs->evs[i], evs->flags[i]) < 0)
            rc = -1;
        gl_event_destroy (&evs->evs[i]);
    }
    evs->n = 0;
    return rc;
}

void
rf_events_deliver (referral_t *self, rf_events_t *evs)
{
    for (size_t i = 0; i < evs->n; i++) {
        if (gl_outbox_deliver (self->outbox, evs->evs[i], evs->flags[i]) < 0)
            gl_warn ("referral: %s %s left to the outbox sweep", evs->evs[i]->type,
                     evs->evs[i]->id);
        gl_event_destroy (&evs->evs[i]);
    }
    evs->n = 0;
}

void
rf_events_drop (rf_events_t *evs)
{
    for (size_t i = 0; i < evs->n; i++)
        gl_event_destroy (&evs->evs[i]);
    evs->n = 0;
}
