/*  requests — the bus requests referral answers (docs/events.md, "Requests").

    Most come from intake's forwarded API (services/intake/api_referral.c, forward.h): the body
    is {caller: {user_id, roles, units}, params, query, body}; each handler validates all four
    (a 400 naming the field), decides what the caller may see (sensitive referrals only for their
    unit's members: 404 to anyone else, so their existence is not revealed), and answers 200.
    referral.route_preview answers where a referral would go before it is requested, with the
    routing and SLA functions a real referral.requested goes through.
    referral.partner_contact is notifier's question: a partner's addresses, which live in this
    service's configuration.
*/
#include "referral.h"
#include "gl/gl_event.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_metrics.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_KEY_MAX RF_KEY_MAX

//  Parse the forwarded caller. 0, or the 400's status with err filled.
static int
s_caller (const json_t *req_body, rf_caller_t *caller, gl_rep_error_t *err)
{
    memset (caller, 0, sizeof *caller);
    json_t *c = json_object_get (req_body, "caller");
    if (!json_is_object (c))
        return gl_rep_error (err, 400, "missing_field", "caller", "caller is required");
    const char *uid = json_string_value (json_object_get (c, "user_id"));
    if (!gl_id_valid (uid))
        return gl_rep_error (err, 400, "invalid_field", "caller.user_id", "caller.user_id must be an id");
    strcpy (caller->user_id, uid);
    json_t *roles = json_object_get (c, "roles"), *units = json_object_get (c, "units");
    if (!json_is_array (roles) || json_array_size (roles) > 16)
        return gl_rep_error (err, 400, "invalid_field", "caller.roles", "caller.roles must be an array");
    if (units && !json_is_null (units) && !json_is_array (units))
        return gl_rep_error (err, 400, "invalid_field", "caller.units", "caller.units must be an array");
    size_t i;
    json_t *v;
    json_array_foreach (roles, i, v) {
        const char *r = json_string_value (v);
        if (!r)
            return gl_rep_error (err, 400, "invalid_field", "caller.roles", "roles are strings");
        caller->supervisor |= strcmp (r, "supervisor") == 0;
        caller->protection |= strcmp (r, "protection") == 0;
        caller->admin |= strcmp (r, "admin") == 0;
        caller->agent |= strcmp (r, "agent") == 0;
    }
    json_array_foreach (units, i, v) {
        const char *u = json_string_value (v);
        if (!u)
            return gl_rep_error (err, 400, "invalid_field", "caller.units", "units are codes");
        if (rf_code_valid (u) && caller->n_units < RF_UNITS_MAX)
            strcpy (caller->units[caller->n_units++], u);
    }
    return 0;
}

static const char *
s_param (const json_t *req_body, const char *name)
{
    return json_string_value (json_object_get (json_object_get (req_body, "params"), name));
}

static const char *
s_query (const json_t *req_body, const char *name)
{
    return json_string_value (json_object_get (json_object_get (req_body, "query"), name));
}

static const json_t *
s_body (const json_t *req_body)
{
    json_t *b = json_object_get (req_body, "body");
    return json_is_object (b) ? b : NULL;
}

//  A field name from outside, made printable and short for the error's field.
static void
s_field_name (const char *key, char *out, size_t outlen)
{
    size_t n = 0;
    for (const char *c = key; *c && n + 1 < outlen; c++)
        out[n++] = *c > 0x20 && *c < 0x7f ? *c : '?';
    out[n] = 0;
}

//  ?limit= in [1, max], default 50. -1 after filling err.
static int
s_limit (referral_t *self, const json_t *rb, gl_rep_error_t *err, int *status)
{
    const char *s = s_query (rb, "limit");
    if (!s)
        return 50 < (int) self->list_max ? 50 : (int) self->list_max;
    char *end;
    long v = strtol (s, &end, 10);
    if (!*s || *end || v < 1 || v > (long) self->list_max) {
        *status = gl_rep_error (err, 400, "invalid_field", "limit", "limit must be 1..%zu",
                                self->list_max);
        return -1;
    }
    return (int) v;
}

//  --------------------------------------------------------------------------------------------
//  Referrals: changes

#define S_CHANGE_HANDLER(name, action)                                                          \
    static int name (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err) \
    {                                                                                           \
        referral_t *self = arg;                                                                 \
        rf_caller_t caller;                                                                     \
        int st = s_caller (req->body, &caller, err);                                            \
        if (st)                                                                                 \
            return st;                                                                          \
        const json_t *body = s_body (req->body);                                                \
        if (!body)                                                                              \
            return gl_rep_error (err, 400, "invalid_field", "body", "the body must be an object"); \
        return rf_referral_change (self, req, &caller, s_param (req->body, "id"), action, body,  \
                                   reply, err);                                                 \
    }

