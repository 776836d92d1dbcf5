/*  calls — see calls.h. The model of the live queue: its Lua scripts (every check and change of
    a call, and its events, in one atomic step), and what agents.c and api_calls.c share: the
    settings, the script runner and the delivery of the events the scripts wrote to the outbox,
    validators, and the mapping of script errors to HTTP answers. api_calls.c validates
    requests and runs these scripts.
*/
#include "calls.h"
#include "agents.h"
#include "intake.h"
#include "aredis.h"
#include "contacts.h"
#include "gl/gl_outbox.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_PRIORITY_OPTIONS_MAX 16

struct _calls_t {
    intake_t *intake;
    int64_t pbx_skew_ms;
    int64_t queue_max;
    int64_t retain_ms;
    int64_t timeline_max;
    size_t priority_count;
    char priority_options[S_PRIORITY_OPTIONS_MAX][CALLS_CODE_MAX + 1];
};

//  --------------------------------------------------------------------------------------------
//  Validators

static bool
s_in (char c, const char *set)
{
    return c && strchr (set, c) != NULL;
}

#define S_LOWER "abcdefghijklmnopqrstuvwxyz"
#define S_UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define S_DIGIT "0123456789"

bool
calls_lang_valid (const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    while (s_in (s[n], S_LOWER))
        n++;
    if (n < 2 || n > 3)
        return false;
    if (s[n] == 0)
        return true;
    if (s[n] != '-')
        return false;
    const char *sub = s + n + 1;
    size_t m = 0;
    while (s_in (sub[m], S_LOWER S_UPPER S_DIGIT))
        m++;
    return m >= 2 && m <= 8 && sub[m] == 0;
}

bool
calls_code_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n > CALLS_CODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!s_in (s[i], S_LOWER S_DIGIT "_"))
            return false;
    return true;
}

bool
calls_line_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n > CALLS_CODE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!s_in (s[i], S_LOWER S_UPPER S_DIGIT "_.+-"))
            return false;
    return true;
}

//  --------------------------------------------------------------------------------------------
//  Events

//  The event an outbox entry (a script's emit) holds; NULL when malformed (a bug: logged).
static gl_event_t *
s_entry_event (const char *text)
{
    json_t *entry = json_loads (text, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value (json_object_get (entry, "type"));
    const char *id = json_string_value (json_object_get (entry, "id"));
    const char *corr = json_string_value (json_object_get (entry, "corr"));
    json_t *ts = json_object_get (entry, "ts"), *data = json_object_get (entry, "data");
    gl_event_t *ev = NULL;
    if (type && id && gl_id_valid (id) && corr && strlen (corr) <= GL_EVENT_NAME_MAX
        && json_is_integer (ts) && json_is_object (data))
        ev = gl_event_new (type);
    if (ev) {
        memcpy (ev->id, id, GL_ID_LEN + 1);
        ev->ts = (int64_t) json_integer_value (ts);
        gl_event_set_corr (ev, corr);
        json_decref (ev->data);
        ev->data = json_incref (data);
    }
    else
        gl_error ("calls: a script emitted a malformed event; the outbox sweep will set it aside");
    json_decref (entry);
    return ev;
}

//  Have the events a script emitted (their outbox entries written by it) published, in order,
//  with the other requests' events of this pass of the loop (contacts_outbox_deliver: one
//  append, the entries cleared after). What cannot be published stays in the outbox, which the
//  sweep delivers.
static void
s_deliver (intake_t *intake, const json_t *events)
{
    size_t n = 0;
    size_t i;
    json_t *text;
    json_array_foreach (events, i, text) {
        gl_event_t *ev = n < AGENTS_EVENTS_MAX ? s_entry_event (json_string_value (text)) : NULL;
        if (ev) {
            contacts_outbox_deliver (intake, ev, 0);
            gl_event_destroy (&ev);
            n++;
        }
    }
}

//  --------------------------------------------------------------------------------------------
//  Scripts

static gl_redis_script_t *s_script_of (calls_op_t op);

//  A script call's arguments (calls_eval), with the event ids it may use.
typedef struct {
    char *text;                         //  params with ev_ids, ev_ts, ev_src, ev_seq
    char now[24], tlmax[24], retain[24];
    const char *argv[5];
    char ev_ids[AGENTS_EVENTS_MAX][GL_ID_LEN + 1];
} s_eval_args_t;

static int
s_eval_args (intake_t *intake, const json_t *params, s_eval_args_t *a)
{
    calls_t *self = intake->calls;
    memset (a, 0, sizeof *a);
    //  What the script needs to write its events' outbox entries: fresh ids, the envelope's
    //  time, and where in our log the sweep should start looking for them.
    json_t *all = json_copy ((json_t *) params);
    json_t *ids = json_array ();
    for (int i = 0; i < AGENTS_EVENTS_MAX; i++) {
        gl_id_new (a->ev_ids[i]);
        json_array_append_new (ids, json_string (a->ev_ids[i]));
    }
    json_object_set_new (all, "ev_ids", ids);
    json_object_set_new (all, "ev_ts", json_integer (gl_now_ms ()));
    json_object_set_new (all, "ev_src", json_string (gl_pub_src (intake->pub)));
    json_object_set_new (all, "ev_seq", json_integer ((json_int_t) gl_pub_seq (intake->pub)));
    a->text = json_dumps (all, JSON_COMPACT);
    json_decref (all);
    if (!a->text)
        return -1;
    snprintf (a->now, sizeof a->now, "%" PRId64, gl_now_ms ());
    snprintf (a->tlmax, sizeof a->tlmax, "%" PRId64, self->timeline_max);
    snprintf (a->retain, sizeof a->retain, "%" PRId64, self->retain_ms);
    const char *argv[] = { CALLS_PREFIX, a->now, a->tlmax, a->retain, a->text };
    memcpy (a->argv, argv, sizeof argv);
    return 0;
}

//  The script's answer r as calls_eval returns it; its events delivered.
static int
s_eval_result (intake_t *intake, const redisReply *r, json_t **out)
{
    *out = NULL;
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_STRING) {
        //  A script error is our bug (the message names the line), never outside input.
        gl_error ("calls: script failed: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply type");
        return -1;
    }
    json_error_t jerr;
    *out = json_loadb (r->str, r->len, 0, &jerr);
    if (!json_is_object (*out)) {
        gl_error ("calls: script answered malformed JSON: %s", jerr.text);
        json_decref (*out);
        *out = NULL;
        return -1;
    }
    //  cjson writes an empty array as {}: no events then.
    json_t *events = json_object_get (*out, "events");
    if (json_is_array (events))
        s_deliver (intake, events);
    json_object_del (*out, "events");
    return 0;
}

