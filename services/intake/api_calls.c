/*  api_calls — the live call queue over HTTP (docs/api/calls.md): telephony events from API
    clients (a PBX adapter) and supervisors logging calls by hand, agents taking the next call,
    and the queue as agents and supervisors watch it.

    Each handler validates the request and runs one script (calls.c) that checks and changes the
    call and its agents and writes their events (call.*, agent.state_changed) to the outbox, all
    in one atomic step; the events are published by the time it returns. Then the handler writes
    the audit entry and answers. The caller's number is stored with the call and shown only to the
    agent who holds (or last held) it; it never appears in events, logs or the queue.
*/
#include "agents.h"
#include "audit.h"
#include "auth.h"
#include "callers.h"
#include "calls.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_FEEDERS   (GL_ROLE_SUPERVISOR | GL_ROLE_API_CLIENT)   //  telephony events
#define S_TAKERS    (GL_ROLE_AGENT | GL_ROLE_SUPERVISOR)
#define S_PBX_TS_MIN 946684800000LL     //  2000-01-01: anything earlier is seconds, not ms
#define S_DURATION_MAX 604800000LL      //  7 days, for durations the PBX reports
#define S_POSITION_MAX 1000000
#define S_PBX_ID_MAX 64
#define S_NUMBER_MAX 20

static const char *const s_not_reached_reasons[]
    = { "out_of_hours", "all_lines_busy", "ivr_only", NULL };
static const char *const s_targets[] = { "agent", "queue", "external", NULL };
static const char *const s_ended_by[] = { "caller", "agent", NULL };

static int
s_unavailable (http_req_t *req)
{
    return http_reply_error (req, 503, "unavailable", "redis unreachable, retry later", NULL);
}

//  --------------------------------------------------------------------------------------------
//  Validation of the fields telephony events share

//  An optional string field that must satisfy valid(); 400 invalid_field with what otherwise.
static int
s_body_checked (http_req_t *req, const char *field, bool required, size_t max,
                bool (*valid) (const char *), const char *what, const char **out)
{
    if (http_body_str (req, field, required, max, out))
        return -1;
    if (*out && !valid (*out)) {
        http_reply_error (req, 400, "invalid_field", what, field);
        return -1;
    }
    return 0;
}

