/*  emergencies — an emergency raised from a call, dispatched at once to the emergency unit's
    on-duty officer, 24 hours a day, on every channel (sms, voice, console), and re-sent and
    escalated every `repeat` until a person acknowledges it (docs/api/referral.md,
    "Emergencies").

        raised (intake) -> alarm -> acknowledged -> closed (with an outcome)

    The chain, one step every `repeat` on the business clock (gl_now_ms):
      before the acknowledgement deadline   the alarm is sent again to the on-duty officer
      level 2 (deadline passed)             + the backup on the roster
      level 3                               + the unit's focal point
      level 4 and every step after          + the unit's supervisor and every signed-in
                                              supervisor's console (role supervisor)
    Every step is an emergency.escalated event and its notification.requested events, written
    with the record in one step (store.c), so a step fires exactly once even with two replicas
    or a restart in between. If notifier is down the requests wait in the log and the board
    shows the alarm as undelivered (no notification.sent seen yet); nothing is dropped.

    Keys: referral:{referral}:emg:<id> (hash), emg:open (unacknowledged, by time raised),
    emg:acked (acknowledged, not closed), emg:closed (by time closed), emg:due (next step).
*/
#include "referral.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX   RF_KEY_MAX
#define S_ATTEMPTS  5

static const char *const s_types[] = { "threat_to_life", "medical", "violence_or_abuse",
                                       "child_at_risk", "detention_or_refoulement",
                                       "suicide_risk", NULL };
static const char *const s_outcomes[] = { "assistance_dispatched", "referred_to_services",
                                          "person_safe", "no_contact", "false_alarm", NULL };

static bool
s_in (const char *const *list, const char *s)
{
    for (size_t i = 0; s && list[i]; i++)
        if (strcmp (list[i], s) == 0)
            return true;
    return false;
}

void
rf_emergency_key (const char *id, char *out, size_t outlen)
{
    snprintf (out, outlen, RF_PREFIX "emg:%s", id);
}

bool
rf_emergency_visible (referral_t *self, const rf_caller_t *caller)
{
    return caller->supervisor || caller->admin
           || rf_caller_in_unit (caller, self->cfg->emergency_unit)
           || rf_config_is_member (self->cfg, self->cfg->emergency_unit, caller->user_id);
}

json_t *
rf_emergency_view (const json_t *rec)
{
    static const char *const strs[] = { "emergency_id", "status", "type", "contact_id", "call_id",
                                        "location", "agent_id", "language", "unit", "on_duty",
                                        "backup", "acked_by", "closed_by", "outcome", NULL };
    static const char *const ints[] = { "raised_at", "dispatched_at", "ack_due", "next_at",
                                        "acked_at", "closed_at", NULL };
    static const char *const counts[] = { "version", "level", "alarms", "delivered", "failed",
                                          "dead", NULL };
    json_t *v = json_object ();
    for (size_t i = 0; strs[i]; i++) {
        const char *s = rf_str (rec, strs[i]);
        json_object_set_new (v, strs[i], *s ? json_string (s) : json_null ());
    }
    for (size_t i = 0; ints[i]; i++) {
        int64_t n = rf_int (rec, ints[i]);
        json_object_set_new (v, ints[i], n ? json_integer (n) : json_null ());
    }
    for (size_t i = 0; counts[i]; i++)
        json_object_set_new (v, counts[i], json_integer (rf_int (rec, counts[i])));
    json_object_set_new (v, "callback_possible", json_boolean (rf_bool (rec, "callback_possible")));
    //  Sent to notifier but no delivery seen yet: the board says so.
    json_object_set_new (v, "undelivered",
                         json_boolean (rf_int (rec, "alarms") > 0 && rf_int (rec, "delivered") == 0));
    return v;
}

//  A change in the making (referral.h).
typedef rf_change_t s_change_t;

static void
s_init (s_change_t *c, referral_t *self, const char *id)
{
    char key[RF_KEY_MAX];
    rf_emergency_key (id, key, sizeof key);
    rf_change_init (c, self, id, key, NULL);
}

//  An event about the emergency: its id, unit, status and level, then extra (taken).
static void
s_event (s_change_t *c, const char *type, json_t *extra)
{
    json_t *all = json_pack ("{s:I}", "level", (json_int_t) rf_int (c->rec, "level"));
    if (extra) {
        json_object_update (all, extra);
        json_decref (extra);
    }
    rf_change_event (c, type, "emergency_id", all, GL_PUB_CRITICAL);
}

