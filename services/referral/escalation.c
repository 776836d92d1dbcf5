/*  escalation — the timer that moves every referral and emergency whose next step is due, and
    purges closed records after the retention period.

    The schedule lives in Redis (zsets due and emg:due, scored by the due time on the business
    clock), not in memory: it survives restarts, and after one the steps that fell due while
    the service was down fire at the next tick. Each step is one compare-and-write on the
    record's version (store.c), so two replicas running this timer at once, or a request racing
    it, never fire the same step twice: the loser finds the version moved and re-reads.
    At most S_BATCH of each per tick, emergencies first; the rest wait for the next tick.
*/
#include "referral.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <inttypes.h>
#include <string.h>

#define S_BATCH 100

//  The ids due by now in zset key (at most S_BATCH), then step each with fn.
static int
s_run (referral_t *self, const char *key, int64_t now, int (*fn) (referral_t *, const char *, int64_t))
{
    redisReply *r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s -inf %" PRId64 " LIMIT 0 %d",
                                  key, now, S_BATCH);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < r->elements && rc == 0; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || !gl_id_valid (e->str)) {
            redisReply *z = gl_redis_cmd (self->redis, "ZREM %s %b", key, e->str, (size_t) e->len);
            if (z)
                freeReplyObject (z);
            continue;
        }
        rc = fn (self, e->str, now);
    }
    freeReplyObject (r);
    return rc;
}

int
rf_escalation_tick (gl_service_t *svc, void *arg)
{
    referral_t *self = arg;
    int64_t now = gl_now_ms ();
    if (s_run (self, RF_KEY_EMG_DUE, now, rf_emergency_escalate) < 0
        || s_run (self, RF_KEY_DUE, now, rf_referral_escalate) < 0)
        gl_warn ("referral: escalation tick incomplete (redis unreachable); next tick retries");
    if (rf_retention_purge (self, now) < 0)
        gl_warn ("referral: retention purge incomplete (redis unreachable); next tick retries");
    //  The gauges an operator alerts on.
    redisReply *r = gl_redis_cmd (self->redis, "ZCARD %s", RF_KEY_EMG_OPEN);
    if (r && r->type == REDIS_REPLY_INTEGER)
        gl_metric_set (self->m_unacked, r->integer);
    if (r)
        freeReplyObject (r);
    r = gl_redis_cmd (self->redis, "ZCOUNT %s -inf %" PRId64, RF_KEY_ACK_DUE, now);
    if (r && r->type == REDIS_REPLY_INTEGER)
        gl_metric_set (self->m_overdue, r->integer);
    if (r)
        freeReplyObject (r);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Retention: a closed referral's record, history and comments (free text: personal data) and
//  a closed emergency's record are deleted once they have been closed for the retention
//  period. The events stay in the logs: they carry no personal data. The index entry that
//  finds the record is removed last, so a purge cut short is finished by the next one.

static void
s_cmd (referral_t *self, int *failed, const char *fmt, const char *a, const char *b)
{
    redisReply *r = gl_redis_cmd (self->redis, fmt, a, b);
    if (!r || r->type == REDIS_REPLY_ERROR)
        *failed = 1;
    if (r)
        freeReplyObject (r);
}

int
rf_retention_purge (referral_t *self, int64_t now)
{
    int64_t before = now - self->retention_ms;
    int failed = 0, referrals = 0, emergencies = 0;
    redisReply *r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s -inf %" PRId64 " LIMIT 0 %d",
                                  RF_KEY_CLOSED, before, S_BATCH);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && !failed; i++) {
        const char *id = r->element[i]->str;
        char key[160], unit[RF_CODE_MAX + 1] = "";
        rf_referral_key (id, key, sizeof key);
        redisReply *u = gl_redis_cmd (self->redis, "HGET %s unit", key);
        if (!u)
            failed = 1;
        else if (u->type == REDIS_REPLY_STRING && u->len <= RF_CODE_MAX)
            snprintf (unit, sizeof unit, "%s", u->str);
        if (u)
            freeReplyObject (u);
        if (failed)
            break;
        if (*unit)
            s_cmd (self, &failed, "ZREM " RF_PREFIX "unit:%s:all %s", unit, id);
        s_cmd (self, &failed, "DEL %s %s:history", key, key);
        s_cmd (self, &failed, "DEL %s:comments%s", key, "");
        if (!failed)
            s_cmd (self, &failed, "ZREM %s %s", RF_KEY_CLOSED, id);
        referrals += !failed;
    }
    if (r)
        freeReplyObject (r);
    r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s -inf %" PRId64 " LIMIT 0 %d",
                      RF_KEY_EMG_CLOSED, before, S_BATCH);
    for (size_t i = 0; !failed && r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        char key[160];
        rf_emergency_key (r->element[i]->str, key, sizeof key);
        s_cmd (self, &failed, "DEL %s%s", key, "");
        if (!failed)
            s_cmd (self, &failed, "ZREM %s %s", RF_KEY_EMG_CLOSED, r->element[i]->str);
        emergencies += !failed;
    }
    if (!r)
        failed = 1;
    if (r)
        freeReplyObject (r);
    if (referrals || emergencies)
        gl_info ("referral: purged %d referral(s) and %d emergency(ies) closed over the "
                 "retention period", referrals, emergencies);
    return failed ? -1 : 0;
}