static bool
s_number_valid (const char *s)
{
    size_t n = strlen (s), i = s[0] == '+' ? 1 : 0;
    if (n - i < 2 || n - i > S_NUMBER_MAX)
        return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool
s_pbx_id_valid (const char *s)
{
    size_t n = strlen (s);
    if (n == 0 || n > S_PBX_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

//  pbx_ts: unix ms, not before 2000 and not more than GL_INTAKE_PBX_SKEW_MS ahead of intake's
//  clock. Absent: *has = false.
static int
s_pbx_ts (intake_t *intake, http_req_t *req, bool *has, int64_t *out)
{
    int64_t ts = -1;
    if (http_body_int (req, "pbx_ts", false, 0, INT64_MAX, &ts))
        return -1;
    *has = ts >= 0;
    *out = ts;
    if (!*has)
        return 0;
    if (ts < S_PBX_TS_MIN) {
        http_reply_error (req, 400, "invalid_field",
                          "pbx_ts is unix time in milliseconds (this is before 2000)", "pbx_ts");
        return -1;
    }
    int64_t skew = calls_pbx_skew_ms (intake->calls);
    int64_t ahead = ts - gl_now_ms ();
    if (ahead > skew) {
        char message[160];
        snprintf (message, sizeof message,
                  "pbx_ts is %" PRId64 " ms ahead of intake's clock; at most %" PRId64
                  " is plausible (GL_INTAKE_PBX_SKEW_MS)",
                  ahead, skew);
        http_reply_error (req, 400, "invalid_field", message, "pbx_ts");
        return -1;
    }
    return 0;
}

//  Optional integer fields copied into params under another name.
typedef struct {
    const char *field;      //  in the request
    const char *param;      //  in the script's params
    int64_t min, max;
} s_intfield_t;

static int
s_body_ints (http_req_t *req, const s_intfield_t *fields, json_t *params)
{
    for (size_t i = 0; fields[i].field; i++) {
        int64_t v = INT64_MIN;
        if (http_body_int (req, fields[i].field, false, fields[i].min, fields[i].max, &v))
            return -1;
        if (v != INT64_MIN)
            json_object_set_new (params, fields[i].param, json_integer (v));
    }
    return 0;
}

//  The path's call id: a well-formed id, else 404.
static const char *
s_call_id (http_req_t *req)
{
    const char *id = http_param (req, "id");
    if (!gl_id_valid (id)) {
        http_reply_error (req, 404, "not_found", "no such call", NULL);
        return NULL;
    }
    return id;
}

//  The agent named by agent_id must be a user: 404 naming the field otherwise.
static int
s_agent_user (intake_t *intake, http_req_t *req, const char *agent_id, auth_user_t *user)
{
    int rc = auth_user_get (intake, agent_id, user);
    if (rc < 0) {
        s_unavailable (req);
        return -1;
    }
    if (rc > 0) {
        http_reply_error (req, 404, "not_found", "no such agent", "agent_id");
        return -1;
    }
    return 0;
}

//  An agent acting on their own call (no supervisor or API client role) may touch only the
//  call they hold: the script checks it against actor.
static void
s_set_actor (http_req_t *req, json_t *params)
{
    const http_caller_t *who = http_caller (req);
    if (!(who->roles & S_FEEDERS))
        json_object_set_new (params, "actor", json_string (who->user_id));
}

//  --------------------------------------------------------------------------------------------
//  Views and events

static const char *
s_str (const json_t *c, const char *name)
{
    const char *s = json_string_value (json_object_get (c, name));
    return s ? s : "";
}

static json_t *
s_str_or_null (const json_t *c, const char *name)
{
    const char *s = s_str (c, name);
    return *s ? json_string (s) : json_null ();
}

static json_t *
s_int_or_null (const json_t *c, const char *name)
{
    const json_t *v = json_object_get (c, name);
    if (json_is_number (v))
        return json_integer ((json_int_t) json_number_value (v));
    const char *s = json_string_value (v);
    if (!s || !*s)
        return json_null ();
    return json_integer ((json_int_t) strtoll (s, NULL, 10));
}

//  A call as the API shows it, from the stored hash c. position (stolen, may be NULL: then the
//  stored position) is the live one while the call waits. caller_number only when with_number.
static json_t *
s_call_view (const json_t *c, json_t *position, bool with_number)
{
    static const char *const strings[][2]
        = { { "id", "id" }, { "state", "state" }, { "line", "line" },
            { "priority", "priority" }, { "clock", "clock" } };
    static const char *const optional[][2]
        = { { "language", "language" }, { "ivr_option", "ivr_option" },
            { "pbx_call_id", "pbx_call_id" }, { "agent_id", "agent" },
            { "first_agent_id", "first_agent" }, { "reason", "reason" },
            { "ended_by", "ended_by" } };
    static const char *const ints[][2]
        = { { "offered_at", "offered_at" }, { "received_at", "received_at" },
            { "answered_at", "answered_at" }, { "ended_at", "ended_at" },
            { "transfers", "transfers" }, { "orig_position", "orig_position" },
            { "wait_ms", "wait_ms" }, { "talk_ms", "talk_ms" } };
    static const char *const reported[][2]
        = { { "ring_ms", "r_ring_ms" }, { "wait_ms", "r_wait_ms" }, { "talk_ms", "r_talk_ms" },
            { "hold_ms", "r_hold_ms" }, { "position", "r_position" },
            { "orig_position", "r_orig_position" } };
    json_t *view = json_object ();
    json_t *r = json_object ();
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        json_object_set_new (view, strings[i][0], json_string (s_str (c, strings[i][1])));
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
        json_object_set_new (view, optional[i][0], s_str_or_null (c, optional[i][1]));
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        json_object_set_new (view, ints[i][0], s_int_or_null (c, ints[i][1]));
    json_object_set_new (view, "position", position ? position : s_int_or_null (c, "position"));
    for (size_t i = 0; i < sizeof reported / sizeof reported[0]; i++)
        json_object_set_new (r, reported[i][0], s_int_or_null (c, reported[i][1]));
    json_object_set_new (view, "reported", r);
    if (with_number)
        json_object_set_new (view, "caller_number", s_str_or_null (c, "number"));
    return view;
}

static int64_t
s_at (const json_t *c, const char *name)
{
    json_t *v = s_int_or_null (c, name);
    int64_t at = json_is_integer (v) ? (int64_t) json_integer_value (v) : 0;
    json_decref (v);
    return at;
}

static void
s_audit (intake_t *intake, http_req_t *req, const char *action, const char *id,
         const char *detail)
{
    //  The change is made: its entry need not hold the answer back (audit_record_req_later).
    if (audit_record_req_later (intake, req, action, "call", id, detail) != 0)
        gl_error ("calls: the audit entry of call %s (%s) could not be written", id, detail);
}

//  Run op; on a refusal answer it and return NULL; on Redis failure answer 503.
static json_t *
s_run (intake_t *intake, http_req_t *req, calls_op_t op, const json_t *params)
{
    json_t *out = NULL;
    if (calls_run (intake, op, params, &out) != 0) {
        s_unavailable (req);
        return NULL;
    }
    if (json_object_get (out, "error")) {
        calls_reply_script_error (req, out);
        json_decref (out);
        return NULL;
    }
    return out;
}

//  What a handler does with its script's answer (out, taken): reply. req is the request's.
typedef int (s_then_fn) (intake_t *intake, http_req_t *req, json_t *out);

typedef struct {
    http_req_t *req;                    //  deferred
    s_then_fn *then;
} s_waiting_t;

static void
s_on_run (intake_t *intake, int rc, json_t *out, void *arg)
{
    s_waiting_t *w = arg;
    if (rc != 0)
        s_unavailable (w->req);
    else if (json_object_get (out, "error")) {
        calls_reply_script_error (w->req, out);
        json_decref (out);
    }
    else
        w->then (intake, w->req, out);
    free (w);
}

//  Run op, then answer with then: over the asynchronous connection when it is up (the reply
//  is deferred until the script answers; the loop serves others meanwhile), else at once.
static int
s_run_then (intake_t *intake, http_req_t *req, calls_op_t op, json_t *params, s_then_fn *then)
{
    s_waiting_t *w = malloc (sizeof *w);
    int rc = w ? calls_run_async (intake, op, params, s_on_run, w) : -1;
    if (rc == 0) {
        *w = (s_waiting_t) { .req = req, .then = then };
        json_decref (params);
        http_defer (req);
        return 0;
    }
    free (w);
    if (rc == -2) {
        json_decref (params);
        return http_reply_error (req, 503, "unavailable", "too many writes in flight; retry",
                                 NULL);
    }
    json_t *out = s_run (intake, req, op, params);
    json_decref (params);
    return out ? then (intake, req, out) : -1;
}

//  --------------------------------------------------------------------------------------------
//  Offers and calls that never reach an agent

//  What POST /calls and POST /calls/not-reached share: the call's identity. Fills params.
static int
s_new_call_fields (intake_t *intake, http_req_t *req, bool language_required, json_t *params)
{
    const char *line = NULL, *number = NULL, *language = NULL, *option = NULL, *pbx_id = NULL;
    bool has_ts;
    int64_t ts;
    if (s_body_checked (req, "line", true, CALLS_CODE_MAX, calls_line_valid,
                        "a line is a code: [A-Za-z0-9_.+-], 1..32", &line)
        || s_body_checked (req, "caller_number", false, 1 + S_NUMBER_MAX, s_number_valid,
                           "a phone number: digits, optionally a leading +, 2..20 digits",
                           &number)
        || s_body_checked (req, "language", language_required, CALLS_LANG_MAX, calls_lang_valid,
                           "a language code: [a-z]{2,3}, optionally -subtag", &language)
        || s_body_checked (req, "ivr_option", false, CALLS_CODE_MAX, calls_code_valid,
                           "an IVR option is a code: [a-z0-9_], 1..32", &option)
        || s_body_checked (req, "pbx_call_id", false, S_PBX_ID_MAX, s_pbx_id_valid,
                           "a PBX call id: [A-Za-z0-9._-], 1..64", &pbx_id)
        || s_pbx_ts (intake, req, &has_ts, &ts))
        return -1;
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    bool urgent = calls_option_is_priority (intake->calls, option);
    json_object_set_new (params, "id", json_string (id));
    json_object_set_new (params, "line", json_string (line));
    json_object_set_new (params, "priority", json_string (urgent ? "emergency" : "normal"));
    if (number)
        json_object_set_new (params, "number", json_string (number));
    if (language)
        json_object_set_new (params, "language", json_string (language));
    if (option)
        json_object_set_new (params, "ivr_option", json_string (option));
    if (pbx_id)
        json_object_set_new (params, "pbx_call_id", json_string (pbx_id));
    if (has_ts)
        json_object_set_new (params, "pbx_ts", json_integer (ts));
    return 0;
}

//  POST /api/v1/calls: a call offered to the queue. 201; 200 with the existing call when the
//  same line and pbx_call_id were offered before (a retried offer is not a second call).
//  An offer's or a not-reached call's answer: 201, or 200 for a repeated pbx_call_id.
static int
s_offered (intake_t *intake, http_req_t *req, json_t *out)
{
    json_t *c = json_object_get (out, "call");
    bool existing = json_is_true (json_object_get (out, "existing"));
    const char *reason = json_string_value (json_object_get (http_body (req), "reason"));
    if (!existing)
        s_audit (intake, req, "create", s_str (c, "id"), reason ? reason : "offered");
    json_t *view = s_call_view (c, NULL, false);
    json_decref (out);
    return http_reply_json (req, existing ? 200 : 201, view);
}

static int
s_offer (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "line", "caller_number", "language", "ivr_option",
                                          "pbx_ts", "pbx_call_id", NULL };
    json_t *params = json_object ();
    if (http_body_only (req, fields) || s_new_call_fields (intake, req, true, params)) {
        json_decref (params);
        return -1;
    }
    json_object_set_new (params, "queue_max", json_integer (calls_queue_max (intake->calls)));
    return s_run_then (intake, req, CALLS_OFFER, params, s_offered);
}

//  POST /api/v1/calls/not-reached: a call that never entered the queue (out of hours, all lines
//  busy, handled in the IVR alone). 201, or 200 for a repeated pbx_call_id.
static int
s_not_reached (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "line", "caller_number", "language", "ivr_option",
                                          "reason", "pbx_ts", "pbx_call_id", NULL };
    const char *reason = NULL;
    json_t *params = json_object ();
    if (http_body_only (req, fields)
        || http_body_enum (req, "reason", true, s_not_reached_reasons, &reason)
        || s_new_call_fields (intake, req, false, params)) {
        json_decref (params);
        return -1;
    }
    json_object_set_new (params, "reason", json_string (reason));
    return s_run_then (intake, req, CALLS_OFFER, params, s_offered);
}

//  --------------------------------------------------------------------------------------------
//  Answering

static int
s_answered (intake_t *intake, http_req_t *req, json_t *out)
{
    s_audit (intake, req, "update", http_param (req, "id"), "answer");
    json_t *view = s_call_view (json_object_get (out, "call"), NULL, false);
    json_decref (out);
    return http_reply_json (req, 200, view);
}

//  POST /api/v1/calls/{id}/answer {agent_id, ring_time_ms?, wait_time_ms?, pbx_ts?}
static int
s_answer (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "agent_id", "ring_time_ms", "wait_time_ms", "pbx_ts",
                                          NULL };
    static const s_intfield_t ints[]
        = { { "ring_time_ms", "r_ring_ms", 0, S_DURATION_MAX },
            { "wait_time_ms", "r_wait_ms", 0, S_DURATION_MAX },
            { NULL, NULL, 0, 0 } };
    const char *id = s_call_id (req);
    const char *agent = NULL;
    bool has_ts;
    int64_t ts;
    if (!id || http_body_only (req, fields) || http_body_id (req, "agent_id", true, &agent)
        || s_pbx_ts (intake, req, &has_ts, &ts))
        return -1;
    json_t *params = json_pack ("{s:s, s:s, s:s}", "id", id, "agent", agent, "by",
                                http_caller (req)->user_id);
    if (has_ts)
        json_object_set_new (params, "pbx_ts", json_integer (ts));
    auth_user_t user;
    if (s_body_ints (req, ints, params) || s_agent_user (intake, req, agent, &user)) {
        json_decref (params);
        return -1;
    }
    return s_run_then (intake, req, CALLS_ANSWER, params, s_answered);
}

