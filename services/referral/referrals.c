/*  referrals — a referral's lifecycle (docs/api/referral.md, docs/events.md).

        requested (intake) -> routed -> acknowledged -> in_progress -> closed (with an outcome)
                                 \            \              \-> rejected (with a reason)
                                  \-> re-routed (routed again, to another unit or partner)
    plus comments, and the SLA clock paused while the unit waits for the person.

    Keys (the {referral} slot):
      referral:{referral}:ref:<id>            hash  the record (fields below, all strings)
      referral:{referral}:ref:<id>:history    list  one JSON entry per change {at, action, by,
                                                    status, unit, code}
      referral:{referral}:ref:<id>:comments   list  {id, at, by, text}: kept here, never in events
      referral:{referral}:open                zset  open referrals by time requested
      referral:{referral}:unit:<u>:open       zset  a unit's open referrals
      referral:{referral}:unit:<u>:all        zset  a unit's referrals, open or not
      referral:{referral}:user:<id>:open      zset  a person's assigned open referrals
      referral:{referral}:ackdue              zset  unacknowledged, by acknowledgement deadline
      referral:{referral}:resolvedue          zset  open, by resolution deadline
      referral:{referral}:due                 zset  by the time of the next escalation step
      referral:{referral}:closed              zset  closed or rejected, by time closed (retention)
    A change is computed here from the record as read, and written by store.c's script only if
    the record's version is still the one read: a request racing the escalation timer (or a
    second replica) retries from the new state instead of overwriting it.
*/
#include "referral.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ATTEMPTS      5
#define S_TEXT_MAX      2000
#define S_KEY_MAX       RF_KEY_MAX

static const char *const s_outcomes[] = { "assistance_provided", "resolved", "referred_on",
                                          "no_contact", "declined_by_person", "not_eligible",
                                          "duplicate", NULL };
static const char *const s_reject_reasons[] = { "wrong_unit", "outside_mandate",
                                                "insufficient_information", "duplicate",
                                                "no_capacity", NULL };
static const char *const s_reroute_reasons[] = { "wrong_unit", "specialised_service",
                                                 "partner_unavailable", "no_capacity",
                                                 "person_request", NULL };
static const char *const s_pause_reasons[] = { "waiting_for_person", "waiting_for_documents",
                                               "waiting_for_partner", NULL };

static bool
s_in (const char *const *list, const char *s)
{
    for (size_t i = 0; s && list[i]; i++)
        if (strcmp (list[i], s) == 0)
            return true;
    return false;
}

static char *
s_list (const char *const *list)
{
    static char buf[256];
    buf[0] = 0;
    for (size_t i = 0; list[i]; i++) {
        strncat (buf, i ? ", " : "", sizeof buf - strlen (buf) - 1);
        strncat (buf, list[i], sizeof buf - strlen (buf) - 1);
    }
    return buf;
}

void
rf_referral_key (const char *id, char *out, size_t outlen)
{
    snprintf (out, outlen, RF_PREFIX "ref:%s", id);
}

static void
s_key (char *out, size_t outlen, const char *fmt, const char *a, const char *b)
{
    snprintf (out, outlen, fmt, a, b ? b : "");
}

static const char *
s_num (char *buf, int64_t v)
{
    snprintf (buf, 24, "%" PRId64, v);
    return buf;
}

bool
rf_caller_in_unit (const rf_caller_t *caller, const char *unit)
{
    for (size_t i = 0; unit && i < caller->n_units; i++)
        if (strcmp (caller->units[i], unit) == 0)
            return true;
    return false;
}

//  A member of unit: by the caller's account (intake's units) or by referral's configuration
//  (member, focal point, supervisor).
static bool
s_member (referral_t *self, const rf_caller_t *caller, const char *unit)
{
    return rf_caller_in_unit (caller, unit) || rf_config_is_member (self->cfg, unit, caller->user_id);
}

bool
rf_referral_visible (referral_t *self, const rf_caller_t *caller, const json_t *rec)
{
    const char *unit = rf_str (rec, "unit");
    bool assignee = caller->user_id[0] && strcmp (rf_str (rec, "assignee"), caller->user_id) == 0;
    if (rf_bool (rec, "sensitive"))
        return s_member (self, caller, unit) || assignee;
    return caller->supervisor || caller->admin || caller->protection || assignee
           || (caller->user_id[0] && strcmp (rf_str (rec, "agent_id"), caller->user_id) == 0);
}

//  Who may change a referral: its unit's members, its assignee, and for a referral that is not
//  sensitive, supervisors.
static bool
s_may_act (referral_t *self, const rf_caller_t *caller, const json_t *rec)
{
    if (s_member (self, caller, rf_str (rec, "unit")))
        return true;
    if (caller->user_id[0] && strcmp (rf_str (rec, "assignee"), caller->user_id) == 0)
        return true;
    return !rf_bool (rec, "sensitive") && caller->supervisor;
}

static json_t *
s_str_or_null (const char *s)
{
    return s && *s ? json_string (s) : json_null ();
}

static json_t *
s_int_or_null (int64_t v)
{
    return v ? json_integer (v) : json_null ();
}

