/*  agents — see agents.h. The model: the state script, the agent's view, the timeline with the
    time spent in each state, and agent.state_changed. api_agents.c holds the HTTP side and the
    shift plan.
*/
#include "agents.h"
#include "auth.h"
#include "calls.h"
#include "contacts.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const char *const agents_states[]
    = { "available", "on_call", "wrap_up", "break", "offline", NULL };

//  AGENTS_SET. params: agent, to, reason ("" for none), by, force. An agent holding a call
//  cannot change state by hand; force (a supervisor's force-offline) always moves them to
//  offline and leaves the call with them. A change to the same state and reason is no change.
//  Answers {agent: the hash, changed: bool}; the change emits agent.state_changed.
static gl_redis_script_t s_set = {
    .source = AGENTS_LUA_PRELUDE
    "local ak = P .. 'agent:' .. p.agent\n"
    "local cur = redis.call('HMGET', ak, 'state', 'reason', 'call')\n"
    "local from = cur[1] or 'offline'\n"
    "local call = cur[3] or ''\n"
    "local changed = false\n"
    "if p.force then\n"
    "  if from ~= 'offline' then\n"
    "    agent_move(p.agent, 'offline', p.reason, p.by, call)\n"
    "    changed = true\n"
    "  end\n"
    "else\n"
    "  if call ~= '' then\n"
    "    return fail('invalid_transition', 'the agent is ' .. from .. ' with call ' .. call\n"
    "      .. ': end or transfer the call first', 'state')\n"
    "  end\n"
    "  if from ~= p.to or (cur[2] or '') ~= p.reason then\n"
    "    agent_move(p.agent, p.to, p.reason, p.by, '')\n"
    "    changed = true\n"
    "  end\n"
    "end\n"
    "return done({agent = hgetall(ak) or {}, changed = changed})\n"
};

int
agents_set_state (intake_t *intake, const char *agent_id, const char *to, const char *reason,
                  const char *by, bool force, json_t **out)
{
    json_t *params = json_pack ("{s:s, s:s, s:s, s:s, s:b}", "agent", agent_id, "to", to,
                                "reason", reason ? reason : "", "by", by, "force", force);
    if (!params)
        return -1;
    int rc = calls_eval (intake, &s_set, params, out);
    json_decref (params);
    return rc;
}

int
agents_set_state_async (intake_t *intake, const char *agent_id, const char *to,
                        const char *reason, const char *by, bool force, calls_done_fn *done,
                        void *arg)
{
    json_t *params = json_pack ("{s:s, s:s, s:s, s:s, s:b}", "agent", agent_id, "to", to,
                                "reason", reason ? reason : "", "by", by, "force", force);
    if (!params)
        return -1;
    int rc = calls_eval_async (intake, &s_set, params, done, arg);
    json_decref (params);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  Views

static json_t *
s_str_or_null (const char *s)
{
    return s && *s ? json_string (s) : json_null ();
}

static json_t *
s_languages (const auth_user_t *user)
{
    json_t *array = json_array ();
    for (size_t i = 0; user && i < user->language_count; i++)
        json_array_append_new (array, json_string (user->languages[i]));
    return array;
}

json_t *
agents_view (const char *agent_id, const char *state, const char *since, const char *reason,
             const char *by, const char *call, const auth_user_t *user)
{
    long long since_ms = since && *since ? strtoll (since, NULL, 10) : 0;
    return json_pack ("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "agent_id", agent_id, "state",
                      state && *state ? state : "offline", "since",
                      since_ms > 0 ? json_integer (since_ms) : json_null (), "reason_code",
                      s_str_or_null (reason), "changed_by", s_str_or_null (by), "call_id",
                      s_str_or_null (call), "languages", s_languages (user));
}

json_t *
agents_view_from_hash (const char *agent_id, const json_t *hash, const auth_user_t *user)
{
#define S_F(name) json_string_value (json_object_get (hash, name))
    return agents_view (agent_id, S_F ("state"), S_F ("since"), S_F ("reason"), S_F ("by"),
                        S_F ("call"), user);
#undef S_F
}

int
agents_read (intake_t *intake, const char *agent_id, const auth_user_t *user, json_t **out)
{
    *out = NULL;
    redisReply *r = gl_redis_cmd (intake->redis, "HMGET " CALLS_PREFIX "agent:%s state since "
                                  "reason by call", agent_id);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
        freeReplyObject (r);
        return -1;
    }
    const char *f[5];
    for (size_t i = 0; i < 5; i++)
        f[i] = r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : NULL;
    *out = agents_view (agent_id, f[0], f[1], f[2], f[3], f[4], user);
    freeReplyObject (r);
    return *out ? 0 : -1;
}

//  --------------------------------------------------------------------------------------------
//  The shift plan

//  AGENTS_PLAN. params: date, plan (the JSON text stored), entry (the outbox entry of
//  shift.planned, built in C: cjson would write an empty list of shifts as {}), ev_id.
static gl_redis_script_t s_plan = {
    .source = AGENTS_LUA_PRELUDE
    "redis.call('SET', P .. 'shift:' .. p.date, p.plan)\n"
    "redis.call('HSET', P .. 'outbox', p.ev_id, p.entry)\n"
    "return done({})\n"
};