//  POST /api/v1/calls/next: the calling agent takes the highest-priority, oldest waiting call in
//  a language they speak. {"call": the call with the caller's number} or {"call": null}.
static int
s_next (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { NULL };
    if (http_body_only (req, fields))
        return -1;
    const char *me = http_caller (req)->user_id;
    auth_user_t user;
    int found = auth_user_get (intake, me, &user);
    if (found < 0)
        return s_unavailable (req);
    if (found > 0 || user.language_count == 0)
        return http_reply_error (req, 409, "no_languages",
                                 "your profile names no language you speak: calls are routed "
                                 "by language",
                                 NULL);
    json_t *languages = json_array ();
    for (size_t i = 0; i < user.language_count; i++)
        json_array_append_new (languages, json_string (user.languages[i]));
    json_t *params = json_pack ("{s:b, s:s, s:s, s:o}", "next", 1, "agent", me, "by", me,
                                "languages", languages);
    json_t *out = s_run (intake, req, CALLS_ANSWER, params);
    json_decref (params);
    if (!out)
        return -1;
    json_t *c = json_object_get (out, "call");
    if (!json_is_object (c)) {
        json_decref (out);
        return http_reply_json (req, 200, json_pack ("{s:n}", "call"));
    }
    s_audit (intake, req, "update", s_str (c, "id"), "answer_next");
    //  The agent now holds the call and sees the caller's number: a read, audited first.
    bool audited = audit_record_req (intake, req, "read", "call", s_str (c, "id"),
                                     "caller_number") == 0;
    if (!audited)
        gl_error ("calls: call %s taken, its number withheld: the read cannot be audited",
                  s_str (c, "id"));
    json_t *view = s_call_view (c, NULL, audited);
    json_decref (out);
    return http_reply_json (req, 200, json_pack ("{s:o}", "call", view));
}