S_CHANGE_HANDLER (s_on_ack, "ack")
S_CHANGE_HANDLER (s_on_start, "start")
S_CHANGE_HANDLER (s_on_close, "close")
S_CHANGE_HANDLER (s_on_reject, "reject")
S_CHANGE_HANDLER (s_on_reroute, "reroute")
S_CHANGE_HANDLER (s_on_priority, "priority")
S_CHANGE_HANDLER (s_on_comment, "comment")
S_CHANGE_HANDLER (s_on_pause, "pause")
S_CHANGE_HANDLER (s_on_resume, "resume")

//  A partner's signed link: no account, the token is the authority.
static int
s_on_partner_ack (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    referral_t *self = arg;
    const json_t *body = s_body (req->body);
    json_t *t = body ? json_object_get (body, "token") : NULL;
    if (!t)
        return gl_rep_error (err, 400, "missing_field", "token", "token is required");
    char id[GL_ID_LEN + 1], partner[RF_CODE_MAX + 1];
    int rc = rf_partner_token_check (self->cfg, json_string_value (t), gl_now_ms (), id, partner);
    if (rc == -2)
        return gl_rep_error (err, 422, "expired", "token", "the link has expired");
    if (rc < 0)
        return gl_rep_error (err, 400, "invalid_field", "token", "the link is not valid");
    rf_caller_t caller;
    memset (&caller, 0, sizeof caller);
    strcpy (caller.units[0], partner);      //  the partner the token names (see referrals.c)
    json_t *out = NULL;
    int status = rf_referral_change (self, req, &caller, id, "partner_ack", json_object_get (req->body, "body"),
                                     &out, err);
    if (status == 409 && strcmp (err->code, "invalid_transition") == 0) {
        //  Clicking the link twice is fine: say it is acknowledged, and nothing else.
        json_decref (out);
        *reply = json_pack ("{s:s, s:s}", "referral_id", id, "status", "already_acknowledged");
        return 200;
    }
    if (status == 200)
        *reply = out;       //  {referral_id, status}: never the record
    return status;
}

//  --------------------------------------------------------------------------------------------
//  Referrals: reading

static json_t *
s_load (referral_t *self, const char *id, bool *failed)
{
    char key[S_KEY_MAX];
    rf_referral_key (id, key, sizeof key);
    return rf_store_hgetall (self->redis, key, failed);
}

//  The ids of zset key, newest first, scored before `before` (0: no bound), at most n.
static redisReply *
s_zrange (referral_t *self, const char *key, int64_t before, int n)
{
    char max[32];
    if (before > 0)
        snprintf (max, sizeof max, "(%" PRId64, before);
    else
        snprintf (max, sizeof max, "+inf");
    return gl_redis_cmd (self->redis, "ZREVRANGEBYSCORE %s %s -inf WITHSCORES LIMIT 0 %d", key,
                         max, n);
}

static int
s_on_inbox (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    referral_t *self = arg;
    rf_caller_t caller;
    int st = s_caller (req->body, &caller, err);
    if (st)
        return st;
    const char *unit = s_query (req->body, "unit");
    const char *assignee = s_query (req->body, "assignee");
    const char *status = s_query (req->body, "status");
    const char *priority = s_query (req->body, "priority");
    const char *before_s = s_query (req->body, "before");
    int limit = s_limit (self, req->body, err, &st);
    if (limit < 0)
        return st;
    if (unit && !rf_config_unit (self->cfg, unit))
        return gl_rep_error (err, 400, "invalid_field", "unit", "no such unit");
    if (assignee && strcmp (assignee, "me") != 0 && !gl_id_valid (assignee))
        return gl_rep_error (err, 400, "invalid_field", "assignee", "assignee is me or a user id");
    if (status && strcmp (status, "open") != 0 && strcmp (status, "all") != 0)
        return gl_rep_error (err, 400, "invalid_field", "status", "status is open or all");
    if (priority && rf_priority_parse (priority) < 0)
        return gl_rep_error (err, 400, "invalid_field", "priority",
                             "priority is low, normal, high or emergency");
    int64_t before = 0;
    if (before_s) {
        char *end;
        before = strtoll (before_s, &end, 10);
        if (!*before_s || *end || before <= 0)
            return gl_rep_error (err, 400, "invalid_field", "before", "before is a unix ms time");
    }
    bool all = status && strcmp (status, "all") == 0;
    if (assignee && strcmp (assignee, "me") == 0)
        assignee = caller.user_id;
    //  Which index: a unit's, a person's, or (no filter) the caller's own units and
    //  assignments, or every open referral for supervisors.
    char key[S_KEY_MAX];
    if (unit)
        snprintf (key, sizeof key, RF_PREFIX "unit:%s:%s", unit, all ? "all" : "open");
    else if (assignee)
        snprintf (key, sizeof key, RF_PREFIX "user:%s:open", assignee);
    else if (caller.n_units == 1 && !caller.supervisor && !caller.admin)
        snprintf (key, sizeof key, RF_PREFIX "unit:%s:%s", caller.units[0], all ? "all" : "open");
    else
        snprintf (key, sizeof key, "%s", RF_KEY_OPEN);
    json_t *items = json_array ();
    int64_t next = 0;
    //  Read in pages until limit visible records are found (records the caller may not see
    //  are skipped), at most 10 pages per request.
    for (int page = 0; page < 10 && (int) json_array_size (items) < limit; page++) {
        redisReply *r = s_zrange (self, key, before, limit * 2);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject (r);
            json_decref (items);
            return gl_rep_error (err, 503, "unavailable", NULL, "storage unreachable; retry");
        }
        size_t got = r->elements / 2;
        for (size_t i = 0; i + 1 < r->elements && (int) json_array_size (items) < limit; i += 2) {
            before = strtoll (r->element[i + 1]->str, NULL, 10);
            bool failed;
            json_t *rec = s_load (self, r->element[i]->str, &failed);
            if (rec && rf_referral_visible (self, &caller, rec)
                && (!assignee || strcmp (rf_str (rec, "assignee"), assignee) == 0)
                && (!priority || strcmp (rf_str (rec, "priority"), priority) == 0)
                && (!unit || strcmp (rf_str (rec, "unit"), unit) == 0))
                json_array_append_new (items, rf_referral_view (rec));
            json_decref (rec);
        }
        freeReplyObject (r);
        if ((int) got < limit * 2)
            break;
        next = before;
    }
    if ((int) json_array_size (items) == limit)
        next = before;
    else
        next = 0;
    *reply = json_pack ("{s:o, s:o}", "referrals", items, "next_before",
                        next ? json_integer (next) : json_null ());
    return 200;
}

