/*  calls — the live call queue (docs/api/calls.md) and the machinery it shares with agent state
    (agents.h): the Lua scripts and their runner, the settings, the validators.

    Every transition of a call or of an agent is one Lua script in Redis, so the check ("is the
    call still waiting?", "is the agent available?") and the change happen together, whichever
    replica of intake runs it; nothing about the queue lives in the process. A killed intake
    restarts with the queue and the agent states exactly as they were.

    Redis keys (all in the {intake} slot; P = "intake:{intake}:"):
      P call:<id>                 hash   a call (fields: docs/api/calls.md, "Keys")
      P call:seq                  string the offer counter (queue order)
      P queue                     zset   every waiting call, score = priority band + offer order
      P queue:<lang>              zset   waiting calls of one language (positions)
      P route:<lang>              zset   waiting calls of one language timed by intake's clock
                                         (what POST /calls/next picks from)
      P langs                     set    languages that have had a waiting call
      P active                    zset   answered calls, by offer order
      P pbx:<line>:<pbx_call_id>  string the call id (an offer repeated by the PBX is recognised)
    Terminal calls (ended, abandoned, transferred out, not reached) expire after
    GL_INTAKE_CALL_RETAIN_MS: the caller's number is personal data, and contacts keep the record.

    Events are written by the same script that makes the change, as entries of intake's outbox
    (contacts.h, "the outbox"), then published and cleared by calls_eval; whatever cannot be
    published at once (Redis went away, the process died) is delivered by the outbox sweep. So
    a change is never without its event. Every call event carries `step` (1, 2, 3 ... per call)
    and every agent.state_changed the agent's own `step`, so a subscriber can order the events
    of one call or agent even when the sweep delivered one late.
*/
#ifndef INTAKE_CALLS_H
#define INTAKE_CALLS_H
#include "http.h"
#include "gl/gl_event.h"
#include "gl/gl_redis.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _calls_t calls_t;

#define CALLS_PREFIX        "intake:{intake}:"
#define CALLS_LANG_MAX      15      //  [a-z]{2,3} optionally -[A-Za-z0-9]{2,8} (auth.h's codes)
#define CALLS_CODE_MAX      32      //  line, ivr_option, reason codes

//  Read the settings (GL_INTAKE_PBX_SKEW_MS, GL_INTAKE_QUEUE_MAX, GL_INTAKE_CALL_RETAIN_MS,
//  GL_INTAKE_PRIORITY_OPTIONS, GL_INTAKE_AGENT_TIMELINE_MAX). NULL with the reason in err (a
//  malformed setting names its key).
calls_t *calls_new (intake_t *intake, char *err, size_t errlen);

//  Free. NULLs *self_p.
void calls_destroy (calls_t **self_p);

//  Settings.
int64_t calls_pbx_skew_ms (calls_t *self);
int64_t calls_queue_max (calls_t *self);
//  True when ivr_option is one of GL_INTAKE_PRIORITY_OPTIONS (the queue-jumping options).
bool calls_option_is_priority (calls_t *self, const char *ivr_option);

//  Run one of the concern's scripts (they start with AGENTS_LUA_PRELUDE). Every script takes
//  KEYS[1] = CALLS_PREFIX and ARGV = now (intake's business clock, gl_now_ms), the agent
//  timeline cap, the retention of terminal calls, and params (a JSON object, encoded here with
//  what the script's events need added: ev_ids, ev_ts, ev_src, ev_seq). It answers a JSON
//  object, returned in *out (the caller's), after the events it emitted were published.
//  0, or -1 when Redis cannot be reached or answered something else (logged).
int calls_eval (intake_t *intake, gl_redis_script_t *script, const json_t *params, json_t **out);

//  The queue's scripts (calls.c; params and replies in each script's comment there). Each
//  answers {"error", "message", "field"} for a refused transition (nothing changed), or
//  {"call": the call's fields as stored, ...}; its events are published by then.
typedef enum {
    CALLS_OFFER,        //  a new call: waiting in the queue, or not reached (params.reason)
    CALLS_ANSWER,       //  waiting -> answered by params.agent (or the next call, params.next)
    CALLS_TRANSFER,     //  answered -> another agent, back to the queue, or out (external)
    CALLS_END,          //  answered -> ended
    CALLS_LEAVE,        //  waiting -> abandoned, or not reached (callback_requested)
    CALLS_GET,          //  read one call (and its position while waiting)
    CALLS_QUEUE,        //  read the waiting calls and the counts per language
    CALLS_OP_COUNT
} calls_op_t;

//  Run op with params (a JSON object). 0 with *out (the caller's), or -1 (Redis unreachable).
int calls_run (intake_t *intake, calls_op_t op, const json_t *params, json_t **out);

//  The same over intake's asynchronous Redis connection (aredis.h): done (intake, rc, out, arg)
//  is called later from the loop, exactly once, with what calls_run would have returned (out
//  is the callee's: done must json_decref it; NULL when rc is -1). 0 when sent; -1 when the
//  asynchronous connection is not ready (nothing sent: use calls_run); -2 when too many
//  writes are in flight (answer 503).
typedef void (calls_done_fn) (intake_t *intake, int rc, json_t *out, void *arg);
int calls_run_async (intake_t *intake, calls_op_t op, const json_t *params, calls_done_fn *done,
                     void *arg);
//  calls_eval's asynchronous form, the same way (for agents.c's scripts).
int calls_eval_async (intake_t *intake, gl_redis_script_t *script, const json_t *params,
                      calls_done_fn *done, void *arg);

//  Answer a script's {"error": code, "message": ..., "field": ...} reply with its HTTP status
//  (409 for state conflicts, 404 not_found, 403 forbidden, 400 for the rest). Returns -1.
int calls_reply_script_error (http_req_t *req, const json_t *reply);

//  Validators shared with agents.c.
bool calls_lang_valid (const char *s);      //  auth.h's language codes
bool calls_code_valid (const char *s);      //  [a-z0-9_]{1,32}
bool calls_line_valid (const char *s);      //  [A-Za-z0-9_.+-]{1,32}

//  The queue as GET /api/v1/queue answers it (docs/api/calls.md): {calls, languages, waiting,
//  answered, now}, waits on intake's clock; language (already validated) narrows it, NULL for
//  every language. Shared by that handler and the board stream (board.h). 0 with *view (the
//  caller's), or -1 when Redis cannot be reached.
int calls_queue_view (intake_t *intake, const char *language, json_t **view);

//  Routes (api_calls.c).
void api_calls_routes (intake_t *intake);

#endif