//  --------------------------------------------------------------------------------------------
//  Transfers and ends

static int
s_transferred (intake_t *intake, http_req_t *req, json_t *out)
{
    json_t *c = json_object_get (out, "call");
    s_audit (intake, req, "update", http_param (req, "id"), "transfer");
    json_t *view = s_call_view (c, s_int_or_null (out, "position"), false);
    json_decref (out);
    return http_reply_json (req, 200, view);
}

//  POST /api/v1/calls/{id}/transfer {target, agent_id?, language?, pbx_ts?, talk_time_ms?,
//  wait_time_ms?}
static int
s_transfer (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "target", "agent_id", "language", "pbx_ts",
                                          "talk_time_ms", "wait_time_ms", NULL };
    static const s_intfield_t ints[]
        = { { "talk_time_ms", "r_talk_ms", 0, S_DURATION_MAX },
            { "wait_time_ms", "r_wait_ms", 0, S_DURATION_MAX },
            { NULL, NULL, 0, 0 } };
    const char *id = s_call_id (req);
    const char *target = NULL, *agent = NULL, *language = NULL;
    bool has_ts;
    int64_t ts;
    if (!id || http_body_only (req, fields)
        || http_body_enum (req, "target", true, s_targets, &target)
        || http_body_id (req, "agent_id", false, &agent)
        || s_body_checked (req, "language", false, CALLS_LANG_MAX, calls_lang_valid,
                           "a language code: [a-z]{2,3}, optionally -subtag", &language)
        || s_pbx_ts (intake, req, &has_ts, &ts))
        return -1;
    bool to_agent = strcmp (target, "agent") == 0;
    if (to_agent && !agent)
        return http_reply_error (req, 400, "missing_field", "a transfer to an agent names them",
                                 "agent_id");
    if (!to_agent && agent)
        return http_reply_error (req, 400, "invalid_field", "only a transfer to an agent names one",
                                 "agent_id");
    if (language && strcmp (target, "queue") != 0)
        return http_reply_error (req, 400, "invalid_field",
                                 "only a transfer back to the queue takes a language", "language");
    json_t *params = json_pack ("{s:s, s:s, s:s}", "id", id, "target", target, "by",
                                http_caller (req)->user_id);
    if (agent)
        json_object_set_new (params, "agent", json_string (agent));
    if (language)
        json_object_set_new (params, "language", json_string (language));
    if (has_ts)
        json_object_set_new (params, "pbx_ts", json_integer (ts));
    s_set_actor (req, params);
    auth_user_t user;
    if (s_body_ints (req, ints, params) || (agent && s_agent_user (intake, req, agent, &user))) {
        json_decref (params);
        return -1;
    }
    return s_run_then (intake, req, CALLS_TRANSFER, params, s_transferred);
}