static int
s_on_overdue (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    referral_t *self = arg;
    rf_caller_t caller;
    int st = s_caller (req->body, &caller, err);
    if (st)
        return st;
    const char *unit = s_query (req->body, "unit");
    int limit = s_limit (self, req->body, err, &st);
    if (limit < 0)
        return st;
    if (unit && !rf_config_unit (self->cfg, unit))
        return gl_rep_error (err, 400, "invalid_field", "unit", "no such unit");
    int64_t now = gl_now_ms ();
    json_t *items = json_array ();
    json_t *seen = json_object ();
    static const struct {
        const char *key, *what;
    } lists[] = { { RF_KEY_ACK_DUE, "acknowledgement" }, { RF_KEY_RESOLVE_DUE, "resolution" } };
    for (size_t l = 0; l < 2; l++) {
        redisReply *r = gl_redis_cmd (self->redis, "ZRANGEBYSCORE %s -inf %" PRId64 " LIMIT 0 %d",
                                      lists[l].key, now, (int) self->list_max * 4);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject (r);
            json_decref (items);
            json_decref (seen);
            return gl_rep_error (err, 503, "unavailable", NULL, "storage unreachable; retry");
        }
        for (size_t i = 0; i < r->elements && (int) json_array_size (items) < limit; i++) {
            const char *id = r->element[i]->str;
            if (!id || json_object_get (seen, id))
                continue;
            bool failed;
            json_t *rec = s_load (self, id, &failed);
            if (rec && rf_referral_visible (self, &caller, rec)
                && (!unit || strcmp (rf_str (rec, "unit"), unit) == 0)) {
                json_t *v = rf_referral_view (rec);
                json_object_set_new (v, "overdue", json_string (lists[l].what));
                json_array_append_new (items, v);
                json_object_set_new (seen, id, json_true ());
            }
            json_decref (rec);
        }
        freeReplyObject (r);
    }
    json_decref (seen);
    *reply = json_pack ("{s:o, s:I}", "referrals", items, "now", (json_int_t) now);
    return 200;
}

static json_t *
s_list_key (referral_t *self, const char *key, size_t max)
{
    json_t *out = json_array ();
    redisReply *r = gl_redis_cmd (self->redis, "LRANGE %s 0 %d", key, (int) max - 1);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        json_t *e = json_loadb (r->element[i]->str, r->element[i]->len, 0, NULL);
        if (e)
            json_array_append_new (out, e);
    }
    if (r)
        freeReplyObject (r);
    return out;
}

