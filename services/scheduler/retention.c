/*  retention — personal data is not kept for ever (ARCHITECTURE.md, "Protecting the people in
    the data"). GL_SCHEDULER_RETAIN_DAYS after an appointment's start, or after an outbound
    target was finished, the case number, phone number and answers are removed from scheduler's
    records; what remains (ids, codes, times, outcomes) keeps the figures. The indexes that only
    serve a recent window (today's abandoned calls, last week's no-shows) are trimmed after 8
    days. A timer does it in small batches, on the business clock.
*/
#include "scheduler.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BATCH      100
#define S_WINDOW_MS  (8 * SCHED_DAY_MS)     //  abandoned calls, no-shows: queries look back 7 days

static redisReply *
s_due (scheduler_t *self, const char *key, int64_t before)
{
    redisReply *r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s -inf (%lld LIMIT 0 %d", key,
                                  (long long) before, S_BATCH);
    if (r && r->type == REDIS_REPLY_ARRAY)
        return r;
    if (r)
        freeReplyObject (r);
    return NULL;
}

static void
s_cmd (scheduler_t *self, const char *fmt, const char *a, const char *b, const char *c)
{
    redisReply *r = gl_redis_cmd (self->redis, fmt, a, b, c);
    if (r)
        freeReplyObject (r);
}

//  Appointments that started before the cut: the case number and the person index go; the
//  appointment leaves its centre's day index (which is how the purge finds the next ones).
static size_t
s_appointments (scheduler_t *self, int64_t cut)
{
    size_t done = 0;
    for (size_t c = 0; c < self->config->centre_count; c++) {
        char day[128];
        snprintf (day, sizeof day, SCHED_PREFIX "day:%s", self->config->centres[c].code);
        redisReply *ids = s_due (self, day, cut);
        for (size_t i = 0; ids && i < ids->elements; i++) {
            const char *id = ids->element[i]->str;
            char key[128], person[128];
            snprintf (key, sizeof key, SCHED_PREFIX "appt:%s", id);
            redisReply *p = gl_redis_cmd (self->redis, "HGET %s person", key);
            if (p && p->type == REDIS_REPLY_STRING && p->len) {
                snprintf (person, sizeof person, SCHED_PREFIX "person:%s", p->str);
                s_cmd (self, "ZREM %s %s", person, id, NULL);
            }
            if (p)
                freeReplyObject (p);
            s_cmd (self, "HDEL %s case_no person", key, NULL, NULL);
            s_cmd (self, "ZREM %s %s", day, id, NULL);
            done++;
        }
        if (ids)
            freeReplyObject (ids);
    }
    return done;
}

//  Targets finished before the cut: case number, phone, answers and the person reference go.
static size_t
s_targets (scheduler_t *self, int64_t cut)
{
    redisReply *due = s_due (self, SCHED_PREFIX "finished", cut);
    size_t done = 0;
    for (size_t i = 0; due && i < due->elements; i++) {
        const char *member = due->element[i]->str;
        char cid[64] = "", tid[64] = "", key[200];
        if (sscanf (member, "%63[^:]:%63s", cid, tid) == 2) {
            snprintf (key, sizeof key, SCHED_PREFIX "target:%s:%s", cid, tid);
            s_cmd (self, "HDEL %s case_no phone answers person_ref", key, NULL, NULL);
        }
        s_cmd (self, "ZREM %s %s", SCHED_PREFIX "finished", member, NULL);
        done++;
    }
    if (due)
        freeReplyObject (due);
    return done;
}

//  Recent-window indexes: abandoned calls (and their languages), no-shows.
static void
s_windows (scheduler_t *self, int64_t now)
{
    char cut[24];
    snprintf (cut, sizeof cut, "(%lld", (long long) (now - S_WINDOW_MS));
    redisReply *old = s_due (self, SCHED_PREFIX "abandoned", now - S_WINDOW_MS);
    for (size_t i = 0; old && i < old->elements; i++)
        s_cmd (self, "HDEL %s %s", SCHED_PREFIX "abandoned:lang", old->element[i]->str, NULL);
    if (old) {
        if (old->elements)
            s_cmd (self, "ZREMRANGEBYSCORE %s -inf %s", SCHED_PREFIX "abandoned", cut, NULL);
        freeReplyObject (old);
    }
    s_cmd (self, "ZREMRANGEBYSCORE %s -inf %s", SCHED_PREFIX "noshow", cut, NULL);
}

int
retention_tick (gl_service_t *svc, void *arg)
{
    (void) svc;
    scheduler_t *self = arg;
    int64_t now = gl_now_ms ();
    int64_t cut = now - self->retain_ms;
    size_t a = s_appointments (self, cut);
    size_t t = s_targets (self, cut);
    s_windows (self, now);
    if (a || t)
        gl_info ("scheduler: retention: personal data removed from %zu appointments and %zu "
                 "targets",
                 a, t);
    return 0;
}
