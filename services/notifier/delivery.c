/*  delivery — the work of sending: from notification.requested to sent, delivered or dead.

    1. The subscriber (one active replica, gl_sub) applies notification.requested: it validates
       the payload, adds one work item per channel to the gl_wq queue "notifier" (item key
       "<notification id>:<channel>:0"; adding is idempotent) and records the notification, in
       the same atomic step as its cursor. A notification id already recorded is not added
       again: requesting the same id twice sends once.
    2. Every replica's timer claims items (a dead replica's items are reclaimed after
       GL_NOTIFIER_RECLAIM_MS) and works each one:
         - a delivery already sent (or delivered) is completed without sending;
         - an attempt in doubt (the record says "sending", recorded longer ago than a send can
           take: a replica died between sending and recording) follows the in-doubt rule: an emergency is sent again (at least once); a
           routine message is sent again only when the gateway's delivery report says it did
           not go (Kannel: report 2 or 16 for that attempt), is taken as sent when the report
           says it went, waits up to GL_NOTIFIER_DOUBT_WAIT_MS for a report, and is otherwise
           dead-lettered "in_doubt" (never sent twice; an admin may replay it);
         - a routine message in quiet hours, or any message for a channel whose circuit breaker
           is open, is deferred (no attempt counted);
         - a channel over its rate limit holds the item in memory for a moment;
         - otherwise: the recipient is looked up, the template rendered, the attempt recorded
           (state "sending", attempts + 1, only if the record is still as this worker read it:
           a slow worker whose item was reclaimed by another leaves it to that one) and only
           then is the message sent.
       Each timer call works for at most S_TICK_BUDGET_MS (then the loop has its turn: leases,
       requests, the subscriber), emergencies first within each claimed batch.
       The outcome is recorded together with its event (through the outbox) in the atomic step
       that completes the item (gl_wq_complete). A failure that may be retried schedules the
       next attempt after an exponential backoff with jitter (the due set, business time); after
       the last attempt, or on a permanent failure, the item is dead-lettered with the reason.
    3. The timer moves due deferred deliveries back onto the queue (item key round + 1) and
       announces Kannel delivery reports (notification.delivered).

    Keys (all under the hash tag {notifier}, with the queue's gl:wq:{notifier}*):
      notifier:{notifier}:n:<id>        hash: the notification (template, priority, corr,
                                        channels, requested_at)
      notifier:{notifier}:d:<id>:<ch>   hash: one delivery (state, attempts, total, round,
                                        reason, next_at, sent_at, delivered_at, gateway_id, lang,
                                        dlr, dlr_attempt, req: the work item's payload ...)
      notifier:{notifier}:due           sorted set: deferred deliveries by due time
      notifier:{notifier}:dlrnew        set: deliveries with a report not yet announced
*/
#include "notifier.h"
#include "gl/gl_clock.h"
#include "gl/gl_id.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_HELD_MAX      64
#define S_CLAIM         8       //  items claimed at a time
#define S_TICK_BUDGET_MS 500    //  work per timer call before the loop gets its turn
#define S_DUE_BATCH     100
#define S_RETENTION_MS  (30LL * 86400000)

typedef struct {
    char key[80];               //  the gateway: a channel, or a webhook receiver
    int failures;               //  consecutive
    int64_t open_until;         //  business ms, like the due times of the deferrals it makes
    int64_t used;               //  monotonic ms of the last use (the least recent is reused)
} s_breaker_t;

#define S_BREAKERS 64           //  gateways watched: the channels and the busiest receivers

typedef struct _delivery_t {
    s_breaker_t breaker[S_BREAKERS];
    rate_bucket_t bucket[CH__COUNT];
    gl_wq_item_t *held[S_HELD_MAX];
    int nheld;
    gl_metric_t *sent[CH__COUNT], *failed[CH__COUNT], *dead[CH__COUNT], *deferred;
    gl_metric_t *latency;
    gl_metric_t *depth, *pending, *dead_letters, *due;
    int64_t stats_at;           //  monotonic ms of the last queue figures
} delivery_t;

//  --------------------------------------------------------------------------------------------
//  Helpers

static void
s_dkey (char *out, size_t len, const char *delivery)
{
    snprintf (out, len, NOTIFIER_PREFIX "d:%s", delivery);
}

//  The delivery record as an object of strings ({} when there is none); NULL when Redis failed.
static json_t *
s_load (notifier_t *self, const char *dkey)
{
    redisReply *r = gl_redis_cmd (self->redis, "HGETALL %s", dkey);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return NULL;
    }
    json_t *o = json_object ();
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i + 1]->type == REDIS_REPLY_STRING)
            json_object_set_new (o, r->element[i]->str,
                                 json_stringn (r->element[i + 1]->str, r->element[i + 1]->len));
    freeReplyObject (r);
    return o;
}

static const char *
s_get (const json_t *rec, const char *key)
{
    const char *s = json_string_value (json_object_get (rec, key));
    return s ? s : "";
}

static int64_t
s_geti (const json_t *rec, const char *key)
{
    return strtoll (s_get (rec, key), NULL, 10);
}

//  One delivery being worked: everything known about it.
typedef struct {
    gl_wq_item_t *item;
    json_t *req;                //  the payload
    const char *nid, *tmpl, *prio, *corr;
    channel_t ch;
    char delivery[GL_ID_LEN + 16];
    char dkey[128];
    int round;
    bool emergency;
    json_t *rec;                //  the delivery record
} s_work_t;