int
calls_eval (intake_t *intake, gl_redis_script_t *script, const json_t *params, json_t **out)
{
    assert (intake && intake->calls && script && json_is_object (params) && out);
    *out = NULL;
    s_eval_args_t a;
    if (s_eval_args (intake, params, &a) != 0)
        return -1;
    redisReply *r = gl_redis_eval (intake->redis, script, 1, 5, a.argv, NULL);
    free (a.text);
    int rc = s_eval_result (intake, r, out);
    if (r)
        freeReplyObject (r);
    return rc;
}

//  One asynchronous script call in flight.
typedef struct {
    intake_t *intake;
    gl_redis_script_t *script;
    s_eval_args_t args;
    calls_done_fn *done;
    void *arg;
} s_pending_t;

static void
s_on_evaluated (redisReply *reply, void *arg)
{
    s_pending_t *p = arg;
    intake_t *intake = p->intake;
    redisReply *retry;
    reply = aredis_settle (intake->aredis, reply, p->script, 1, 5, p->args.argv, NULL, &retry);
    json_t *out = NULL;
    int rc = s_eval_result (intake, reply, &out);
    if (retry)
        freeReplyObject (retry);
    for (int i = 0; i < AGENTS_EVENTS_MAX; i++)
        gl_outbox_release (intake->outbox, p->args.ev_ids[i]);
    p->done (intake, rc, out, p->arg);
    free (p->args.text);
    free (p);
}

int
calls_run_async (intake_t *intake, calls_op_t op, const json_t *params, calls_done_fn *done,
                 void *arg)
{
    assert (op >= 0 && op < CALLS_OP_COUNT);
    return calls_eval_async (intake, s_script_of (op), params, done, arg);
}

