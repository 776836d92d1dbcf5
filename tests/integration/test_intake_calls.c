/*  intake's agent states and live call queue over real HTTP: gl-intake as a process against a
    private redis-server, its business clock driven through GL_CLOCK_FILE, users and an API
    client made through the accounts API.

    Role checks on every route of agents and calls; agent states and their validation; the
    whole call state machine with every impossible transition (409 naming the state); transfers
    to an agent, back to the queue and out; routing by language and priority (emergency jumps
    the queue); positions and waits from the offer; PBX timestamps (order, plausibility, one
    clock per call, a day replayed in a moment) and repeated offers; calls that never reached an
    agent; occupancy from the timeline; force offline (also during a call); the shift plan;
    SIGKILL and restart with the queue and the agents intact; the events in intake's log (ids,
    codes and times, never a phone number) and no phone number in intake's own log.

    ctest: timeout=300 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define T_WAIT_MS       60000
#define T_START_MS      INT64_C(1767225600000)      //  2026-01-01T00:00:00Z
#define T_ADMIN_PASS    "adminpass"
#define T_SKEW_MS       60000                       //  GL_INTAKE_PBX_SKEW_MS in this test

#include "gl_testhttp.h"
#include "gl_testintake.h"
typedef gl_test_resp_t t_resp_t;
#define t_connect gl_test_http_connect
#define t_free gl_test_http_free

//  --------------------------------------------------------------------------------------------
//  A tiny HTTP/1.1 client (as in test_intake.c): one request per connection.

static int s_http_port;

//  A request with a bearer token (or none) and a JSON body (or none).
static t_resp_t
t_call (const char *method, const char *path, const char *token, const char *body)
{
    return gl_testintake_request (s_http_port, method, path, token, NULL, body);
}

static json_t *
t_json (const t_resp_t *resp)
{
    json_error_t err;
    json_t *json = json_loadb (resp->body, resp->body_len, 0, &err);
    if (!json)
        fprintf (stderr, "not JSON (%s): %s\n", err.text, resp->raw);
    assert_non_null (json);
    return json;
}

//  The request must answer status; returns its JSON body (the caller's).
static json_t *
t_ok (const char *method, const char *path, const char *token, const char *body, int status)
{
    t_resp_t resp = t_call (method, path, token, body);
    if (resp.status != status)
        fprintf (stderr, "%s %s: expected %d, got: %s\n", method, path, status, resp.raw);
    assert_int_equal (resp.status, status);
    json_t *json = t_json (&resp);
    t_free (&resp);
    return json;
}

//  The request must answer the error shape with status, code, field (NULL: null) and a message
//  holding part (NULL: anything).
static void
t_err (const char *method, const char *path, const char *token, const char *body, int status,
       const char *code, const char *field, const char *part)
{
    json_t *json = t_ok (method, path, token, body, status);
    json_t *error = json_object_get (json, "error");
    assert_int_equal (json_object_size (json), 1);
    assert_int_equal (json_object_size (error), 3);
    const char *got = json_string_value (json_object_get (error, "code"));
    const char *message = json_string_value (json_object_get (error, "message"));
    if (strcmp (got, code) != 0 || (part && !strstr (message, part)))
        fprintf (stderr, "%s %s: expected %s (%s), got %s: %s\n", method, path, code,
                 part ? part : "", got, message);
    assert_string_equal (got, code);
    if (part)
        assert_non_null (strstr (message, part));
    json_t *f = json_object_get (error, "field");
    if (field)
        assert_string_equal (json_string_value (f), field);
    else
        assert_true (json_is_null (f));
    json_decref (json);
}

static int
t_status (const char *method, const char *path, const char *token, const char *body)
{
    t_resp_t resp = t_call (method, path, token, body);
    int status = resp.status;
    t_free (&resp);
    return status;
}

static const char *
t_str (const json_t *json, const char *key)
{
    return json_string_value (json_object_get (json, key));
}

static int64_t
t_int (const json_t *json, const char *key)
{
    json_t *v = json_object_get (json, key);
    if (!json_is_integer (v))
        fprintf (stderr, "%s is not an integer\n", key);
    assert_true (json_is_integer (v));
    return (int64_t) json_integer_value (v);
}

//  --------------------------------------------------------------------------------------------
//  The service, its clock, its users

static gl_testredis_t *s_redis;
static pid_t s_intake = -1;
static char s_log_path[200];
static char s_clock_path[200];
static int64_t s_now = T_START_MS;
static char s_env[24][256];
static int s_envc;

typedef struct {
    char id[GL_ID_LEN + 1];
    char token[160];
} t_user_t;

static t_user_t s_admin, s_ana, s_ben, s_carla, s_dina, s_sam, s_pat, s_pbx;

//  Every caller number the test gives intake: none may appear in an event or in intake's log.
static const char *const s_numbers[] = { "+96170000001", "+96170000002", "+96170000003",
                                         "+96170000004", "0790000005", NULL };

static void
t_clock_set (int64_t ms)
{
    char tmp[300];
    snprintf (tmp, sizeof tmp, "%s.tmp", s_clock_path);
    FILE *f = fopen (tmp, "w");
    assert_non_null (f);
    fprintf (f, "%" PRId64 "\n", ms);
    fclose (f);
    assert_int_equal (rename (tmp, s_clock_path), 0);
    s_now = ms;
}

static void
t_advance (int64_t ms)
{
    t_clock_set (s_now + ms);
}

static int
t_wait_ready (void)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (gl_mono_ms () < deadline) {
        t_resp_t resp = t_call ("GET", "/ready", NULL, NULL);
        int status = resp.status;
        t_free (&resp);
        if (status == 200)
            return 0;
        gl_sleep_ms (100);
    }
    return -1;
}

static void
t_login (const char *username, const char *password, t_user_t *user)
{
    char body[256];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", username, password);
    json_t *json = t_ok ("POST", "/api/v1/auth/login", NULL, body, 200);
    snprintf (user->token, sizeof user->token, "%s", t_str (json, "token"));
    snprintf (user->id, sizeof user->id, "%s", t_str (json_object_get (json, "user"), "id"));
    json_decref (json);
}

static void
t_make_user (const char *username, const char *roles, const char *languages, t_user_t *user)
{
    char body[512], password[64];
    snprintf (password, sizeof password, "password-%s", username);
    snprintf (body, sizeof body,
              "{\"username\":\"%s\",\"password\":\"%s\",\"roles\":%s,\"units\":[\"unit-a\"],"
              "\"languages\":%s,\"display_name\":\"Test %s\"}",
              username, password, roles, languages, username);
    json_decref (t_ok ("POST", "/api/v1/users", s_admin.token, body, 201));
    t_login (username, password, user);
}

static pid_t
t_spawn_intake (void)
{
    char *env[25];
    for (int i = 0; i < s_envc; i++)
        env[i] = s_env[i];
    env[s_envc] = NULL;
    char *argv[] = { "gl-intake", NULL };
    return gl_test_spawn (gl_test_build_path ("services/intake/gl-intake"), argv, env,
                          s_log_path);
}

static int
t_setup (void **state)
{
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    s_http_port = gl_test_free_port ();
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-intake-calls-%d.log", (int) getpid ());
    snprintf (s_clock_path, sizeof s_clock_path, "/tmp/gl-test-intake-calls-%d.clock",
              (int) getpid ());
    unlink (s_log_path);
    t_clock_set (T_START_MS);
    int n = 0;
    snprintf (s_env[n++], 256, "GL_REDIS_HOST=127.0.0.1");
    snprintf (s_env[n++], 256, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (s_env[n++], 256, "GL_HTTP_PORT=%d", s_http_port);
    snprintf (s_env[n++], 256, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    snprintf (s_env[n++], 256, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (s_env[n++], 256, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (s_env[n++], 256, "GL_SOURCE=intake-1");
    snprintf (s_env[n++], 256, "GL_BUS_TOKENS=tok-calls-test");
    snprintf (s_env[n++], 256, "GL_LOG_LEVEL=debug");
    snprintf (s_env[n++], 256, "GL_CLOCK_FILE=%s", s_clock_path);
    snprintf (s_env[n++], 256, "GL_INTAKE_BOOTSTRAP_ADMIN=admin:" T_ADMIN_PASS);
    snprintf (s_env[n++], 256, "GL_INTAKE_ARGON2_OPSLIMIT=1");
    snprintf (s_env[n++], 256, "GL_INTAKE_ARGON2_MEMLIMIT=8192");
    snprintf (s_env[n++], 256, "GL_INTAKE_SESSION_IDLE_S=86400");
    snprintf (s_env[n++], 256, "GL_INTAKE_SESSION_MAX_S=2592000");
    snprintf (s_env[n++], 256, "GL_INTAKE_PBX_SKEW_MS=%d", T_SKEW_MS);
    snprintf (s_env[n++], 256, "GL_INTAKE_PRIORITY_OPTIONS=emergency,gbv");
    s_envc = n;
    s_intake = t_spawn_intake ();
    if (s_intake < 0 || t_wait_ready () != 0) {
        fprintf (stderr, "gl-intake did not become ready; its log is %s\n", s_log_path);
        return -1;
    }
    t_login ("admin", T_ADMIN_PASS, &s_admin);
    t_make_user ("ana", "[\"agent\"]", "[\"ar\",\"en\"]", &s_ana);
    t_make_user ("ben", "[\"agent\"]", "[\"fr\"]", &s_ben);
    t_make_user ("carla", "[\"agent\"]", "[\"ar\"]", &s_carla);
    t_make_user ("dina", "[\"agent\"]", "[]", &s_dina);
    t_make_user ("sam", "[\"supervisor\"]", "[\"en\"]", &s_sam);
    t_make_user ("pat", "[\"protection\"]", "[\"en\"]", &s_pat);
    json_t *client = t_ok ("POST", "/api/v1/clients", s_admin.token,
                           "{\"name\":\"pbx adapter\",\"roles\":[\"api_client\"]}", 201);
    snprintf (s_pbx.token, sizeof s_pbx.token, "%s", t_str (client, "token"));
    snprintf (s_pbx.id, sizeof s_pbx.id, "%s", t_str (client, "id"));
    json_decref (client);
    return 0;
}

static int
t_teardown (void **state)
{
    if (s_intake > 0)
        gl_test_stop (s_intake, 10000);
    gl_testredis_destroy (&s_redis);
    if (!getenv ("GL_TEST_KEEP_LOGS"))
        unlink (s_log_path);
    unlink (s_clock_path);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Call helpers

//  PUT /agents/me/state; returns the agent's view.
static json_t *
t_state (const t_user_t *who, const char *state)
{
    char body[128];
    snprintf (body, sizeof body, "{\"state\":\"%s\"}", state);
    return t_ok ("PUT", "/api/v1/agents/me/state", who->token, body, 200);
}

static void
t_available (const t_user_t *who)
{
    json_decref (t_state (who, "available"));
}

//  Offer a call (as the PBX) with a body; copies its id to id; returns the call (caller's).
static json_t *
t_offer_body (const char *body, char id[GL_ID_LEN + 1])
{
    json_t *call = t_ok ("POST", "/api/v1/calls", s_pbx.token, body, 201);
    snprintf (id, GL_ID_LEN + 1, "%s", t_str (call, "id"));
    assert_true (gl_id_valid (id));
    return call;
}

static void
t_offer (const char *language, const char *option, const char *number, char id[GL_ID_LEN + 1])
{
    char body[512];
    int n = snprintf (body, sizeof body, "{\"line\":\"main\",\"language\":\"%s\"", language);
    if (option)
        n += snprintf (body + n, sizeof body - (size_t) n, ",\"ivr_option\":\"%s\"", option);
    if (number)
        n += snprintf (body + n, sizeof body - (size_t) n, ",\"caller_number\":\"%s\"", number);
    snprintf (body + n, sizeof body - (size_t) n, "}");
    json_t *call = t_offer_body (body, id);
    assert_string_equal (t_str (call, "state"), "waiting");
    json_decref (call);
}

static const char *
t_path (const char *id, const char *action)
{
    static char path[256];
    snprintf (path, sizeof path, "/api/v1/calls/%s%s%s", id, action ? "/" : "", action ? action : "");
    return path;
}

//  POST /calls/{id}/<action> with body as who; must answer status; returns the body.
static json_t *
t_act (const t_user_t *who, const char *id, const char *action, const char *body, int status)
{
    return t_ok ("POST", t_path (id, action), who->token, body ? body : "{}", status);
}

static json_t *
t_answer (const char *id, const t_user_t *agent)
{
    char body[128];
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\"}", agent->id);
    return t_act (&s_pbx, id, "answer", body, 200);
}

//  POST /calls/next as who: the call taken (caller's), or NULL when none.
static json_t *
t_next (const t_user_t *who)
{
    json_t *json = t_ok ("POST", "/api/v1/calls/next", who->token, NULL, 200);
    json_t *call = json_incref (json_object_get (json, "call"));
    json_decref (json);
    if (json_is_null (call)) {
        json_decref (call);
        return NULL;
    }
    return call;
}

static json_t *
t_agent (const t_user_t *who)
{
    char path[128];
    snprintf (path, sizeof path, "/api/v1/agents/%s", who->id);
    return t_ok ("GET", path, s_sam.token, NULL, 200);
}

static void
t_assert_agent (const t_user_t *who, const char *state, const char *call_id)
{
    json_t *agent = t_agent (who);
    if (strcmp (t_str (agent, "state"), state) != 0)
        fprintf (stderr, "agent %s is %s, expected %s\n", who->id, t_str (agent, "state"), state);
    assert_string_equal (t_str (agent, "state"), state);
    if (call_id)
        assert_string_equal (t_str (agent, "call_id"), call_id);
    else
        assert_true (json_is_null (json_object_get (agent, "call_id")));
    json_decref (agent);
}

static json_t *
t_queue (const t_user_t *who, const char *query)
{
    char path[128];
    snprintf (path, sizeof path, "/api/v1/queue%s", query ? query : "");
    return t_ok ("GET", path, who->token, NULL, 200);
}

static size_t
t_queue_waiting (void)
{
    json_t *q = t_queue (&s_sam, NULL);
    size_t n = (size_t) t_int (q, "waiting");
    json_decref (q);
    return n;
}

//  --------------------------------------------------------------------------------------------
//  Tests

//  Every route of agents and calls refuses the roles it does not name (before looking at the
//  body), and a missing credential.
static void
test_roles (void **state)
{
    char some[GL_ID_LEN + 1], path[256];
    gl_id_new (some);
    static const struct {
        const char *method;
        const char *path;       //  %s: an id
        const char *allowed;    //  a: agent, s: supervisor, p: protection, d: admin, c: client
    } routes[] = {
        { "GET", "/api/v1/agents", "sd" },
        { "GET", "/api/v1/agents/me", "as" },
        { "PUT", "/api/v1/agents/me/state", "as" },
        { "GET", "/api/v1/agents/%s", "sd" },
        { "GET", "/api/v1/agents/%s/timeline", "sd" },
        { "POST", "/api/v1/agents/%s/force-offline", "s" },
        { "PUT", "/api/v1/shifts/2026-01-02", "s" },
        { "GET", "/api/v1/shifts/2026-01-02", "asd" },
        { "POST", "/api/v1/calls", "sc" },
        { "POST", "/api/v1/calls/not-reached", "sc" },
        { "POST", "/api/v1/calls/next", "as" },
        { "GET", "/api/v1/calls/%s", "asc" },
        { "POST", "/api/v1/calls/%s/answer", "sc" },
        { "POST", "/api/v1/calls/%s/transfer", "asc" },
        { "POST", "/api/v1/calls/%s/end", "asc" },
        { "POST", "/api/v1/calls/%s/abandon", "sc" },
        { "POST", "/api/v1/calls/%s/callback", "sc" },
        { "GET", "/api/v1/queue", "as" },
    };
    const struct {
        char code;
        const t_user_t *user;
    } roles[] = { { 'a', &s_ana }, { 's', &s_sam }, { 'p', &s_pat }, { 'd', &s_admin },
                  { 'c', &s_pbx } };
    for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++) {
        snprintf (path, sizeof path, routes[r].path, some);
        bool takes_body = strcmp (routes[r].method, "GET") != 0;
        const char *body = takes_body ? "{\"nonsense\":1}" : NULL;
        t_err (routes[r].method, path, NULL, body, 401, "unauthorized", NULL, NULL);
        for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) {
            int status = t_status (routes[r].method, path, roles[k].user->token, body);
            bool allowed = strchr (routes[r].allowed, roles[k].code) != NULL;
            if (allowed ? status == 403 : status != 403)
                fprintf (stderr, "%s %s as %c: %d\n", routes[r].method, path, roles[k].code,
                         status);
            if (allowed)
                assert_int_not_equal (status, 403);
            else
                assert_int_equal (status, 403);
        }
    }
}

static void
test_agent_state (void **state)
{
    //  Never seen: offline, with the languages of the user record.
    json_t *me = t_ok ("GET", "/api/v1/agents/me", s_ana.token, NULL, 200);
    assert_string_equal (t_str (me, "agent_id"), s_ana.id);
    assert_string_equal (t_str (me, "state"), "offline");
    assert_true (json_is_null (json_object_get (me, "since")));
    json_t *langs = json_object_get (me, "languages");
    assert_int_equal (json_array_size (langs), 2);
    assert_string_equal (json_string_value (json_array_get (langs, 0)), "ar");
    json_decref (me);

    me = t_state (&s_ana, "available");
    assert_string_equal (t_str (me, "state"), "available");
    assert_int_equal (t_int (me, "since"), s_now);
    assert_string_equal (t_str (me, "changed_by"), s_ana.id);
    json_decref (me);

    const char *path = "/api/v1/agents/me/state";
    t_err ("PUT", path, s_ana.token, "{\"state\":\"sleeping\"}", 400, "invalid_field", "state",
           NULL);
    t_err ("PUT", path, s_ana.token, "{}", 400, "missing_field", "state", NULL);
    t_err ("PUT", path, s_ana.token, "{\"state\":\"break\",\"colour\":\"red\"}", 400,
           "unknown_field", "colour", NULL);
    t_err ("PUT", path, s_ana.token, "{\"state\":\"break\",\"reason\":\"Lunch!\"}", 400,
           "invalid_field", "reason", NULL);
    t_err ("PUT", path, s_ana.token, "{\"state\":\"on_call\"}", 409, "invalid_transition",
           "state", "answering a call");

    t_advance (1000);
    me = t_ok ("PUT", path, s_ana.token, "{\"state\":\"break\",\"reason\":\"lunch\"}", 200);
    assert_string_equal (t_str (me, "state"), "break");
    assert_string_equal (t_str (me, "reason_code"), "lunch");
    assert_int_equal (t_int (me, "since"), s_now);
    json_decref (me);
    //  The same state and reason again is no change: since stays.
    t_advance (1000);
    me = t_ok ("PUT", path, s_ana.token, "{\"state\":\"break\",\"reason\":\"lunch\"}", 200);
    assert_int_equal (t_int (me, "since"), s_now - 1000);
    json_decref (me);

    //  Supervisors see every agent; a page at a time.
    t_available (&s_ben);
    t_available (&s_carla);
    json_t *page = t_ok ("GET", "/api/v1/agents?limit=2", s_sam.token, NULL, 200);
    json_t *items = json_object_get (page, "items");
    assert_int_equal (json_array_size (items), 2);
    const char *cursor = t_str (page, "next_cursor");
    assert_non_null (cursor);
    char next[256];
    snprintf (next, sizeof next, "/api/v1/agents?limit=2&cursor=%s", cursor);
    json_t *page2 = t_ok ("GET", next, s_sam.token, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (page2, "items")), 1);
    assert_true (json_is_null (json_object_get (page2, "next_cursor")));
    json_t *all = json_array ();
    json_array_extend (all, items);
    json_array_extend (all, json_object_get (page2, "items"));
    size_t i;
    json_t *agent;
    bool saw_ana = false;
    json_array_foreach (all, i, agent)
        if (strcmp (t_str (agent, "agent_id"), s_ana.id) == 0) {
            saw_ana = true;
            assert_string_equal (t_str (agent, "state"), "break");
        }
    assert_true (saw_ana);
    json_decref (all);
    json_decref (page);
    json_decref (page2);
    t_err ("GET", "/api/v1/agents?cursor=bm9wZQ", s_sam.token, NULL, 400, "invalid_parameter",
           "cursor", NULL);

    char unknown[GL_ID_LEN + 1], p[128];
    gl_id_new (unknown);
    snprintf (p, sizeof p, "/api/v1/agents/%s", unknown);
    t_err ("GET", p, s_sam.token, NULL, 404, "not_found", NULL, NULL);
    t_err ("GET", "/api/v1/agents/not-an-id", s_sam.token, NULL, 404, "not_found", NULL, NULL);
    t_available (&s_ana);
}

//  Every transition of the state machine, and every impossible one refused with 409 naming
//  the state the call is in.
static void
test_call_state_machine (void **state)
{
    char id[GL_ID_LEN + 1];
    t_offer ("ar", NULL, s_numbers[0], id);
    json_t *call = t_ok ("GET", t_path (id, NULL), s_sam.token, NULL, 200);
    assert_string_equal (t_str (call, "state"), "waiting");
    assert_string_equal (t_str (call, "clock"), "intake");
    assert_string_equal (t_str (call, "priority"), "normal");
    assert_int_equal (t_int (call, "position"), 1);
    assert_int_equal (t_int (call, "orig_position"), 1);
    assert_int_equal (t_int (call, "offered_at"), s_now);
    //  A supervisor does not see the caller's number.
    assert_null (json_object_get (call, "caller_number"));
    json_decref (call);
    //  An agent sees only the calls they hold.
    t_err ("GET", t_path (id, NULL), s_ana.token, NULL, 403, "forbidden", NULL, NULL);

    t_err ("POST", t_path (id, "end"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
           "waiting");
    t_err ("POST", t_path (id, "transfer"), s_pbx.token, "{\"target\":\"external\"}", 409,
           "invalid_transition", NULL, "waiting");

    //  The agent must be available and free.
    json_decref (t_state (&s_ben, "break"));
    char body[256];
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\"}", s_ben.id);
    t_err ("POST", t_path (id, "answer"), s_pbx.token, body, 409, "agent_not_available",
           "agent_id", "break");
    char ghost[GL_ID_LEN + 1];
    gl_id_new (ghost);
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\"}", ghost);
    t_err ("POST", t_path (id, "answer"), s_pbx.token, body, 404, "not_found", "agent_id", NULL);
    t_err ("POST", t_path (id, "answer"), s_pbx.token, "{}", 400, "missing_field", "agent_id",
           NULL);
    t_err ("POST", t_path (id, "answer"), s_pbx.token,
           "{\"agent_id\":\"x\"}", 400, "invalid_field", "agent_id", NULL);

    t_advance (7000);
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\",\"ring_time_ms\":4000}", s_ana.id);
    call = t_act (&s_pbx, id, "answer", body, 200);
    assert_string_equal (t_str (call, "state"), "answered");
    assert_string_equal (t_str (call, "agent_id"), s_ana.id);
    assert_int_equal (t_int (call, "wait_ms"), 7000);
    assert_int_equal (t_int (json_object_get (call, "reported"), "ring_ms"), 4000);
    json_decref (call);
    t_assert_agent (&s_ana, "on_call", id);
    //  Now the agent holding it sees it, with the caller's number.
    call = t_ok ("GET", t_path (id, NULL), s_ana.token, NULL, 200);
    assert_string_equal (t_str (call, "caller_number"), s_numbers[0]);
    json_decref (call);
    //  The agent cannot change state while holding a call.
    t_err ("PUT", "/api/v1/agents/me/state", s_ana.token, "{\"state\":\"break\"}", 409,
           "invalid_transition", "state", "on_call");
    //  A busy agent cannot answer another call.
    char other[GL_ID_LEN + 1];
    t_offer ("ar", NULL, NULL, other);
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\"}", s_ana.id);
    t_err ("POST", t_path (other, "answer"), s_pbx.token, body, 409, "agent_busy", "agent_id",
           NULL);

    t_err ("POST", t_path (id, "answer"), s_pbx.token, body, 409, "invalid_transition", NULL,
           "answered");
    t_err ("POST", t_path (id, "abandon"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
           "answered");
    t_err ("POST", t_path (id, "callback"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
           "answered");
    //  Another agent cannot end it.
    t_err ("POST", t_path (id, "end"), s_carla.token, "{}", 403, "forbidden", NULL, NULL);

    t_advance (60000);
    call = t_act (&s_pbx, id, "end",
                  "{\"talk_time_ms\":59000,\"hold_time_ms\":5000,\"ended_by\":\"caller\"}", 200);
    assert_string_equal (t_str (call, "state"), "ended");
    assert_int_equal (t_int (call, "talk_ms"), 60000);
    assert_int_equal (t_int (json_object_get (call, "reported"), "talk_ms"), 59000);
    assert_int_equal (t_int (json_object_get (call, "reported"), "hold_ms"), 5000);
    assert_string_equal (t_str (call, "ended_by"), "caller");
    assert_int_equal (t_int (call, "ended_at"), s_now);
    json_decref (call);
    t_assert_agent (&s_ana, "wrap_up", NULL);

    //  Ended: nothing more.
    t_err ("POST", t_path (id, "end"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
           "ended");
    t_err ("POST", t_path (id, "answer"), s_pbx.token, body, 409, "invalid_transition", NULL,
           "ended");
    t_err ("POST", t_path (id, "abandon"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
           "ended");
    t_err ("POST", t_path (id, "transfer"), s_pbx.token, "{\"target\":\"external\"}", 409,
           "invalid_transition", NULL, "ended");
    t_err ("POST", t_path (id, "callback"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
           "ended");
    //  The agent who held it still reads it (with the number); the others do not.
    call = t_ok ("GET", t_path (id, NULL), s_ana.token, NULL, 200);
    assert_string_equal (t_str (call, "caller_number"), s_numbers[0]);
    json_decref (call);

    //  Abandon: wait and position measured from the offer.
    t_advance (5000);
    call = t_act (&s_pbx, other, "abandon", "{\"position\":1,\"wait_time_ms\":65500}", 200);
    assert_string_equal (t_str (call, "state"), "abandoned");
    assert_int_equal (t_int (call, "wait_ms"), 65000);
    assert_int_equal (t_int (call, "position"), 1);
    assert_int_equal (t_int (json_object_get (call, "reported"), "wait_ms"), 65500);
    json_decref (call);
    t_err ("POST", t_path (other, "abandon"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
           "abandoned");
    t_err ("POST", t_path (other, "answer"), s_pbx.token, body, 409, "invalid_transition", NULL,
           "abandoned");
    t_err ("POST", t_path (other, "end"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
           "abandoned");

    //  Left the queue for a callback: not an abandon.
    char cb[GL_ID_LEN + 1];
    t_offer ("en", NULL, s_numbers[1], cb);
    t_advance (3000);
    call = t_act (&s_pbx, cb, "callback", "{}", 200);
    assert_string_equal (t_str (call, "state"), "not_reached");
    assert_string_equal (t_str (call, "reason"), "callback_requested");
    assert_int_equal (t_int (call, "wait_ms"), 3000);
    json_decref (call);
    t_err ("POST", t_path (cb, "callback"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
           "not_reached");
    t_err ("POST", t_path (cb, "answer"), s_pbx.token, body, 409, "invalid_transition", NULL,
           "not_reached");

    //  Unknown and malformed ids; bad fields.
    char unknown[GL_ID_LEN + 1];
    gl_id_new (unknown);
    t_err ("POST", t_path (unknown, "end"), s_pbx.token, "{}", 404, "not_found", NULL, NULL);
    t_err ("GET", t_path (unknown, NULL), s_pbx.token, NULL, 404, "not_found", NULL, NULL);
    t_err ("POST", "/api/v1/calls/NOT-AN-ID/end", s_pbx.token, "{}", 404, "not_found", NULL,
           NULL);
    t_err ("POST", "/api/v1/calls", s_pbx.token, "{\"line\":\"main\"}", 400, "missing_field",
           "language", NULL);
    t_err ("POST", "/api/v1/calls", s_pbx.token, "{\"line\":\"main\",\"language\":\"Arabic\"}",
           400, "invalid_field", "language", NULL);
    t_err ("POST", "/api/v1/calls", s_pbx.token,
           "{\"line\":\"main\",\"language\":\"ar\",\"caller_number\":\"call me\"}", 400,
           "invalid_field", "caller_number", NULL);
    t_err ("POST", "/api/v1/calls", s_pbx.token,
           "{\"line\":\"main line\",\"language\":\"ar\"}", 400, "invalid_field", "line", NULL);
    t_err ("POST", "/api/v1/calls", s_pbx.token,
           "{\"line\":\"main\",\"language\":\"ar\",\"ivr_option\":\"EMERGENCY!\"}", 400,
           "invalid_field", "ivr_option", NULL);
    t_err ("POST", "/api/v1/calls", s_pbx.token,
           "{\"line\":\"main\",\"language\":\"ar\",\"priority\":\"high\"}", 400,
           "unknown_field", "priority", NULL);
    t_err ("POST", t_path (id, "end"), s_pbx.token, "{\"talk_time_ms\":-5}", 400,
           "invalid_field", "talk_time_ms", NULL);
    t_err ("POST", t_path (id, "end"), s_pbx.token, "{\"ended_by\":\"god\"}", 400,
           "invalid_field", "ended_by", NULL);
    assert_int_equal (t_queue_waiting (), 0);
    t_available (&s_ana);
    t_available (&s_ben);
}

static void
test_transfers (void **state)
{
    char id[GL_ID_LEN + 1], body[256];
    t_offer ("ar", NULL, s_numbers[2], id);
    json_decref (t_answer (id, &s_ana));
    t_advance (30000);

    //  To another agent: who must be available; validation of the target.
    t_err ("POST", t_path (id, "transfer"), s_pbx.token, "{\"target\":\"agent\"}", 400,
           "missing_field", "agent_id", NULL);
    snprintf (body, sizeof body, "{\"target\":\"queue\",\"agent_id\":\"%s\"}", s_carla.id);
    t_err ("POST", t_path (id, "transfer"), s_pbx.token, body, 400, "invalid_field", "agent_id",
           NULL);
    t_err ("POST", t_path (id, "transfer"), s_pbx.token,
           "{\"target\":\"external\",\"language\":\"fr\"}", 400, "invalid_field", "language",
           NULL);
    t_err ("POST", t_path (id, "transfer"), s_pbx.token, "{\"target\":\"moon\"}", 400,
           "invalid_field", "target", NULL);
    snprintf (body, sizeof body, "{\"target\":\"agent\",\"agent_id\":\"%s\"}", s_ana.id);
    t_err ("POST", t_path (id, "transfer"), s_pbx.token, body, 409, "invalid_transition",
           "agent_id", "already");
    //  The agent who holds the call transfers it herself (a line without a PBX).
    snprintf (body, sizeof body, "{\"target\":\"agent\",\"agent_id\":\"%s\"}", s_carla.id);
    json_t *call = t_act (&s_ana, id, "transfer", body, 200);
    assert_string_equal (t_str (call, "state"), "answered");
    assert_string_equal (t_str (call, "agent_id"), s_carla.id);
    assert_string_equal (t_str (call, "first_agent_id"), s_ana.id);
    assert_int_equal (t_int (call, "transfers"), 1);
    json_decref (call);
    t_assert_agent (&s_ana, "wrap_up", NULL);
    t_assert_agent (&s_carla, "on_call", id);
    //  Ana no longer holds it.
    t_err ("POST", t_path (id, "end"), s_ana.token, "{}", 403, "forbidden", NULL, NULL);
    t_err ("GET", t_path (id, NULL), s_ana.token, NULL, 403, "forbidden", NULL, NULL);

    //  Back to the queue, in French this time: it keeps its place (the order of its offer).
    char later[GL_ID_LEN + 1];
    t_offer ("fr", NULL, NULL, later);
    t_advance (10000);
    call = t_act (&s_carla, id, "transfer", "{\"target\":\"queue\",\"language\":\"fr\"}", 200);
    assert_string_equal (t_str (call, "state"), "waiting");
    assert_string_equal (t_str (call, "language"), "fr");
    assert_int_equal (t_int (call, "position"), 1);
    assert_true (json_is_null (json_object_get (call, "agent_id")));
    json_decref (call);
    t_assert_agent (&s_carla, "wrap_up", NULL);
    json_t *q = t_queue (&s_ben, "?language=fr");
    json_t *calls = json_object_get (q, "calls");
    assert_int_equal (json_array_size (calls), 2);
    assert_string_equal (t_str (json_array_get (calls, 0), "call_id"), id);
    assert_int_equal (t_int (json_array_get (calls, 1), "position"), 2);
    json_decref (q);

    //  Ben (French) takes it, and passes it out of the helpline.
    call = t_next (&s_ben);
    assert_non_null (call);
    assert_string_equal (t_str (call, "id"), id);
    assert_string_equal (t_str (call, "caller_number"), s_numbers[2]);
    json_decref (call);
    t_advance (20000);
    call = t_act (&s_ben, id, "transfer", "{\"target\":\"external\"}", 200);
    assert_string_equal (t_str (call, "state"), "transferred");
    //  Talk time: 30 s with ana, 10 s with carla, then 20 s with ben (not the 0 s back in the
    //  queue).
    assert_int_equal (t_int (call, "talk_ms"), 60000);
    assert_int_equal (t_int (call, "transfers"), 3);
    json_decref (call);
    t_assert_agent (&s_ben, "wrap_up", NULL);
    t_err ("POST", t_path (id, "end"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
           "transferred");
    json_decref (t_act (&s_pbx, later, "abandon", "{}", 200));
    t_available (&s_ana);
    t_available (&s_ben);
    t_available (&s_carla);
}

//  POST /calls/next: the highest-priority, oldest call in a language the agent speaks.
static void
test_routing (void **state)
{
    assert_int_equal (t_queue_waiting (), 0);
    char ar_old[GL_ID_LEN + 1], en[GL_ID_LEN + 1], fr[GL_ID_LEN + 1], ar_urgent[GL_ID_LEN + 1];
    char ar_gbv[GL_ID_LEN + 1], ar_new[GL_ID_LEN + 1];
    t_offer ("ar", "information", NULL, ar_old);
    t_advance (1000);
    t_offer ("en", NULL, NULL, en);
    t_advance (1000);
    t_offer ("fr", NULL, NULL, fr);
    t_advance (1000);
    t_offer ("ar", NULL, NULL, ar_new);
    t_advance (1000);
    //  Emergency jumps the queue: first in Arabic although offered later.
    json_t *call = t_offer_body ("{\"line\":\"main\",\"language\":\"ar\",\"ivr_option\":"
                                 "\"emergency\",\"caller_number\":\"+96170000004\"}",
                                 ar_urgent);
    assert_string_equal (t_str (call, "priority"), "emergency");
    assert_int_equal (t_int (call, "orig_position"), 1);
    json_decref (call);
    t_advance (1000);
    //  A second queue-jumping option (GL_INTAKE_PRIORITY_OPTIONS), behind the first.
    call = t_offer_body ("{\"line\":\"gbv\",\"language\":\"ar\",\"ivr_option\":\"gbv\"}", ar_gbv);
    assert_int_equal (t_int (call, "orig_position"), 2);
    json_decref (call);

    //  The queue: routing order, positions per language, waits from the offer, no numbers.
    t_advance (2000);
    json_t *q = t_queue (&s_ana, NULL);
    char *text = json_dumps (q, JSON_COMPACT);
    for (int i = 0; s_numbers[i]; i++)
        assert_null (strstr (text, s_numbers[i]));
    assert_null (strstr (text, "caller_number"));
    free (text);
    assert_int_equal (t_int (q, "waiting"), 6);
    json_t *calls = json_object_get (q, "calls");
    assert_int_equal (json_array_size (calls), 6);
    const char *order[] = { ar_urgent, ar_gbv, ar_old, en, fr, ar_new };
    const int64_t positions[] = { 1, 2, 3, 1, 1, 4 };
    const int64_t waits[] = { 3000, 2000, 7000, 6000, 5000, 4000 };
    for (size_t i = 0; i < 6; i++) {
        json_t *c = json_array_get (calls, i);
        assert_string_equal (t_str (c, "call_id"), order[i]);
        assert_int_equal (t_int (c, "position"), positions[i]);
        assert_int_equal (t_int (c, "wait_ms"), waits[i]);
    }
    json_t *ar = json_object_get (json_object_get (q, "languages"), "ar");
    assert_int_equal (t_int (ar, "waiting"), 4);
    assert_int_equal (t_int (ar, "oldest_wait_ms"), 7000);
    json_decref (q);
    q = t_queue (&s_ben, "?language=en");
    assert_int_equal (json_array_size (json_object_get (q, "calls")), 1);
    assert_int_equal (t_int (q, "waiting"), 1);
    json_decref (q);
    t_err ("GET", "/api/v1/queue?language=ARABIC", s_ben.token, NULL, 400, "invalid_parameter",
           "language", NULL);
    t_err ("GET", "/api/v1/queue?colour=red", s_ben.token, NULL, 400, "unknown_parameter",
           "colour", NULL);

    //  Carla speaks Arabic: the emergency first, then the gbv line.
    call = t_next (&s_carla);
    assert_string_equal (t_str (call, "id"), ar_urgent);
    assert_string_equal (t_str (call, "caller_number"), "+96170000004");
    assert_int_equal (t_int (call, "wait_ms"), 3000);
    json_decref (call);
    t_assert_agent (&s_carla, "on_call", ar_urgent);
    //  Holding a call, she cannot take another.
    t_err ("POST", "/api/v1/calls/next", s_carla.token, NULL, 409, "agent_busy", "agent_id", NULL);
    //  Ana (Arabic, English): the gbv call, then the oldest Arabic call before the English one.
    call = t_next (&s_ana);
    assert_string_equal (t_str (call, "id"), ar_gbv);
    json_decref (call);
    json_decref (t_act (&s_ana, ar_gbv, "end", "{}", 200));
    t_available (&s_ana);
    call = t_next (&s_ana);
    assert_string_equal (t_str (call, "id"), ar_old);
    json_decref (call);
    json_decref (t_act (&s_ana, ar_old, "end", "{}", 200));
    t_available (&s_ana);
    call = t_next (&s_ana);
    assert_string_equal (t_str (call, "id"), en);
    json_decref (call);
    //  Ben: French only.
    call = t_next (&s_ben);
    assert_string_equal (t_str (call, "id"), fr);
    json_decref (call);
    //  An agent who is not available gets nothing; one who speaks no language is told so.
    json_decref (t_state (&s_dina, "available"));
    t_err ("POST", "/api/v1/calls/next", s_dina.token, NULL, 409, "no_languages", NULL, NULL);
    t_err ("POST", "/api/v1/calls/next", s_ben.token, NULL, 409, "agent_busy", "agent_id", NULL);
    json_decref (t_act (&s_ben, fr, "end", "{}", 200));
    //  Ben is in wrap-up now.
    t_err ("POST", "/api/v1/calls/next", s_ben.token, NULL, 409, "agent_not_available",
           "agent_id", "wrap_up");
    t_available (&s_ben);
    assert_null (t_next (&s_ben));
    t_err ("POST", "/api/v1/calls/next", s_ben.token, "{\"language\":\"ar\"}", 400,
           "unknown_field", "language", NULL);

    //  A call timed by the PBX is routed by the PBX: /calls/next leaves it.
    char pbx_call[GL_ID_LEN + 1], body[256];
    snprintf (body, sizeof body, "{\"line\":\"main\",\"language\":\"fr\",\"pbx_ts\":%" PRId64 "}",
              s_now - 500);
    json_decref (t_offer_body (body, pbx_call));
    assert_null (t_next (&s_ben));
    snprintf (body, sizeof body, "{\"pbx_ts\":%" PRId64 "}", s_now);
    json_decref (t_act (&s_pbx, pbx_call, "abandon", body, 200));

    json_decref (t_act (&s_carla, ar_urgent, "end", "{}", 200));
    json_decref (t_act (&s_ana, en, "end", "{}", 200));
    t_available (&s_ana);
    t_available (&s_carla);
    //  The last Arabic call is still there.
    call = t_next (&s_carla);
    assert_string_equal (t_str (call, "id"), ar_new);
    json_decref (call);
    json_decref (t_act (&s_carla, ar_new, "end", "{}", 200));
    t_available (&s_carla);
    assert_int_equal (t_queue_waiting (), 0);
}

//  PBX timestamps: order within a call, plausibility against intake's clock, one clock per
//  call; durations from the PBX's clock whatever intake's says; repeated offers recognised.
static void
test_pbx_timestamps (void **state)
{
    int64_t pbx = s_now - 3 * 3600 * 1000;      //  importing this morning's history
    char id[GL_ID_LEN + 1], body[512];
    snprintf (body, sizeof body,
              "{\"line\":\"main\",\"language\":\"ar\",\"caller_number\":\"%s\",\"pbx_ts\":%" PRId64
              ",\"pbx_call_id\":\"1767214800.42\"}",
              s_numbers[3], pbx);
    json_t *call = t_offer_body (body, id);
    assert_string_equal (t_str (call, "clock"), "pbx");
    assert_int_equal (t_int (call, "offered_at"), pbx);
    assert_int_equal (t_int (call, "received_at"), s_now);
    assert_string_equal (t_str (call, "pbx_call_id"), "1767214800.42");
    json_decref (call);
    //  The same PBX call offered again (a retry): the same call, not a second one.
    json_t *again = t_ok ("POST", "/api/v1/calls", s_pbx.token, body, 200);
    assert_string_equal (t_str (again, "id"), id);
    json_decref (again);
    assert_int_equal (t_queue_waiting (), 1);

    char answer[256];
    snprintf (answer, sizeof answer, "{\"agent_id\":\"%s\",\"pbx_ts\":%" PRId64 "}", s_ana.id,
              pbx - 1);
    t_err ("POST", t_path (id, "answer"), s_pbx.token, answer, 409, "out_of_order", "pbx_ts",
           NULL);
    snprintf (answer, sizeof answer, "{\"agent_id\":\"%s\"}", s_ana.id);
    t_err ("POST", t_path (id, "answer"), s_pbx.token, answer, 409, "clock_mismatch", "pbx_ts",
           NULL);
    snprintf (answer, sizeof answer, "{\"agent_id\":\"%s\",\"pbx_ts\":%" PRId64 "}", s_ana.id,
              s_now + T_SKEW_MS + 1);
    t_err ("POST", t_path (id, "answer"), s_pbx.token, answer, 400, "invalid_field", "pbx_ts",
           "ahead");
    snprintf (answer, sizeof answer, "{\"agent_id\":\"%s\",\"pbx_ts\":%" PRId64 "}", s_ana.id,
              pbx / 1000);
    t_err ("POST", t_path (id, "answer"), s_pbx.token, answer, 400, "invalid_field", "pbx_ts",
           "milliseconds");
    snprintf (answer, sizeof answer, "{\"agent_id\":\"%s\",\"pbx_ts\":\"soon\"}", s_ana.id);
    t_err ("POST", t_path (id, "answer"), s_pbx.token, answer, 400, "invalid_field", "pbx_ts",
           NULL);
    //  Nothing was changed by the refusals.
    t_assert_agent (&s_ana, "available", NULL);

    snprintf (answer, sizeof answer, "{\"agent_id\":\"%s\",\"pbx_ts\":%" PRId64
              ",\"wait_time_ms\":41000,\"ring_time_ms\":3000}", s_ana.id, pbx + 42000);
    call = t_act (&s_pbx, id, "answer", answer, 200);
    assert_int_equal (t_int (call, "answered_at"), pbx + 42000);
    assert_int_equal (t_int (call, "wait_ms"), 42000);
    json_decref (call);
    snprintf (body, sizeof body, "{\"pbx_ts\":%" PRId64 "}", pbx + 10000);
    t_err ("POST", t_path (id, "end"), s_pbx.token, body, 409, "out_of_order", "pbx_ts",
           NULL);
    //  The agent cannot end a PBX-timed call by hand: it has no PBX time to give.
    t_err ("POST", t_path (id, "end"), s_ana.token, "{}", 409, "clock_mismatch", "pbx_ts", NULL);
    //  The same instant as the previous event is in order.
    snprintf (body, sizeof body, "{\"pbx_ts\":%" PRId64 ",\"talk_time_ms\":0}", pbx + 42000);
    call = t_act (&s_pbx, id, "end", body, 200);
    assert_int_equal (t_int (call, "talk_ms"), 0);
    json_decref (call);
    t_available (&s_ana);
    //  An offer in the future beyond the skew is refused; within it, accepted.
    snprintf (body, sizeof body, "{\"line\":\"main\",\"language\":\"ar\",\"pbx_ts\":%" PRId64 "}",
              s_now + T_SKEW_MS + 1);
    t_err ("POST", "/api/v1/calls", s_pbx.token, body, 400, "invalid_field", "pbx_ts", "ahead");
    //  A call timed by intake refuses PBX timestamps.
    char mine[GL_ID_LEN + 1];
    t_offer ("ar", NULL, NULL, mine);
    snprintf (answer, sizeof answer, "{\"agent_id\":\"%s\",\"pbx_ts\":%" PRId64 "}", s_ana.id,
              s_now);
    t_err ("POST", t_path (mine, "answer"), s_pbx.token, answer, 409, "clock_mismatch", "pbx_ts",
           NULL);
    json_decref (t_act (&s_pbx, mine, "abandon", "{}", 200));

    //  A simulated day replayed in a moment: forty calls over ten PBX hours, intake's clock
    //  standing still; every duration comes from the PBX's timestamps.
    int64_t day = s_now - 12 * 3600 * 1000;
    for (int i = 0; i < 40; i++) {
        int64_t offered = day + (int64_t) i * 15 * 60 * 1000;
        char cid[GL_ID_LEN + 1];
        snprintf (body, sizeof body,
                  "{\"line\":\"main\",\"language\":\"en\",\"pbx_ts\":%" PRId64
                  ",\"pbx_call_id\":\"replay.%d\"}",
                  offered, i);
        json_decref (t_offer_body (body, cid));
        if (i % 4 == 3) {
            snprintf (body, sizeof body, "{\"pbx_ts\":%" PRId64 ",\"position\":1}",
                      offered + 90000);
            call = t_act (&s_pbx, cid, "abandon", body, 200);
            assert_int_equal (t_int (call, "wait_ms"), 90000);
            json_decref (call);
            continue;
        }
        snprintf (answer, sizeof answer, "{\"agent_id\":\"%s\",\"pbx_ts\":%" PRId64 "}",
                  s_ana.id, offered + 20000 + i * 1000);
        json_decref (t_act (&s_pbx, cid, "answer", answer, 200));
        snprintf (body, sizeof body, "{\"pbx_ts\":%" PRId64 "}", offered + 320000 + i * 1000);
        call = t_act (&s_pbx, cid, "end", body, 200);
        assert_int_equal (t_int (call, "wait_ms"), 20000 + i * 1000);
        assert_int_equal (t_int (call, "talk_ms"), 300000);
        json_decref (call);
        t_available (&s_ana);
    }
    assert_int_equal (t_queue_waiting (), 0);
}

//  Calls that never reached an agent are counted for what they are.
static void
test_not_reached (void **state)
{
    static const char *const reasons[] = { "out_of_hours", "all_lines_busy", "ivr_only" };
    char body[256], id[GL_ID_LEN + 1], body2[128];
    snprintf (body2, sizeof body2, "{\"agent_id\":\"%s\"}", s_ana.id);
    for (size_t i = 0; i < 3; i++) {
        snprintf (body, sizeof body, "{\"line\":\"main\",\"reason\":\"%s\",\"caller_number\":"
                  "\"%s\"%s}", reasons[i], s_numbers[4], i == 2 ? ",\"language\":\"ar\"" : "");
        json_t *call = t_ok ("POST", "/api/v1/calls/not-reached", s_pbx.token, body, 201);
        assert_string_equal (t_str (call, "state"), "not_reached");
        assert_string_equal (t_str (call, "reason"), reasons[i]);
        assert_int_equal (t_int (call, "ended_at"), s_now);
        snprintf (id, sizeof id, "%s", t_str (call, "id"));
        json_decref (call);
        t_err ("POST", t_path (id, "answer"), s_pbx.token, body2, 409, "invalid_transition", NULL,
               "not_reached");
        t_err ("POST", t_path (id, "abandon"), s_pbx.token, "{}", 409, "invalid_transition", NULL,
               "not_reached");
    }
    assert_int_equal (t_queue_waiting (), 0);
    t_err ("POST", "/api/v1/calls/not-reached", s_pbx.token,
           "{\"line\":\"main\",\"reason\":\"abandoned\"}", 400, "invalid_field", "reason", NULL);
    t_err ("POST", "/api/v1/calls/not-reached", s_pbx.token, "{\"line\":\"main\"}", 400,
           "missing_field", "reason", NULL);
    //  A supervisor logs one by hand (a line without a PBX).
    json_decref (t_ok ("POST", "/api/v1/calls/not-reached", s_sam.token,
                       "{\"line\":\"walk-in-line\",\"reason\":\"out_of_hours\"}", 201));
}

//  Agent states are stored with their times: the timeline gives time per state and occupancy.
static void
test_occupancy (void **state)
{
    t_advance (3600 * 1000);
    int64_t t0 = s_now;
    json_decref (t_state (&s_carla, "break"));
    t_advance (10000);
    t_available (&s_carla);                      //  t0 + 10 s
    char id[GL_ID_LEN + 1];
    t_advance (10000);
    t_offer ("ar", NULL, NULL, id);               //  t0 + 20 s
    json_t *call = t_next (&s_carla);             //  on call from t0 + 20 s
    assert_string_equal (t_str (call, "id"), id);
    json_decref (call);
    t_advance (60000);
    json_decref (t_act (&s_carla, id, "end", "{}", 200));    //  wrap-up from t0 + 80 s
    t_advance (30000);
    t_available (&s_carla);                      //  t0 + 110 s
    t_advance (20000);                            //  now: t0 + 130 s

    char path[256];
    snprintf (path, sizeof path, "/api/v1/agents/%s/timeline?from=%" PRId64 "&to=%" PRId64,
              s_carla.id, t0, t0 + 3600 * 1000);
    json_t *tl = t_ok ("GET", path, s_sam.token, NULL, 200);
    json_t *transitions = json_object_get (tl, "transitions");
    assert_int_equal (json_array_size (transitions), 5);
    const char *to[] = { "break", "available", "on_call", "wrap_up", "available" };
    const int64_t at[] = { 0, 10000, 20000, 80000, 110000 };
    for (size_t i = 0; i < 5; i++) {
        json_t *t = json_array_get (transitions, i);
        assert_string_equal (t_str (t, "to"), to[i]);
        assert_int_equal (t_int (t, "at"), t0 + at[i]);
    }
    assert_string_equal (t_str (json_array_get (transitions, 0), "from"), "available");
    assert_string_equal (t_str (json_array_get (transitions, 2), "reason_code"), "call_answered");
    assert_string_equal (t_str (json_array_get (transitions, 3), "reason_code"), "call_ended");
    json_t *ms = json_object_get (tl, "time_ms");
    assert_int_equal (t_int (ms, "break"), 10000);
    assert_int_equal (t_int (ms, "available"), 10000 + 20000);
    assert_int_equal (t_int (ms, "on_call"), 60000);
    assert_int_equal (t_int (ms, "wrap_up"), 30000);
    assert_int_equal (t_int (ms, "offline"), 0);
    //  (on call + wrap-up) / (available + on call + wrap-up) = 90 / 120.
    assert_true (json_is_real (json_object_get (tl, "occupancy")));
    double occupancy = json_real_value (json_object_get (tl, "occupancy"));
    assert_true (occupancy > 0.7499 && occupancy < 0.7501);
    json_decref (tl);

    //  A window starting mid-call: the state before it counts from its start.
    snprintf (path, sizeof path, "/api/v1/agents/%s/timeline?from=%" PRId64 "&to=%" PRId64,
              s_carla.id, t0 + 50000, t0 + 90000);
    tl = t_ok ("GET", path, s_sam.token, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (tl, "transitions")), 1);
    assert_int_equal (t_int (json_object_get (tl, "time_ms"), "on_call"), 30000);
    assert_int_equal (t_int (json_object_get (tl, "time_ms"), "wrap_up"), 10000);
    json_decref (tl);

    snprintf (path, sizeof path, "/api/v1/agents/%s/timeline?from=%" PRId64 "&to=%" PRId64,
              s_carla.id, t0 + 1, t0);
    t_err ("GET", path, s_sam.token, NULL, 400, "invalid_parameter", "from", NULL);
    snprintf (path, sizeof path, "/api/v1/agents/%s/timeline?from=%" PRId64 "&to=%" PRId64,
              s_carla.id, t0 - INT64_C (40) * 86400000, t0);
    t_err ("GET", path, s_sam.token, NULL, 400, "invalid_parameter", "from", NULL);
    snprintf (path, sizeof path, "/api/v1/agents/%s/timeline?from=yesterday", s_carla.id);
    t_err ("GET", path, s_sam.token, NULL, 400, "invalid_parameter", "from", NULL);
}

static void
test_force_offline (void **state)
{
    char path[128];
    snprintf (path, sizeof path, "/api/v1/agents/%s/force-offline", s_ben.id);
    json_t *agent = t_ok ("POST", path, s_sam.token, NULL, 200);
    assert_string_equal (t_str (agent, "state"), "offline");
    assert_string_equal (t_str (agent, "reason_code"), "forced");
    assert_string_equal (t_str (agent, "changed_by"), s_sam.id);
    json_decref (agent);
    t_err ("POST", path, s_sam.token, "{\"reason\":\"No Show\"}", 400, "invalid_field", "reason",
           NULL);
    char unknown[GL_ID_LEN + 1];
    gl_id_new (unknown);
    snprintf (path, sizeof path, "/api/v1/agents/%s/force-offline", unknown);
    t_err ("POST", path, s_sam.token, "{}", 404, "not_found", NULL, NULL);

    //  During a call: offline at once, the call stays with the agent, and when it ends the
    //  agent stays offline (no wrap-up).
    char id[GL_ID_LEN + 1];
    t_offer ("ar", NULL, NULL, id);
    json_decref (t_answer (id, &s_ana));
    snprintf (path, sizeof path, "/api/v1/agents/%s/force-offline", s_ana.id);
    agent = t_ok ("POST", path, s_sam.token, "{\"reason\":\"shift_over\"}", 200);
    assert_string_equal (t_str (agent, "state"), "offline");
    assert_string_equal (t_str (agent, "reason_code"), "shift_over");
    assert_string_equal (t_str (agent, "call_id"), id);
    json_decref (agent);
    t_err ("PUT", "/api/v1/agents/me/state", s_ana.token, "{\"state\":\"available\"}", 409,
           "invalid_transition", "state", "offline");
    json_t *call = t_ok ("GET", t_path (id, NULL), s_sam.token, NULL, 200);
    assert_string_equal (t_str (call, "state"), "answered");
    json_decref (call);
    json_decref (t_act (&s_ana, id, "end", "{}", 200));
    t_assert_agent (&s_ana, "offline", NULL);
    t_available (&s_ana);
    t_available (&s_ben);
}

static void
test_shift_plan (void **state)
{
    char body[1024];
    snprintf (body, sizeof body,
              "{\"shifts\":[{\"agent_id\":\"%s\",\"start\":\"08:00\",\"end\":\"16:00\"},"
              "{\"agent_id\":\"%s\",\"start\":\"12:00\",\"end\":\"20:00\"},"
              "{\"agent_id\":\"%s\",\"start\":\"16:00\",\"end\":\"24:00\"}]}",
              s_ana.id, s_dina.id, s_ana.id);
    json_t *plan = t_ok ("PUT", "/api/v1/shifts/2026-01-02", s_sam.token, body, 200);
    assert_string_equal (t_str (plan, "date"), "2026-01-02");
    assert_int_equal (json_array_size (json_object_get (plan, "shifts")), 3);
    assert_string_equal (t_str (plan, "updated_by"), s_sam.id);
    json_decref (plan);
    //  Planned against present: each shift with its agent's state now.
    json_decref (t_state (&s_dina, "offline"));
    plan = t_ok ("GET", "/api/v1/shifts/2026-01-02", s_ana.token, NULL, 200);
    json_t *shifts = json_object_get (plan, "shifts");
    assert_int_equal (json_array_size (shifts), 3);
    assert_string_equal (t_str (json_array_get (shifts, 0), "state"), "available");
    assert_true (json_is_true (json_object_get (json_array_get (shifts, 0), "present")));
    assert_string_equal (t_str (json_array_get (shifts, 1), "state"), "offline");
    assert_true (json_is_false (json_object_get (json_array_get (shifts, 1), "present")));
    json_decref (plan);
    //  A day without a plan.
    plan = t_ok ("GET", "/api/v1/shifts/2026-01-03", s_sam.token, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (plan, "shifts")), 0);
    assert_true (json_is_null (json_object_get (plan, "updated_at")));
    json_decref (plan);

    const char *path = "/api/v1/shifts/2026-01-02";
    t_err ("PUT", "/api/v1/shifts/2026-02-30", s_sam.token, "{\"shifts\":[]}", 404, "not_found",
           NULL, NULL);
    t_err ("GET", "/api/v1/shifts/tomorrow", s_sam.token, NULL, 404, "not_found", NULL, NULL);
    t_err ("PUT", path, s_sam.token, "{}", 400, "missing_field", "shifts", NULL);
    t_err ("PUT", path, s_sam.token, "{\"shifts\":{}}", 400, "invalid_field", "shifts", NULL);
    snprintf (body, sizeof body,
              "{\"shifts\":[{\"agent_id\":\"%s\",\"start\":\"08:00\",\"end\":\"16:00\"},"
              "{\"agent_id\":\"%s\",\"start\":\"15:00\",\"end\":\"18:00\"}]}",
              s_ana.id, s_ana.id);
    t_err ("PUT", path, s_sam.token, body, 400, "invalid_field", "shifts[1]", "overlaps");
    snprintf (body, sizeof body,
              "{\"shifts\":[{\"agent_id\":\"%s\",\"start\":\"16:00\",\"end\":\"08:00\"}]}",
              s_ana.id);
    t_err ("PUT", path, s_sam.token, body, 400, "invalid_field", "shifts[0].end", NULL);
    snprintf (body, sizeof body,
              "{\"shifts\":[{\"agent_id\":\"%s\",\"start\":\"8h\",\"end\":\"16:00\"}]}",
              s_ana.id);
    t_err ("PUT", path, s_sam.token, body, 400, "invalid_field", "shifts[0].start", NULL);
    snprintf (body, sizeof body,
              "{\"shifts\":[{\"agent_id\":\"%s\",\"start\":\"08:00\",\"end\":\"16:00\","
              "\"room\":\"b\"}]}",
              s_ana.id);
    t_err ("PUT", path, s_sam.token, body, 400, "unknown_field", "shifts[0].room", NULL);
    char unknown[GL_ID_LEN + 1];
    gl_id_new (unknown);
    snprintf (body, sizeof body,
              "{\"shifts\":[{\"agent_id\":\"%s\",\"start\":\"08:00\",\"end\":\"16:00\"}]}",
              unknown);
    t_err ("PUT", path, s_sam.token, body, 400, "invalid_field", "shifts[0].agent_id", "user");
    t_err ("PUT", path, s_sam.token, "{\"shifts\":[{\"start\":\"08:00\",\"end\":\"09:00\"}]}",
           400, "missing_field", "shifts[0].agent_id", NULL);
    //  The refused plans left the stored one as it was.
    plan = t_ok ("GET", path, s_sam.token, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (plan, "shifts")), 3);
    json_decref (plan);
    //  An empty plan clears the day.
    plan = t_ok ("PUT", path, s_sam.token, "{\"shifts\":[]}", 200);
    assert_int_equal (json_array_size (json_object_get (plan, "shifts")), 0);
    json_decref (plan);
}

//  Everything is in Redis: a SIGKILLed intake restarts with the queue and the agents as they
//  were, and the calls go on.
static void
test_kill_and_restart (void **state)
{
    char waiting[3][GL_ID_LEN + 1], talking[GL_ID_LEN + 1];
    t_offer ("ar", NULL, NULL, waiting[0]);
    t_advance (1000);
    t_offer ("fr", NULL, NULL, waiting[1]);
    t_advance (1000);
    t_offer ("ar", "emergency", NULL, waiting[2]);
    t_offer ("en", NULL, s_numbers[0], talking);
    json_decref (t_answer (talking, &s_ana));
    json_decref (t_state (&s_ben, "break"));
    json_t *queue_before = t_queue (&s_sam, NULL);
    json_t *agents_before = t_ok ("GET", "/api/v1/agents?limit=200", s_sam.token, NULL, 200);

    kill (s_intake, SIGKILL);
    gl_test_wait (s_intake, 10000);
    //  The dead process's lease on "intake-1" runs out in business time.
    t_advance (15000);
    s_intake = t_spawn_intake ();
    assert_true (s_intake > 0);
    assert_int_equal (t_wait_ready (), 0);

    json_t *queue_after = t_queue (&s_sam, NULL);
    json_t *agents_after = t_ok ("GET", "/api/v1/agents?limit=200", s_sam.token, NULL, 200);
    //  Live waits grew by the 15 s; everything else is the same.
    json_t *before = json_object_get (queue_before, "calls");
    json_t *after = json_object_get (queue_after, "calls");
    assert_int_equal (json_array_size (after), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *b = json_array_get (before, i), *a = json_array_get (after, i);
        assert_int_equal (t_int (a, "wait_ms"), t_int (b, "wait_ms") + 15000);
        json_object_del (a, "wait_ms");
        json_object_del (b, "wait_ms");
        assert_true (json_equal (a, b));
    }
    assert_string_equal (t_str (json_array_get (after, 0), "call_id"), waiting[2]);
    //  The counts per language are the same (their oldest waits moved on with the clock).
    json_t *lb = json_object_get (queue_before, "languages");
    json_t *la = json_object_get (queue_after, "languages");
    const char *lang;
    json_t *entry;
    json_object_foreach (lb, lang, entry) {
        assert_int_equal (t_int (entry, "waiting"), t_int (json_object_get (la, lang), "waiting"));
        assert_int_equal (t_int (entry, "answered"),
                          t_int (json_object_get (la, lang), "answered"));
    }
    assert_int_equal (t_int (queue_after, "answered"), 1);
    assert_true (json_equal (agents_before, agents_after));
    json_decref (queue_before);
    json_decref (queue_after);
    json_decref (agents_before);
    json_decref (agents_after);
    t_assert_agent (&s_ana, "on_call", talking);

    //  The calls go on.
    json_t *call = t_act (&s_pbx, talking, "end", "{}", 200);
    assert_int_equal (t_int (call, "talk_ms"), 15000);
    json_decref (call);
    t_available (&s_ana);
    t_available (&s_carla);
    call = t_next (&s_carla);
    assert_string_equal (t_str (call, "id"), waiting[2]);
    json_decref (call);
    json_decref (t_act (&s_carla, waiting[2], "end", "{}", 200));
    json_decref (t_act (&s_pbx, waiting[0], "abandon", "{}", 200));
    json_decref (t_act (&s_pbx, waiting[1], "abandon", "{}", 200));
    t_available (&s_carla);
    t_available (&s_ben);
    assert_int_equal (t_queue_waiting (), 0);
}

//  --------------------------------------------------------------------------------------------
//  The events in intake's log, and intake's own log

typedef struct {
    json_t *events;
} t_events_t;

static int
t_collect (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    t_events_t *c = arg;
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    assert_non_null (ev);
    json_array_append_new (c->events, json_pack ("{s:s, s:s, s:O}", "type", ev->type, "corr",
                                                 ev->corr, "data", ev->data));
    gl_event_destroy (&ev);
    return 0;
}

static void
test_events_and_privacy (void **state)
{
    //  One more call, start to end, to follow in the log.
    char id[GL_ID_LEN + 1];
    t_offer ("ar", NULL, s_numbers[1], id);
    t_advance (2000);
    json_decref (t_answer (id, &s_ana));
    t_advance (3000);
    json_decref (t_act (&s_pbx, id, "end", "{}", 200));

    gl_redis_t *redis = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 5000);
    t_events_t c = { json_array () };
    assert_true (gl_log_read (redis, "intake-1", 1, 0, 100000, t_collect, &c, NULL) > 0);
    //  Every event was delivered: the outbox is empty.
    redisReply *r = gl_redis_cmd (redis, "HLEN intake:{intake}:outbox");
    assert_non_null (r);
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    gl_redis_destroy (&redis);

    size_t i, counts[8] = { 0 };
    static const char *const types[]
        = { "call.offered", "call.answered", "call.transferred", "call.ended",
            "call.abandoned", "call.not_reached", "agent.state_changed", "shift.planned" };
    json_t *ev;
    json_t *mine = json_array ();
    json_array_foreach (c.events, i, ev) {
        const char *type = t_str (ev, "type");
        json_t *data = json_object_get (ev, "data");
        char *text = json_dumps (data, JSON_COMPACT);
        for (size_t k = 0; k < 8; k++)
            if (strcmp (type, types[k]) == 0) {
                counts[k]++;
                for (int n = 0; s_numbers[n]; n++)
                    assert_null (strstr (text, s_numbers[n]));
                assert_null (strstr (text, "number\""));
            }
        free (text);
        if (strncmp (type, "call.", 5) == 0
            && strcmp (t_str (data, "call_id"), id) == 0)
            json_array_append (mine, ev);
    }
    for (size_t k = 0; k < 8; k++) {
        if (counts[k] == 0)
            fprintf (stderr, "no %s event\n", types[k]);
        assert_true (counts[k] > 0);
    }
    //  The last call: offered, answered, ended, in order, with the times on its clock.
    assert_int_equal (json_array_size (mine), 3);
    json_t *offered = json_object_get (json_array_get (mine, 0), "data");
    json_t *answered = json_object_get (json_array_get (mine, 1), "data");
    json_t *ended = json_object_get (json_array_get (mine, 2), "data");
    assert_string_equal (t_str (json_array_get (mine, 0), "type"), "call.offered");
    assert_string_equal (t_str (json_array_get (mine, 0), "corr"), id);
    assert_string_equal (t_str (offered, "line"), "main");
    assert_string_equal (t_str (offered, "language"), "ar");
    assert_string_equal (t_str (offered, "priority"), "normal");
    assert_string_equal (t_str (offered, "clock"), "intake");
    assert_int_equal (t_int (offered, "position"), 1);
    assert_int_equal (t_int (offered, "step"), 1);
    assert_string_equal (t_str (answered, "agent_id"), s_ana.id);
    assert_int_equal (t_int (answered, "wait_ms"), 2000);
    assert_int_equal (t_int (answered, "at"), t_int (offered, "at") + 2000);
    assert_int_equal (t_int (answered, "step"), 2);
    assert_string_equal (t_str (json_array_get (mine, 2), "type"), "call.ended");
    assert_int_equal (t_int (ended, "talk_ms"), 3000);
    assert_int_equal (t_int (ended, "step"), 3);
    assert_true (json_is_object (json_object_get (ended, "reported")));
    json_decref (mine);

    //  agent.state_changed: ids and codes, with its step.
    json_t *last = NULL;
    json_array_foreach (c.events, i, ev)
        if (strcmp (t_str (ev, "type"), "agent.state_changed") == 0
            && strcmp (t_str (json_object_get (ev, "data"), "agent_id"), s_ana.id) == 0)
            last = json_object_get (ev, "data");
    assert_non_null (last);
    assert_string_equal (t_str (last, "from"), "on_call");
    assert_string_equal (t_str (last, "to"), "wrap_up");
    assert_string_equal (t_str (last, "reason_code"), "call_ended");
    assert_string_equal (t_str (last, "call_id"), id);
    assert_int_equal (t_int (last, "at"), s_now);
    assert_true (t_int (last, "step") > 1);
    json_decref (c.events);

    //  The changes are in the audit trail, and so are the reads of a caller's number.
    char query[256];
    snprintf (query, sizeof query, "/api/v1/audit?record_type=call&record_id=%s", id);
    json_t *audit = t_ok ("GET", query, s_admin.token, NULL, 200);
    assert_true (json_array_size (json_object_get (audit, "items")) >= 3);
    json_decref (audit);
    json_t *call = t_ok ("GET", t_path (id, NULL), s_ana.token, NULL, 200);
    assert_string_equal (t_str (call, "caller_number"), s_numbers[1]);
    json_decref (call);
    snprintf (query, sizeof query, "/api/v1/audit?record_type=call&record_id=%s&action=read", id);
    audit = t_ok ("GET", query, s_admin.token, NULL, 200);
    json_t *items = json_object_get (audit, "items");
    assert_int_equal (json_array_size (items), 1);
    assert_string_equal (t_str (json_array_get (items, 0), "detail"), "caller_number");
    assert_string_equal (t_str (json_array_get (items, 0), "actor"), s_ana.id);
    json_decref (audit);

    //  No caller number in intake's own log (it logs at debug level here).
    FILE *f = fopen (s_log_path, "r");
    assert_non_null (f);
    char line[8192];
    size_t lines = 0;
    while (fgets (line, sizeof line, f)) {
        lines++;
        for (int n = 0; s_numbers[n]; n++)
            if (strstr (line, s_numbers[n])) {
                fprintf (stderr, "a caller number in intake's log: %s", line);
                fail ();
            }
    }
    fclose (f);
    assert_true (lines > 10);
}

//  SIGTERM: a clean exit (under the sanitizers, also no leak and no error report).
static void
test_clean_stop (void **state)
{
    int status = gl_test_stop (s_intake, 10000);
    s_intake = -1;
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        fprintf (stderr, "intake did not exit cleanly (status %d); its log: %s\n", status,
                 s_log_path);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    FILE *f = fopen (s_log_path, "r");
    assert_non_null (f);
    char line[8192];
    while (fgets (line, sizeof line, f))
        assert_null (strstr (line, "Sanitizer"));
    fclose (f);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_roles),
        cmocka_unit_test (test_agent_state),
        cmocka_unit_test (test_call_state_machine),
        cmocka_unit_test (test_transfers),
        cmocka_unit_test (test_routing),
        cmocka_unit_test (test_pbx_timestamps),
        cmocka_unit_test (test_not_reached),
        cmocka_unit_test (test_occupancy),
        cmocka_unit_test (test_force_offline),
        cmocka_unit_test (test_shift_plan),
        cmocka_unit_test (test_kill_and_restart),
        cmocka_unit_test (test_events_and_privacy),
        cmocka_unit_test (test_clean_stop),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