//  A notification.* outcome event.
static gl_event_t *
s_event (const s_work_t *w, const char *type, int attempt, const char *reason)
{
    gl_event_t *ev = gl_event_new (type);
    if (!ev)
        return NULL;
    if (w->corr && *w->corr)
        gl_event_set_corr (ev, w->corr);
    json_object_set_new (ev->data, "notification_id", json_string (w->nid));
    json_object_set_new (ev->data, "template", json_string (w->tmpl));
    json_object_set_new (ev->data, "channel", json_string (channel_name (w->ch)));
    json_object_set_new (ev->data, "attempt", json_integer (attempt));
    json_object_set_new (ev->data, "reason", json_string (reason ? reason : ""));
    json_object_set_new (ev->data, "priority", json_string (w->prio));
    return ev;
}

//  A list of commands built for gl_wq_complete or MULTI.
#define S_CMDS_MAX 6
#define S_ARGS_MAX 32
typedef struct {
    gl_wq_cmd_t cmd[S_CMDS_MAX];
    const char *argv[S_CMDS_MAX][S_ARGS_MAX];
    char *owned[S_CMDS_MAX * 4];
    int nowned;
    int n;
} s_cmds_t;

static const char *
s_own (s_cmds_t *c, char *s)
{
    assert (c->nowned < (int) (sizeof c->owned / sizeof c->owned[0]));
    c->owned[c->nowned++] = s;
    return s;
}

static const char *
s_fmt (s_cmds_t *c, const char *fmt, int64_t v)
{
    char *s = malloc (32);
    if (s)
        snprintf (s, 32, fmt, v);
    return s_own (c, s ? s : NULL);
}

static void
s_cmd (s_cmds_t *c, int argc, ...)
{
    assert (c->n < S_CMDS_MAX && argc <= S_ARGS_MAX);
    va_list ap;
    va_start (ap, argc);
    for (int i = 0; i < argc; i++)
        c->argv[c->n][i] = va_arg (ap, const char *);
    va_end (ap);
    c->cmd[c->n] = (gl_wq_cmd_t) { argc, c->argv[c->n], NULL };
    c->n++;
}

//  Add "HSET outbox <id> <entry>" for ev.
static int
s_cmd_outbox (notifier_t *self, s_cmds_t *c, gl_event_t *ev)
{
    gl_outbox_t *ob = gl_service_outbox (self->svc);
    char *entry = gl_outbox_entry (ob, ev, 0);
    if (!entry)
        return -1;
    s_own (c, entry);
    s_cmd (c, 4, "HSET", gl_outbox_key (ob), ev->id, entry);
    return 0;
}

static void
s_cmds_free (s_cmds_t *c)
{
    for (int i = 0; i < c->nowned; i++)
        free (c->owned[i]);
    c->nowned = 0;
    c->n = 0;
}

static void
s_deliver (notifier_t *self, gl_event_t **evs, int n)
{
    for (int i = 0; i < n; i++)
        if (evs[i]) {
            gl_outbox_deliver (gl_service_outbox (self->svc), evs[i], 0);
            gl_event_destroy (&evs[i]);
        }
}

//  Complete the item with commands c and deliver the staged events when applied. 0, or -1.
static int
s_complete (notifier_t *self, s_work_t *w, s_cmds_t *c, gl_event_t **evs, int nevs)
{
    int rc = gl_wq_complete (self->wq, w->item, c->n, c->cmd);
    s_cmds_free (c);
    if (rc == 0)
        s_deliver (self, evs, nevs);
    else {
        for (int i = 0; i < nevs; i++)
            gl_event_destroy (&evs[i]);
        if (rc < 0) {
            gl_warn ("notifier: complete %s: %s", w->delivery, gl_wq_errstr (self->wq));
            return -1;
        }
    }
    return 0;
}

//  Run commands c in MULTI/EXEC. 0, or -1.
static int
s_multi (notifier_t *self, s_cmds_t *c)
{
    int rc = gl_redis_append (self->redis, "MULTI");
    for (int i = 0; i < c->n && rc == 0; i++)
        rc = gl_redis_appendargv (self->redis, c->cmd[i].argc, c->cmd[i].argv, NULL);
    if (rc == 0)
        rc = gl_redis_append (self->redis, "EXEC");
    int ok = rc == 0;
    for (int i = 0; ok && i < c->n + 2; i++) {
        redisReply *r = gl_redis_reply (self->redis);
        if (!r)
            ok = 0;
        else {
            if (i == c->n + 1 && r->type != REDIS_REPLY_ARRAY)
                ok = 0;
            freeReplyObject (r);
        }
    }
    s_cmds_free (c);
    return ok ? 0 : -1;
}

//  --------------------------------------------------------------------------------------------
//  The subscriber: notification.requested -> work items