static int
s_ended (intake_t *intake, http_req_t *req, json_t *out)
{
    const char *id = http_param (req, "id");
    json_t *c = json_object_get (out, "call");
    s_audit (intake, req, "update", id, "end");
    //  Verification grants live as long as the call: withdraw them now (they also expire).
    if (callers_context_end (intake->callers, id) != 0)
        gl_warn ("calls: grants of an ended call could not be withdrawn; they expire on time");
    json_t *view = s_call_view (c, NULL, false);
    json_decref (out);
    return http_reply_json (req, 200, view);
}

//  POST /api/v1/calls/{id}/end {talk_time_ms?, hold_time_ms?, wait_time_ms?, ended_by?,
//  pbx_ts?}
static int
s_end (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "talk_time_ms", "hold_time_ms", "wait_time_ms",
                                          "ended_by", "pbx_ts", NULL };
    static const s_intfield_t ints[]
        = { { "talk_time_ms", "r_talk_ms", 0, S_DURATION_MAX },
            { "hold_time_ms", "r_hold_ms", 0, S_DURATION_MAX },
            { "wait_time_ms", "r_wait_ms", 0, S_DURATION_MAX },
            { NULL, NULL, 0, 0 } };
    const char *id = s_call_id (req);
    const char *ended_by = NULL;
    bool has_ts;
    int64_t ts;
    if (!id || http_body_only (req, fields)
        || http_body_enum (req, "ended_by", false, s_ended_by, &ended_by)
        || s_pbx_ts (intake, req, &has_ts, &ts))
        return -1;
    json_t *params = json_pack ("{s:s, s:s}", "id", id, "by", http_caller (req)->user_id);
    if (ended_by)
        json_object_set_new (params, "ended_by", json_string (ended_by));
    if (has_ts)
        json_object_set_new (params, "pbx_ts", json_integer (ts));
    s_set_actor (req, params);
    if (s_body_ints (req, ints, params)) {
        json_decref (params);
        return -1;
    }
    return s_run_then (intake, req, CALLS_END, params, s_ended);
}

