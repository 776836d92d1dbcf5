/*  agents — agent state and the daily shift plan (docs/api/agents.md).

    An agent is a user (auth.h) who takes calls. Their state is one of available, on_call,
    wrap_up, break, offline; every change is stored with its time on intake's business clock
    (gl_now_ms) in the agent's timeline, so occupancy can be computed for any period
    (agents_timeline does it for the API; reporting does it from agent.state_changed).
    The languages an agent speaks are the user's (auth_user_get), read when a call is routed.

    on_call is never set by hand: answering a call sets it (calls.h), ending or transferring the
    call moves the agent on to wrap_up. An agent holding a call cannot change state until the
    call is ended or transferred; a supervisor can still force them offline (the call stays
    theirs at the PBX and in the queue, and they stay offline when it ends).

    Redis keys (P = "intake:{intake}:"):
      P agent:<id>        hash   state, since (ms), reason, by (who made the change), call (the
                                 call held, "" for none), n (transitions so far)
      P agent:<id>:tl     zset   the timeline: member "<n>|<at>|<from>|<to>|<reason>", score at;
                                 the newest GL_INTAKE_AGENT_TIMELINE_MAX are kept
      P agents            zset   every agent that ever changed state (score 0: listed by id)
      P shift:<date>      string the plan of one day: JSON {shifts, updated_at, updated_by}
*/
#ifndef INTAKE_AGENTS_H
#define INTAKE_AGENTS_H
#include "auth.h"
#include "calls.h"
#include "http.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define AGENTS_SHIFTS_MAX   500     //  shifts in one day's plan
#define AGENTS_TIMELINE_RANGE_MAX (31LL * 86400000)     //  ms a timeline query may span
#define AGENTS_TIMELINE_ITEMS_MAX 10000

//  The states, as codes. NULL-terminated.
extern const char *const agents_states[];

//  The Lua every script of agents.c and calls.c starts with: the standard arguments (calls.h,
//  calls_eval) and the helpers
//    num(n)             a number as Redis should store it (no exponent)
//    nz(s), numz(s)     a stored string as a JSON string or number, cjson.null when empty
//    fail(code, message, field)   the refusal reply
//    hgetall(key)       a hash as a table, nil when absent
//    emit(type, corr, data)       an event: its outbox entry (contacts.h, "the outbox") is
//                       written here, in the same atomic step as the change it reports, and
//                       returned to calls_eval, which publishes it and clears the entry
//    agent_move(id, to, reason, by, call)   one agent transition, stored with the time `now`
//                       in the agent's hash and timeline, and its agent.state_changed emitted
//    done(reply)        the script's answer: reply plus the events emitted
#define AGENTS_LUA_PRELUDE                                                                     \
    "local P = KEYS[1]\n"                                                                      \
    "local now = tonumber(ARGV[1])\n"                                                          \
    "local tlmax = tonumber(ARGV[2])\n"                                                        \
    "local retain = tonumber(ARGV[3])\n"                                                       \
    "local p = cjson.decode(ARGV[4])\n"                                                        \
    "local function num(n) return string.format('%.0f', n) end\n"                              \
    "local function nz(s) if s == nil or s == '' then return cjson.null end return s end\n"    \
    "local function numz(s)\n"                                                                 \
    "  if s == nil or s == '' then return cjson.null end\n"                                    \
    "  return tonumber(s)\n"                                                                   \
    "end\n"                                                                                    \
    "local function fail(code, message, field)\n"                                              \
    "  return cjson.encode({error = code, message = message, field = field or ''})\n"          \
    "end\n"                                                                                    \
    "local function hgetall(key)\n"                                                            \
    "  local f = redis.call('HGETALL', key)\n"                                                 \
    "  if #f == 0 then return nil end\n"                                                       \
    "  local t = {}\n"                                                                         \
    "  for i = 1, #f, 2 do t[f[i]] = f[i + 1] end\n"                                           \
    "  return t\n"                                                                             \
    "end\n"                                                                                    \
    "local events = {}\n"                                                                      \
    "local function emit(type, corr, data)\n"                                                  \
    "  local id = p.ev_ids[#events + 1]\n"                                                     \
    "  local entry = cjson.encode({type = type, id = id, ts = p.ev_ts, corr = corr or '',\n"   \
    "    flags = 0, src = p.ev_src, seq = p.ev_seq, data = data})\n"                           \
    "  redis.call('HSET', P .. 'outbox', id, entry)\n"                                         \
    "  events[#events + 1] = entry\n"                                                          \
    "end\n"                                                                                    \
    "local function agent_move(id, to, reason, by, call)\n"                                    \
    "  local ak = P .. 'agent:' .. id\n"                                                       \
    "  local from = redis.call('HGET', ak, 'state') or 'offline'\n"                            \
    "  local n = redis.call('HINCRBY', ak, 'n', 1)\n"                                          \
    "  redis.call('HSET', ak, 'state', to, 'since', num(now), 'reason', reason, 'by', by)\n"   \
    "  if not redis.call('HGET', ak, 'call') then redis.call('HSET', ak, 'call', '') end\n"    \
    "  local tl = ak .. ':tl'\n"                                                               \
    "  redis.call('ZADD', tl, num(now), n .. '|' .. num(now) .. '|' .. from .. '|' .. to\n"    \
    "             .. '|' .. reason)\n"                                                         \
    "  local count = redis.call('ZCARD', tl)\n"                                                \
    "  if count > tlmax then redis.call('ZREMRANGEBYRANK', tl, 0, count - tlmax - 1) end\n"    \
    "  redis.call('ZADD', P .. 'agents', 0, id)\n"                                             \
    "  emit('agent.state_changed', call, {agent_id = id, from = from, to = to, at = now,\n"    \
    "    reason_code = nz(reason), by = by, call_id = nz(call), step = n})\n"                  \
    "end\n"                                                                                    \
    "local function done(reply)\n"                                                             \
    "  reply.events = events\n"                                                                \
    "  return cjson.encode(reply)\n"                                                           \
    "end\n"

