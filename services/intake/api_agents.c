/*  api_agents — agent state and the shift plan over HTTP (docs/api/agents.md): an agent sets
    their own state, supervisors see every agent, force one offline, read an agent's timeline
    with its occupancy, and plan the shifts of a day.
*/
#include "agents.h"
#include "audit.h"
#include "auth.h"
#include "calls.h"
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_TAKERS    (GL_ROLE_AGENT | GL_ROLE_SUPERVISOR)    //  people who take calls
#define S_WATCHERS  (GL_ROLE_SUPERVISOR | GL_ROLE_ADMIN)

static int
s_unavailable (http_req_t *req)
{
    return http_reply_error (req, 503, "unavailable", "redis unreachable, retry later", NULL);
}

//  Read user id into *user. 0; or answers 404 (no such user; field names the field at fault,
//  NULL for the path) or 503, and returns -1.
static int
s_user (intake_t *intake, http_req_t *req, const char *id, const char *field, auth_user_t *user)
{
    int rc = gl_id_valid (id) ? auth_user_get (intake, id, user) : 1;
    if (rc < 0) {
        s_unavailable (req);
        return -1;
    }
    if (rc > 0) {
        http_reply_error (req, 404, "not_found", "no such user", field);
        return -1;
    }
    return 0;
}

//  A change was made: record it in the audit trail. A failure is logged, not answered: the
//  change stands.
static void
s_audit_change (intake_t *intake, http_req_t *req, const char *type, const char *id,
                const char *detail)
{
    if (audit_record_req (intake, req, "update", type, id, detail) != 0)
        gl_error ("agents: the audit entry of a %s change (%s) could not be written", type, id);
}

//  The reason code of a state change: optional, [a-z0-9_]{1,32}.
static int
s_reason (http_req_t *req, const char **reason)
{
    if (http_body_str (req, "reason", false, CALLS_CODE_MAX, reason))
        return -1;
    if (*reason && !calls_code_valid (*reason)) {
        http_reply_error (req, 400, "invalid_field", "a reason is a code: [a-z0-9_], 1..32",
                          "reason");
        return -1;
    }
    return 0;
}

//  Answer a state change (rc and out as agents_set_state gives them; out taken): the agent's
//  new view, 200.
static int
s_changed (intake_t *intake, http_req_t *req, int rc, json_t *out, const char *agent_id,
           bool force, const auth_user_t *user)
{
    if (rc != 0)
        return s_unavailable (req);
    if (json_object_get (out, "error")) {
        calls_reply_script_error (req, out);
        json_decref (out);
        return -1;
    }
    if (json_is_true (json_object_get (out, "changed"))) {
        //  Made already: its entry need not hold the answer back.
        if (audit_record_req_later (intake, req, "update", "agent", agent_id,
                                    force ? "force_offline" : "state")
            != 0)
            gl_error ("agents: the audit entry of an agent change (%s) could not be written",
                      agent_id);
    }
    json_t *view = agents_view_from_hash (agent_id, json_object_get (out, "agent"), user);
    json_decref (out);
    return http_reply_json (req, 200, view);
}

//  A state change waiting for its script (over the asynchronous connection).
typedef struct {
    http_req_t *req;                    //  deferred
    char agent_id[GL_ID_LEN + 1];
    bool force;
    auth_user_t user;
} s_changing_t;

static void
s_on_changed (intake_t *intake, int rc, json_t *out, void *arg)
{
    s_changing_t *c = arg;
    s_changed (intake, c->req, rc, out, c->agent_id, c->force, &c->user);
    free (c);
}

//  Run a state change and answer it: asynchronously when the connection for it is up.
static int
s_change (intake_t *intake, http_req_t *req, const char *agent_id, const char *to,
          const char *reason, bool force, const auth_user_t *user)
{
    const char *by = http_caller (req)->user_id;
    s_changing_t *c = malloc (sizeof *c);
    int rc = c ? agents_set_state_async (intake, agent_id, to, reason, by, force, s_on_changed, c)
               : -1;
    if (rc == 0) {
        c->req = req;
        snprintf (c->agent_id, sizeof c->agent_id, "%s", agent_id);
        c->force = force;
        c->user = *user;
        http_defer (req);
        return 0;
    }
    free (c);
    if (rc == -2)
        return http_reply_error (req, 503, "unavailable", "too many writes in flight; retry",
                                 NULL);
    json_t *out = NULL;
    rc = agents_set_state (intake, agent_id, to, reason, by, force, &out);
    return s_changed (intake, req, rc, out, agent_id, force, user);
}