int
delivery_on_event (void *arg, const gl_event_t *ev, gl_tx_t *tx)
{
    notifier_t *self = arg;
    if (strcmp (ev->type, "notification.requested") != 0)
        return 0;
    char field[64];
    if (delivery_validate (ev->data, field, sizeof field) != 0) {
        //  Nothing can be done with it; it stays in the producer's log for whoever looks.
        gl_warn ("notifier: notification.requested %s from %s rejected: field %s", ev->id,
                 ev->src, field);
        return 0;
    }
    const char *nid = gl_event_str (ev, "notification_id", "");
    char nkey[128];
    snprintf (nkey, sizeof nkey, NOTIFIER_PREFIX "n:%s", nid);
    redisReply *r = gl_redis_cmd (self->redis, "EXISTS %s", nkey);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    bool known = r->integer == 1;
    freeReplyObject (r);
    if (known) {
        gl_info ("notifier: notification %s requested again; sent once", nid);
        return 0;
    }
    json_t *chs = json_object_get (ev->data, "channels");
    char list[64] = "";
    for (size_t i = 0; i < json_array_size (chs); i++) {
        const char *ch = json_string_value (json_array_get (chs, i));
        json_t *payload = json_deep_copy (ev->data);
        json_object_del (payload, "channels");
        json_object_set_new (payload, "channel", json_string (ch));
        json_object_set_new (payload, "corr", json_string (ev->corr));
        if (!json_object_get (payload, "params"))
            json_object_set_new (payload, "params", json_object ());
        char *s = json_dumps (payload, JSON_COMPACT);
        json_decref (payload);
        char key[GL_WQ_KEY_MAX];
        snprintf (key, sizeof key, "%s:%s:0", nid, ch);
        int rc = s ? gl_wq_add (self->wq, key, s, strlen (s), NULL) : -1;
        free (s);
        if (rc < 0) {
            gl_warn ("notifier: queue %s: %s", key, gl_wq_errstr (self->wq));
            return -1;
        }
        snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", i ? "," : "", ch);
    }
    char when[24], ttl[24];
    snprintf (when, sizeof when, "%" PRId64, gl_now_ms ());
    snprintf (ttl, sizeof ttl, "%lld", S_RETENTION_MS);
    const char *hset[] = { "HSET", nkey, "template", gl_event_str (ev, "template", ""),
                           "priority", gl_event_str (ev, "priority", ""), "corr", ev->corr,
                           "channels", list, "requested_at", when, "event", ev->id };
    gl_tx_cmd (tx, 14, hset, NULL);
    const char *exp[] = { "PEXPIRE", nkey, ttl };
    gl_tx_cmd (tx, 3, exp, NULL);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Outcomes

static int
s_attempts (const s_work_t *w)
{
    return (int) s_geti (w->rec, "attempts");
}

//  Defer: complete the item and put the delivery on the due set for at, in state state.
static int
s_defer (notifier_t *self, s_work_t *w, int64_t at, const char *state, const char *reason,
         gl_event_t *ev)
{
    s_cmds_t c = { 0 };
    size_t plen;
    const char *payload = gl_wq_item_payload (w->item, &plen);
    s_cmd (&c, 12, "HSET", w->dkey, "state", state, "next_at", s_fmt (&c, "%" PRId64, at),
           "round", s_fmt (&c, "%" PRId64, w->round + 1), "reason", reason, "req", payload);
    s_cmd (&c, 4, "ZADD", NOTIFIER_PREFIX "due", s_fmt (&c, "%" PRId64, at), w->delivery);
    s_cmd (&c, 3, "PEXPIRE", w->dkey, s_fmt (&c, "%" PRId64, S_RETENTION_MS));
    if (ev && s_cmd_outbox (self, &c, ev) != 0) {
        s_cmds_free (&c);
        gl_event_destroy (&ev);
        return -1;
    }
    gl_metric_inc (self->delivery->deferred, 1);
    return s_complete (self, w, &c, &ev, 1);
}

static int
s_sent (notifier_t *self, s_work_t *w, int attempt, const char *gateway_id, const char *lang,
        const char *reason, gl_event_t *console)
{
    s_cmds_t c = { 0 };
    gl_event_t *evs[2] = { s_event (w, "notification.sent", attempt, reason), console };
    if (!evs[0]) {
        gl_event_destroy (&console);
        return -1;
    }
    s_cmd (&c, 14, "HSET", w->dkey, "state", "sent", "sent_at",
           s_fmt (&c, "%" PRId64, gl_now_ms ()), "gateway_id", gateway_id ? gateway_id : "",
           "lang", lang ? lang : "", "reason", reason ? reason : "", "attempts",
           s_fmt (&c, "%" PRId64, attempt));
    s_cmd (&c, 3, "PEXPIRE", w->dkey, s_fmt (&c, "%" PRId64, S_RETENTION_MS));
    s_cmd (&c, 3, "ZREM", NOTIFIER_PREFIX "due", w->delivery);
    for (int i = 0; i < 2; i++)
        if (evs[i] && s_cmd_outbox (self, &c, evs[i]) != 0) {
            s_cmds_free (&c);
            gl_event_destroy (&evs[0]);
            gl_event_destroy (&evs[1]);
            return -1;
        }
    gl_metric_inc (self->delivery->sent[w->ch], 1);
    gl_info ("notifier: %s sent (attempt %d)", w->delivery, attempt);
    return s_complete (self, w, &c, evs, 2);
}

static int
s_dead (notifier_t *self, s_work_t *w, int attempt, const char *reason)
{
    s_cmds_t c = { 0 };
    gl_event_t *ev = s_event (w, "notification.dead", attempt, reason);
    if (!ev)
        return -1;
    size_t plen;
    const char *payload = gl_wq_item_payload (w->item, &plen);
    s_cmd (&c, 16, "HSET", w->dkey, "state", "dead", "reason", reason, "dead_item",
           gl_wq_item_id (w->item), "dead_at", s_fmt (&c, "%" PRId64, gl_now_ms ()), "req",
           payload, "round", s_fmt (&c, "%" PRId64, w->round), "attempts",
           s_fmt (&c, "%" PRId64, attempt));
    s_cmd (&c, 3, "PEXPIRE", w->dkey, s_fmt (&c, "%" PRId64, S_RETENTION_MS));
    s_cmd (&c, 3, "ZREM", NOTIFIER_PREFIX "due", w->delivery);
    if (s_cmd_outbox (self, &c, ev) != 0 || s_multi (self, &c) != 0) {
        s_cmds_free (&c);
        gl_event_destroy (&ev);
        return -1;
    }
    //  Record and event first, then the dead letter: a crash in between is finished by whoever
    //  claims the item next (the record names this item as the one to bury).
    int rc = gl_wq_dead (self->wq, w->item, reason);
    if (rc < 0)
        gl_warn ("notifier: dead-letter %s: %s", w->delivery, gl_wq_errstr (self->wq));
    gl_outbox_deliver (gl_service_outbox (self->svc), ev, 0);
    gl_event_destroy (&ev);
    gl_metric_inc (self->delivery->dead[w->ch], 1);
    gl_warn ("notifier: %s dead after %d attempt(s): %s", w->delivery, attempt, reason);
    return 0;
}

//  A failed attempt: retry after the backoff, or dead-letter after the last one.
static int
s_failed (notifier_t *self, s_work_t *w, int attempt, const char *reason)
{
    int max = w->emergency ? self->cfg.max_attempts_emergency : self->cfg.max_attempts;
    gl_metric_inc (self->delivery->failed[w->ch], 1);
    if (attempt >= max)
        return s_dead (self, w, attempt, reason);
    int64_t at = gl_now_ms () + notifier_backoff (&self->cfg, attempt, randombytes_random ());
    gl_info ("notifier: %s attempt %d failed (%s); next in %" PRId64 " ms", w->delivery, attempt,
             reason, at - gl_now_ms ());
    //  The attempt count moves here too when the attempt failed before it was recorded (the
    //  recipient could not be looked up), so that such failures also end in a dead letter.
    redisReply *r = gl_redis_cmd (self->redis, "HSET %s attempts %d", w->dkey, attempt);
    if (!r)
        return -1;
    freeReplyObject (r);
    return s_defer (self, w, at, "failed", reason,
                    s_event (w, "notification.failed", attempt, reason));
}

//  --------------------------------------------------------------------------------------------
//  Breakers and rate limits (per replica, in memory)

//  The breaker of the gateway w goes to: one per channel, one per webhook receiver (a partner
//  or a configured endpoint), so that one receiver that fails does not hold back the others.
static s_breaker_t *
s_breaker (notifier_t *self, const s_work_t *w)
{
    char key[80];
    if (w->ch == CH_WEBHOOK) {
        json_t *r = json_object_get (w->req, "recipient");
        const char *code = json_string_value (json_object_get (r, "code"));
        if (!code)
            code = json_string_value (json_object_get (r, "id"));
        snprintf (key, sizeof key, "webhook:%s:%s",
                  json_string_value (json_object_get (r, "kind")), code ? code : "");
    }
    else
        snprintf (key, sizeof key, "%s", channel_name (w->ch));
    s_breaker_t *all = self->delivery->breaker, *lru = &all[0];
    for (int i = 0; i < S_BREAKERS; i++) {
        if (strcmp (all[i].key, key) == 0) {
            all[i].used = gl_mono_ms ();
            return &all[i];
        }
        if (all[i].used < lru->used)
            lru = &all[i];
    }
    memset (lru, 0, sizeof *lru);
    snprintf (lru->key, sizeof lru->key, "%s", key);
    lru->used = gl_mono_ms ();
    return lru;
}

static bool
s_breaker_open (notifier_t *self, const s_work_t *w, int64_t *wait_ms)
{
    s_breaker_t *b = s_breaker (self, w);
    int64_t now = gl_now_ms ();
    if (b->failures < self->cfg.breaker_failures || now >= b->open_until)
        return false;       //  closed, or half-open: this attempt is the trial
    *wait_ms = b->open_until - now;
    return true;
}

static void
s_breaker_result (notifier_t *self, const s_work_t *w, bool ok)
{
    s_breaker_t *b = s_breaker (self, w);
    if (ok) {
        if (b->failures >= self->cfg.breaker_failures)
            gl_info ("notifier: gateway %s answers again; circuit closed", b->key);
        b->failures = 0;
        return;
    }
    b->failures++;
    if (b->failures >= self->cfg.breaker_failures) {
        b->open_until = gl_now_ms () + self->cfg.breaker_open_ms;
        if (b->failures == self->cfg.breaker_failures)
            gl_warn ("notifier: gateway %s failed %d times in a row; circuit open for %" PRId64
                     " ms", b->key, b->failures, self->cfg.breaker_open_ms);
    }
}

static bool
s_rate_take (notifier_t *self, channel_t ch)
{
    return rate_take (&self->delivery->bucket[ch], self->cfg.rate[ch], gl_mono_us ());
}

//  --------------------------------------------------------------------------------------------
//  Working one item

//  The attempt record: KEYS delivery. ARGV attempts and state expected, new attempt, now, lang,
//  consumer, payload. 1 when recorded, 0 when the record moved on. attempt_rt is the Redis
//  server's clock (the one clock every replica shares, as for gl_wq's idle times).
static gl_redis_script_t s_attempt_script = {
    .source =
        "local n = redis.call ('HGET', KEYS[1], 'attempts') or '0'\n"
        "local st = redis.call ('HGET', KEYS[1], 'state') or ''\n"
        "if n ~= ARGV[1] or st ~= ARGV[2] then return 0 end\n"
        "local t = redis.call ('TIME')\n"
        "local rt = tonumber (t[1]) * 1000 + math.floor (tonumber (t[2]) / 1000)\n"
        "redis.call ('HSET', KEYS[1], 'state', 'sending', 'attempts', ARGV[3], 'attempt_at',\n"
        "            ARGV[4], 'lang', ARGV[5], 'consumer', ARGV[6], 'doubt_until', '0',\n"
        "            'req', ARGV[7], 'attempt_rt', rt)\n"
        "redis.call ('HINCRBY', KEYS[1], 'total', 1)\n"
        "return 1\n",
};

//  Tests: stop dead right after a send, before its outcome is recorded, until killed.
static void
s_test_hold (notifier_t *self)
{
    if (!self->cfg.test_hold_file)
        return;
    int fd = open (self->cfg.test_hold_file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return;     //  held once already
    close (fd);
    gl_warn ("notifier: test hold after send: waiting to be killed");
    for (;;)
        pause ();
}

static send_rc_t
s_send (notifier_t *self, s_work_t *w, const contact_t *who, const rendered_t *msg,
        int attempt, send_res_t *res)
{
    send_req_t req = {
        .delivery = w->delivery, .nid = w->nid, .template_code = w->tmpl, .priority = w->prio,
        .corr = w->corr, .attempt = attempt, .msg = msg,
        .params = json_object_get (w->req, "params"),
        .recipient = json_object_get (w->req, "recipient"),
    };
    switch (w->ch) {
        case CH_SMS:
            req.to = who->phone;
            return self->cfg.sms_kannel ? kannel_send (&self->cfg.kannel, &req, res)
                                        : http_gateway_send (&self->cfg.sms_http, msg->text,
                                                             &req, res);
        case CH_VOICE:
            req.to = who->phone;
            return http_gateway_send (&self->cfg.voice_http, msg->voice, &req, res);
        case CH_EMAIL:
            req.to = who->email;
            return smtp_send (&self->cfg.smtp, &req, res);
        case CH_WEBHOOK:
            req.to = who->url;
            req.secret = who->secret;
            return webhook_send (&self->cfg.webhook, &req, gl_now_ms (), res);
        default:
            snprintf (res->reason, sizeof res->reason, "channel_unknown");
            return SEND_PERMANENT;
    }
}

//  Does this channel have a gateway status that can settle an attempt in doubt?
static bool
s_has_status (notifier_t *self, channel_t ch)
{
    return ch == CH_SMS && self->cfg.sms_kannel && self->cfg.kannel.dlr_url;
}

//  The in-doubt rule for a routine message. Returns 1 to send again, 0 when settled here.
static int
s_in_doubt_routine (notifier_t *self, s_work_t *w, int *rc)
{
    int attempt = s_attempts (w);
    int dlr = s_geti (w->rec, "dlr_attempt") == attempt ? (int) s_geti (w->rec, "dlr") : 0;
    if (dlr == 1 || dlr == 4 || dlr == 8) {
        *rc = s_sent (self, w, attempt, s_get (w->rec, "gateway_id"), s_get (w->rec, "lang"),
                      "in_doubt_confirmed", NULL);
        return 0;
    }
    if (dlr == 2 || dlr == 16) {
        gl_info ("notifier: %s attempt %d in doubt; the gateway reports it did not go",
                 w->delivery, attempt);
        return 1;
    }
    int64_t until = s_geti (w->rec, "doubt_until");
    if (s_has_status (self, w->ch) && (until == 0 || gl_now_ms () < until)) {
        if (until == 0) {
            until = gl_now_ms () + self->cfg.doubt_wait_ms;
            redisReply *r = gl_redis_cmd (self->redis, "HSET %s doubt_until %lld", w->dkey,
                                          (long long) until);
            if (r)
                freeReplyObject (r);
            if (!r) {
                *rc = -1;
                return 0;
            }
        }
        *rc = s_defer (self, w, until, "sending", "in_doubt_waiting", NULL);
        return 0;
    }
    *rc = s_dead (self, w, attempt, "in_doubt");
    return 0;
}

//  True when the recorded attempt is younger (on the Redis server's clock) than the longest a
//  send can take: a live worker may still be on it.
static bool
s_in_flight (notifier_t *self, const s_work_t *w)
{
    int64_t at = s_geti (w->rec, "attempt_rt");
    if (at <= 0)
        return false;
    redisReply *r = gl_redis_cmd (self->redis, "TIME");
    bool young = true;      //  cannot tell: do not judge now
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->str
        && r->element[1]->str) {
        int64_t now = strtoll (r->element[0]->str, NULL, 10) * 1000
                    + strtoll (r->element[1]->str, NULL, 10) / 1000;
        young = now - at < self->cfg.in_flight_ms;
    }
    if (r)
        freeReplyObject (r);
    return young;
}

//  Work one claimed item. Returns 1 when it was held back (rate limit: keep it), else 0.
static int
s_work (notifier_t *self, gl_wq_item_t *item)
{
    s_work_t w = { .item = item };
    size_t plen;
    const char *payload = gl_wq_item_payload (item, &plen);
    w.req = json_loadb (payload, plen, 0, NULL);
    const char *key = gl_wq_item_key (item);
    const char *last = strrchr (key, ':');
    w.nid = json_string_value (json_object_get (w.req, "notification_id"));
    w.tmpl = json_string_value (json_object_get (w.req, "template"));
    w.prio = json_string_value (json_object_get (w.req, "priority"));
    w.corr = json_string_value (json_object_get (w.req, "corr"));
    w.ch = (channel_t) channel_parse (json_string_value (json_object_get (w.req, "channel")));
    if (!w.req || !last || !w.nid || !gl_id_valid (w.nid) || !w.tmpl || !w.prio || (int) w.ch < 0
        || !json_is_object (json_object_get (w.req, "recipient"))) {
        gl_wq_dead (self->wq, item, "malformed");
        json_decref (w.req);
        return 0;
    }
    if (!w.corr)
        w.corr = "";
    w.round = atoi (last + 1);
    w.emergency = strcmp (w.prio, "emergency") == 0;
    snprintf (w.delivery, sizeof w.delivery, "%s:%s", w.nid, channel_name (w.ch));
    s_dkey (w.dkey, sizeof w.dkey, w.delivery);
    w.rec = s_load (self, w.dkey);
    int rc = 0, held = 0;
    if (!w.rec) {
        gl_wq_fail (self->wq, item, "redis_unavailable");
        json_decref (w.req);
        return 0;
    }
    const char *state = s_get (w.rec, "state");
    int attempt = s_attempts (&w);

    if (strcmp (state, "sent") == 0 || strcmp (state, "delivered") == 0) {
        rc = gl_wq_complete (self->wq, item, 0, NULL) < 0 ? -1 : 0;
        goto done;
    }
    if (strcmp (state, "dead") == 0) {
        if (strcmp (s_get (w.rec, "dead_item"), gl_wq_item_id (item)) == 0) {
            gl_wq_dead (self->wq, item, s_get (w.rec, "reason"));
            goto done;
        }
        //  Replayed by an admin: a fresh set of attempts.
        redisReply *r = gl_redis_cmd (self->redis, "HSET %s state replayed attempts 0 "
                                      "doubt_until 0", w.dkey);
        if (!r) {
            gl_wq_fail (self->wq, item, "redis_unavailable");
            goto done;
        }
        freeReplyObject (r);
        gl_info ("notifier: %s replayed", w.delivery);
        attempt = 0;
        state = "replayed";
    }
    if (strcmp (state, "sending") == 0 && s_in_flight (self, &w)) {
        //  Recorded so recently that its worker may still be sending it (it was reclaimed
        //  from a slow worker, not a dead one): look again later.
        gl_debug ("notifier: %s attempt %d may still be in flight", w.delivery, attempt);
        gl_wq_fail (self->wq, item, "attempt_in_flight");
        goto done;
    }
    if (strcmp (state, "sending") == 0) {
        //  The attempt was recorded, the outcome never was: in doubt.
        if (w.emergency)
            gl_warn ("notifier: %s attempt %d in doubt; emergency: sending again", w.delivery,
                     attempt);
        else if (s_in_doubt_routine (self, &w, &rc) == 0)
            goto done;
    }
    int64_t now = gl_now_ms (), until, wait;
    if (!w.emergency && notifier_quiet (&self->cfg, now, &until)) {
        gl_info ("notifier: %s deferred to the end of quiet hours", w.delivery);
        rc = s_defer (self, &w, until, "deferred", "quiet_hours", NULL);
        goto done;
    }
    if (s_breaker_open (self, &w, &wait)) {
        rc = s_defer (self, &w, now + wait, "deferred", "circuit_open", NULL);
        goto done;
    }
    if (!s_rate_take (self, w.ch)) {
        held = 1;
        goto done;
    }
    //  Who, and what to say.
    contact_t who = { 0 };
    char reason[NOTIFIER_REASON_MAX] = "";
    int r = recipients_resolve (self, json_object_get (w.req, "recipient"), w.ch, &who, reason,
                                sizeof reason);
    if (r == SEND_RETRY) {
        rc = s_failed (self, &w, attempt + 1, reason);
        goto done;
    }
    if (r != 0) {
        rc = s_dead (self, &w, attempt + 1, reason);
        goto done;
    }
    const char *langs[] = { who.lang, json_string_value (json_object_get (w.req, "language")) };
    rendered_t msg;
    if (templates_render (self->templates, w.tmpl, langs, 2, self->cfg.default_lang,
                          json_object_get (w.req, "params"), &msg, reason, sizeof reason) != 0) {
        contact_clear (&who);
        rc = s_dead (self, &w, attempt + 1, reason);
        goto done;
    }
    if (w.ch == CH_CONSOLE) {
        //  Published with the completion: exactly once, never in doubt.
        send_req_t req = { .delivery = w.delivery, .nid = w.nid, .template_code = w.tmpl,
                           .priority = w.prio, .corr = w.corr, .attempt = attempt + 1,
                           .msg = &msg, .recipient = json_object_get (w.req, "recipient") };
        gl_event_t *ev = console_event (&req);
        rc = ev ? s_sent (self, &w, attempt + 1, "", msg.lang, "", ev) : -1;
        rendered_clear (&msg);
        contact_clear (&who);
        goto done;
    }
    //  Record the attempt before sending it; no record, no send. The record moves only from
    //  the state and count read above: if another worker took the item over meanwhile (this one
    //  was slower than GL_NOTIFIER_RECLAIM_MS), it is left to that one.
    char expect[16], next[16], at[24];
    snprintf (expect, sizeof expect, "%d", attempt);
    snprintf (next, sizeof next, "%d", attempt + 1);
    snprintf (at, sizeof at, "%" PRId64, now);
    const char *argv[] = { w.dkey, expect, state, next, at, msg.lang, self->consumer, payload };
    const size_t argvlen[] = { strlen (w.dkey), strlen (expect), strlen (state), strlen (next),
                               strlen (at), strlen (msg.lang), strlen (self->consumer), plen };
    redisReply *rr = gl_redis_eval (self->redis, &s_attempt_script, 1, 8, argv, argvlen);
    if (!rr || rr->type != REDIS_REPLY_INTEGER || rr->integer != 1) {
        bool taken = rr && rr->type == REDIS_REPLY_INTEGER;
        if (rr)
            freeReplyObject (rr);
        rendered_clear (&msg);
        contact_clear (&who);
        if (taken)
            gl_info ("notifier: %s moved on meanwhile; left to its new worker", w.delivery);
        else
            gl_wq_fail (self->wq, item, "redis_unavailable");
        goto done;
    }
    freeReplyObject (rr);
    attempt++;
    send_res_t res = { "", "" };
    int64_t t0 = gl_mono_us ();
    send_rc_t sr = s_send (self, &w, &who, &msg, attempt, &res);
    gl_metric_observe_us (self->delivery->latency, (uint64_t) (gl_mono_us () - t0));
    if (sr == SEND_OK)
        s_test_hold (self);
    s_breaker_result (self, &w, sr == SEND_OK || sr == SEND_PERMANENT);
    if (sr == SEND_OK)
        rc = s_sent (self, &w, attempt, res.gateway_id, msg.lang, "", NULL);
    else if (sr == SEND_RETRY)
        rc = s_failed (self, &w, attempt, res.reason);
    else if (sr == SEND_PERMANENT)
        rc = s_dead (self, &w, attempt, res.reason);
    else if (w.emergency)
        rc = s_failed (self, &w, attempt, res.reason);  //  in doubt: at least once
    else if (s_has_status (self, w.ch)) {
        //  Wait for the gateway's report before deciding (record still says "sending").
        json_object_set_new (w.rec, "attempts", json_sprintf ("%d", attempt));
        json_object_set_new (w.rec, "doubt_until", json_string ("0"));
        if (s_in_doubt_routine (self, &w, &rc) == 1)
            rc = s_failed (self, &w, attempt, res.reason);
    }
    else
        rc = s_dead (self, &w, attempt, "in_doubt");
    rendered_clear (&msg);
    contact_clear (&who);
done:
    if (rc < 0)
        gl_wq_fail (self->wq, item, "redis_unavailable");
    json_decref (w.rec);
    json_decref (w.req);
    return held;
}

//  --------------------------------------------------------------------------------------------
//  The timer

//  Move deliveries whose due time has come back onto the queue.
static void
s_move_due (notifier_t *self)
{
    redisReply *r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s -inf %lld LIMIT 0 %d",
                                  NOTIFIER_PREFIX "due", (long long) gl_now_ms (), S_DUE_BATCH);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const char *member = r->element[i]->str;
        if (!member)
            continue;
        char dkey[160];
        s_dkey (dkey, sizeof dkey, member);
        redisReply *d = gl_redis_cmd (self->redis, "HMGET %s round req", dkey);
        if (d && d->type == REDIS_REPLY_ARRAY && d->elements == 2 && d->element[0]->str
            && d->element[1]->str) {
            char key[GL_WQ_KEY_MAX];
            snprintf (key, sizeof key, "%s:%s", member, d->element[0]->str);
            int rc = gl_wq_add (self->wq, key, d->element[1]->str, d->element[1]->len, NULL);
            if (rc >= 0) {
                redisReply *z = gl_redis_cmd (self->redis, "ZREM %s %s", NOTIFIER_PREFIX "due",
                                              member);
                if (z)
                    freeReplyObject (z);
            }
        }
        else if (d && d->type == REDIS_REPLY_ARRAY) {
            //  The record is gone (retention): nothing to move.
            redisReply *z = gl_redis_cmd (self->redis, "ZREM %s %s", NOTIFIER_PREFIX "due",
                                          member);
            if (z)
                freeReplyObject (z);
        }
        if (d)
            freeReplyObject (d);
    }
    freeReplyObject (r);
}