int
calls_eval_async (intake_t *intake, gl_redis_script_t *script, const json_t *params,
                  calls_done_fn *done, void *arg)
{
    assert (intake && intake->calls && script && json_is_object (params) && done);
    if (!intake->aredis || !aredis_ready (intake->aredis))
        return -1;
    s_pending_t *p = calloc (1, sizeof *p);
    if (!p)
        return -1;
    p->intake = intake;
    p->script = script;
    p->done = done;
    p->arg = arg;
    if (s_eval_args (intake, params, &p->args) != 0) {
        free (p);
        return -1;
    }
    int held = 0;
    while (held < AGENTS_EVENTS_MAX && gl_outbox_hold (intake->outbox, p->args.ev_ids[held]) == 0)
        held++;
    int rc = held == AGENTS_EVENTS_MAX
                 ? aredis_eval (intake->aredis, p->script, 1, 5, p->args.argv, NULL,
                                s_on_evaluated, p)
                 : -1;
    if (rc != 0) {
        for (int i = 0; i < held; i++)
            gl_outbox_release (intake->outbox, p->args.ev_ids[i]);
        free (p->args.text);
        free (p);
    }
    return rc;
}

int
calls_reply_script_error (http_req_t *req, const json_t *reply)
{
    const char *code = json_string_value (json_object_get (reply, "error"));
    const char *message = json_string_value (json_object_get (reply, "message"));
    const char *field = json_string_value (json_object_get (reply, "field"));
    if (!code || !message)
        return http_reply_error (req, 500, "internal", "a script answered an unknown error",
                                 NULL);
    static const char *const conflicts[] = { "invalid_transition", "agent_busy",
                                             "agent_not_available", "out_of_order",
                                             "clock_mismatch", "queue_full", NULL };
    int status = 400;
    if (strcmp (code, "not_found") == 0)
        status = 404;
    else if (strcmp (code, "forbidden") == 0)
        status = 403;
    for (size_t i = 0; conflicts[i]; i++)
        if (strcmp (code, conflicts[i]) == 0)
            status = 409;
    http_reply_error (req, status, code, message, field && *field ? field : NULL);
    return -1;
}

//  --------------------------------------------------------------------------------------------
//  Life

int64_t
calls_pbx_skew_ms (calls_t *self)
{
    return self->pbx_skew_ms;
}

bool
calls_option_is_priority (calls_t *self, const char *ivr_option)
{
    for (size_t i = 0; ivr_option && i < self->priority_count; i++)
        if (strcmp (self->priority_options[i], ivr_option) == 0)
            return true;
    return false;
}

//  GL_INTAKE_PRIORITY_OPTIONS: comma-separated codes.
static int
s_priority_options (calls_t *self, const char *list, char *err, size_t errlen)
{
    const char *p = list;
    while (*p) {
        const char *comma = strchr (p, ',');
        size_t len = comma ? (size_t) (comma - p) : strlen (p);
        char code[CALLS_CODE_MAX + 2];
        if (len > CALLS_CODE_MAX || self->priority_count == S_PRIORITY_OPTIONS_MAX) {
            snprintf (err, errlen, "GL_INTAKE_PRIORITY_OPTIONS: at most %d codes of at most %d "
                      "characters", S_PRIORITY_OPTIONS_MAX, CALLS_CODE_MAX);
            return -1;
        }
        memcpy (code, p, len);
        code[len] = 0;
        if (!calls_code_valid (code)) {
            snprintf (err, errlen, "GL_INTAKE_PRIORITY_OPTIONS: codes are [a-z0-9_], "
                      "comma-separated");
            return -1;
        }
        memcpy (self->priority_options[self->priority_count++], code, len + 1);
        p += len + (comma ? 1 : 0);
        if (comma && !*p) {
            snprintf (err, errlen, "GL_INTAKE_PRIORITY_OPTIONS: a trailing comma");
            return -1;
        }
    }
    return 0;
}

calls_t *
calls_new (intake_t *intake, char *err, size_t errlen)
{
    assert (intake && intake->config);
    calls_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    self->intake = intake;
    gl_config_t *config = intake->config;
    self->pbx_skew_ms = gl_config_int (config, "GL_INTAKE_PBX_SKEW_MS", 30000, 0, 86400000);
    self->queue_max = gl_config_int (config, "GL_INTAKE_QUEUE_MAX", 1000, 1, 100000);
    self->retain_ms
        = gl_config_int (config, "GL_INTAKE_CALL_RETAIN_MS", 604800000, 60000, 31536000000LL);
    self->timeline_max
        = gl_config_int (config, "GL_INTAKE_AGENT_TIMELINE_MAX", 20000, 100, 1000000);
    if (gl_config_error (config)) {
        snprintf (err, errlen, "%s", gl_config_error (config));
        calls_destroy (&self);
        return NULL;
    }
    const char *options = gl_config_str (config, "GL_INTAKE_PRIORITY_OPTIONS", "emergency");
    if (s_priority_options (self, options, err, errlen) != 0) {
        calls_destroy (&self);
        return NULL;
    }
    return self;
}