//  An emergency notice to kind/ref (a user on sms, voice and console; a role on the console).
static void
s_alarm (s_change_t *c, const char *template_, const char *kind, const char *ref)
{
    if (!ref || !*ref)
        return;
    bool user = strcmp (kind, "user") == 0;
    rf_notice_t n = { .template_ = template_, .emergency = true,
                      .channels = user ? "sms,voice,console" : "console", .kind = kind,
                      .ref = ref, .language = NULL, .corr = c->id };
    json_t *params = json_pack ("{s:s, s:s, s:o, s:b, s:I, s:I, s:I}", "emergency_id", c->id,
                                "type", rf_str (c->rec, "type"), "location",
                                *rf_str (c->rec, "location") ? json_string (rf_str (c->rec, "location"))
                                                            : json_null (),
                                "callback_possible", rf_bool (c->rec, "callback_possible"),
                                "level", (json_int_t) rf_int (c->rec, "level"), "raised_at",
                                (json_int_t) rf_int (c->rec, "raised_at"), "ack_due",
                                (json_int_t) rf_int (c->rec, "ack_due"));
    gl_event_t *ev = rf_notify (&n, params);
    if (!ev || rf_events_add (c->self, &c->evs, c->ops, ev, GL_PUB_CRITICAL) < 0) {
        gl_error ("referral: alarm of emergency %s not queued", c->id);
        return;
    }
    c->alarms++;
}

//  Index writes for the status.
static void
s_index (s_change_t *c)
{
    const char *status = rf_str (c->rec, "status");
    char raised[24], next[24], closed[24];
    snprintf (raised, sizeof raised, "%" PRId64, rf_int (c->rec, "raised_at"));
    snprintf (next, sizeof next, "%" PRId64, rf_int (c->rec, "next_at"));
    snprintf (closed, sizeof closed, "%" PRId64, rf_int (c->rec, "closed_at"));
    bool alarm = strcmp (status, "alarm") == 0, acked = strcmp (status, "acknowledged") == 0;
    bool closed_now = strcmp (status, "closed") == 0;
    rf_ops_add (c->ops, alarm ? 4 : 3, alarm ? "ZADD" : "ZREM", RF_KEY_EMG_OPEN,
                alarm ? raised : c->id, c->id);
    rf_ops_add (c->ops, acked ? 4 : 3, acked ? "ZADD" : "ZREM", RF_KEY_EMG_ACKED,
                acked ? raised : c->id, c->id);
    if (closed_now)
        rf_ops_add (c->ops, 4, "ZADD", RF_KEY_EMG_CLOSED, closed, c->id);
    bool due = alarm && rf_int (c->rec, "next_at") > 0;
    rf_ops_add (c->ops, due ? 4 : 3, due ? "ZADD" : "ZREM", RF_KEY_EMG_DUE, due ? next : c->id, c->id);
}

static void
s_close_change (s_change_t *c)
{
    rf_change_set_int (c, "version", rf_int (c->rec, "version") + 1);
    rf_change_set_int (c, "alarms", rf_int (c->rec, "alarms") + c->alarms);
    rf_ops_hset_json (c->ops, c->key, c->set);
    s_index (c);
}

//  --------------------------------------------------------------------------------------------
//  emergency.raised

static const char *
s_opt_id (const gl_event_t *ev, const char *field, bool *bad)
{
    json_t *v = json_object_get (ev->data, field);
    if (!v || json_is_null (v))
        return "";
    const char *s = json_string_value (v);
    if (!gl_id_valid (s))
        *bad = true;
    return s ? s : "";
}

static const char *
s_opt_code (const gl_event_t *ev, const char *field, bool *bad)
{
    json_t *v = json_object_get (ev->data, field);
    if (!v || json_is_null (v))
        return "";
    const char *s = json_string_value (v);
    size_t n = s ? strlen (s) : 0;
    if (!s || n == 0 || n > RF_CODE_MAX) {
        *bad = true;
        return "";
    }
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
            *bad = true;
    return *bad ? "" : s;
}

