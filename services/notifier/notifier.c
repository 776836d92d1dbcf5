/*  notifier — the service object: its settings (docs/operations.md), the work queue,
    the templates, the delivery-report listener, the subscriber, the timer and the requests.
*/
#include "notifier.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef NOTIFIER_CONFIG_DEFAULT
#define NOTIFIER_CONFIG_DEFAULT "config/notifier.conf"
#endif
#ifndef NOTIFIER_TEMPLATES_DEFAULT
#define NOTIFIER_TEMPLATES_DEFAULT "config/templates"
#endif

static char *
s_opt (gl_config_t *c, const char *key)
{
    const char *v = gl_config_str (c, key, NULL);
    return v && *v ? strdup (v) : NULL;
}

static int
s_gateway (gl_config_t *c, const char *prefix, http_gw_cfg_t *gw, int timeout_ms, char *err,
           size_t errlen)
{
    char key[96], why[160];
    snprintf (key, sizeof key, "%s_METHOD", prefix);
    gw->method = strdup (gl_config_str (c, key, "POST"));
    if (strcmp (gw->method, "GET") != 0 && strcmp (gw->method, "POST") != 0
        && strcmp (gw->method, "PUT") != 0) {
        snprintf (err, errlen, "%s must be GET, POST or PUT", key);
        return -1;
    }
    snprintf (key, sizeof key, "%s_URL", prefix);
    const char *url = gl_config_str (c, key, NULL);
    if (url && *url && !(gw->url = tpl_parse (url, strlen (url), why, sizeof why))) {
        snprintf (err, errlen, "%s: %s", key, why);
        return -1;
    }
    snprintf (key, sizeof key, "%s_BODY", prefix);
    const char *body = gl_config_str (c, key, NULL);
    if (body && *body && !(gw->body = tpl_parse (body, strlen (body), why, sizeof why))) {
        snprintf (err, errlen, "%s: %s", key, why);
        return -1;
    }
    snprintf (key, sizeof key, "%s_CONTENT_TYPE", prefix);
    gw->content_type = s_opt (c, key);
    snprintf (key, sizeof key, "%s_HEADER", prefix);
    gw->header = s_opt (c, key);
    gw->timeout_ms = timeout_ms;
    return 0;
}