//  PUT /api/v1/agents/me/state {state, reason?}
static int
s_me_state (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "state", "reason", NULL };
    const char *state = NULL, *reason = NULL;
    if (http_body_only (req, fields)
        || http_body_enum (req, "state", true, agents_states, &state) || s_reason (req, &reason))
        return -1;
    if (strcmp (state, "on_call") == 0)
        return http_reply_error (req, 409, "invalid_transition",
                                 "on_call is set by answering a call, not by hand", "state");
    const char *me = http_caller (req)->user_id;
    auth_user_t user;
    if (s_user (intake, req, me, NULL, &user))
        return -1;
    return s_change (intake, req, me, state, reason, false, &user);
}

//  GET /api/v1/agents/me
static int
s_me (intake_t *intake, http_req_t *req)
{
    const char *me = http_caller (req)->user_id;
    auth_user_t user;
    if (s_user (intake, req, me, NULL, &user))
        return -1;
    json_t *view = NULL;
    if (agents_read (intake, me, &user, &view) != 0)
        return s_unavailable (req);
    return http_reply_json (req, 200, view);
}

//  GET /api/v1/agents/{id}
static int
s_get (intake_t *intake, http_req_t *req)
{
    const char *id = http_param (req, "id");
    auth_user_t user;
    if (s_user (intake, req, id, NULL, &user))
        return -1;
    json_t *view = NULL;
    if (agents_read (intake, id, &user, &view) != 0)
        return s_unavailable (req);
    return http_reply_json (req, 200, view);
}

//  POST /api/v1/agents/{id}/force-offline {reason?}: reason defaults to "forced".
static int
s_force_offline (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "reason", NULL };
    const char *reason = "forced";
    if (http_body_only (req, fields) || s_reason (req, &reason))
        return -1;
    const char *id = http_param (req, "id");
    auth_user_t user;
    if (s_user (intake, req, id, NULL, &user))
        return -1;
    return s_change (intake, req, id, "offline", reason, true, &user);
}

int
agents_list (intake_t *intake, const char *after, int limit, json_t **items,
             char next[GL_ID_LEN + 1])
{
    assert (intake && items && next && limit > 0);
    *items = NULL;
    *next = 0;
    char min[GL_ID_LEN + 2] = "-";
    if (after) {
        assert (gl_id_valid (after));
        min[0] = '(';
        memcpy (min + 1, after, GL_ID_LEN + 1);     //  a valid id: exactly GL_ID_LEN
    }
    redisReply *ids = gl_redis_cmd (intake->redis, "ZRANGEBYLEX " CALLS_PREFIX "agents %s + "
                                    "LIMIT 0 %d", min, limit + 1);
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        if (ids)
            freeReplyObject (ids);
        return -1;
    }
    size_t n = ids->elements > (size_t) limit ? (size_t) limit : ids->elements;
    json_t *list = json_array ();
    int rc = list ? 0 : -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *id = ids->element[i]->str;
        if (ids->element[i]->type != REDIS_REPLY_STRING || !gl_id_valid (id))
            continue;
        //  The user's view gives the languages and the display name in one read.
        json_t *user = NULL, *view = NULL;
        int found = auth_user_view (intake, id, &user);
        rc = found < 0 ? -1 : agents_read (intake, id, NULL, &view);
        if (view) {
            const char *display = json_string_value (json_object_get (user, "display_name"));
            json_t *languages = json_object_get (user, "languages");
            if (json_is_array (languages))
                json_object_set (view, "languages", languages);
            json_object_set_new (view, "display_name", json_string (display ? display : ""));
            json_array_append_new (list, view);
        }
        json_decref (user);
    }
    if (rc == 0 && ids->elements > (size_t) limit && n > 0)
        snprintf (next, GL_ID_LEN + 1, "%s", ids->element[n - 1]->str);
    freeReplyObject (ids);
    if (rc != 0) {
        json_decref (list);
        return -1;
    }
    *items = list;
    return 0;
}

//  GET /api/v1/agents?limit&cursor: agents_list, which the board stream (board.c) shares.
static int
s_list (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "limit", "cursor", NULL };
    http_page_t page;
    if (http_query_only (req, params) || http_page (req, &page))
        return -1;
    if (page.has_cursor && !gl_id_valid (page.cursor))
        return http_reply_error (req, 400, "invalid_parameter", "not a cursor of this list",
                                 "cursor");
    json_t *items = NULL;
    char next[GL_ID_LEN + 1];
    if (agents_list (intake, page.has_cursor ? page.cursor : NULL, page.limit, &items, next)
        != 0)
        return s_unavailable (req);
    return http_reply_page (req, items, *next ? next : NULL);
}

//  A query parameter holding unix ms; def when absent. 0, or answers 400 and returns -1.
static int
s_query_ms (http_req_t *req, const char *name, int64_t def, int64_t *out)
{
    const char *text = http_query (req, name);
    *out = def;
    if (!text)
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (errno || end == text || *end || v < 0 || v > 32503680000000LL) {
        http_reply_error (req, 400, "invalid_parameter", "expected unix milliseconds", name);
        return -1;
    }
    *out = v;
    return 0;
}