//  Announce delivery reports that say a message arrived.
static void
s_announce (notifier_t *self)
{
    redisReply *r = gl_redis_cmd (self->redis, "SRANDMEMBER %s %d", NOTIFIER_PREFIX "dlrnew",
                                  S_DUE_BATCH);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const char *member = r->element[i]->str;
        if (!member)
            continue;
        s_work_t w = { 0 };
        snprintf (w.delivery, sizeof w.delivery, "%s", member);
        s_dkey (w.dkey, sizeof w.dkey, member);
        w.rec = s_load (self, w.dkey);
        const char *reqs = s_get (w.rec, "req");
        w.req = json_loads (reqs, 0, NULL);
        w.nid = json_string_value (json_object_get (w.req, "notification_id"));
        w.tmpl = json_string_value (json_object_get (w.req, "template"));
        w.prio = json_string_value (json_object_get (w.req, "priority"));
        w.corr = json_string_value (json_object_get (w.req, "corr"));
        w.ch = (channel_t) channel_parse (json_string_value (json_object_get (w.req, "channel")));
        if (strcmp (s_get (w.rec, "state"), "sending") == 0) {
            //  An attempt in doubt: the worker settles it first (in_doubt_confirmed), then
            //  this announces it.
            json_decref (w.rec);
            json_decref (w.req);
            continue;
        }
        s_cmds_t c = { 0 };
        gl_event_t *ev = NULL;
        if (w.nid && w.tmpl && w.prio && (int) w.ch >= 0 && !*s_get (w.rec, "delivered_at")
            && strcmp (s_get (w.rec, "dlr"), "1") == 0) {
            ev = s_event (&w, "notification.delivered", (int) s_geti (w.rec, "dlr_attempt"),
                          "dlr_delivered");
            s_cmd (&c, 6, "HSET", w.dkey, "state", "delivered", "delivered_at",
                   s_fmt (&c, "%" PRId64, gl_now_ms ()));
            if (ev && s_cmd_outbox (self, &c, ev) != 0)
                gl_event_destroy (&ev);
        }
        s_cmd (&c, 3, "SREM", NOTIFIER_PREFIX "dlrnew", member);
        if (s_multi (self, &c) == 0 && ev)
            gl_outbox_deliver (gl_service_outbox (self->svc), ev, 0);
        gl_event_destroy (&ev);
        json_decref (w.rec);
        json_decref (w.req);
    }
    freeReplyObject (r);
}