static int
s_settings (notifier_t *self, char *err, size_t errlen)
{
    gl_config_t *c = gl_service_config (self->svc);
    notifier_cfg_t *cfg = &self->cfg;
    const char *file = gl_config_str (c, "GL_NOTIFIER_CONFIG", NOTIFIER_CONFIG_DEFAULT);
    if (file && *file && gl_config_load_file (c, file, err, errlen) != 0)
        return -1;
    cfg->max_attempts = (int) gl_config_int (c, "GL_NOTIFIER_MAX_ATTEMPTS", 5, 1, 100);
    cfg->max_attempts_emergency =
        (int) gl_config_int (c, "GL_NOTIFIER_MAX_ATTEMPTS_EMERGENCY", 10, 1, 100);
    cfg->backoff_base_ms = gl_config_int (c, "GL_NOTIFIER_BACKOFF_BASE_MS", 30000, 1, 86400000);
    cfg->backoff_max_ms = gl_config_int (c, "GL_NOTIFIER_BACKOFF_MAX_MS", 3600000, 1, 86400000);
    cfg->doubt_wait_ms = gl_config_int (c, "GL_NOTIFIER_DOUBT_WAIT_MS", 300000, 0, 86400000);
    cfg->utc_offset_min = (int) gl_config_int (c, "GL_NOTIFIER_UTC_OFFSET_MIN", 0, -720, 840);
    const char *quiet = gl_config_str (c, "GL_NOTIFIER_QUIET_HOURS", "");
    if (*quiet && notifier_parse_quiet (quiet, &cfg->quiet_from_min, &cfg->quiet_to_min) != 0) {
        snprintf (err, errlen, "GL_NOTIFIER_QUIET_HOURS must be HH:MM-HH:MM");
        return -1;
    }
    static const char *rate_keys[CH__COUNT] = { "GL_NOTIFIER_RATE_SMS", "GL_NOTIFIER_RATE_EMAIL",
                                                "GL_NOTIFIER_RATE_WEBHOOK",
                                                "GL_NOTIFIER_RATE_CONSOLE",
                                                "GL_NOTIFIER_RATE_VOICE" };
    static const int rate_def[CH__COUNT] = { 20, 20, 50, 0, 2 };
    for (int ch = 0; ch < CH__COUNT; ch++)
        cfg->rate[ch] = (int) gl_config_int (c, rate_keys[ch], rate_def[ch], 0, 100000);
    cfg->breaker_failures = (int) gl_config_int (c, "GL_NOTIFIER_BREAKER_FAILURES", 5, 1, 1000);
    cfg->breaker_open_ms = gl_config_int (c, "GL_NOTIFIER_BREAKER_OPEN_MS", 60000, 1, 86400000);
    snprintf (cfg->default_lang, sizeof cfg->default_lang, "%s",
              gl_config_str (c, "GL_NOTIFIER_DEFAULT_LANGUAGE", "en"));
    int timeout = (int) gl_config_int (c, "GL_NOTIFIER_HTTP_TIMEOUT_MS", 5000, 100, 60000);

    const char *gw = gl_config_str (c, "GL_NOTIFIER_SMS_GATEWAY", "kannel");
    if (strcmp (gw, "kannel") != 0 && strcmp (gw, "http") != 0) {
        snprintf (err, errlen, "GL_NOTIFIER_SMS_GATEWAY must be kannel or http");
        return -1;
    }
    cfg->sms_kannel = strcmp (gw, "kannel") == 0;
    cfg->kannel.url = s_opt (c, "GL_NOTIFIER_KANNEL_URL");
    cfg->kannel.user = s_opt (c, "GL_NOTIFIER_KANNEL_USER");
    cfg->kannel.password = s_opt (c, "GL_NOTIFIER_KANNEL_PASSWORD");
    cfg->kannel.from = s_opt (c, "GL_NOTIFIER_SMS_FROM");
    cfg->kannel.smsc = s_opt (c, "GL_NOTIFIER_KANNEL_SMSC");
    cfg->kannel.dlr_secret = s_opt (c, "GL_NOTIFIER_DLR_SECRET");
    cfg->kannel.timeout_ms = timeout;
    if (s_gateway (c, "GL_NOTIFIER_SMS_HTTP", &cfg->sms_http, timeout, err, errlen) != 0
        || s_gateway (c, "GL_NOTIFIER_VOICE_HTTP", &cfg->voice_http, timeout, err, errlen) != 0)
        return -1;

    cfg->smtp.url = s_opt (c, "GL_NOTIFIER_SMTP_URL");
    cfg->smtp.from = s_opt (c, "GL_NOTIFIER_SMTP_FROM");
    cfg->smtp.user = s_opt (c, "GL_NOTIFIER_SMTP_USER");
    cfg->smtp.password = s_opt (c, "GL_NOTIFIER_SMTP_PASSWORD");
    cfg->smtp.ca_file = s_opt (c, "GL_NOTIFIER_SMTP_CA_FILE");
    cfg->smtp.insecure = gl_config_bool (c, "GL_NOTIFIER_SMTP_INSECURE", false);
    cfg->smtp.timeout_ms = (int) gl_config_int (c, "GL_NOTIFIER_SMTP_TIMEOUT_MS", 10000, 100,
                                                120000);
    const char *tls = gl_config_str (c, "GL_NOTIFIER_SMTP_TLS", "try");
    if (strcmp (tls, "none") == 0)
        cfg->smtp.tls = 0;
    else if (strcmp (tls, "try") == 0)
        cfg->smtp.tls = 1;
    else if (strcmp (tls, "required") == 0)
        cfg->smtp.tls = 2;
    else {
        snprintf (err, errlen, "GL_NOTIFIER_SMTP_TLS must be none, try or required");
        return -1;
    }
    cfg->webhook.timeout_ms = timeout;
    //  An attempt recorded more recently than this may still be under way at another replica.
    cfg->in_flight_ms = (timeout > cfg->smtp.timeout_ms ? timeout : cfg->smtp.timeout_ms) + 2000;
    cfg->test_hold_file = gl_config_str (c, "GL_NOTIFIER_TEST_HOLD_AFTER_SEND", NULL);
    const char *bad = gl_config_error (c);
    if (bad) {
        snprintf (err, errlen, "%s", bad);
        return -1;
    }
    return 0;
}

static bool
s_ready (void *arg, char *reason, size_t reason_len)
{
    notifier_t *self = arg;
    if (templates_count (self->templates) == 0) {
        snprintf (reason, reason_len, "no templates loaded");
        return false;
    }
    return true;
}