void
calls_destroy (calls_t **self_p)
{
    calls_t *self = *self_p;
    if (!self)
        return;
    free (self);
    *self_p = NULL;
}

int64_t
calls_queue_max (calls_t *self)
{
    return self->queue_max;
}

//  --------------------------------------------------------------------------------------------
//  The queue's scripts. Each starts with AGENTS_LUA_PRELUDE (agents.h) and S_CALL_LUA (below),
//  checks everything first (a refusal changes nothing), then changes the call, emits its event,
//  and moves its agents (which emits theirs). Times: `now` is intake's business clock; a call's
//  own times (offered_at, answered_at, last_at ...) are on the call's clock, the PBX's when its
//  offer carried pbx_ts, else intake's, and every later event of the call must use the same
//  clock, never earlier than the call's previous event.

#define S_CALL_LUA                                                                             \
    "local function call_load(id) return hgetall(P .. 'call:' .. id) end\n"                    \
    "local function call_time(c)\n"                                                            \
    "  local last = tonumber(c.last_at)\n"                                                     \
    "  if c.clock == 'pbx' then\n"                                                             \
    "    if not p.pbx_ts then\n"                                                               \
    "      return nil, fail('clock_mismatch', 'this call is timed by the PBX (its offer '\n"     \
    "        .. 'carried pbx_ts): every event of it must carry pbx_ts', 'pbx_ts')\n"            \
    "    end\n"                                                                                \
    "    if p.pbx_ts < last then\n"                                                            \
    "      return nil, fail('out_of_order', 'pbx_ts ' .. num(p.pbx_ts) .. ' is before the '\n"  \
    "        .. 'previous event of this call (' .. num(last) .. ')', 'pbx_ts')\n"               \
    "    end\n"                                                                                \
    "    return p.pbx_ts\n"                                                                    \
    "  end\n"                                                                                  \
    "  if p.pbx_ts then\n"                                                                     \
    "    return nil, fail('clock_mismatch', \"this call is timed by intake's clock (its \"\n"   \
    "      .. 'offer carried no pbx_ts): its events cannot carry pbx_ts', 'pbx_ts')\n"         \
    "  end\n"                                                                                  \
    "  if now > last then return now end\n"                                                    \
    "  return last\n"                                                                          \
    "end\n"                                                                                    \
    "local function not_state(c, verb)\n"                                                      \
    "  return fail('invalid_transition', 'the call is ' .. c.state .. ': it cannot be '\n"     \
    "    .. verb)\n"                                                                           \
    "end\n"                                                                                    \
    "local function position(id, lang)\n"                                                      \
    "  local r = redis.call('ZRANK', P .. 'queue:' .. lang, id)\n"                             \
    "  if r then return r + 1 end\n"                                                           \
    "  return cjson.null\n"                                                                    \
    "end\n"                                                                                    \
    "local function queue_add(id, c, lang)\n"                                                  \
    "  redis.call('ZADD', P .. 'queue', c.score, id)\n"                                        \
    "  redis.call('ZADD', P .. 'queue:' .. lang, c.score, id)\n"                               \
    "  if c.clock == 'intake' then redis.call('ZADD', P .. 'route:' .. lang, c.score, id) end\n" \
    "  redis.call('SADD', P .. 'langs', lang)\n"                                               \
    "end\n"                                                                                    \
    "local function queue_remove(id, lang)\n"                                                  \
    "  redis.call('ZREM', P .. 'queue', id)\n"                                                 \
    "  redis.call('ZREM', P .. 'queue:' .. lang, id)\n"                                        \
    "  redis.call('ZREM', P .. 'route:' .. lang, id)\n"                                        \
    "  if redis.call('ZCARD', P .. 'queue:' .. lang) == 0 then\n"                              \
    "    redis.call('SREM', P .. 'langs', lang)\n"                                             \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local function agent_check(id)\n"                                                         \
    "  local a = redis.call('HMGET', P .. 'agent:' .. id, 'state', 'call')\n"                  \
    "  local st = a[1] or 'offline'\n"                                                         \
    "  if (a[2] or '') ~= '' then\n"                                                           \
    "    return fail('agent_busy', 'the agent already holds call ' .. a[2], 'agent_id')\n"     \
    "  end\n"                                                                                  \
    "  if st ~= 'available' then\n"                                                            \
    "    return fail('agent_not_available', 'the agent is ' .. st, 'agent_id')\n"              \
    "  end\n"                                                                                  \
    "  return nil\n"                                                                           \
    "end\n"                                                                                    \
    "local function agent_take(id, call_id, by)\n"                                             \
    "  redis.call('HSET', P .. 'agent:' .. id, 'call', call_id)\n"                             \
    "  agent_move(id, 'on_call', 'call_answered', by, call_id)\n"                              \
    "end\n"                                                                                    \
    "local function agent_release(id, call_id, by, reason)\n"                                  \
    "  local ak = P .. 'agent:' .. id\n"                                                       \
    "  if redis.call('HGET', ak, 'call') ~= call_id then return end\n"                         \
    "  redis.call('HSET', ak, 'call', '')\n"                                                   \
    "  if redis.call('HGET', ak, 'state') == 'on_call' then\n"                                 \
    "    agent_move(id, 'wrap_up', reason, by, call_id)\n"                                     \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local function finish(id, c)\n"                                                           \
    "  redis.call('ZREM', P .. 'active', id)\n"                                                \
    "  redis.call('PEXPIRE', P .. 'call:' .. id, retain)\n"                                    \
    "  if c.pbx_call_id ~= '' then\n"                                                          \
    "    redis.call('PEXPIRE', P .. 'pbx:' .. c.line .. ':' .. c.pbx_call_id, retain)\n"       \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local function store_reported(key)\n"                                                     \
    "  for _, f in ipairs({'r_ring_ms', 'r_wait_ms', 'r_talk_ms', 'r_hold_ms', 'r_position',\n" \
    "                      'r_orig_position'}) do\n"                                           \
    "    if p[f] then redis.call('HSET', key, f, num(p[f])) end\n"                             \
    "  end\n"                                                                                  \
    "end\n"                                                                                    \
    "local function reported(c)\n"                                                             \
    "  return {ring_ms = numz(c.r_ring_ms), wait_ms = numz(c.r_wait_ms),\n"                    \
    "    talk_ms = numz(c.r_talk_ms), hold_ms = numz(c.r_hold_ms),\n"                          \
    "    position = numz(c.r_position), orig_position = numz(c.r_orig_position)}\n"            \
    "end\n"                                                                                    \
    "local function call_event(type, id, at, extra)\n"                                         \
    "  local c = call_load(id)\n"                                                              \
    "  local d = {call_id = id, line = c.line, language = nz(c.language),\n"                   \
    "    priority = c.priority, ivr_option = nz(c.ivr_option), clock = c.clock, at = at,\n"    \
    "    pbx_call_id = nz(c.pbx_call_id),\n"                                                   \
    "    step = redis.call('HINCRBY', P .. 'call:' .. id, 'step', 1)}\n"                       \
    "  for k, v in pairs(extra(c)) do d[k] = v end\n"                                          \
    "  emit(type, id, d)\n"                                                                    \
    "end\n"                                                                                    \
    "local function reply(id, extra)\n"                                                        \
    "  local r = extra or {}\n"                                                                \
    "  r.call = call_load(id)\n"                                                               \
    "  return done(r)\n"                                                                       \
    "end\n"