int
rf_emergency_raised (referral_t *self, const gl_event_t *ev, gl_tx_t *tx)
{
    const char *id = gl_event_str (ev, "emergency_id", "");
    const char *type = gl_event_str (ev, "type", "");
    const char *agent = gl_event_str (ev, "agent_id", "");
    json_t *cb = json_object_get (ev->data, "callback_possible");
    bool bad = false;
    const char *contact = s_opt_id (ev, "contact_id", &bad);
    const char *call = s_opt_id (ev, "call_id", &bad);
    const char *location = s_opt_code (ev, "location", &bad);
    const char *language = s_opt_code (ev, "language", &bad);
    if (!gl_id_valid (id) || !s_in (s_types, type) || !gl_id_valid (agent) || !json_is_boolean (cb)
        || bad) {
        gl_warn ("referral: emergency.raised %s from %s is malformed; skipped", ev->id, ev->src);
        return 0;
    }
    char key[S_KEY_MAX];
    rf_emergency_key (id, key, sizeof key);
    redisReply *r = gl_redis_cmd (self->redis, "EXISTS %s", key);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    bool exists = r->integer != 0;
    freeReplyObject (r);
    if (exists) {
        gl_info ("referral: emergency %s already dispatched; duplicate %s dropped", id, ev->id);
        return 0;
    }
    const rf_config_t *cfg = self->cfg;
    s_change_t c;
    s_init (&c, self, id);
    c.rec = json_object ();
    rf_uid_t primary, backup;
    rf_config_on_duty (cfg, cfg->emergency_unit, c.now, primary, backup);
    const rf_unit_t *unit = rf_config_unit (cfg, cfg->emergency_unit);
    //  Nobody on the roster at this hour: the focal point, else every supervisor's console.
    const char *on_duty = primary[0] ? primary : unit->focal;
    int64_t raised = ev->ts ? ev->ts : c.now;
    rf_change_set_str (&c, "emergency_id", id);
    rf_change_set_str (&c, "status", "alarm");
    rf_change_set_str (&c, "type", type);
    rf_change_set_str (&c, "contact_id", contact);
    rf_change_set_str (&c, "call_id", call);
    rf_change_set_str (&c, "location", location);
    rf_change_set_str (&c, "language", language);
    rf_change_set_str (&c, "callback_possible", json_is_true (cb) ? "1" : "0");
    rf_change_set_str (&c, "agent_id", agent);
    rf_change_set_str (&c, "unit", cfg->emergency_unit);
    rf_change_set_str (&c, "on_duty", on_duty);
    rf_change_set_str (&c, "backup", backup);
    rf_change_set_int (&c, "raised_at", raised);
    rf_change_set_int (&c, "dispatched_at", c.now);
    rf_change_set_int (&c, "ack_due", c.now + cfg->emergency_ack_ms);
    rf_change_set_int (&c, "level", 1);
    int64_t next = c.now + (cfg->emergency_repeat_ms < cfg->emergency_ack_ms
                                ? cfg->emergency_repeat_ms : cfg->emergency_ack_ms);
    rf_change_set_int (&c, "next_at", next);
    rf_change_set_int (&c, "delivered", 0);
    rf_change_set_int (&c, "version", 0);
    rf_change_set_str (&c, "event_id", ev->id);
    s_alarm (&c, "emergency.alarm", "user", on_duty);
    s_alarm (&c, "emergency.alarm", "role", "supervisor");
    s_close_change (&c);
    s_event (&c, "emergency.dispatched",
             json_pack ("{s:s, s:o, s:I, s:I, s:I, s:i}", "type", type, "on_duty",
                        *on_duty ? json_string (on_duty) : json_null (), "raised_at",
                        (json_int_t) raised, "ack_due", (json_int_t) rf_int (c.rec, "ack_due"),
                        "next_at", (json_int_t) next, "alarms", c.alarms));
    int rc = rf_ops_to_tx (c.ops, tx) == 0 && rf_events_stage (self, &c.evs, tx) == 0 ? 0 : -1;
    gl_info ("referral: emergency %s dispatched to the %s unit (%d alarms)", id,
             cfg->emergency_unit, c.alarms);
    rf_change_clear (&c);
    return rc;
}

int
rf_emergency_notification (referral_t *self, const gl_event_t *ev, gl_tx_t *tx)
{
    const char *template_ = gl_event_str (ev, "template", "");
    if (strncmp (template_, "emergency.", 10) != 0 || !gl_id_valid (ev->corr))
        return 0;
    char key[S_KEY_MAX];
    rf_emergency_key (ev->corr, key, sizeof key);
    redisReply *r = gl_redis_cmd (self->redis, "EXISTS %s", key);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    bool exists = r->integer != 0;
    freeReplyObject (r);
    if (!exists)
        return 0;
    const char *field = strcmp (ev->type, "notification.dead") == 0     ? "dead"
                      : strcmp (ev->type, "notification.failed") == 0 ? "failed"
                                                                      : "delivered";
    return gl_tx_cmdf (tx, "HINCRBY %s %s 1", key, field) == 0 ? 0 : -1;
}