//  The most events one script emits (a transfer to another agent: the call's and two agents').
#define AGENTS_EVENTS_MAX 4

//  Change agent_id's state to `to` (one of agents_states but on_call), with reason (a code, or
//  NULL/"" for none), by (the user who made the change), or force them offline (force; `to`
//  is then "offline"). 0 with *out = {agent: the stored hash, changed: bool} or a script's
//  {error, message, field}; -1 when Redis cannot be reached. agent.state_changed is published
//  by then (calls_eval).
int agents_set_state (intake_t *intake, const char *agent_id, const char *to, const char *reason,
                      const char *by, bool force, json_t **out);

//  The same over intake's asynchronous Redis connection (calls_eval_async): done gets rc and
//  out as agents_set_state gives them. 0 sent; -1 not ready (use agents_set_state); -2 busy.
int agents_set_state_async (intake_t *intake, const char *agent_id, const char *to,
                            const char *reason, const char *by, bool force, calls_done_fn *done,
                            void *arg);

//  An agent as the API shows them: {agent_id, state, since, reason_code, changed_by, call_id,
//  languages}; absent values are null, and an agent never seen is offline. user (may be NULL)
//  gives the languages. A new reference.
json_t *agents_view (const char *agent_id, const char *state, const char *since,
                     const char *reason, const char *by, const char *call,
                     const auth_user_t *user);
//  Same from the stored hash (a JSON object of strings, as a script answers it).
json_t *agents_view_from_hash (const char *agent_id, const json_t *hash,
                               const auth_user_t *user);

//  Read agent_id's state from Redis into *out (agents_view). 0, or -1 when Redis cannot be
//  reached.
int agents_read (intake_t *intake, const char *agent_id, const auth_user_t *user, json_t **out);

//  The timeline of agent_id over [from, to): {agent_id, from, to, transitions: [{at, from, to,
//  reason_code}], time_ms: {state: ms spent, up to now when to is later}, occupancy: (on_call +
//  wrap_up) / (available + on_call + wrap_up), or null}. 0 with *out, 1 when the range holds
//  more than AGENTS_TIMELINE_ITEMS_MAX transitions, -1 when Redis cannot be reached.
int agents_timeline (intake_t *intake, const char *agent_id, int64_t from, int64_t to,
                     json_t **out);

//  Store the plan of date ({date, shifts, updated_at, updated_by}) and publish shift.planned
//  (through the outbox, in the same atomic step). 0, or -1 when Redis cannot be reached.
int agents_plan_store (intake_t *intake, const char *date, const json_t *plan, const char *by);

//  Agents who ever changed state, by id, as GET /api/v1/agents lists them: up to limit (> 0)
//  agents views (agents_view) with the user's display_name ("" when none), after the agent id
//  after (a valid id; NULL: from the first). *items is the caller's; next receives the id to
//  continue after when more follow, "" otherwise. Shared by that handler and the board stream
//  (board.h). 0, or -1 when Redis cannot be reached.
int agents_list (intake_t *intake, const char *after, int limit, json_t **items,
                 char next[GL_ID_LEN + 1]);

//  Routes (api_agents.c).
void api_agents_routes (intake_t *intake);

#endif