#define S_SCRIPT(body) { .source = AGENTS_LUA_PRELUDE S_CALL_LUA body }

//  CALLS_OFFER. params: id, line, number?, language?, ivr_option?, priority, pbx_ts?,
//  pbx_call_id?, queue_max, reason? (a not-reached outcome: the call never enters the queue).
//  An offer whose line and pbx_call_id are already known answers that call with existing=true
//  and changes nothing. Emits call.offered or call.not_reached.
static gl_redis_script_t s_offer = S_SCRIPT (
    "if p.pbx_call_id then\n"
    "  local ex = redis.call('GET', P .. 'pbx:' .. p.line .. ':' .. p.pbx_call_id)\n"
    "  if ex and redis.call('EXISTS', P .. 'call:' .. ex) == 1 then\n"
    "    return reply(ex, {existing = true})\n"
    "  end\n"
    "end\n"
    "if not p.reason and redis.call('ZCARD', P .. 'queue') >= p.queue_max then\n"
    "  return fail('queue_full', 'the queue holds ' .. num(p.queue_max)\n"
    "    .. ' waiting calls (GL_INTAKE_QUEUE_MAX)')\n"
    "end\n"
    "local at = p.pbx_ts or now\n"
    "local seq = redis.call('INCR', P .. 'call:seq')\n"
    "local band = 1\n"
    "if p.priority == 'emergency' then band = 0 end\n"
    "local key = P .. 'call:' .. p.id\n"
    "local state = 'waiting'\n"
    "if p.reason then state = 'not_reached' end\n"
    "local clock = 'intake'\n"
    "if p.pbx_ts then clock = 'pbx' end\n"
    "redis.call('HSET', key, 'id', p.id, 'state', state, 'line', p.line,\n"
    "  'number', p.number or '', 'language', p.language or '', 'ivr_option', p.ivr_option or '',\n"
    "  'priority', p.priority, 'clock', clock, 'pbx_call_id', p.pbx_call_id or '',\n"
    "  'offered_at', num(at), 'last_at', num(at), 'received_at', num(now), 'seq', num(seq),\n"
    "  'score', num(band * 1e15 + seq), 'transfers', '0', 'talk_acc', '0', 'agent', '',\n"
    "  'reason', p.reason or '', 'step', '0')\n"
    "if p.pbx_call_id then\n"
    "  redis.call('SET', P .. 'pbx:' .. p.line .. ':' .. p.pbx_call_id, p.id)\n"
    "end\n"
    "local c = call_load(p.id)\n"
    "if p.reason then\n"
    "  redis.call('HSET', key, 'ended_at', num(at))\n"
    "  finish(p.id, c)\n"
    "  call_event('call.not_reached', p.id, at, function(c)\n"
    "    return {reason = p.reason, wait_ms = cjson.null, position = cjson.null,\n"
    "      orig_position = cjson.null, reported = reported(c)} end)\n"
    "else\n"
    "  queue_add(p.id, c, p.language)\n"
    "  redis.call('HSET', key, 'orig_position', num(position(p.id, p.language)))\n"
    "  call_event('call.offered', p.id, at, function(c)\n"
    "    return {position = tonumber(c.orig_position)} end)\n"
    "end\n"
    "return reply(p.id)\n");