int
agents_plan_store (intake_t *intake, const char *date, const json_t *plan, const char *by)
{
    json_t *shifts = json_object_get (plan, "shifts");
    gl_event_t *ev = gl_event_new ("shift.planned");
    if (!ev)
        return -1;
    json_object_set_new (ev->data, "date", json_string (date));
    json_object_set (ev->data, "shifts", shifts);
    json_object_set_new (ev->data, "shift_count", json_integer ((json_int_t) json_array_size (shifts)));
    json_object_set_new (ev->data, "planned_by", json_string (by));
    char *entry = contacts_outbox_entry (intake, ev, 0);
    char *text = json_dumps (plan, JSON_COMPACT);
    json_t *params = entry && text ? json_pack ("{s:s, s:s, s:s, s:s}", "date", date, "plan",
                                                text, "entry", entry, "ev_id", ev->id)
                                   : NULL;
    free (entry);
    free (text);
    json_t *out = NULL;
    int rc = params ? calls_eval (intake, &s_plan, params, &out) : -1;
    json_decref (params);
    json_decref (out);
    if (rc == 0)
        contacts_outbox_deliver (intake, ev, 0);
    gl_event_destroy (&ev);
    return rc;
}

//  --------------------------------------------------------------------------------------------
//  The timeline: transitions in [from, to) and the time spent in each state over that period
//  (up to now when to is later). Occupancy, as call centres count it: the share of time on
//  calls and in wrap-up among the time available, on calls and in wrap-up.

typedef struct {
    long long n;
    int64_t at;
    char from[16];
    char to[16];
    char reason[CALLS_CODE_MAX + 1];
} s_transition_t;

//  "<n>|<at>|<from>|<to>|<reason>"; 0 or -1 when malformed.
static int
s_transition_parse (const char *s, s_transition_t *t)
{
    memset (t, 0, sizeof *t);
    char from[64], to[64], reason[64] = "";
    long long at;
    int consumed = 0;
    if (sscanf (s, "%lld|%lld|%63[a-z_]|%63[a-z_]|%n", &t->n, &at, from, to, &consumed) != 4
        || consumed == 0)
        return -1;
    snprintf (reason, sizeof reason, "%s", s + consumed);
    if (strlen (from) >= sizeof t->from || strlen (to) >= sizeof t->to
        || strlen (reason) > CALLS_CODE_MAX)
        return -1;
    t->at = at;
    strcpy (t->from, from);
    strcpy (t->to, to);
    strcpy (t->reason, reason);
    return 0;
}

static int
s_state_index (const char *state)
{
    for (int i = 0; agents_states[i]; i++)
        if (strcmp (agents_states[i], state) == 0)
            return i;
    return 4;       //  offline
}

//  0 with *out, 1 when the range holds more than AGENTS_TIMELINE_ITEMS_MAX transitions, -1 when
//  Redis cannot be reached.
int
agents_timeline (intake_t *intake, const char *agent_id, int64_t from, int64_t to, json_t **out)
{
    *out = NULL;
    char lo[24], hi[24], before[24];
    snprintf (lo, sizeof lo, "%" PRId64, from);
    snprintf (hi, sizeof hi, "(%" PRId64, to);
    snprintf (before, sizeof before, "(%" PRId64, from);
    char key[128];
    snprintf (key, sizeof key, CALLS_PREFIX "agent:%s:tl", agent_id);
    redisReply *prev = gl_redis_cmd (intake->redis, "ZREVRANGEBYSCORE %s %s -inf LIMIT 0 1", key,
                                     before);
    redisReply *r = prev ? gl_redis_cmd (intake->redis, "ZRANGEBYSCORE %s %s %s LIMIT 0 %d", key,
                                         lo, hi, AGENTS_TIMELINE_ITEMS_MAX + 1)
                         : NULL;
    int rc = -1;
    if (!r || prev->type != REDIS_REPLY_ARRAY || r->type != REDIS_REPLY_ARRAY)
        goto done;
    if (r->elements > AGENTS_TIMELINE_ITEMS_MAX) {
        rc = 1;
        goto done;
    }
    s_transition_t t;
    int state = 4;
    if (prev->elements == 1 && s_transition_parse (prev->element[0]->str, &t) == 0)
        state = s_state_index (t.to);
    int64_t end = gl_now_ms () < to ? gl_now_ms () : to;
    int64_t cursor = from;
    int64_t spent[5] = { 0 };
    json_t *items = json_array ();
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING
            || s_transition_parse (r->element[i]->str, &t) != 0) {
            gl_warn ("agents: a malformed timeline entry of agent %s skipped", agent_id);
            continue;
        }
        int64_t at = t.at < end ? t.at : end;
        if (at > cursor) {
            spent[state] += at - cursor;
            cursor = at;
        }
        state = s_state_index (t.to);
        json_array_append_new (items, json_pack ("{s:I, s:s, s:s, s:o}", "at", (json_int_t) t.at,
                                                 "from", t.from, "to", t.to, "reason_code",
                                                 s_str_or_null (t.reason)));
    }
    if (end > cursor)
        spent[state] += end - cursor;
    json_t *time_ms = json_object ();
    for (int i = 0; i < 5; i++)
        json_object_set_new (time_ms, agents_states[i], json_integer (spent[i]));
    int64_t busy = spent[1] + spent[2];
    int64_t staffed = busy + spent[0];
    *out = json_pack ("{s:s, s:I, s:I, s:o, s:o, s:o}", "agent_id", agent_id, "from",
                      (json_int_t) from, "to", (json_int_t) to, "transitions", items, "time_ms",
                      time_ms, "occupancy",
                      staffed > 0 ? json_real ((double) busy / (double) staffed) : json_null ());
    rc = *out ? 0 : -1;
done:
    if (prev)
        freeReplyObject (prev);
    if (r)
        freeReplyObject (r);
    return rc;
}