static int
s_on_lifecycle (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    referral_t *self = arg;
    rf_caller_t caller;
    int st = s_caller (req->body, &caller, err);
    if (st)
        return st;
    const char *id = s_param (req->body, "id");
    if (!gl_id_valid (id))
        return gl_rep_error (err, 404, "not_found", "id", "no such referral");
    bool failed;
    json_t *rec = s_load (self, id, &failed);
    if (failed)
        return gl_rep_error (err, 503, "unavailable", NULL, "storage unreachable; retry");
    if (!rec || !rf_referral_visible (self, &caller, rec)) {
        json_decref (rec);
        return gl_rep_error (err, 404, "not_found", "id", "no such referral");
    }
    char key[S_KEY_MAX];
    snprintf (key, sizeof key, RF_PREFIX "ref:%s:history", id);
    json_t *history = s_list_key (self, key, 1000);
    snprintf (key, sizeof key, RF_PREFIX "ref:%s:comments", id);
    json_t *comments = s_list_key (self, key, self->comments_max);
    *reply = json_pack ("{s:o, s:o, s:o}", "referral", rf_referral_view (rec), "history", history,
                        "comments", comments);
    json_decref (rec);
    return 200;
}

static int
s_on_units (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    referral_t *self = arg;
    rf_caller_t caller;
    int st = s_caller (req->body, &caller, err);
    if (st)
        return st;
    const rf_config_t *cfg = self->cfg;
    int64_t now = gl_now_ms ();
    json_t *units = json_array ();
    for (size_t i = 0; i < cfg->n_units; i++) {
        const rf_unit_t *u = &cfg->units[i];
        rf_uid_t primary, backup;
        rf_config_on_duty (cfg, u->code, now, primary, backup);
        json_t *sla = json_object ();
        for (int p = 0; p < RF_PRIORITY__COUNT; p++) {
            const rf_sla_t *s = rf_config_sla (cfg, u->code, (rf_priority_t) p);
            json_object_set_new (sla, rf_priority_name ((rf_priority_t) p),
                                 json_pack ("{s:I, s:I}", "ack_ms", (json_int_t) s->ack_ms,
                                            "resolve_ms", (json_int_t) s->resolve_ms));
        }
        json_t *partners = json_array ();
        for (size_t k = 0; k < cfg->n_partners; k++)
            if (strcmp (cfg->partners[k].unit, u->code) == 0)
                json_array_append_new (partners, json_string (cfg->partners[k].code));
        json_array_append_new (
            units, json_pack ("{s:s, s:b, s:b, s:b, s:o, s:o, s:o, s:o, s:o, s:o}", "code",
                              u->code, "sensitive", u->sensitive, "always_open", u->always_open,
                              "emergency", strcmp (u->code, cfg->emergency_unit) == 0, "on_duty",
                              primary[0] ? json_string (primary) : json_null (), "backup",
                              backup[0] ? json_string (backup) : json_null (), "focal",
                              u->focal[0] ? json_string (u->focal) : json_null (), "supervisor",
                              u->supervisor[0] ? json_string (u->supervisor) : json_null (),
                              "sla", sla, "partners", partners));
    }
    *reply = json_pack ("{s:o, s:I}", "units", units, "now", (json_int_t) now);
    return 200;
}

//  --------------------------------------------------------------------------------------------
//  Route preview: where a referral with these inputs would go now, before the agent sends it.
//  The answer comes from rf_route, rf_config_sla and the business clock, exactly as
//  rf_referral_requested routes a real referral (referrals.c); nothing is stored.

//  A language tag: 2..8 letters, then "-" and 1..8 letters or digits, at most RF_CODE_MAX.
static bool
s_language_valid (const char *s)
{
    size_t n = strlen (s), run = 0;
    if (n < 2 || n > RF_CODE_MAX)
        return false;
    bool first = true;
    for (size_t i = 0; i <= n; i++) {
        char c = s[i];
        if (c == '-' || c == 0) {
            if (run == 0 || run > 8 || (first && run < 2))
                return false;
            first = false;
            run = 0;
        }
        else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                 || (!first && c >= '0' && c <= '9'))
            run++;
        else
            return false;
    }
    return true;
}