static int
s_left (intake_t *intake, http_req_t *req, json_t *out)
{
    json_t *c = json_object_get (out, "call");
    bool abandoned = strstr (http_route_pattern (req), "/abandon") != NULL;
    s_audit (intake, req, "update", http_param (req, "id"),
             abandoned ? "abandon" : "callback_requested");
    json_t *view = s_call_view (c, NULL, false);
    json_decref (out);
    return http_reply_json (req, 200, view);
}

//  POST /api/v1/calls/{id}/abandon and /callback {wait_time_ms?, position?, orig_position?,
//  pbx_ts?}: a waiting call leaves the queue.
static int
s_leave (intake_t *intake, http_req_t *req, const char *outcome)
{
    static const char *const fields[] = { "wait_time_ms", "position", "orig_position", "pbx_ts",
                                          NULL };
    static const s_intfield_t ints[]
        = { { "wait_time_ms", "r_wait_ms", 0, S_DURATION_MAX },
            { "position", "r_position", 1, S_POSITION_MAX },
            { "orig_position", "r_orig_position", 1, S_POSITION_MAX },
            { NULL, NULL, 0, 0 } };
    const char *id = s_call_id (req);
    bool has_ts;
    int64_t ts;
    if (!id || http_body_only (req, fields) || s_pbx_ts (intake, req, &has_ts, &ts))
        return -1;
    json_t *params = json_pack ("{s:s, s:s}", "id", id, "outcome", outcome);
    if (has_ts)
        json_object_set_new (params, "pbx_ts", json_integer (ts));
    if (s_body_ints (req, ints, params)) {
        json_decref (params);
        return -1;
    }
    return s_run_then (intake, req, CALLS_LEAVE, params, s_left);
}