//  CALLS_ANSWER. params: agent, by, and either id (the PBX or a supervisor says who answered;
//  pbx_ts?, r_ring_ms?, r_wait_ms?) or next=true with languages (the agent takes the
//  highest-priority, oldest call timed by intake's clock in a language they speak; call=false
//  when there is none). Emits call.answered, then the agent's move to on_call.
static gl_redis_script_t s_answer = S_SCRIPT (
    "local id = p.id\n"
    "if p.next then\n"
    "  local e = agent_check(p.agent)\n"
    "  if e then return e end\n"
    "  local best, best_score = nil, nil\n"
    "  for _, lang in ipairs(p.languages) do\n"
    "    local r = redis.call('ZRANGE', P .. 'route:' .. lang, 0, 0, 'WITHSCORES')\n"
    "    if r[1] and (not best or tonumber(r[2]) < best_score) then\n"
    "      best, best_score = r[1], tonumber(r[2])\n"
    "    end\n"
    "  end\n"
    "  if not best then return done({call = false}) end\n"
    "  id = best\n"
    "end\n"
    "local c = call_load(id)\n"
    "if not c then return fail('not_found', 'no such call') end\n"
    "if c.state ~= 'waiting' then return not_state(c, 'answered') end\n"
    "local ts, e = call_time(c)\n"
    "if not ts then return e end\n"
    "e = agent_check(p.agent)\n"
    "if e then return e end\n"
    "queue_remove(id, c.language)\n"
    "local key = P .. 'call:' .. id\n"
    "redis.call('HSET', key, 'state', 'answered', 'agent', p.agent, 'answered_at', num(ts),\n"
    "  'last_at', num(ts))\n"
    "if not c.wait_ms then\n"
    "  redis.call('HSET', key, 'wait_ms', num(ts - tonumber(c.offered_at)),\n"
    "    'first_agent', p.agent)\n"
    "end\n"
    "store_reported(key)\n"
    "redis.call('ZADD', P .. 'active', c.score, id)\n"
    "local via = 'answer'\n"
    "if p.next then via = 'next' end\n"
    "call_event('call.answered', id, ts, function(c)\n"
    "  return {agent_id = p.agent, wait_ms = tonumber(c.wait_ms), via = via,\n"
    "    reported = reported(c)} end)\n"
    "agent_take(p.agent, id, p.by)\n"
    "return reply(id)\n");