static int
s_on_route_preview (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    referral_t *self = arg;
    rf_caller_t caller;
    int st = s_caller (req->body, &caller, err);
    if (st)
        return st;
    if (!caller.agent && !caller.supervisor && !caller.protection && !caller.admin)
        return gl_rep_error (err, 403, "forbidden", NULL,
                             "route previews are for agents, supervisors, protection staff and "
                             "admins");
    json_t *query = json_object_get (req->body, "query");
    if (query && !json_is_null (query) && !json_is_object (query))
        return gl_rep_error (err, 400, "invalid_field", "query", "query must be an object");
    static const char *const known[]
        = { "category", "priority", "consent", "language", "location", NULL };
    const char *key;
    json_t *v;
    json_object_foreach (query, key, v) {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp (key, known[i]) == 0;
        char name[GL_REQ_FIELD_MAX + 1];
        s_field_name (key, name, sizeof name);
        if (!ok)
            return gl_rep_error (err, 400, "unknown_field", name,
                                 "unknown query parameter: give category, priority, consent, "
                                 "language, location");
        if (!json_is_string (v) || strlen (json_string_value (v)) != json_string_length (v))
            return gl_rep_error (err, 400, "invalid_field", name, "%s must be a string", name);
    }
    const char *category = s_query (req->body, "category");
    const char *priority = s_query (req->body, "priority");
    const char *consent = s_query (req->body, "consent");
    const char *language = s_query (req->body, "language");
    const char *location = s_query (req->body, "location");
    if (!category)
        return gl_rep_error (err, 400, "missing_field", "category", "category is required");
    if (!rf_category_valid (category))
        return gl_rep_error (err, 400, "invalid_field", "category",
                             "category must be a category code (code or code.subcode)");
    if (!priority)
        return gl_rep_error (err, 400, "missing_field", "priority", "priority is required");
    int prio = rf_priority_parse (priority);
    if (prio < 0)
        return gl_rep_error (err, 400, "invalid_field", "priority",
                             "priority is low, normal, high or emergency");
    if (!consent)
        return gl_rep_error (err, 400, "missing_field", "consent", "consent is required");
    if (strcmp (consent, "true") != 0 && strcmp (consent, "false") != 0)
        return gl_rep_error (err, 400, "invalid_field", "consent", "consent is true or false");
    if (language && !s_language_valid (language))
        return gl_rep_error (err, 400, "invalid_field", "language",
                             "language must be a language tag (ar, fr, ar-SY)");
    if (location && !gl_event_location_valid (location))
        return gl_rep_error (err, 400, "invalid_field", "location",
                             "location must be a location code: 1..32 letters, digits, '_', "
                             "'.', '-'");
    const rf_config_t *cfg = self->cfg;
    int64_t now = gl_now_ms ();
    rf_route_t route;
    if (rf_route (cfg, category, location, language, (rf_priority_t) prio,
                  strcmp (consent, "true") == 0, &route) < 0) {
        //  The loader requires a default rule, so this is for a configuration without one.
        *reply = json_pack ("{s:n, s:s, s:I}", "unit", "reason", "no_rule", "now",
                            (json_int_t) now);
        return 200;
    }
    const rf_rule_t *rule = &cfg->rules[route.rule_index];
    const rf_unit_t *unit = rf_config_unit (cfg, route.unit);
    const rf_sla_t *sla = rf_config_sla (cfg, route.unit, (rf_priority_t) prio);
    bool wall = rf_config_sla_wall (cfg, route.unit, (rf_priority_t) prio);
    char target[RF_CODE_MAX + 16];
    snprintf (target, sizeof target, "%s%s", rule->partner[0] ? "partner:" : "",
              rule->partner[0] ? rule->partner : rule->unit);
    json_t *jrule = json_pack ("{s:i, s:b, s:s}", "line", route.rule_line, "default",
                               route.by_default, "target", target);
    if (!route.by_default) {
        json_object_set_new (jrule, "category", json_string (rule->category));
        json_object_set_new (jrule, "location", json_string (rule->location));
        json_object_set_new (jrule, "language", json_string (rule->language));
        json_object_set_new (jrule, "priority",
                             json_string (rule->priority < 0
                                              ? "*"
                                              : rf_priority_name ((rf_priority_t) rule->priority)));
    }
    //  A partner rule without consent routes to the partner's unit: say which partner would
    //  have had it, so the agent knows what the consent changes.
    const char *held = rule->partner[0] && !route.partner[0] ? rule->partner : NULL;
    *reply = json_pack (
        "{s:{s:s, s:b, s:b}, s:o, s:o, s:o, s:b, s:{s:s, s:I, s:I, s:b, s:I, s:I}, s:I}",
        "unit", "code", route.unit, "sensitive", unit && unit->sensitive, "always_open",
        unit && unit->always_open, "partner",
        route.partner[0] ? json_pack ("{s:s}", "code", route.partner) : json_null (),
        "partner_without_consent", held ? json_string (held) : json_null (), "rule", jrule,
        "sensitive", rf_config_sensitive (cfg, route.unit, category), "sla", "priority",
        rf_priority_name ((rf_priority_t) prio), "ack_ms", (json_int_t) sla->ack_ms,
        "resolve_ms", (json_int_t) sla->resolve_ms, "business_hours", !wall, "ack_due",
        (json_int_t) rf_config_business_add (cfg, wall, now, sla->ack_ms), "resolve_due",
        (json_int_t) rf_config_business_add (cfg, wall, now, sla->resolve_ms), "now",
        (json_int_t) now);
    return *reply ? 200 : gl_rep_error (err, 503, "unavailable", NULL, "out of memory; retry");
}

//  --------------------------------------------------------------------------------------------
//  Emergencies