static int
s_abandon (intake_t *intake, http_req_t *req)
{
    return s_leave (intake, req, "abandoned");
}

static int
s_callback (intake_t *intake, http_req_t *req)
{
    return s_leave (intake, req, "callback_requested");
}

//  --------------------------------------------------------------------------------------------
//  Reading

//  GET /api/v1/calls/{id}. An agent (without a supervisor or API client role) sees only a call
//  they hold or held last, and only they see its caller's number (each read audited).
static int
s_get (intake_t *intake, http_req_t *req)
{
    const char *id = s_call_id (req);
    if (!id)
        return -1;
    json_t *params = json_pack ("{s:s}", "id", id);
    json_t *out = s_run (intake, req, CALLS_GET, params);
    json_decref (params);
    if (!out)
        return -1;
    const http_caller_t *who = http_caller (req);
    json_t *c = json_object_get (out, "call");
    bool mine = strcmp (s_str (c, "agent"), who->user_id) == 0;
    if (!mine && !(who->roles & S_FEEDERS)) {
        json_decref (out);
        return http_reply_error (req, 403, "forbidden", "this call is not yours", NULL);
    }
    if (mine && *s_str (c, "number")
        && audit_record_req (intake, req, "read", "call", id, "caller_number") != 0) {
        json_decref (out);
        return http_reply_error (req, 503, "unavailable", "cannot audit the read now", NULL);
    }
    json_t *position = json_object_get (out, "position");
    json_t *view = s_call_view (c, json_is_integer (position) ? json_incref (position) : NULL,
                                mine);
    json_decref (out);
    return http_reply_json (req, 200, view);
}