//  GET /api/v1/agents/{id}/timeline?from&to: default the last 24 hours.
static int
s_timeline (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "from", "to", NULL };
    int64_t now = gl_now_ms ();
    int64_t from, to;
    if (http_query_only (req, params) || s_query_ms (req, "to", now, &to)
        || s_query_ms (req, "from", to - 86400000, &from))
        return -1;
    if (from >= to)
        return http_reply_error (req, 400, "invalid_parameter", "from must be before to", "from");
    if (to - from > AGENTS_TIMELINE_RANGE_MAX)
        return http_reply_error (req, 400, "invalid_parameter", "a timeline spans at most 31 days",
                                 "from");
    const char *id = http_param (req, "id");
    auth_user_t user;
    if (s_user (intake, req, id, NULL, &user))
        return -1;
    json_t *out = NULL;
    int rc = agents_timeline (intake, id, from, to, &out);
    if (rc < 0)
        return s_unavailable (req);
    if (rc > 0)
        return http_reply_error (req, 400, "invalid_parameter",
                                 "too many transitions in this range: narrow it", "from");
    return http_reply_json (req, 200, out);
}

//  --------------------------------------------------------------------------------------------
//  The shift plan of a day

//  YYYY-MM-DD, a real date between 2000 and 2199.
static bool
s_date_valid (const char *s)
{
    int y, m, d, n = 0;
    if (!s || strlen (s) != 10 || sscanf (s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10
        || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (y < 2000 || y > 2199 || m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days[m - 1] + (m == 2 && leap ? 1 : 0);
}

//  "HH:MM" as minutes of the day; "24:00" only as an end. -1 when malformed.
static int
s_minutes (const char *s, bool end)
{
    if (!s || strlen (s) != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !end)))
        return -1;
    return h * 60 + m;
}

static int
s_shift_error (http_req_t *req, size_t i, const char *key, const char *code, const char *message)
{
    char field[64];
    if (key)
        snprintf (field, sizeof field, "shifts[%zu].%s", i, key);
    else
        snprintf (field, sizeof field, "shifts[%zu]", i);
    http_reply_error (req, 400, code, message, field);
    return -1;
}

//  One shift {agent_id, start, end}: every key, nothing else, a user, start before end.
static int
s_shift_check (intake_t *intake, http_req_t *req, size_t i, json_t *shift, int *start, int *end)
{
    static const char *const keys[] = { "agent_id", "start", "end" };
    if (!json_is_object (shift))
        return s_shift_error (req, i, NULL, "invalid_field", "a shift is an object");
    const char *key;
    json_t *value;
    json_object_foreach (shift, key, value) {
        bool known = false;
        for (size_t k = 0; k < 3; k++)
            known = known || strcmp (key, keys[k]) == 0;
        if (!known) {
            char field[64];
            snprintf (field, sizeof field, "shifts[%zu].%.32s", i, key);
            http_reply_error (req, 400, "unknown_field", "unknown field", field);
            return -1;
        }
    }
    for (size_t k = 0; k < 3; k++)
        if (!json_string_length (json_object_get (shift, keys[k])))
            return s_shift_error (req, i, keys[k],
                                  json_object_get (shift, keys[k]) ? "invalid_field"
                                                                   : "missing_field",
                                  "a non-empty string is required");
    const char *agent = json_string_value (json_object_get (shift, "agent_id"));
    *start = s_minutes (json_string_value (json_object_get (shift, "start")), false);
    *end = s_minutes (json_string_value (json_object_get (shift, "end")), true);
    if (!gl_id_valid (agent))
        return s_shift_error (req, i, "agent_id", "invalid_field", "not an id");
    if (*start < 0)
        return s_shift_error (req, i, "start", "invalid_field", "expected HH:MM, 00:00..23:59");
    if (*end < 0)
        return s_shift_error (req, i, "end", "invalid_field", "expected HH:MM, 00:01..24:00");
    if (*end <= *start)
        return s_shift_error (req, i, "end", "invalid_field",
                              "a shift ends after it starts (split a night shift at 24:00)");
    auth_user_t user;
    int found = auth_user_get (intake, agent, &user);
    if (found < 0) {
        s_unavailable (req);
        return -1;
    }
    if (found > 0)
        return s_shift_error (req, i, "agent_id", "invalid_field", "no such user");
    return 0;
}

//  PUT /api/v1/shifts/{date} {shifts: [{agent_id, start, end}]}: the whole plan of the day.
static int
s_shift_put (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "shifts", NULL };
    const char *date = http_param (req, "date");
    if (!s_date_valid (date))
        return http_reply_error (req, 404, "not_found", "not a date (YYYY-MM-DD)", NULL);
    if (http_body_only (req, fields))
        return -1;
    json_t *shifts = json_object_get (http_body (req), "shifts");
    if (!shifts)
        return http_reply_error (req, 400, "missing_field", "shifts is required", "shifts");
    if (!json_is_array (shifts) || json_array_size (shifts) > AGENTS_SHIFTS_MAX)
        return http_reply_error (req, 400, "invalid_field", "an array of at most 500 shifts",
                                 "shifts");
    size_t n = json_array_size (shifts);
    int *starts = calloc (n + 1, sizeof (int));
    int *ends = calloc (n + 1, sizeof (int));
    if (!starts || !ends) {
        free (starts);
        free (ends);
        return http_reply_error (req, 500, "internal", "out of memory", NULL);
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = s_shift_check (intake, req, i, json_array_get (shifts, i), &starts[i], &ends[i]);
    //  One agent's shifts on one day do not overlap.
    for (size_t i = 0; i < n && rc == 0; i++)
        for (size_t j = 0; j < i && rc == 0; j++)
            if (json_equal (json_object_get (json_array_get (shifts, i), "agent_id"),
                            json_object_get (json_array_get (shifts, j), "agent_id"))
                && starts[i] < ends[j] && starts[j] < ends[i])
                rc = s_shift_error (req, i, NULL, "invalid_field",
                                    "overlaps another shift of the same agent");
    free (starts);
    free (ends);
    if (rc != 0)
        return -1;
    const char *by = http_caller (req)->user_id;
    json_t *plan = json_pack ("{s:s, s:O, s:I, s:s}", "date", date, "shifts", shifts,
                              "updated_at", (json_int_t) gl_now_ms (), "updated_by", by);
    if (!plan || agents_plan_store (intake, date, plan, by) != 0) {
        json_decref (plan);
        return s_unavailable (req);
    }
    s_audit_change (intake, req, "shift", date, "plan");
    return http_reply_json (req, 200, plan);
}

//  GET /api/v1/shifts/{date}: the plan, each shift with its agent's state now (planned against
//  present). A day without a plan has no shifts.
static int
s_shift_get (intake_t *intake, http_req_t *req)
{
    const char *date = http_param (req, "date");
    if (!s_date_valid (date))
        return http_reply_error (req, 404, "not_found", "not a date (YYYY-MM-DD)", NULL);
    redisReply *r = gl_redis_cmd (intake->redis, "GET " CALLS_PREFIX "shift:%s", date);
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) {
        if (r)
            freeReplyObject (r);
        return s_unavailable (req);
    }
    json_t *plan = r->type == REDIS_REPLY_STRING ? json_loadb (r->str, r->len, 0, NULL) : NULL;
    freeReplyObject (r);
    if (!plan)
        plan = json_pack ("{s:s, s:[], s:n, s:n}", "date", date, "shifts", "updated_at",
                          "updated_by");
    json_t *shifts = json_object_get (plan, "shifts");
    size_t i;
    json_t *shift;
    json_array_foreach (shifts, i, shift) {
        json_t *view = NULL;
        const char *agent = json_string_value (json_object_get (shift, "agent_id"));
        if (!agent || agents_read (intake, agent, NULL, &view) != 0) {
            json_decref (plan);
            return s_unavailable (req);
        }
        json_object_set (shift, "state", json_object_get (view, "state"));
        json_object_set_new (shift, "present", json_boolean (strcmp (json_string_value (
                                                   json_object_get (view, "state")), "offline")
                                                             != 0));
        json_decref (view);
    }
    return http_reply_json (req, 200, plan);
}

void
api_agents_routes (intake_t *intake)
{
    http_t *http = intake->http;
    http_route (http, "GET", "/api/v1/agents", S_WATCHERS, s_list);
    http_route (http, "GET", "/api/v1/agents/me", S_TAKERS, s_me);
    http_route (http, "PUT", "/api/v1/agents/me/state", S_TAKERS, s_me_state);
    http_route (http, "GET", "/api/v1/agents/{id}", S_WATCHERS, s_get);
    http_route (http, "GET", "/api/v1/agents/{id}/timeline", S_WATCHERS, s_timeline);
    http_route (http, "POST", "/api/v1/agents/{id}/force-offline", GL_ROLE_SUPERVISOR,
                s_force_offline);
    http_route (http, "PUT", "/api/v1/shifts/{date}", GL_ROLE_SUPERVISOR, s_shift_put);
    http_route (http, "GET", "/api/v1/shifts/{date}", GL_ROLE_STAFF & ~GL_ROLE_PROTECTION,
                s_shift_get);
}