int
delivery_tick (gl_service_t *svc, void *arg)
{
    notifier_t *self = arg;
    delivery_t *d = self->delivery;
    s_move_due (self);
    s_announce (self);
    if (gl_mono_ms () - d->stats_at >= 1000) {
        d->stats_at = gl_mono_ms ();
        gl_wq_stats_t st;
        if (gl_wq_stats (self->wq, &st) == 0) {
            gl_metric_set (d->depth, st.depth);
            gl_metric_set (d->pending, st.pending);
            gl_metric_set (d->dead_letters, st.dead);
        }
        redisReply *r = gl_redis_cmd (self->redis, "ZCARD %s", NOTIFIER_PREFIX "due");
        if (r && r->type == REDIS_REPLY_INTEGER)
            gl_metric_set (d->due, r->integer);
        if (r)
            freeReplyObject (r);
    }
    //  Items held back by a rate limit first, in their order.
    int nheld = d->nheld;
    gl_wq_item_t *held[S_HELD_MAX];
    memcpy (held, d->held, sizeof held);
    d->nheld = 0;
    //  Work for at most S_TICK_BUDGET_MS, then give the loop back (leases, requests, the
    //  subscriber); what is left waits for the next tick.
    int64_t until = gl_mono_ms () + S_TICK_BUDGET_MS;
    for (int i = 0; i < nheld; i++) {
        if (gl_service_stopping (svc))
            gl_wq_item_free (&held[i]);
        else if (gl_mono_ms () >= until || s_work (self, held[i]))
            d->held[d->nheld++] = held[i];
        else
            gl_wq_item_free (&held[i]);
    }
    if (d->nheld > 0 || gl_service_stopping (svc))
        return 0;
    gl_wq_item_t *items[S_CLAIM];
    int n = 0;
    if (gl_wq_claim (self->wq, S_CLAIM, 0, items, &n) != 0) {
        gl_warn ("notifier: claim: %s", gl_wq_errstr (self->wq));
        return 0;
    }
    //  Emergencies of the batch first (the queue itself is first in, first out).
    for (int i = 0, front = 0; i < n; i++) {
        size_t len;
        const char *p = gl_wq_item_payload (items[i], &len);
        if (strstr (p, "\"priority\":\"emergency\"")) {
            gl_wq_item_t *e = items[i];
            memmove (&items[front + 1], &items[front], (size_t) (i - front) * sizeof items[0]);
            items[front++] = e;
        }
    }
    for (int i = 0; i < n; i++) {
        if (gl_service_stopping (svc))
            gl_wq_item_free (&items[i]);
        else if (gl_mono_ms () >= until || s_work (self, items[i]))
            d->held[d->nheld++] = items[i];
        else
            gl_wq_item_free (&items[i]);
    }
    return 0;
}