json_t *
rf_referral_view (const json_t *rec)
{
    static const char *const strs[] = { "referral_id", "status", "category", "priority",
                                        "contact_id", "agent_id", "language", "location", "unit",
                                        "partner", "assignee", "acked_by", "closed_by", "outcome",
                                        "reason", "paused_reason", "esc_stage", NULL };
    static const char *const ints[] = { "version", "requested_at", "routed_at", "ack_due",
                                        "resolve_due", "acked_at", "started_at", "closed_at",
                                        "paused_at", "esc_next", "updated_at", NULL };
    static const char *const counts[] = { "esc_level", "reroutes", "comments", NULL };
    static const char *const bools[] = { "consent", "sensitive", "paused", NULL };
    json_t *v = json_object ();
    for (size_t i = 0; strs[i]; i++)
        json_object_set_new (v, strs[i], s_str_or_null (rf_str (rec, strs[i])));
    for (size_t i = 0; ints[i]; i++)
        json_object_set_new (v, ints[i], s_int_or_null (rf_int (rec, ints[i])));
    for (size_t i = 0; counts[i]; i++)
        json_object_set_new (v, counts[i], json_integer (rf_int (rec, counts[i])));
    for (size_t i = 0; bools[i]; i++)
        json_object_set_new (v, bools[i], json_boolean (rf_bool (rec, bools[i])));
    return v;
}

//  --------------------------------------------------------------------------------------------
//  A change in the making: the record as read, the fields to set, the writes and the events.

typedef rf_change_t s_change_t;

static void
s_history (s_change_t *c, const char *action, const char *code)
{
    char key[S_KEY_MAX];
    s_key (key, sizeof key, RF_PREFIX "ref:%s:history", c->id, NULL);
    json_t *h = json_pack ("{s:I, s:s, s:s, s:s, s:s, s:o}", "at", (json_int_t) c->now,
                           "action", action, "by", c->by, "status", rf_str (c->rec, "status"),
                           "unit", rf_str (c->rec, "unit"), "code", s_str_or_null (code));
    char *text = json_dumps (h, JSON_COMPACT);
    rf_ops_add (c->ops, 3, "RPUSH", key, text);
    free (text);
    json_decref (h);
}

//  An event about the referral: its id, unit, status and version, then extra (taken).
static void
s_event (s_change_t *c, const char *type, json_t *extra)
{
    json_t *all = json_pack ("{s:I}", "version", (json_int_t) rf_int (c->rec, "version"));
    if (extra) {
        json_object_update (all, extra);
        json_decref (extra);
    }
    rf_change_event (c, type, "referral_id", all, 0);
}

static void
s_notice (s_change_t *c, const char *template_, const char *channels, const char *kind,
          const char *ref, const char *language, json_t *params)
{
    rf_notice_t n = { .template_ = template_, .emergency = false, .channels = channels,
                      .kind = kind, .ref = ref, .language = language, .corr = c->id };
    gl_event_t *ev = rf_notify (&n, params);
    if (!ev || rf_events_add (c->self, &c->evs, c->ops, ev, 0) < 0)
        gl_error ("referral: notification %s of %s not queued", template_, c->id);
}

//  Parameters of a notice about the referral: ids, codes and times only; the category only
//  when the referral is not sensitive.
static json_t *
s_params (s_change_t *c)
{
    json_t *p = json_pack ("{s:s, s:s, s:s, s:I, s:I}", "referral_id", c->id, "unit",
                           rf_str (c->rec, "unit"), "priority", rf_str (c->rec, "priority"),
                           "ack_due", (json_int_t) rf_int (c->rec, "ack_due"), "resolve_due",
                           (json_int_t) rf_int (c->rec, "resolve_due"));
    if (!rf_bool (c->rec, "sensitive"))
        json_object_set_new (p, "category", json_string (rf_str (c->rec, "category")));
    return p;
}

//  The partner's signed acknowledgement link, added to params.
static void
s_partner_link (s_change_t *c, json_t *params)
{
    const rf_config_t *cfg = c->self->cfg;
    int64_t expires = c->now + cfg->ack_link_ttl_ms;
    char token[256], link[RF_URL_MAX + 300];
    if (rf_partner_token (cfg, c->id, rf_str (c->rec, "partner"), expires, token, sizeof token) < 0)
        return;
    snprintf (link, sizeof link, "%s?token=%s", cfg->ack_link, token);
    json_object_set_new (params, "ack_link", json_string (link));
    json_object_set_new (params, "ack_link_expires", json_integer (expires));
    json_object_set_new (params, "category", json_string (rf_str (c->rec, "category")));
}

//  The partner's channels: e-mail and/or webhook, as configured.
static const char *
s_partner_channels (const rf_partner_t *p)
{
    return p->email[0] && p->webhook[0] ? "email,webhook" : p->email[0] ? "email" : "webhook";
}

static bool
s_wall (referral_t *self, const json_t *rec)
{
    int p = rf_priority_parse (rf_str (rec, "priority"));
    return rf_config_sla_wall (self->cfg, rf_str (rec, "unit"),
                               p < 0 ? RF_NORMAL : (rf_priority_t) p);
}