int
calls_queue_view (intake_t *intake, const char *language, json_t **view)
{
    assert (intake && view);
    *view = NULL;
    json_t *params = language ? json_pack ("{s:s}", "language", language) : json_object ();
    json_t *out = NULL;
    int rc = params ? calls_run (intake, CALLS_QUEUE, params, &out) : -1;
    json_decref (params);
    if (rc != 0 || json_object_get (out, "error")) {
        json_decref (out);
        return -1;
    }
    int64_t now = gl_now_ms ();
    json_t *calls = json_array ();
    json_t *langs = json_object ();
    size_t i;
    json_t *item;
    json_t *items = json_object_get (out, "items");
    json_array_foreach (items, i, item) {
        int64_t received = s_at (item, "received_at");
        int64_t wait = now > received ? now - received : 0;
        json_array_append_new (
            calls, json_pack ("{s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:I, s:I, s:o}", "call_id",
                              s_str (item, "call_id"), "line", s_str (item, "line"), "language",
                              s_str (item, "language"), "priority", s_str (item, "priority"),
                              "ivr_option", s_str_or_null (item, "ivr_option"), "clock",
                              s_str (item, "clock"), "position", s_int_or_null (item, "position"),
                              "wait_ms", (json_int_t) wait, "offered_at",
                              (json_int_t) s_at (item, "offered_at"), "transfers",
                              s_int_or_null (item, "transfers")));
        json_t *entry = json_object_get (langs, s_str (item, "language"));
        int64_t oldest = entry ? (int64_t) json_integer_value (json_object_get (entry,
                                                                                "oldest_wait_ms"))
                               : -1;
        if (!entry) {
            entry = json_pack ("{s:i, s:i, s:I}", "waiting", 0, "answered", 0, "oldest_wait_ms",
                               (json_int_t) wait);
            json_object_set_new (langs, s_str (item, "language"), entry);
        }
        else if (wait > oldest)
            json_object_set_new (entry, "oldest_wait_ms", json_integer (wait));
    }
    //  The counts: every language, or only the one asked for.
    const char *lang;
    json_t *count;
    json_int_t waiting_total = 0, answered_total = 0;
    json_object_foreach (json_object_get (out, "waiting"), lang, count) {
        if (language && strcmp (lang, language) != 0)
            continue;
        json_t *entry = json_object_get (langs, lang);
        if (!entry) {
            entry = json_pack ("{s:i, s:i, s:n}", "waiting", 0, "answered", 0, "oldest_wait_ms");
            json_object_set_new (langs, lang, entry);
        }
        json_object_set_new (entry, "waiting", json_integer (json_integer_value (count)));
        waiting_total += json_integer_value (count);
    }
    json_object_foreach (json_object_get (out, "answered"), lang, count) {
        if (language && strcmp (lang, language) != 0)
            continue;
        json_t *entry = json_object_get (langs, lang);
        if (!entry) {
            entry = json_pack ("{s:i, s:i, s:n}", "waiting", 0, "answered", 0, "oldest_wait_ms");
            json_object_set_new (langs, lang, entry);
        }
        json_object_set_new (entry, "answered", json_integer (json_integer_value (count)));
        answered_total += json_integer_value (count);
    }
    json_decref (out);
    *view = json_pack ("{s:o, s:o, s:I, s:I, s:I}", "calls", calls, "languages", langs,
                       "waiting", waiting_total, "answered", answered_total, "now",
                       (json_int_t) now);
    return *view ? 0 : -1;
}

//  GET /api/v1/queue?language=: calls_queue_view, which the board stream (board.c) shares.
static int
s_queue (intake_t *intake, http_req_t *req)
{
    static const char *const query[] = { "language", NULL };
    if (http_query_only (req, query))
        return -1;
    const char *language = http_query (req, "language");
    if (language && !calls_lang_valid (language))
        return http_reply_error (req, 400, "invalid_parameter",
                                 "a language code: [a-z]{2,3}, optionally -subtag", "language");
    json_t *view = NULL;
    if (calls_queue_view (intake, language, &view) != 0)
        return s_unavailable (req);
    return http_reply_json (req, 200, view);
}

void
api_calls_routes (intake_t *intake)
{
    http_t *http = intake->http;
    http_route (http, "POST", "/api/v1/calls", S_FEEDERS, s_offer);
    http_route (http, "POST", "/api/v1/calls/not-reached", S_FEEDERS, s_not_reached);
    http_route (http, "POST", "/api/v1/calls/next", S_TAKERS, s_next);
    http_route (http, "GET", "/api/v1/calls/{id}", GL_ROLE_AGENT | S_FEEDERS, s_get);
    http_route (http, "POST", "/api/v1/calls/{id}/answer", S_FEEDERS, s_answer);
    http_route (http, "POST", "/api/v1/calls/{id}/transfer", GL_ROLE_AGENT | S_FEEDERS,
                s_transfer);
    http_route (http, "POST", "/api/v1/calls/{id}/end", GL_ROLE_AGENT | S_FEEDERS, s_end);
    http_route (http, "POST", "/api/v1/calls/{id}/abandon", S_FEEDERS, s_abandon);
    http_route (http, "POST", "/api/v1/calls/{id}/callback", S_FEEDERS, s_callback);
    http_route (http, "GET", "/api/v1/queue", S_TAKERS, s_queue);
}