//  CALLS_TRANSFER. params: id, target (agent|queue|external), agent (target agent), language?
//  (target queue; default the call's), actor? (an agent who must hold the call), by, pbx_ts?,
//  r_talk_ms?, r_wait_ms?. The reply adds position (back in the queue). Emits
//  call.transferred, then the agents' moves (the first to wrap_up, the second to on_call).
static gl_redis_script_t s_transfer = S_SCRIPT (
    "local c = call_load(p.id)\n"
    "if not c then return fail('not_found', 'no such call') end\n"
    "if c.state ~= 'answered' then return not_state(c, 'transferred') end\n"
    "if p.actor and c.agent ~= p.actor then\n"
    "  return fail('forbidden', 'this call is held by another agent')\n"
    "end\n"
    "local ts, e = call_time(c)\n"
    "if not ts then return e end\n"
    "local old = c.agent\n"
    "if p.target == 'agent' then\n"
    "  if p.agent == old then\n"
    "    return fail('invalid_transition', 'the call is already with this agent', 'agent_id')\n"
    "  end\n"
    "  e = agent_check(p.agent)\n"
    "  if e then return e end\n"
    "end\n"
    "local key = P .. 'call:' .. p.id\n"
    "local talk = tonumber(c.talk_acc) + ts - tonumber(c.answered_at)\n"
    "local pos = cjson.null\n"
    "local talk_ms = cjson.null\n"
    "if p.target == 'agent' then\n"
    "  redis.call('HSET', key, 'agent', p.agent, 'last_at', num(ts))\n"
    "elseif p.target == 'queue' then\n"
    "  local lang = p.language or c.language\n"
    "  redis.call('HSET', key, 'state', 'waiting', 'agent', '', 'language', lang,\n"
    "    'last_at', num(ts), 'talk_acc', num(talk))\n"
    "  redis.call('ZREM', P .. 'active', p.id)\n"
    "  queue_add(p.id, c, lang)\n"
    "  pos = position(p.id, lang)\n"
    "else\n"
    "  redis.call('HSET', key, 'state', 'transferred', 'ended_at', num(ts), 'last_at', num(ts),\n"
    "    'talk_ms', num(talk))\n"
    "  talk_ms = talk\n"
    "  finish(p.id, c)\n"
    "end\n"
    "redis.call('HINCRBY', key, 'transfers', 1)\n"
    "store_reported(key)\n"
    "call_event('call.transferred', p.id, ts, function(c)\n"
    "  return {target = p.target, from_agent_id = old, to_agent_id = nz(p.agent),\n"
    "    position = pos, talk_ms = talk_ms, transfers = tonumber(c.transfers),\n"
    "    reported = reported(c)} end)\n"
    "agent_release(old, p.id, p.by, 'call_transferred')\n"
    "if p.target == 'agent' then agent_take(p.agent, p.id, p.by) end\n"
    "return reply(p.id, {position = pos})\n");

//  CALLS_END. params: id, actor?, by, pbx_ts?, ended_by?, r_talk_ms?, r_hold_ms?, r_wait_ms?.
//  Emits call.ended, then the agent's move to wrap_up (when they were on_call).
static gl_redis_script_t s_end = S_SCRIPT (
    "local c = call_load(p.id)\n"
    "if not c then return fail('not_found', 'no such call') end\n"
    "if c.state == 'waiting' then\n"
    "  return fail('invalid_transition', 'the call is waiting: it was never answered, so it '\n"
    "    .. 'cannot be ended (abandon it, or log a callback request)')\n"
    "end\n"
    "if c.state ~= 'answered' then return not_state(c, 'ended') end\n"
    "if p.actor and c.agent ~= p.actor then\n"
    "  return fail('forbidden', 'this call is held by another agent')\n"
    "end\n"
    "local ts, e = call_time(c)\n"
    "if not ts then return e end\n"
    "local key = P .. 'call:' .. p.id\n"
    "redis.call('HSET', key, 'state', 'ended', 'ended_at', num(ts), 'last_at', num(ts),\n"
    "  'talk_ms', num(tonumber(c.talk_acc) + ts - tonumber(c.answered_at)),\n"
    "  'ended_by', p.ended_by or '')\n"
    "store_reported(key)\n"
    "finish(p.id, c)\n"
    "call_event('call.ended', p.id, ts, function(c)\n"
    "  return {agent_id = c.agent, wait_ms = numz(c.wait_ms), talk_ms = tonumber(c.talk_ms),\n"
    "    ended_by = nz(c.ended_by), transfers = tonumber(c.transfers),\n"
    "    reported = reported(c)} end)\n"
    "agent_release(c.agent, p.id, p.by, 'call_ended')\n"
    "return reply(p.id)\n");