static int
s_on_board (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    referral_t *self = arg;
    rf_caller_t caller;
    int st = s_caller (req->body, &caller, err);
    if (st)
        return st;
    if (!rf_emergency_visible (self, &caller))
        return gl_rep_error (err, 403, "forbidden", NULL,
                             "the board is for supervisors and the emergency unit");
    int limit = s_limit (self, req->body, err, &st);
    if (limit < 0)
        return st;
    const char *closed = s_query (req->body, "closed");
    if (closed && strcmp (closed, "true") != 0 && strcmp (closed, "false") != 0)
        return gl_rep_error (err, 400, "invalid_field", "closed", "closed is true or false");
    //  Unacknowledged first (oldest first: the longest wait on top), then acknowledged, then
    //  (when asked) the most recently closed.
    static const struct {
        const char *key, *cmd;
    } lists[] = { { RF_KEY_EMG_OPEN, "ZRANGE" }, { RF_KEY_EMG_ACKED, "ZRANGE" },
                  { RF_KEY_EMG_CLOSED, "ZREVRANGE" } };
    size_t nlists = closed && strcmp (closed, "true") == 0 ? 3 : 2;
    json_t *items = json_array ();
    int64_t unacked = 0;
    for (size_t l = 0; l < nlists && (int) json_array_size (items) < limit; l++) {
        redisReply *r = gl_redis_cmd (self->redis, "%s %s 0 %d", lists[l].cmd, lists[l].key,
                                      limit - 1);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject (r);
            json_decref (items);
            return gl_rep_error (err, 503, "unavailable", NULL, "storage unreachable; retry");
        }
        for (size_t i = 0; i < r->elements && (int) json_array_size (items) < limit; i++) {
            char key[S_KEY_MAX];
            rf_emergency_key (r->element[i]->str, key, sizeof key);
            bool failed;
            json_t *rec = rf_store_hgetall (self->redis, key, &failed);
            if (rec) {
                json_array_append_new (items, rf_emergency_view (rec));
                unacked += l == 0;
            }
            json_decref (rec);
        }
        freeReplyObject (r);
    }
    *reply = json_pack ("{s:o, s:I, s:I}", "emergencies", items, "unacknowledged",
                        (json_int_t) unacked, "now", (json_int_t) gl_now_ms ());
    return 200;
}

static int
s_emergency (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err,
             const char *action)
{
    referral_t *self = arg;
    rf_caller_t caller;
    int st = s_caller (req->body, &caller, err);
    if (st)
        return st;
    const json_t *body = s_body (req->body);
    if (!body)
        return gl_rep_error (err, 400, "invalid_field", "body", "the body must be an object");
    return rf_emergency_change (self, req, &caller, s_param (req->body, "id"), action, body, reply, err);
}

static int
s_on_emg_ack (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    return s_emergency (arg, req, reply, err, "ack");
}

static int
s_on_emg_close (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    return s_emergency (arg, req, reply, err, "close");
}

//  --------------------------------------------------------------------------------------------
//  The person export (intake's POST /api/v1/persons/export; docs/events.md
//  "referral.person_export")
//
//  Referral's records hold intake's contact ids, never a case number, individual number or
//  phone: referral cannot find a person by an identifier on its own. intake finds the person's
//  contacts and sends their ids (contact_ids, at most S_EXPORT_IDS); referral answers every
//  referral and emergency raised from one of those contacts, with the referral's history,
//  comments and consent record. The identifier is checked (exactly one) and named by kind in
//  the audit log line, never by value. The open and closed indexes (which together hold every
//  referral until the retention purge deletes it) and the three emergency indexes are scanned
//  in one script, bounded by GL_REFERRAL_EXPORT_SCAN_MAX records looked at.

#define S_EXPORT_IDS  1000          //  contact ids in one request
#define S_EXPORT_MAX  1000          //  records of one kind in an answer

//  KEYS: none. ARGV: scan cap, referral key prefix, emergency key prefix, the index count n,
//  n index keys (referrals first, then "|", then emergencies), contact ids...
//  Returns {scanned, cap reached 0/1, {referral ids}, {emergency ids}}.
static gl_redis_script_t s_export_lua = { .source =
    "local cap, rp, ep, n = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])\n"
    "local want = {}\n"
    "for i = 5 + n, #ARGV do want[ARGV[i]] = true end\n"
    "local scanned, full, out, emg = 0, 0, {{}, {}}, false\n"
    "for i = 5, 4 + n do\n"
    "  local key = ARGV[i]\n"
    "  if key == '|' then emg = true\n"
    "  elseif scanned >= cap then full = 1\n"
    "  else\n"
    "    local ids = redis.call('ZRANGE', key, 0, cap - scanned - 1)\n"
    "    if #ids >= cap - scanned and redis.call('ZCARD', key) > #ids then full = 1 end\n"
    "    local list = emg and out[2] or out[1]\n"
    "    for _, id in ipairs(ids) do\n"
    "      scanned = scanned + 1\n"
    "      local c = redis.call('HGET', (emg and ep or rp) .. id, 'contact_id')\n"
    "      if c and want[c] then list[#list + 1] = id end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {scanned, full, out[1], out[2]}\n" };

static gl_metric_t *s_m_exports;