notifier_t *
notifier_new (gl_service_t *svc, char *err, size_t errlen)
{
    assert (svc && err);
    if (sodium_init () < 0 || curl_global_init (CURL_GLOBAL_DEFAULT) != 0) {
        snprintf (err, errlen, "libsodium or libcurl could not start");
        return NULL;
    }
    notifier_t *self = calloc (1, sizeof (notifier_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->svc = svc;
    self->redis = gl_service_redis (svc);
    gl_config_t *c = gl_service_config (svc);
    if (s_settings (self, err, errlen) != 0)
        goto fail;
    self->templates = templates_new ();
    const char *dir = gl_config_str (c, "GL_NOTIFIER_TEMPLATES", NOTIFIER_TEMPLATES_DEFAULT);
    if (!self->templates || templates_load_dir (self->templates, dir, err, errlen) != 0)
        goto fail;
    gl_info ("notifier: %zu templates from %s", templates_count (self->templates), dir);

    snprintf (self->consumer, sizeof self->consumer, "%s", gl_pub_src (gl_service_pub (svc)));
    gl_wq_opts_t opts = {
        .max_deliveries = (int) gl_config_int (c, "GL_NOTIFIER_MAX_DELIVERIES", 20, 1, 1000),
        .reclaim_idle_ms = (int) gl_config_int (c, "GL_NOTIFIER_RECLAIM_MS", 30000, 100, 3600000),
        .max_len = gl_config_int (c, "GL_NOTIFIER_QUEUE_MAX", 100000, 10, 10000000),
        .batch = 16,
    };
    if (gl_config_error (c)) {
        snprintf (err, errlen, "%s", gl_config_error (c));
        goto fail;
    }
    if (opts.reclaim_idle_ms <= self->cfg.in_flight_ms)
        gl_warn ("notifier: GL_NOTIFIER_RECLAIM_MS (%d) is not above the longest send "
                 "(%" PRId64 " ms): slow sends will be reclaimed and wait", opts.reclaim_idle_ms,
                 self->cfg.in_flight_ms);
    self->wq = gl_wq_new (self->redis, NOTIFIER_QUEUE, self->consumer, &opts);
    if (!self->wq) {
        snprintf (err, errlen, "the work queue could not be made");
        goto fail;
    }
    if (delivery_init (self) != 0) {
        snprintf (err, errlen, "out of memory");
        goto fail;
    }
    int dlr_listen = (int) gl_config_int (c, "GL_NOTIFIER_DLR_PORT", 0, 0, 65535);
    const char *dlr_host = gl_config_str (c, "GL_NOTIFIER_DLR_HOST", "127.0.0.1");
    if (gl_config_bool (c, "GL_NOTIFIER_DLR", true) && self->cfg.sms_kannel) {
        if (!self->cfg.kannel.dlr_secret) {
            snprintf (err, errlen, "GL_NOTIFIER_DLR_SECRET is needed for Kannel delivery reports "
                      "(or GL_NOTIFIER_DLR=0)");
            goto fail;
        }
        self->dlr = dlr_new (c, dlr_host, dlr_listen, self->cfg.kannel.dlr_secret, err, errlen);
        if (!self->dlr)
            goto fail;
        const char *base = gl_config_str (c, "GL_NOTIFIER_DLR_URL_BASE", NULL);
        char url[256];
        if (base && *base)
            snprintf (url, sizeof url, "%s", base);
        else
            snprintf (url, sizeof url, "http://%s:%d", dlr_host, dlr_port (self->dlr));
        self->cfg.kannel.dlr_url = strdup (url);
    }
    char why[256];
    int64_t poll = gl_config_int (c, "GL_NOTIFIER_POLL_MS", 100, 10, 10000);
    if (!gl_service_subscribe (svc, NULL, "notification.requested", 1, delivery_on_event, self,
                               why, sizeof why)) {
        snprintf (err, errlen, "subscriber: %s", why);
        goto fail;
    }
    if (gl_service_every (svc, poll, delivery_tick, self) != 0 || requests_init (self) != 0) {
        snprintf (err, errlen, "timer or request handlers could not be registered");
        goto fail;
    }
    gl_service_ready_check (svc, s_ready, self);
    return self;
fail:
    notifier_destroy (&self);
    return NULL;
}

void
notifier_destroy (notifier_t **self_p)
{
    assert (self_p);
    notifier_t *self = *self_p;
    if (!self)
        return;
    dlr_destroy (&self->dlr);
    delivery_destroy (self);
    gl_wq_destroy (&self->wq);
    templates_destroy (&self->templates);
    notifier_cfg_t *cfg = &self->cfg;
    free (cfg->kannel.url);
    free (cfg->kannel.user);
    if (cfg->kannel.password)
        sodium_memzero (cfg->kannel.password, strlen (cfg->kannel.password));
    free (cfg->kannel.password);
    free (cfg->kannel.from);
    free (cfg->kannel.smsc);
    free (cfg->kannel.dlr_url);
    free (cfg->kannel.dlr_secret);
    http_gw_cfg_clear (&cfg->sms_http);
    http_gw_cfg_clear (&cfg->voice_http);
    free (cfg->smtp.url);
    free (cfg->smtp.from);
    free (cfg->smtp.user);
    if (cfg->smtp.password)
        sodium_memzero (cfg->smtp.password, strlen (cfg->smtp.password));
    free (cfg->smtp.password);
    free (cfg->smtp.ca_file);
    free (self);
    *self_p = NULL;
    curl_global_cleanup ();
}