//  Index writes for the record's status: open sets, deadlines and the escalation schedule.
static void
s_index (s_change_t *c, const char *old_unit, const char *old_assignee)
{
    char k[S_KEY_MAX], score[24];
    const char *id = c->id, *unit = rf_str (c->rec, "unit"), *assignee = rf_str (c->rec, "assignee");
    const char *status = rf_str (c->rec, "status");
    bool open = strcmp (status, "closed") != 0 && strcmp (status, "rejected") != 0;
    bool paused = rf_bool (c->rec, "paused");
    s_num (score, rf_int (c->rec, "requested_at"));
    if (old_unit && *old_unit && strcmp (old_unit, unit) != 0) {
        s_key (k, sizeof k, RF_PREFIX "unit:%s:open", old_unit, NULL);
        rf_ops_add (c->ops, 3, "ZREM", k, id);
    }
    if (old_assignee && *old_assignee && strcmp (old_assignee, assignee) != 0) {
        s_key (k, sizeof k, RF_PREFIX "user:%s:open", old_assignee, NULL);
        rf_ops_add (c->ops, 3, "ZREM", k, id);
    }
    s_key (k, sizeof k, RF_PREFIX "unit:%s:all", unit, NULL);
    rf_ops_add (c->ops, 4, "ZADD", k, score, id);
    s_key (k, sizeof k, RF_PREFIX "unit:%s:open", unit, NULL);
    rf_ops_add (c->ops, open ? 4 : 3, open ? "ZADD" : "ZREM", k, open ? score : id, id);
    if (*assignee) {
        s_key (k, sizeof k, RF_PREFIX "user:%s:open", assignee, NULL);
        rf_ops_add (c->ops, open ? 4 : 3, open ? "ZADD" : "ZREM", k, open ? score : id, id);
    }
    rf_ops_add (c->ops, open ? 4 : 3, open ? "ZADD" : "ZREM", RF_KEY_OPEN, open ? score : id, id);
    char closed[24];
    s_num (closed, rf_int (c->rec, "closed_at"));
    rf_ops_add (c->ops, open ? 3 : 4, open ? "ZREM" : "ZADD", RF_KEY_CLOSED, open ? id : closed, id);
    bool unacked = open && !paused && strcmp (status, "routed") == 0;
    char due[24];
    s_num (due, rf_int (c->rec, "ack_due"));
    rf_ops_add (c->ops, unacked ? 4 : 3, unacked ? "ZADD" : "ZREM", RF_KEY_ACK_DUE,
                unacked ? due : id, id);
    s_num (due, rf_int (c->rec, "resolve_due"));
    rf_ops_add (c->ops, open && !paused ? 4 : 3, open && !paused ? "ZADD" : "ZREM",
                RF_KEY_RESOLVE_DUE, open && !paused ? due : id, id);
    int64_t next = rf_int (c->rec, "esc_next");
    s_num (due, next);
    bool esc = open && !paused && next > 0;
    rf_ops_add (c->ops, esc ? 4 : 3, esc ? "ZADD" : "ZREM", RF_KEY_DUE, esc ? due : id, id);
}

//  Route (or re-route) to unit/partner now: assignee, deadlines, escalation reset, the
//  notification to whoever must act.
static void
s_route (s_change_t *c, const char *unit, const char *partner)
{
    referral_t *self = c->self;
    const rf_config_t *cfg = self->cfg;
    rf_change_set_str (c, "unit", unit);
    rf_change_set_str (c, "partner", partner);
    rf_change_set_str (c, "status", "routed");
    rf_change_set_str (c, "sensitive", rf_config_sensitive (cfg, unit, rf_str (c->rec, "category")) ? "1" : "0");
    rf_uid_t primary, backup;
    const char *assignee = "";
    if (!*partner) {
        if (rf_config_on_duty (cfg, unit, c->now, primary, backup))
            assignee = primary;
        else if (rf_config_unit (cfg, unit)->focal[0])
            assignee = rf_config_unit (cfg, unit)->focal;
    }
    rf_change_set_str (c, "assignee", assignee);
    int prio = rf_priority_parse (rf_str (c->rec, "priority"));
    const rf_sla_t *sla = rf_config_sla (cfg, unit, prio < 0 ? RF_NORMAL : (rf_priority_t) prio);
    bool wall = s_wall (self, c->rec);
    int64_t ack_due = rf_config_business_add (cfg, wall, c->now, sla->ack_ms);
    rf_change_set_int (c, "routed_at", c->now);
    rf_change_set_int (c, "ack_due", ack_due);
    rf_change_set_int (c, "resolve_due", rf_config_business_add (cfg, wall, c->now, sla->resolve_ms));
    rf_change_set_int (c, "acked_at", 0);
    rf_change_set_str (c, "acked_by", "");
    rf_change_set_int (c, "esc_level", 0);
    rf_change_set_str (c, "esc_stage", "ack");
    rf_change_set_int (c, "esc_next", ack_due);
    json_t *params = s_params (c);
    if (*partner) {
        const rf_partner_t *p = rf_config_partner (cfg, partner);
        s_partner_link (c, params);
        s_notice (c, "referral.partner", s_partner_channels (p), "partner", partner,
                  p->language[0] ? p->language : NULL, params);
    }
    else if (*assignee)
        s_notice (c, "referral.assigned", "console,email", "user", assignee, NULL, params);
    else
        s_notice (c, "referral.assigned", "console", "unit", unit, NULL, params);
}

static void
s_change_init (s_change_t *c, referral_t *self, const char *id, const char *by)
{
    char key[RF_KEY_MAX];
    rf_referral_key (id, key, sizeof key);
    rf_change_init (c, self, id, key, by);
}

//  Finish the record's writes: version, time, the HSET, the indexes.
static void
s_change_close (s_change_t *c, const char *old_unit, const char *old_assignee)
{
    rf_change_set_int (c, "version", rf_int (c->rec, "version") + 1);
    rf_change_set_int (c, "updated_at", c->now);
    rf_ops_hset_json (c->ops, c->key, c->set);
    s_index (c, old_unit, old_assignee);
}

//  --------------------------------------------------------------------------------------------
//  referral.requested