//  Exactly one identifier (its name in *kind), and the contact ids: 0 or a 400 naming the field.
static int
s_export_body (const json_t *body, const char **kind, json_t **ids, gl_rep_error_t *err)
{
    static const char *const names[] = { "case_number", "individual_number", "phone", NULL };
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *) body, key, v) {
        bool ok = strcmp (key, "caller") == 0 || strcmp (key, "contact_ids") == 0;
        for (size_t i = 0; names[i] && !ok; i++)
            ok = strcmp (key, names[i]) == 0;
        if (!ok) {
            char name[GL_REQ_FIELD_MAX + 1];        //  outside input: printable and short
            s_field_name (key, name, sizeof name);
            return gl_rep_error (err, 400, "unknown_field", name, "unknown field");
        }
    }
    *kind = NULL;
    for (size_t i = 0; names[i]; i++) {
        v = json_object_get (body, names[i]);
        if (!v || json_is_null (v))
            continue;
        const char *s = json_string_value (v);
        bool ok = s && *s && json_string_length (v) <= 32 && strlen (s) == json_string_length (v);
        for (const char *c = s; ok && *c; c++)
            ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
                 || strchr (" -/.+", *c);
        if (!ok)
            return gl_rep_error (err, 400, "invalid_field", names[i],
                                 "%s must be a normalised case number, individual number or "
                                 "phone (1..32 characters)",
                                 names[i]);
        if (*kind)
            return gl_rep_error (err, 400, "invalid_field", names[i],
                                 "give exactly one of case_number, individual_number and phone");
        *kind = names[i];
    }
    if (!*kind)
        return gl_rep_error (err, 400, "missing_field", "case_number",
                             "give one of case_number, individual_number and phone");
    *ids = json_object_get (body, "contact_ids");
    if (!*ids)
        return gl_rep_error (err, 400, "missing_field", "contact_ids",
                             "contact_ids (the person's contacts at intake) is required");
    if (!json_is_array (*ids) || json_array_size (*ids) > S_EXPORT_IDS)
        return gl_rep_error (err, 400, "invalid_field", "contact_ids",
                             "contact_ids must be an array of at most %d ids", S_EXPORT_IDS);
    size_t i;
    json_array_foreach (*ids, i, v)
        if (!gl_id_valid (json_string_value (v)))
            return gl_rep_error (err, 400, "invalid_field", "contact_ids",
                                 "contact_ids must hold ids (32 hex digits)");
    return 0;
}