//  --------------------------------------------------------------------------------------------
//  Acknowledge, close

int
rf_emergency_change (referral_t *self, const gl_rep_request_t *req, const rf_caller_t *caller,
                     const char *id, const char *action, const json_t *body, json_t **reply,
                     gl_rep_error_t *err)
{
    if (!gl_id_valid (id) || !rf_emergency_visible (self, caller))
        return gl_rep_error (err, 404, "not_found", "id", "no such emergency");
    const char *outcome = NULL;
    if (strcmp (action, "close") == 0) {
        json_t *o = json_object_get (body, "outcome");
        outcome = json_string_value (o);
        if (!o)
            return gl_rep_error (err, 400, "missing_field", "outcome",
                                 "outcome is required: assistance_dispatched, "
                                 "referred_to_services, person_safe, no_contact, false_alarm");
        if (!s_in (s_outcomes, outcome))
            return gl_rep_error (err, 400, "invalid_field", "outcome",
                                 "outcome must be one of assistance_dispatched, "
                                 "referred_to_services, person_safe, no_contact, false_alarm");
    }
    gl_rep_t *rep = gl_service_rep (self->svc);
    char idem_key[512], marker[128];
    bool idem = req && gl_rep_idem_key (rep, req, idem_key, sizeof idem_key) == 0
                && gl_rep_idem_marker (req, marker, sizeof marker) == 0;
    for (int attempt = 0; attempt < S_ATTEMPTS; attempt++) {
        s_change_t c;
        s_init (&c, self, id);
        bool failed;
        c.rec = rf_store_hgetall (self->redis, c.key, &failed);
        if (failed || !c.rec) {
            rf_change_clear (&c);
            return failed ? gl_rep_error (err, 503, "unavailable", NULL, "storage unreachable; retry")
                          : gl_rep_error (err, 404, "not_found", "id", "no such emergency");
        }
        char status[24], version[24];
        snprintf (status, sizeof status, "%s", rf_str (c.rec, "status"));
        snprintf (version, sizeof version, "%s", rf_str (c.rec, "version"));
        if (strcmp (action, "ack") == 0) {
            if (strcmp (status, "alarm") != 0) {
                //  Acknowledging twice is not an error: the first acknowledgement stands.
                *reply = json_pack ("{s:o}", "emergency", rf_emergency_view (c.rec));
                rf_change_clear (&c);
                return 200;
            }
            int64_t delay = c.now - rf_int (c.rec, "raised_at");
            rf_change_set_str (&c, "status", "acknowledged");
            rf_change_set_int (&c, "acked_at", c.now);
            rf_change_set_str (&c, "acked_by", caller->user_id);
            rf_change_set_int (&c, "next_at", 0);
            s_close_change (&c);
            s_event (&c, "emergency.acknowledged",
                     json_pack ("{s:s, s:I, s:I, s:b}", "by", caller->user_id, "at",
                                (json_int_t) c.now, "delay_ms", (json_int_t) delay, "within_sla",
                                c.now <= rf_int (c.rec, "ack_due")));
        }
        else if (strcmp (action, "close") == 0) {
            if (strcmp (status, "acknowledged") != 0) {
                rf_change_clear (&c);
                return gl_rep_error (err, 409, "invalid_transition", "status",
                                     "cannot close an emergency that is %s (acknowledge it first)",
                                     strcmp (status, "alarm") == 0 ? "not acknowledged" : status);
            }
            rf_change_set_str (&c, "status", "closed");
            rf_change_set_str (&c, "outcome", outcome);
            rf_change_set_int (&c, "closed_at", c.now);
            rf_change_set_str (&c, "closed_by", caller->user_id);
            s_close_change (&c);
            s_event (&c, "emergency.closed",
                     json_pack ("{s:s, s:s, s:I}", "outcome", outcome, "by", caller->user_id,
                                "at", (json_int_t) c.now));
        }
        else {
            rf_change_clear (&c);
            return gl_rep_error (err, 404, "not_found", NULL, "no such action");
        }
        json_t *out = json_pack ("{s:o}", "emergency", rf_emergency_view (c.rec));
        char *stored = NULL;
        size_t stored_len = 0;
        if (idem && gl_rep_idem_encode (req, 200, out, NULL, &stored, &stored_len) < 0)
            idem = false;
        rf_store_rc_t rc = rf_store_apply (self->redis, c.key, version, idem ? idem_key : NULL,
                                           marker, stored, stored_len, gl_rep_idem_ttl_ms (rep),
                                           c.ops);
        free (stored);
        if (rc == RF_STORE_OK) {
            rf_events_deliver (self, &c.evs);
            gl_info ("referral: emergency %s %s", id, action);
            rf_change_clear (&c);
            *reply = out;
            return 200;
        }
        json_decref (out);
        rf_change_clear (&c);
        if (rc == RF_STORE_IN_PROGRESS)
            return gl_rep_error (err, 409, "in_progress", NULL, "the same request is being handled");
        if (rc == RF_STORE_ERROR)
            return gl_rep_error (err, 503, "unavailable", NULL, "storage unreachable; retry");
    }
    return gl_rep_error (err, 409, "conflict", NULL, "the emergency kept changing; retry");
}

