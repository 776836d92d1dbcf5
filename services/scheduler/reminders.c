/*  reminders — "your appointment is in 48 hours / 2 hours", as notification.requested events for
    notifier (the notification contract: recipient {"kind":"person","ref":<the call or contact
    the booking was made in>}, language the person's, params codes and times only).

    A reminder is a due time in a sorted set (reminders: score = due, member =
    "<appointment id>:<version>:<ms before>"), written with the booking in the same atomic step.
    Time is data: a timer (gl_service_every) compares the due times with the business clock
    gl_now_ms, never with Redis expiry. Sending one is one atomic write: the member must still be
    in the set (zhas guard), it is removed and the notification's outbox entry written together.
    So a reminder is requested exactly once: a crash before that write leaves it due (the next
    tick sends it), a crash after it leaves the entry in the outbox (the sweep delivers it), and
    two replicas racing for it cannot both pass the guard. A reminder of an older version of the
    appointment (moved since) or of one no longer booked is dropped without a notification.
*/
#include "scheduler.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY SCHED_PREFIX "reminders"

int
reminders_schedule (scheduler_t *self, sched_write_t *w, json_t *rec, int64_t version,
                    int64_t now, json_t *dues_out)
{
    const char *id = sched_jstr (rec, "id", "");
    int64_t start = sched_jint (rec, "start", 0);
    char list[SCHED_REMINDERS_MAX * 64] = "";
    int count = 0;
    for (size_t i = 0; i < self->config->reminder_count; i++) {
        int64_t due = start - self->config->reminders[i];
        if (due <= now)
            continue;           //  booked too late for this one
        char member[96], score[24];
        snprintf (member, sizeof member, "%s:%lld:%lld", id, (long long) version,
                  (long long) self->config->reminders[i]);
        snprintf (score, sizeof score, "%lld", (long long) due);
        sched_write_cmdv (w, "ZADD", S_KEY, score, member, NULL);
        size_t n = strlen (list);
        snprintf (list + n, sizeof list - n, "%s%s", count ? "," : "", member);
        if (dues_out)
            json_array_append_new (dues_out, json_integer (due));
        count++;
    }
    json_object_set_new (rec, "reminders", json_string (list));
    return count;
}

void
reminders_unschedule (scheduler_t *self, sched_write_t *w, json_t *rec)
{
    (void) self;
    char list[SCHED_REMINDERS_MAX * 64 + 1];
    snprintf (list, sizeof list, "%s", sched_jstr (rec, "reminders", ""));
    char *save = NULL;
    for (char *m = strtok_r (list, ",", &save); m; m = strtok_r (NULL, ",", &save))
        sched_write_cmdv (w, "ZREM", S_KEY, m, NULL);
    json_object_set_new (rec, "reminders", json_string (""));
}

gl_event_t *
reminders_notification (scheduler_t *self, json_t *rec, const char *template_, int64_t due)
{
    gl_event_t *ev = gl_event_new ("notification.requested");
    if (!ev)
        return NULL;
    const char *id = sched_jstr (rec, "id", "");
    gl_event_set_corr (ev, id);
    char nid[GL_ID_LEN + 1], ref[9] = "";
    gl_id_new (nid);
    for (int i = 0; i < 8 && id[i]; i++)
        ref[i] = (char) (id[i] >= 'a' && id[i] <= 'f' ? id[i] - 32 : id[i]);
    json_t *channels = json_array ();
    char list[64];
    snprintf (list, sizeof list, "%s", self->config->channels);
    char *save = NULL;
    for (char *c = strtok_r (list, ",", &save); c; c = strtok_r (NULL, ",", &save))
        json_array_append_new (channels, json_string (c));
    const char *lang = sched_jstr (rec, "language", "");
    json_t *params = json_pack (
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "appointment_id", id, "reference", ref, "centre",
        sched_jstr (rec, "centre", ""), "service", sched_jstr (rec, "service", ""), "slot_id",
        sched_jstr (rec, "slot_id", ""), "start", (json_int_t) sched_jint (rec, "start", 0),
        "end", (json_int_t) sched_jint (rec, "end", 0));
    //  notifier's templates name the time "at" (config/templates/appointment.*)
    json_object_set_new (params, "at", json_integer (sched_jint (rec, "start", 0)));
    if (due > 0)
        json_object_set_new (params, "before_ms",
                             json_integer (sched_jint (rec, "start", 0) - due));
    json_t *d = ev->data;
    json_object_set_new (d, "notification_id", json_string (nid));
    json_object_set_new (d, "template", json_string (template_));
    json_object_set_new (d, "priority", json_string ("routine"));
    json_object_set_new (d, "channels", channels);
    json_object_set_new (d, "recipient", json_pack ("{s:s, s:s}", "kind", "person", "ref",
                                                    sched_jstr (rec, "ref", "")));
    json_object_set_new (d, "language", *lang ? json_string (lang) : json_null ());
    json_object_set_new (d, "params", params);
    return ev;
}

//  Handle one due member. 0, or -1 when Redis failed.
static int
s_one (scheduler_t *self, const char *member, int64_t due, int64_t now)
{
    char id[GL_ID_LEN + 1] = "";
    long long version = 0, before = 0;
    if (sscanf (member, "%32[0-9a-f]:%lld:%lld", id, &version, &before) != 3) {
        //  Not ours to understand: drop it so it does not block the queue.
        gl_warn ("scheduler: malformed reminder entry dropped");
        redisReply *r = gl_redis_cmd (self->redis, "ZREM %s %s", S_KEY, member);
        if (r)
            freeReplyObject (r);
        return r ? 0 : -1;
    }
    char key[128];
    snprintf (key, sizeof key, SCHED_PREFIX "appt:%s", id);
    bool failed = false;
    json_t *rec = sched_hgetall (self, key, &failed);
    if (failed) {
        json_decref (rec);
        return -1;
    }
    sched_write_t *w = sched_write_new ();
    sched_write_zhas (w, S_KEY, member);
    sched_write_cmdv (w, "ZREM", S_KEY, member, NULL);
    bool send = json_object_size (rec) && sched_jint (rec, "version", 0) == version
                && strcmp (sched_jstr (rec, "status", ""), "booked") == 0
                && sched_jint (rec, "start", 0) > now;
    if (send) {
        gl_event_t *ev = reminders_notification (self, rec, "appointment.reminder", due);
        if (ev)
            sched_write_event (w, &ev);
    }
    sched_write_rc_t rc = sched_write_run (self, w);
    sched_write_destroy (&w);
    json_decref (rec);
    if (rc == SCHED_WRITE_OK && send) {
        self->reminders_sent++;
        gl_metric_inc (self->m_reminders, 1);
        gl_info ("scheduler: reminder for appointment %s (%lld min before) requested", id,
                 before / 60000);
    }
    return rc == SCHED_WRITE_ERROR ? -1 : 0;
}

int
reminders_tick (gl_service_t *svc, void *arg)
{
    (void) svc;
    scheduler_t *self = arg;
    int64_t now = gl_now_ms ();
    redisReply *r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s -inf %lld WITHSCORES LIMIT 0 %lld",
                                  S_KEY, (long long) now, (long long) self->reminder_batch);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        //  Redis away: the reminders stay due and go out on a later tick.
        if (r)
            freeReplyObject (r);
        return 0;
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (r->element[i]->type != REDIS_REPLY_STRING
            || r->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        if (s_one (self, r->element[i]->str, strtoll (r->element[i + 1]->str, NULL, 10), now)
            != 0)
            break;
    }
    freeReplyObject (r);
    return 0;
}