static int
s_on_person_export (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    referral_t *self = arg;
    if (!s_m_exports)
        s_m_exports = gl_metrics_counter ("greenline_referral_person_exports_total",
                                          "Person exports answered (referral.person_export)",
                                          NULL);
    rf_caller_t caller;
    int st = s_caller (req->body, &caller, err);
    if (st)
        return st;
    if (!caller.protection && !caller.admin)
        return gl_rep_error (err, 403, "forbidden", NULL,
                             "person exports are for protection staff and admins");
    const char *kind = NULL;
    json_t *ids = NULL;
    if ((st = s_export_body (req->body, &kind, &ids, err)))
        return st;
    int64_t cap = gl_config_int (gl_service_config (self->svc), "GL_REFERRAL_EXPORT_SCAN_MAX",
                                 200000, 100, 10000000);
    size_t nids = json_array_size (ids);
    const char **argv = calloc (10 + nids, sizeof *argv);
    if (!argv)
        return gl_rep_error (err, 503, "unavailable", NULL, "out of memory; retry");
    char capbuf[24];
    snprintf (capbuf, sizeof capbuf, "%" PRId64, cap);
    int argc = 0;
    argv[argc++] = capbuf;
    argv[argc++] = RF_PREFIX "ref:";
    argv[argc++] = RF_PREFIX "emg:";
    argv[argc++] = "6";
    argv[argc++] = RF_KEY_OPEN;
    argv[argc++] = RF_KEY_CLOSED;
    argv[argc++] = "|";
    argv[argc++] = RF_KEY_EMG_OPEN;
    argv[argc++] = RF_KEY_EMG_ACKED;
    argv[argc++] = RF_KEY_EMG_CLOSED;
    for (size_t i = 0; i < nids; i++)
        argv[argc++] = json_string_value (json_array_get (ids, i));
    redisReply *r = gl_redis_eval (self->redis, &s_export_lua, 0, argc, argv, NULL);
    free (argv);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4
        || r->element[2]->type != REDIS_REPLY_ARRAY || r->element[3]->type != REDIS_REPLY_ARRAY) {
        if (r)
            freeReplyObject (r);
        return gl_rep_error (err, 503, "unavailable", NULL, "storage unreachable; retry");
    }
    bool partial = r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer != 0;
    long long scanned = r->element[0]->type == REDIS_REPLY_INTEGER ? r->element[0]->integer : 0;
    json_t *referrals = json_array (), *emergencies = json_array (), *consents = json_array ();
    bool failed = false;
    //  Referrals: the record, its history and comments; its consent as a record of its own.
    redisReply *refs = r->element[2];
    for (size_t i = 0; i < refs->elements && !failed; i++) {
        if (json_array_size (referrals) >= S_EXPORT_MAX) {
            partial = true;
            break;
        }
        const char *id = refs->element[i]->str;
        json_t *rec = s_load (self, id, &failed);
        if (!rec)
            continue;
        char key[S_KEY_MAX];
        json_t *v = rf_referral_view (rec);
        snprintf (key, sizeof key, RF_PREFIX "ref:%s:history", id);
        json_object_set_new (v, "history", s_list_key (self, key, 1000));
        snprintf (key, sizeof key, RF_PREFIX "ref:%s:comments", id);
        json_object_set_new (v, "comments", s_list_key (self, key, self->comments_max));
        json_array_append_new (referrals, v);
        json_array_append_new (
            consents, json_pack ("{s:s, s:s, s:b, s:I}", "referral_id", id, "contact_id",
                                 rf_str (rec, "contact_id"), "consent", rf_bool (rec, "consent"),
                                 "at", (json_int_t) rf_int (rec, "consent_at")));
        json_decref (rec);
    }
    redisReply *emgs = r->element[3];
    for (size_t i = 0; i < emgs->elements && !failed; i++) {
        if (json_array_size (emergencies) >= S_EXPORT_MAX) {
            partial = true;
            break;
        }
        char key[S_KEY_MAX];
        rf_emergency_key (emgs->element[i]->str, key, sizeof key);
        json_t *rec = rf_store_hgetall (self->redis, key, &failed);
        if (rec)
            json_array_append_new (emergencies, rf_emergency_view (rec));
        json_decref (rec);
    }
    freeReplyObject (r);
    if (failed) {
        json_decref (referrals);
        json_decref (emergencies);
        json_decref (consents);
        return gl_rep_error (err, 503, "unavailable", NULL, "storage unreachable; retry");
    }
    gl_metric_inc (s_m_exports, 1);
    gl_info ("referral: person export by %s (%s, %zu contacts): %zu referrals, %zu emergencies, "
             "%lld records looked at%s",
             caller.user_id, kind, nids, json_array_size (referrals),
             json_array_size (emergencies), scanned, partial ? ", partial" : "");
    *reply = json_pack ("{s:{s:o, s:o, s:o}, s:b, s:I}", "records", "referrals", referrals,
                        "emergencies", emergencies, "consents", consents, "complete", !partial,
                        "scanned", (json_int_t) scanned);
    return 200;
}

//  --------------------------------------------------------------------------------------------
//  notifier's question

static int
s_on_partner_contact (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    referral_t *self = arg;
    json_t *c = json_object_get (req->body, "code");
    if (!c)
        return gl_rep_error (err, 400, "missing_field", "code", "code is required");
    const char *code = json_string_value (c);
    if (!rf_code_valid (code))
        return gl_rep_error (err, 400, "invalid_field", "code", "code must be a partner code");
    const rf_partner_t *p = rf_config_partner (self->cfg, code);
    if (!p)
        return gl_rep_error (err, 404, "not_found", "code", "no such partner");
    *reply = json_pack ("{s:s, s:o, s:o, s:o}", "code", p->code, "email",
                        p->email[0] ? json_string (p->email) : json_null (), "webhook_url",
                        p->webhook[0] ? json_string (p->webhook) : json_null (), "language",
                        p->language[0] ? json_string (p->language) : json_null ());
    return 200;
}

int
rf_requests_register (referral_t *self)
{
    static const struct {
        const char *op;
        gl_rep_fn *fn;
    } ops[] = {
        { "referral.inbox", s_on_inbox },
        { "referral.overdue", s_on_overdue },
        { "referral.lifecycle", s_on_lifecycle },
        { "referral.units", s_on_units },
        { "referral.route_preview", s_on_route_preview },
        { "referral.ack", s_on_ack },
        { "referral.start", s_on_start },
        { "referral.close", s_on_close },
        { "referral.reject", s_on_reject },
        { "referral.reroute", s_on_reroute },
        { "referral.priority", s_on_priority },
        { "referral.comment", s_on_comment },
        { "referral.pause", s_on_pause },
        { "referral.resume", s_on_resume },
        { "referral.partner_ack", s_on_partner_ack },
        { "referral.partner_contact", s_on_partner_contact },
        { "referral.emergency_board", s_on_board },
        { "referral.emergency_ack", s_on_emg_ack },
        { "referral.emergency_close", s_on_emg_close },
        { "referral.person_export", s_on_person_export },
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (gl_service_on (self->svc, ops[i].op, ops[i].fn, self) < 0)
            return -1;
    return 0;
}