//  --------------------------------------------------------------------------------------------
//  The chain

int
rf_emergency_escalate (referral_t *self, const char *id, int64_t now)
{
    const rf_config_t *cfg = self->cfg;
    s_change_t c;
    s_init (&c, self, id);
    c.now = now;
    bool failed;
    c.rec = rf_store_hgetall (self->redis, c.key, &failed);
    if (failed) {
        rf_change_clear (&c);
        return -1;
    }
    if (!c.rec) {
        redisReply *r = gl_redis_cmd (self->redis, "ZREM %s %s", RF_KEY_EMG_DUE, id);
        if (r)
            freeReplyObject (r);
        rf_change_clear (&c);
        return 0;
    }
    char version[24];
    snprintf (version, sizeof version, "%s", rf_str (c.rec, "version"));
    int64_t next = rf_int (c.rec, "next_at");
    if (strcmp (rf_str (c.rec, "status"), "alarm") != 0 || next <= 0 || next > now) {
        s_index (&c);
        rf_store_rc_t rc = rf_store_apply (self->redis, c.key, version, NULL, NULL, NULL, 0, 0, c.ops);
        rf_change_clear (&c);
        return rc == RF_STORE_ERROR ? -1 : 0;
    }
    const rf_unit_t *unit = rf_config_unit (cfg, rf_str (c.rec, "unit"));
    int64_t ack_due = rf_int (c.rec, "ack_due");
    int level = (int) rf_int (c.rec, "level");
    const char *step;
    //  The alarm goes again to the on-duty officer at every step.
    s_alarm (&c, "emergency.alarm", "user", rf_str (c.rec, "on_duty"));
    if (now < ack_due)
        step = "resend";
    else {
        level++;
        rf_change_set_int (&c, "level", level);
        if (level == 2) {
            step = "backup";
            s_alarm (&c, "emergency.escalated", "user", rf_str (c.rec, "backup"));
        }
        else if (level == 3) {
            step = "focal";
            s_alarm (&c, "emergency.escalated", "user", unit ? unit->focal : "");
        }
        else {
            step = "supervisor";
            s_alarm (&c, "emergency.escalated", "user", unit ? unit->supervisor : "");
            s_alarm (&c, "emergency.escalated", "role", "supervisor");
        }
    }
    //  Steps are counted from the schedule, not from when the timer ran: a service that was
    //  down catches up with one step, not a burst.
    int64_t after = next + cfg->emergency_repeat_ms;
    if (after <= now)
        after = now + cfg->emergency_repeat_ms;
    if (now < ack_due && after > ack_due)
        after = ack_due;
    rf_change_set_int (&c, "next_at", after);
    s_close_change (&c);
    s_event (&c, "emergency.escalated",
             json_pack ("{s:s, s:I, s:I, s:i}", "step", step, "due", (json_int_t) next, "next_at",
                        (json_int_t) after, "alarms", c.alarms));
    rf_store_rc_t rc = rf_store_apply (self->redis, c.key, version, NULL, NULL, NULL, 0, 0, c.ops);
    if (rc == RF_STORE_OK) {
        rf_events_deliver (self, &c.evs);
        gl_metric_inc (self->m_emg_steps, 1);
        gl_info ("referral: emergency %s step %s, level %d", id, step, level);
    }
    rf_change_clear (&c);
    return rc == RF_STORE_ERROR ? -1 : 0;
}