int
delivery_init (notifier_t *self)
{
    self->delivery = calloc (1, sizeof (delivery_t));
    if (!self->delivery)
        return -1;
    for (int ch = 0; ch < CH__COUNT; ch++) {
        char labels[64];
        snprintf (labels, sizeof labels, "channel=\"%s\"", channel_name (ch));
        self->delivery->sent[ch] = gl_metrics_counter ("greenline_notifier_sent_total",
                                                       "Notifications a gateway took", labels);
        self->delivery->failed[ch] = gl_metrics_counter ("greenline_notifier_failed_total",
                                                         "Failed attempts", labels);
        self->delivery->dead[ch] = gl_metrics_counter ("greenline_notifier_dead_total",
                                                       "Notifications dead-lettered", labels);
    }
    self->delivery->deferred = gl_metrics_counter ("greenline_notifier_deferred_total",
                                                   "Deliveries deferred (backoff, quiet hours, "
                                                   "breaker, doubt)", NULL);
    self->delivery->depth = gl_metrics_gauge ("greenline_notifier_queue_depth",
                                              "Work items not yet done", NULL);
    self->delivery->pending = gl_metrics_gauge ("greenline_notifier_queue_pending",
                                                "Work items claimed by a replica", NULL);
    self->delivery->dead_letters = gl_metrics_gauge ("greenline_notifier_dead_letters",
                                                     "Dead letters waiting for an admin", NULL);
    self->delivery->due = gl_metrics_gauge ("greenline_notifier_deferred",
                                            "Deliveries waiting for their due time", NULL);
    self->delivery->latency = gl_metrics_histogram ("greenline_notifier_send_seconds",
                                                    "Time a gateway took to answer a send", NULL);
    return 0;
}

void
delivery_destroy (notifier_t *self)
{
    if (!self->delivery)
        return;
    for (int i = 0; i < self->delivery->nheld; i++)
        gl_wq_item_free (&self->delivery->held[i]);
    free (self->delivery);
    self->delivery = NULL;
}