//  CALLS_LEAVE. params: id, outcome (abandoned | callback_requested), pbx_ts?, r_wait_ms?,
//  r_position?, r_orig_position?. Wait and position are measured here, from the offer.
//  Emits call.abandoned or call.not_reached.
static gl_redis_script_t s_leave = S_SCRIPT (
    "local c = call_load(p.id)\n"
    "if not c then return fail('not_found', 'no such call') end\n"
    "if c.state ~= 'waiting' then\n"
    "  if p.outcome == 'abandoned' then return not_state(c, 'abandoned') end\n"
    "  return not_state(c, 'left for a callback')\n"
    "end\n"
    "local ts, e = call_time(c)\n"
    "if not ts then return e end\n"
    "local pos = position(p.id, c.language)\n"
    "queue_remove(p.id, c.language)\n"
    "local key = P .. 'call:' .. p.id\n"
    "local state, reason, evtype = 'abandoned', '', 'call.abandoned'\n"
    "if p.outcome ~= 'abandoned' then\n"
    "  state, reason, evtype = 'not_reached', p.outcome, 'call.not_reached'\n"
    "end\n"
    "local stored_pos = ''\n"
    "if pos ~= cjson.null then stored_pos = num(pos) end\n"
    "redis.call('HSET', key, 'state', state, 'reason', reason, 'ended_at', num(ts),\n"
    "  'last_at', num(ts), 'wait_ms', num(ts - tonumber(c.offered_at)), 'position', stored_pos)\n"
    "store_reported(key)\n"
    "finish(p.id, c)\n"
    "call_event(evtype, p.id, ts, function(c)\n"
    "  local d = {wait_ms = tonumber(c.wait_ms), position = pos,\n"
    "    orig_position = numz(c.orig_position), reported = reported(c)}\n"
    "  if reason ~= '' then d.reason = reason end\n"
    "  return d end)\n"
    "return reply(p.id)\n");

//  CALLS_GET. params: id. The reply adds position while the call waits.
static gl_redis_script_t s_get = S_SCRIPT (
    "local c = call_load(p.id)\n"
    "if not c then return fail('not_found', 'no such call') end\n"
    "local extra = {}\n"
    "if c.state == 'waiting' then extra.position = position(p.id, c.language) end\n"
    "return reply(p.id, extra)\n");

//  CALLS_QUEUE. params: language? (only that language's calls). Answers items (waiting calls
//  in routing order, with their position in their language's queue), waiting and answered
//  (counts per language, over every language).
static gl_redis_script_t s_queue = S_SCRIPT (
    "local items = {}\n"
    "for _, id in ipairs(redis.call('ZRANGE', P .. 'queue', 0, -1)) do\n"
    "  local f = redis.call('HMGET', P .. 'call:' .. id, 'line', 'language', 'priority',\n"
    "    'ivr_option', 'clock', 'offered_at', 'received_at', 'transfers')\n"
    "  if not p.language or f[2] == p.language then\n"
    "    items[#items + 1] = {call_id = id, line = f[1], language = f[2], priority = f[3],\n"
    "      ivr_option = f[4], clock = f[5], offered_at = f[6], received_at = f[7],\n"
    "      transfers = f[8], position = position(id, f[2])}\n"
    "  end\n"
    "end\n"
    "local waiting, answered = {}, {}\n"
    "for _, lang in ipairs(redis.call('SMEMBERS', P .. 'langs')) do\n"
    "  waiting[lang] = redis.call('ZCARD', P .. 'queue:' .. lang)\n"
    "end\n"
    "for _, id in ipairs(redis.call('ZRANGE', P .. 'active', 0, -1)) do\n"
    "  local lang = redis.call('HGET', P .. 'call:' .. id, 'language') or ''\n"
    "  answered[lang] = (answered[lang] or 0) + 1\n"
    "end\n"
    "return done({items = items, waiting = waiting, answered = answered})\n");

int
calls_run (intake_t *intake, calls_op_t op, const json_t *params, json_t **out)
{
    assert (op >= 0 && op < CALLS_OP_COUNT);
    return calls_eval (intake, s_script_of (op), params, out);
}

static gl_redis_script_t *
s_script_of (calls_op_t op)
{
    static gl_redis_script_t *const scripts[CALLS_OP_COUNT]
        = { &s_offer, &s_answer, &s_transfer, &s_end, &s_leave, &s_get, &s_queue };
    return scripts[op];
}