//  A code-like string from an event, or "" (language "ar-SY" keeps its case).
static const char *
s_event_code (const gl_event_t *ev, const char *field, bool *bad)
{
    json_t *v = json_object_get (ev->data, field);
    if (!v || json_is_null (v))
        return "";
    const char *s = json_string_value (v);
    size_t n = s ? strlen (s) : 0;
    if (!s || n == 0 || n > RF_CODE_MAX * 2) {
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
rf_referral_requested (referral_t *self, const gl_event_t *ev, gl_tx_t *tx)
{
    const char *id = gl_event_str (ev, "referral_id", "");
    const char *category = gl_event_str (ev, "category", "");
    const char *agent = gl_event_str (ev, "agent_id", "");
    const char *contact = gl_event_str (ev, "contact_id", "");
    json_t *consent_v = json_object_get (ev->data, "consent");
    int prio = rf_priority_parse (gl_event_str (ev, "priority", ""));
    bool bad = false;
    const char *language = s_event_code (ev, "language", &bad);
    const char *location = s_event_code (ev, "location", &bad);
    if (!gl_id_valid (id) || !rf_category_valid (category) || prio < 0 || !json_is_boolean (consent_v)
        || !gl_id_valid (agent) || (*contact && !gl_id_valid (contact)) || bad) {
        gl_warn ("referral: referral.requested %s from %s is malformed; skipped", ev->id, ev->src);
        return 0;
    }
    char key[S_KEY_MAX];
    rf_referral_key (id, key, sizeof key);
    redisReply *r = gl_redis_cmd (self->redis, "EXISTS %s", key);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (r)
            freeReplyObject (r);
        return -1;
    }
    bool exists = r->integer != 0;
    freeReplyObject (r);
    if (exists) {
        //  The one duplicate the outbox allows (an entry adopted after a stall): same id.
        gl_info ("referral: referral %s already routed; duplicate %s dropped", id, ev->id);
        return 0;
    }
    bool consent = json_is_true (consent_v);
    rf_route_t route;
    if (rf_route (self->cfg, category, location, language, (rf_priority_t) prio, consent, &route) < 0)
        return 0;   //  cannot happen: the loader requires a default
    s_change_t c;
    s_change_init (&c, self, id, agent);
    c.rec = json_object ();
    rf_change_set_str (&c, "referral_id", id);
    rf_change_set_str (&c, "category", category);
    rf_change_set_str (&c, "priority", rf_priority_name ((rf_priority_t) prio));
    rf_change_set_str (&c, "consent", consent ? "1" : "0");
    rf_change_set_int (&c, "consent_at", ev->ts);
    rf_change_set_str (&c, "contact_id", contact);
    rf_change_set_str (&c, "agent_id", agent);
    rf_change_set_str (&c, "language", language);
    rf_change_set_str (&c, "location", location);
    rf_change_set_int (&c, "requested_at", ev->ts ? ev->ts : c.now);
    rf_change_set_str (&c, "event_id", ev->id);
    rf_change_set_int (&c, "reroutes", 0);
    rf_change_set_int (&c, "comments", 0);
    rf_change_set_int (&c, "paused", 0);
    rf_change_set_int (&c, "version", 0);
    s_route (&c, route.unit, route.partner);
    s_change_close (&c, NULL, NULL);
    s_history (&c, "routed", route.by_default ? "default" : "rule");
    s_event (&c, "referral.routed",
             json_pack ("{s:o, s:o, s:s, s:s, s:b, s:b, s:I, s:I, s:i, s:b, s:i}", "partner",
                        s_str_or_null (route.partner), "assignee",
                        s_str_or_null (rf_str (c.rec, "assignee")), "priority",
                        rf_str (c.rec, "priority"), "category", category, "sensitive",
                        rf_bool (c.rec, "sensitive"), "consent", consent, "ack_due",
                        (json_int_t) rf_int (c.rec, "ack_due"), "resolve_due",
                        (json_int_t) rf_int (c.rec, "resolve_due"), "rule_line", route.rule_line,
                        "by_default", route.by_default, "reroutes", 0));
    int rc = rf_ops_to_tx (c.ops, tx) == 0 && rf_events_stage (self, &c.evs, tx) == 0 ? 0 : -1;
    gl_info ("referral: %s routed to %s%s%s", id, route.unit, route.partner[0] ? " via " : "",
             route.partner);
    rf_change_clear (&c);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Changes asked by a request

//  The body's string field name, one of list; NULL after filling err (400 naming it).
static const char *
s_body_code (const json_t *body, const char *name, const char *const *list, gl_rep_error_t *err,
             int *status)
{
    json_t *v = json_object_get (body, name);
    const char *s = json_string_value (v);
    if (!v)
        *status = gl_rep_error (err, 400, "missing_field", name, "%s is required: one of %s",
                                name, s_list (list));
    else if (!s || !s_in (list, s))
        *status = gl_rep_error (err, 400, "invalid_field", name, "%s must be one of %s", name,
                                s_list (list));
    else
        return s;
    return NULL;
}

static int
s_conflict (gl_rep_error_t *err, const char *action, const json_t *rec)
{
    return gl_rep_error (err, 409, "invalid_transition", "status",
                         "cannot %s a referral that is %s", action, rf_str (rec, "status"));
}

static bool
s_status_in (const json_t *rec, const char *a, const char *b, const char *cc)
{
    const char *s = rf_str (rec, "status");
    return (a && strcmp (s, a) == 0) || (b && strcmp (s, b) == 0) || (cc && strcmp (s, cc) == 0);
}

//  Build the change of action on c (c->rec read). 0 when built, else the error status.
static int
s_build (s_change_t *c, const rf_caller_t *caller, const char *action, const json_t *body,
         gl_rep_error_t *err)
{
    referral_t *self = c->self;
    json_t *rec = c->rec;
    char old_unit[RF_CODE_MAX + 1], old_assignee[GL_ID_LEN + 1];
    snprintf (old_unit, sizeof old_unit, "%s", rf_str (rec, "unit"));
    snprintf (old_assignee, sizeof old_assignee, "%s", rf_str (rec, "assignee"));
    int status = 0;
    bool open = s_status_in (rec, "routed", "acknowledged", "in_progress");
    bool paused = rf_bool (rec, "paused");

    if (strcmp (action, "ack") == 0 || strcmp (action, "partner_ack") == 0) {
        if (!s_status_in (rec, "routed", NULL, NULL))
            return s_conflict (err, "acknowledge", rec);
        rf_change_set_str (c, "status", "acknowledged");
        rf_change_set_int (c, "acked_at", c->now);
        rf_change_set_str (c, "acked_by", c->by);
        rf_change_set_int (c, "esc_level", 0);
        rf_change_set_str (c, "esc_stage", "resolve");
        rf_change_set_int (c, "esc_next", rf_int (rec, "resolve_due"));
        s_change_close (c, old_unit, old_assignee);
        s_history (c, "acknowledged", NULL);
        s_event (c, "referral.acknowledged",
                 json_pack ("{s:s, s:I, s:I}", "by", c->by, "at", (json_int_t) c->now,
                            "ack_due", (json_int_t) rf_int (rec, "ack_due")));
        return 0;
    }
    if (strcmp (action, "start") == 0) {
        if (!s_status_in (rec, "routed", "acknowledged", NULL))
            return s_conflict (err, "start", rec);
        if (!rf_int (rec, "acked_at")) {
            rf_change_set_int (c, "acked_at", c->now);
            rf_change_set_str (c, "acked_by", c->by);
        }
        rf_change_set_str (c, "status", "in_progress");
        rf_change_set_int (c, "started_at", c->now);
        rf_change_set_int (c, "esc_level", 0);
        rf_change_set_str (c, "esc_stage", "resolve");
        rf_change_set_int (c, "esc_next", rf_int (rec, "resolve_due"));
        s_change_close (c, old_unit, old_assignee);
        s_history (c, "started", NULL);
        s_event (c, "referral.started", json_pack ("{s:s, s:I}", "by", c->by, "at", (json_int_t) c->now));
        return 0;
    }
    if (strcmp (action, "close") == 0) {
        const char *outcome = s_body_code (body, "outcome", s_outcomes, err, &status);
        if (!outcome)
            return status;
        if (!s_status_in (rec, "acknowledged", "in_progress", NULL))
            return s_conflict (err, "close", rec);
        rf_change_set_str (c, "status", "closed");
        rf_change_set_str (c, "outcome", outcome);
        rf_change_set_int (c, "closed_at", c->now);
        rf_change_set_str (c, "closed_by", c->by);
        rf_change_set_int (c, "esc_next", 0);
        rf_change_set_int (c, "paused", 0);
        s_change_close (c, old_unit, old_assignee);
        s_history (c, "closed", outcome);
        bool in_time = c->now <= rf_int (rec, "resolve_due");
        s_event (c, "referral.closed",
                 json_pack ("{s:s, s:s, s:I, s:b}", "outcome", outcome, "by", c->by, "at",
                            (json_int_t) c->now, "within_sla", in_time));
        return 0;
    }
    if (strcmp (action, "reject") == 0) {
        const char *reason = s_body_code (body, "reason", s_reject_reasons, err, &status);
        if (!reason)
            return status;
        if (!open)
            return s_conflict (err, "reject", rec);
        rf_change_set_str (c, "status", "rejected");
        rf_change_set_str (c, "reason", reason);
        rf_change_set_int (c, "closed_at", c->now);
        rf_change_set_str (c, "closed_by", c->by);
        rf_change_set_int (c, "esc_next", 0);
        rf_change_set_int (c, "paused", 0);
        s_change_close (c, old_unit, old_assignee);
        s_history (c, "rejected", reason);
        s_event (c, "referral.rejected",
                 json_pack ("{s:s, s:s, s:I}", "reason", reason, "by", c->by, "at", (json_int_t) c->now));
        //  The agent who asked is told, so the person can be referred elsewhere.
        s_notice (c, "referral.escalated", "console", "user", rf_str (rec, "agent_id"), NULL,
                  json_pack ("{s:s, s:s, s:s}", "referral_id", c->id, "step", "rejected", "reason",
                             reason));
        return 0;
    }
    if (strcmp (action, "reroute") == 0) {
        const char *reason = s_body_code (body, "reason", s_reroute_reasons, err, &status);
        if (!reason)
            return status;
        const char *unit = json_string_value (json_object_get (body, "unit"));
        const char *partner = json_string_value (json_object_get (body, "partner"));
        if ((json_object_get (body, "unit") && !unit) || (json_object_get (body, "partner") && !partner))
            return gl_rep_error (err, 400, "invalid_field", unit ? "partner" : "unit",
                                 "unit and partner are codes");
        if (!unit && !partner)
            return gl_rep_error (err, 400, "missing_field", "unit", "give a unit or a partner");
        if (unit && partner)
            return gl_rep_error (err, 400, "invalid_field", "partner",
                                 "give a unit or a partner, not both");
        const rf_partner_t *p = partner ? rf_config_partner (self->cfg, partner) : NULL;
        if (partner && !p)
            return gl_rep_error (err, 422, "unknown_partner", "partner", "no such partner");
        if (unit && !rf_config_unit (self->cfg, unit))
            return gl_rep_error (err, 422, "unknown_unit", "unit", "no such unit");
        if (p && !rf_bool (rec, "consent"))
            return gl_rep_error (err, 422, "no_consent", "partner",
                                 "the person did not consent to sharing outside the agency");
        if (!open)
            return s_conflict (err, "re-route", rec);
        const char *to_unit = p ? p->unit : unit;
        if (strcmp (to_unit, old_unit) == 0 && strcmp (p ? p->code : "", rf_str (rec, "partner")) == 0)
            return gl_rep_error (err, 409, "same_destination", "unit",
                                 "the referral is already with that unit");
        rf_change_set_int (c, "reroutes", rf_int (rec, "reroutes") + 1);
        rf_change_set_int (c, "paused", 0);
        s_route (c, to_unit, p ? p->code : "");
        s_change_close (c, old_unit, old_assignee);
        s_history (c, "rerouted", reason);
        s_event (c, "referral.rerouted",
                 json_pack ("{s:s, s:o, s:s, s:o, s:o, s:I, s:I, s:s, s:i, s:b}", "from_unit",
                            old_unit, "partner", s_str_or_null (p ? p->code : NULL), "reason",
                            reason, "assignee", s_str_or_null (rf_str (c->rec, "assignee")),
                            "by", json_string (c->by), "ack_due",
                            (json_int_t) rf_int (c->rec, "ack_due"), "resolve_due",
                            (json_int_t) rf_int (c->rec, "resolve_due"), "priority",
                            rf_str (c->rec, "priority"), "reroutes",
                            (int) rf_int (c->rec, "reroutes"), "sensitive",
                            rf_bool (c->rec, "sensitive")));
        return 0;
    }
    if (strcmp (action, "priority") == 0) {
        static const char *const prios[] = { "low", "normal", "high", "emergency", NULL };
        const char *prio = s_body_code (body, "priority", prios, err, &status);
        if (!prio)
            return status;
        if (!open)
            return s_conflict (err, "re-prioritise", rec);
        char from[16];
        snprintf (from, sizeof from, "%s", rf_str (rec, "priority"));
        if (strcmp (from, prio) == 0)
            return gl_rep_error (err, 409, "unchanged", "priority", "the referral already has that priority");
        //  The deadlines are the new SLA's, counted from when the referral was routed; the
        //  escalation starts over from the stage the referral is in.
        rf_change_set_str (c, "priority", prio);
        const rf_config_t *cfg = self->cfg;
        const rf_sla_t *sla = rf_config_sla (cfg, old_unit, (rf_priority_t) rf_priority_parse (prio));
        bool wall = s_wall (self, c->rec);
        int64_t routed = rf_int (rec, "routed_at");
        int64_t ack_due = rf_config_business_add (cfg, wall, routed, sla->ack_ms);
        int64_t resolve_due = rf_config_business_add (cfg, wall, routed, sla->resolve_ms);
        bool unacked = s_status_in (rec, "routed", NULL, NULL);
        rf_change_set_int (c, "ack_due", ack_due);
        rf_change_set_int (c, "resolve_due", resolve_due);
        rf_change_set_int (c, "esc_level", 0);
        rf_change_set_str (c, "esc_stage", unacked ? "ack" : "resolve");
        rf_change_set_int (c, "esc_next", unacked ? ack_due : resolve_due);
        s_change_close (c, old_unit, old_assignee);
        s_history (c, "reprioritised", prio);
        s_event (c, "referral.updated",
                 json_pack ("{s:[s], s:s, s:s, s:s, s:I, s:I, s:I}", "changed", "priority",
                            "priority", prio, "from_priority", from, "by", c->by, "at",
                            (json_int_t) c->now, "ack_due", (json_int_t) ack_due, "resolve_due",
                            (json_int_t) resolve_due));
        return 0;
    }
    if (strcmp (action, "comment") == 0) {
        json_t *t = json_object_get (body, "text");
        const char *text = json_string_value (t);
        if (!t)
            return gl_rep_error (err, 400, "missing_field", "text", "text is required");
        if (!text || !*text || json_string_length (t) > S_TEXT_MAX)
            return gl_rep_error (err, 400, "invalid_field", "text",
                                 "text must be 1..%d characters", S_TEXT_MAX);
        if ((size_t) rf_int (rec, "comments") >= self->comments_max)
            return gl_rep_error (err, 409, "too_many_comments", "text",
                                 "a referral holds at most %zu comments", self->comments_max);
        char cid[GL_ID_LEN + 1], k[S_KEY_MAX];
        gl_id_new (cid);
        rf_change_set_int (c, "comments", rf_int (rec, "comments") + 1);
        s_change_close (c, old_unit, old_assignee);
        s_key (k, sizeof k, RF_PREFIX "ref:%s:comments", c->id, NULL);
        json_t *entry = json_pack ("{s:s, s:I, s:s, s:s}", "comment_id", cid, "at",
                                   (json_int_t) c->now, "by", c->by, "text", text);
        char *dump = json_dumps (entry, JSON_COMPACT);
        rf_ops_add (c->ops, 3, "RPUSH", k, dump);
        free (dump);
        json_decref (entry);
        s_history (c, "commented", NULL);
        s_event (c, "referral.commented",
                 json_pack ("{s:s, s:s, s:I, s:I}", "comment_id", cid, "by", c->by, "at",
                            (json_int_t) c->now, "comments", (json_int_t) rf_int (c->rec, "comments")));
        return 0;
    }
    if (strcmp (action, "pause") == 0) {
        const char *reason = s_body_code (body, "reason", s_pause_reasons, err, &status);
        if (!reason)
            return status;
        if (!open)
            return s_conflict (err, "pause", rec);
        if (paused)
            return gl_rep_error (err, 409, "already_paused", "status", "the SLA clock is already paused");
        rf_change_set_int (c, "paused", 1);
        rf_change_set_int (c, "paused_at", c->now);
        rf_change_set_str (c, "paused_reason", reason);
        s_change_close (c, old_unit, old_assignee);
        s_history (c, "paused", reason);
        s_event (c, "referral.paused",
                 json_pack ("{s:s, s:s, s:I}", "reason", reason, "by", c->by, "at", (json_int_t) c->now));
        return 0;
    }
    if (strcmp (action, "resume") == 0) {
        if (!open)
            return s_conflict (err, "resume", rec);
        if (!paused)
            return gl_rep_error (err, 409, "not_paused", "status", "the SLA clock is not paused");
        //  Deadlines move by the business time spent paused: what was left is left again.
        const rf_config_t *cfg = self->cfg;
        bool wall = s_wall (self, rec);
        int64_t at = rf_int (rec, "paused_at");
        static const char *const fields[] = { "ack_due", "resolve_due", "esc_next", NULL };
        for (size_t i = 0; fields[i]; i++) {
            int64_t due = rf_int (rec, fields[i]);
            if (due <= 0)
                continue;
            int64_t left = rf_config_business_between (cfg, wall, at, due);
            rf_change_set_int (c, fields[i], due <= at ? c->now : rf_config_business_add (cfg, wall, c->now, left));
        }
        rf_change_set_int (c, "paused", 0);
        rf_change_set_int (c, "paused_ms", rf_int (rec, "paused_ms") + (c->now - at));
        s_change_close (c, old_unit, old_assignee);
        s_history (c, "resumed", NULL);
        s_event (c, "referral.resumed",
                 json_pack ("{s:s, s:I, s:I, s:I, s:I}", "by", c->by, "at", (json_int_t) c->now,
                            "paused_ms", (json_int_t) (c->now - at), "ack_due",
                            (json_int_t) rf_int (c->rec, "ack_due"), "resolve_due",
                            (json_int_t) rf_int (c->rec, "resolve_due")));
        return 0;
    }
    return gl_rep_error (err, 404, "not_found", NULL, "no such action");
}

int
rf_referral_change (referral_t *self, const gl_rep_request_t *req, const rf_caller_t *caller,
                    const char *id, const char *action, const json_t *body, json_t **reply,
                    gl_rep_error_t *err)
{
    if (!gl_id_valid (id))
        return gl_rep_error (err, 404, "not_found", "id", "no such referral");
    gl_rep_t *rep = gl_service_rep (self->svc);
    char idem_key[512], marker[128];
    bool idem = req && gl_rep_idem_key (rep, req, idem_key, sizeof idem_key) == 0
                && gl_rep_idem_marker (req, marker, sizeof marker) == 0;
    char by[48];
    bool partner_ack = strcmp (action, "partner_ack") == 0;
    for (int attempt = 0; attempt < S_ATTEMPTS; attempt++) {
        s_change_t c;
        snprintf (by, sizeof by, "%s", caller->user_id);
        s_change_init (&c, self, id, by);
        bool failed;
        c.rec = rf_store_hgetall (self->redis, c.key, &failed);
        if (failed) {
            rf_change_clear (&c);
            return gl_rep_error (err, 503, "unavailable", NULL, "storage unreachable; retry");
        }
        if (!c.rec || (!partner_ack && !rf_referral_visible (self, caller, c.rec))) {
            rf_change_clear (&c);
            return gl_rep_error (err, 404, "not_found", "id", "no such referral");
        }
        if (partner_ack) {
            //  The token named this partner: it must still hold the referral.
            if (strcmp (rf_str (c.rec, "partner"), caller->units[0]) != 0) {
                rf_change_clear (&c);
                return gl_rep_error (err, 409, "not_with_partner", "token",
                                     "the referral is no longer with this partner");
            }
            snprintf (c.by, sizeof c.by, "partner:%s", caller->units[0]);
        }
        else if (!s_may_act (self, caller, c.rec)) {
            rf_change_clear (&c);
            return gl_rep_error (err, 403, "forbidden", NULL,
                                 "only the referral's unit or assignee may change it");
        }
        char version[24];
        snprintf (version, sizeof version, "%s", rf_str (c.rec, "version"));
        int status = s_build (&c, caller, action, body, err);
        if (status) {
            rf_change_clear (&c);
            return status;
        }
        //  A partner (a public caller holding a link) learns that it worked, nothing more:
        //  this is also the reply stored for its retries.
        json_t *out = partner_ack ? json_pack ("{s:s, s:s}", "referral_id", id, "status",
                                               "acknowledged")
                                  : json_pack ("{s:o}", "referral", rf_referral_view (c.rec));
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
            gl_info ("referral: %s %s (version %s)", id, action, rf_str (c.rec, "version"));
            rf_change_clear (&c);
            *reply = out;
            return 200;
        }
        json_decref (out);
        rf_change_clear (&c);
        if (rc == RF_STORE_IN_PROGRESS)
            return gl_rep_error (err, 409, "in_progress", NULL,
                                 "the same request is being handled; retry later");
        if (rc == RF_STORE_ERROR)
            return gl_rep_error (err, 503, "unavailable", NULL, "storage unreachable; retry");
    }
    return gl_rep_error (err, 409, "conflict", NULL, "the referral kept changing; retry");
}

//  --------------------------------------------------------------------------------------------
//  Escalation (called by the timer in escalation.c)

int
rf_referral_escalate (referral_t *self, const char *id, int64_t now)
{
    s_change_t c;
    s_change_init (&c, self, id, "referral");
    c.now = now;
    bool failed;
    c.rec = rf_store_hgetall (self->redis, c.key, &failed);
    if (failed) {
        rf_change_clear (&c);
        return -1;
    }
    if (!c.rec) {
        redisReply *r = gl_redis_cmd (self->redis, "ZREM %s %s", RF_KEY_DUE, id);
        if (r)
            freeReplyObject (r);
        rf_change_clear (&c);
        return 0;
    }
    char version[24], unit_code[RF_CODE_MAX + 1], assignee[GL_ID_LEN + 1];
    snprintf (version, sizeof version, "%s", rf_str (c.rec, "version"));
    snprintf (unit_code, sizeof unit_code, "%s", rf_str (c.rec, "unit"));
    snprintf (assignee, sizeof assignee, "%s", rf_str (c.rec, "assignee"));
    int64_t next = rf_int (c.rec, "esc_next");
    bool open = s_status_in (c.rec, "routed", "acknowledged", "in_progress");
    if (!open || rf_bool (c.rec, "paused") || next <= 0 || next > now) {
        //  Nothing due: the schedule is put right by the index writes of an empty change.
        s_index (&c, NULL, NULL);
        rf_store_rc_t rc = rf_store_apply (self->redis, c.key, version, NULL, NULL, NULL, 0, 0, c.ops);
        rf_change_clear (&c);
        return rc == RF_STORE_ERROR ? -1 : 0;
    }
    const rf_config_t *cfg = self->cfg;
    const rf_unit_t *unit = rf_config_unit (cfg, unit_code);
    bool wall = s_wall (self, c.rec);
    int level = (int) rf_int (c.rec, "esc_level") + 1;
    bool ack_stage = strcmp (rf_str (c.rec, "esc_stage"), "ack") == 0
                     && s_status_in (c.rec, "routed", NULL, NULL);
    const char *step, *to_kind, *to;
    int64_t ack_due = rf_int (c.rec, "ack_due");
    json_t *params = s_params (&c);
    json_object_set_new (params, "level", json_integer (level));
    const char *partner = rf_str (c.rec, "partner");
    if (ack_stage && level == 1) {
        step = "reminder";
        to_kind = *partner ? "partner" : *assignee ? "user" : "unit";
        to = *partner ? partner : *assignee ? assignee : unit_code;
        rf_change_set_int (&c, "esc_next", rf_config_business_add (cfg, wall, ack_due, cfg->focal_after_ms));
        json_object_set_new (params, "step", json_string (step));
        if (*partner) {
            const rf_partner_t *p = rf_config_partner (cfg, partner);
            s_partner_link (&c, params);
            s_notice (&c, "referral.reminder", p ? s_partner_channels (p) : "email", "partner",
                      partner, p && p->language[0] ? p->language : NULL, params);
        }
        else
            s_notice (&c, "referral.reminder", *assignee ? "console,email" : "console", to_kind,
                      to, NULL, params);
    }
    else if (ack_stage && level == 2) {
        step = "focal";
        to_kind = unit && unit->focal[0] ? "user" : "unit";
        to = unit && unit->focal[0] ? unit->focal : unit_code;
        rf_change_set_int (&c, "esc_next",
                   rf_config_business_add (cfg, wall, ack_due, cfg->supervisor_after_ms));
        json_object_set_new (params, "step", json_string (step));
        s_notice (&c, "referral.escalated", "console,email", to_kind, to, NULL, params);
    }
    else if (ack_stage) {
        step = "supervisor";
        to_kind = unit && unit->supervisor[0] ? "user" : "role";
        to = unit && unit->supervisor[0] ? unit->supervisor : "supervisor";
        rf_change_set_int (&c, "esc_next", 0);
        json_object_set_new (params, "step", json_string (step));
        s_notice (&c, "referral.escalated", *to_kind == 'u' ? "console,email,sms" : "console",
                  to_kind, to, NULL, params);
    }
    else {
        step = "resolve_overdue";
        to_kind = unit && unit->focal[0] ? "user" : "unit";
        to = unit && unit->focal[0] ? unit->focal : unit_code;
        rf_change_set_int (&c, "esc_next", 0);
        json_object_set_new (params, "step", json_string (step));
        s_notice (&c, "referral.escalated", "console,email", to_kind, to, NULL, params);
    }
    rf_change_set_int (&c, "esc_level", level);
    s_change_close (&c, NULL, NULL);
    s_history (&c, "escalated", step);
    s_event (&c, "referral.escalated",
             json_pack ("{s:i, s:s, s:s, s:s, s:I, s:o}", "level", level, "step", step,
                        "to_kind", to_kind, "to", to, "due", (json_int_t) next, "next_at",
                        s_int_or_null (rf_int (c.rec, "esc_next"))));
    rf_store_rc_t rc = rf_store_apply (self->redis, c.key, version, NULL, NULL, NULL, 0, 0, c.ops);
    if (rc == RF_STORE_OK) {
        rf_events_deliver (self, &c.evs);
        gl_metric_inc (self->m_ref_steps, 1);
        gl_info ("referral: %s escalated, level %d (%s)", id, level, step);
    }
    rf_change_clear (&c);
    return rc == RF_STORE_ERROR ? -1 : 0;
}
