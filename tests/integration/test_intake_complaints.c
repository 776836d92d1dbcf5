/*  intake's complaints and feedback over real HTTP: gl-intake as a process against a private
    redis-server, its business clock driven through GL_CLOCK_FILE.

    The state machine received → acknowledged → in_progress → responded → closed with its
    deadlines per type on the driven clock (overdue to acknowledge, then to respond; each passed
    deadline announced once by complaint.overdue; "late" in the events); impossible transitions answered 409 naming the state, closing without an
    answer 422; bad bodies 400 naming the field; anonymous complaints; a sensitive complaint
    (PSEA) invisible to agents, supervisors and protection staff who are not the focal point,
    visible to the focal point, every read and refused read audited, and the focal point
    alerted with notification.requested; a complaint made sensitive later; Idempotency-Key
    retries; a sensitive complaint and its alert stored while the log cannot be written and intake
    killed: both delivered once after the restart; no description, answer or phone number in
    any event.

    ctest: timeout=180 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include "gl_testintake.h"
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
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define T_WAIT_MS       60000
#define T_START_MS      INT64_C(1767225600000)      //  2026-01-01T00:00:00Z
#define T_ADMIN_PASS    "adminpass"
#define T_PASS          "a-long-enough-password"
#define T_HOUR_MS       INT64_C(3600000)
#define T_DAY_MS        INT64_C(86400000)


enum { U_ADMIN, U_AGENT1, U_AGENT2, U_SUPER, U_PROT, U_FOCAL, U_COUNT };
static struct {
    const char *name;
    const char *roles;
    const char *units;
    char id[GL_ID_LEN + 1];
    char token[128];
} s_users[U_COUNT] = {
    { "admin", NULL, NULL, "", "" },
    { "agent1", "[\"agent\"]", "[\"unit-a\"]", "", "" },
    { "agent2", "[\"agent\"]", "[\"unit-a\"]", "", "" },
    { "super1", "[\"supervisor\"]", "[\"unit-a\"]", "", "" },
    { "prot1", "[\"protection\"]", "[\"unit-a\"]", "", "" },
    { "focal1", "[\"protection\"]", "[\"psea-fp\"]", "", "" },
};

typedef gl_test_resp_t t_resp_t;

static gl_testredis_t *s_redis;
static gl_redis_t *s_rc;                //  the test's own connection
static pid_t s_intake = -1;
static int s_http_port;
static char s_log_path[200], s_clock_path[200];
static char s_env[32][320];
static int s_envc;
static int64_t s_now;

//  Personal data and free text the tests send: none may appear in an event.
static char s_secrets[64][128];
static int s_secretc;

static void
t_secret (const char *s)
{
    assert_true (s_secretc < 64);
    snprintf (s_secrets[s_secretc++], sizeof s_secrets[0], "%s", s);
}

static json_t *
t_json (const t_resp_t *resp)
{
    json_error_t err;
    json_t *json = json_loadb (resp->body, resp->body_len, 0, &err);
    if (!json)
        fprintf (stderr, "not JSON (%s): %.*s\n", err.text, (int) resp->body_len, resp->body);
    assert_non_null (json);
    return json;
}

static void
t_clock_write (int64_t ms)
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

static t_resp_t
t_call (int user, const char *method, const char *path, const char *extra, const char *body)
{
    return gl_testintake_request (s_http_port, method, path,
                                  user >= 0 ? s_users[user].token : NULL, extra, body);
}

//  The end of intake's log, to explain a failure.
static void
t_log_tail (void)
{
    FILE *f = fopen (s_log_path, "r");
    if (!f)
        return;
    char text[4096];
    fseek (f, 0, SEEK_END);
    long size = ftell (f);
    fseek (f, size > (long) sizeof text - 1 ? size - (long) sizeof text + 1 : 0, SEEK_SET);
    size_t len = fread (text, 1, sizeof text - 1, f);
    text[len] = 0;
    fclose (f);
    fprintf (stderr, "--- the end of intake's log:\n%s---\n", text);
}

static void
t_expect (const t_resp_t *resp, int status)
{
    if (resp->status != status) {
        fprintf (stderr, "expected %d, got: %s\n", status, resp->raw);
        t_log_tail ();
    }
    assert_int_equal (resp->status, status);
}

//  The one error shape, with code and field (NULL: field must be null).
static void
t_call_error (int user, const char *method, const char *path, const char *body, int status,
              const char *code, const char *field)
{
    t_resp_t resp = t_call (user, method, path, NULL, body);
    t_expect (&resp, status);
    json_t *json = t_json (&resp);
    json_t *error = json_object_get (json, "error");
    const char *got = json_string_value (json_object_get (error, "code"));
    const char *got_field = json_string_value (json_object_get (error, "field"));
    if (!got || strcmp (got, code) != 0 || (field && (!got_field || strcmp (got_field, field))))
        fprintf (stderr, "expected %s/%s, got: %s\n", code, field ? field : "null", resp.raw);
    assert_non_null (got);
    assert_string_equal (got, code);
    if (field) {
        assert_non_null (got_field);
        assert_string_equal (got_field, field);
    }
    else
        assert_true (json_is_null (json_object_get (error, "field")));
    json_decref (json);
    gl_test_http_free (&resp);
}

static int
t_call_status (int user, const char *method, const char *path, const char *body)
{
    t_resp_t resp = t_call (user, method, path, NULL, body);
    int status = resp.status;
    gl_test_http_free (&resp);
    return status;
}

//  A 2xx answer's body as JSON (caller frees).
static json_t *
t_call_json (int user, const char *method, const char *path, const char *body, int status)
{
    t_resp_t resp = t_call (user, method, path, NULL, body);
    t_expect (&resp, status);
    json_t *json = t_json (&resp);
    gl_test_http_free (&resp);
    return json;
}

static int
t_login (int user)
{
    char body[256];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", s_users[user].name,
              user == 0 ? T_ADMIN_PASS : T_PASS);
    t_resp_t resp = t_call (-1, "POST", "/api/v1/auth/login", NULL, body);
    int status = resp.status;
    if (status == 200) {
        json_t *json = t_json (&resp);
        snprintf (s_users[user].token, sizeof s_users[user].token, "%s",
                  json_string_value (json_object_get (json, "token")));
        snprintf (s_users[user].id, sizeof s_users[user].id, "%s",
                  json_string_value (json_object_get (json_object_get (json, "user"), "id")));
        json_decref (json);
    }
    else
        fprintf (stderr, "login of %s: %s\n", s_users[user].name, resp.raw);
    gl_test_http_free (&resp);
    return status;
}

static void
t_login_all (void)
{
    for (int u = 0; u < U_COUNT; u++)
        assert_int_equal (t_login (u), 200);
}

//  Move the business clock forward; sessions do not survive long jumps, so everyone signs in
//  again.
static void
t_clock_advance (int64_t ms)
{
    t_clock_write (s_now + ms);
    t_login_all ();
}

static int
t_wait_ready (int port)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    char request[256];
    int n = snprintf (request, sizeof request,
                      "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    while (gl_mono_ms () < deadline) {
        t_resp_t resp = gl_test_http_raw (port, request, (size_t) n);
        int status = resp.status;
        gl_test_http_free (&resp);
        if (status == 200)
            return 0;
        gl_sleep_ms (100);
    }
    return -1;
}

static void
t_create_user (int user)
{
    char body[512];
    snprintf (body, sizeof body,
              "{\"username\":\"%s\",\"password\":\"%s\",\"roles\":%s,\"units\":%s,"
              "\"languages\":[\"ar\",\"en\"],\"display_name\":\"Test %s\"}",
              s_users[user].name, T_PASS, s_users[user].roles, s_users[user].units,
              s_users[user].name);
    json_t *json = t_call_json (0, "POST", "/api/v1/users", body, 201);
    json_decref (json);
}

//  Start gl-intake against the test's Redis with the common settings plus extra
//  (NULL-terminated). Returns the pid, or -1 when it did not become ready.
static pid_t
t_spawn (char *const *extra)
{
    char *env[64];
    char health[64], port[64];
    snprintf (health, sizeof health, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    snprintf (port, sizeof port, "GL_HTTP_PORT=%d", s_http_port);
    int n = 0;
    env[n++] = health;
    env[n++] = port;
    for (int i = 0; i < s_envc; i++)
        env[n++] = s_env[i];
    for (int i = 0; extra && extra[i]; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    char *argv[] = { "gl-intake", NULL };
    pid_t pid = gl_test_spawn (gl_test_build_path ("services/intake/gl-intake"), argv, env,
                               s_log_path);
    if (pid < 0 || t_wait_ready (s_http_port) != 0) {
        fprintf (stderr, "gl-intake did not become ready; its log is %s\n", s_log_path);
        t_log_tail ();
        return -1;
    }
    return pid;
}

static int
t_setup_common (const char *name, char *const *extra)
{
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    s_rc = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 5000, 5000);
    s_http_port = gl_test_free_port ();
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-intake-%s-%d.log", name,
              (int) getpid ());
    snprintf (s_clock_path, sizeof s_clock_path, "/tmp/gl-test-intake-%s-%d.clock", name,
              (int) getpid ());
    unlink (s_log_path);
    t_clock_write (T_START_MS);
    int n = 0;
    snprintf (s_env[n++], sizeof s_env[0], "GL_REDIS_HOST=127.0.0.1");
    snprintf (s_env[n++], sizeof s_env[0], "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (s_env[n++], sizeof s_env[0], "GL_BUS_BIND_PUB=tcp://127.0.0.1:*");
    snprintf (s_env[n++], sizeof s_env[0], "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:*");
    snprintf (s_env[n++], sizeof s_env[0], "GL_SOURCE=intake-1");
    snprintf (s_env[n++], sizeof s_env[0], "GL_BUS_TOKENS=tok-part2-test");
    snprintf (s_env[n++], sizeof s_env[0], "GL_CLOCK_FILE=%s", s_clock_path);
    snprintf (s_env[n++], sizeof s_env[0], "GL_INTAKE_BOOTSTRAP_ADMIN=admin:" T_ADMIN_PASS);
    snprintf (s_env[n++], sizeof s_env[0], "GL_INTAKE_ARGON2_OPSLIMIT=1");
    snprintf (s_env[n++], sizeof s_env[0], "GL_INTAKE_ARGON2_MEMLIMIT=8192");
    snprintf (s_env[n++], sizeof s_env[0], "GL_INTAKE_SESSION_IDLE_S=86400");
    snprintf (s_env[n++], sizeof s_env[0], "GL_INTAKE_SESSION_MAX_S=2592000");
    snprintf (s_env[n++], sizeof s_env[0], "GL_INTAKE_PHONE_COUNTRY_CODE=962");
    for (int i = 0; extra && extra[i]; i++)
        snprintf (s_env[n++], sizeof s_env[0], "%s", extra[i]);
    s_envc = n;
    s_intake = t_spawn (NULL);
    if (s_intake < 0)
        return -1;
    if (t_login (0) != 200)
        return -1;
    for (int u = 1; u < U_COUNT; u++)
        t_create_user (u);
    t_login_all ();
    return 0;
}

static int
t_teardown (void **state)
{
    if (s_intake > 0)
        gl_test_stop (s_intake, 10000);
    gl_redis_destroy (&s_rc);
    gl_testredis_destroy (&s_redis);
    if (!getenv ("GL_TEST_KEEP_LOG"))
        unlink (s_log_path);
    unlink (s_clock_path);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  The log: events of intake-1

typedef struct {
    const char *type;
    json_t *events;                     //  [{type, id, corr, seq, data}]
} t_collect_t;

static bool
t_contains (const char *hay, size_t len, const char *needle)
{
    size_t n = strlen (needle);
    for (size_t i = 0; n && i + n <= len; i++)
        if (memcmp (hay + i, needle, n) == 0)
            return true;
    return false;
}

static int
t_collect (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    t_collect_t *c = arg;
    for (int i = 0; i < s_secretc; i++)
        if (t_contains (bytes, len, s_secrets[i])) {
            fprintf (stderr, "free text or personal data in event seq %" PRIu64 ": %s\n", seq,
                     s_secrets[i]);
            fail ();
        }
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    assert_non_null (ev);
    if (!c->type || strcmp (ev->type, c->type) == 0)
        json_array_append_new (c->events,
                               json_pack ("{s:s, s:s, s:s, s:I, s:I, s:O}", "type", ev->type, "id",
                                          ev->id, "corr", ev->corr, "seq", (json_int_t) ev->seq,
                                          "ts", (json_int_t) ev->ts, "data", ev->data));
    gl_event_destroy (&ev);
    return 0;
}

//  Events of type (NULL: all) in intake-1's log whose corr is corr (NULL: any), oldest first.
//  Checks every entry for secrets.
static json_t *
t_events (const char *type, const char *corr)
{
    t_collect_t c = { type, json_array () };
    int64_t n = gl_log_read (s_rc, "intake-1", 1, 0, 1000000, t_collect, &c, NULL);
    assert_true (n >= 0);
    if (!corr)
        return c.events;
    json_t *out = json_array ();
    size_t i;
    json_t *ev;
    json_array_foreach (c.events, i, ev)
        if (strcmp (json_string_value (json_object_get (ev, "corr")), corr) == 0)
            json_array_append (out, ev);
    json_decref (c.events);
    return out;
}

//  Wait until the log holds n events of type for corr; returns them.
static json_t *
t_wait_events (const char *type, const char *corr, size_t n)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    json_t *evs = t_events (type, corr);
    while (json_array_size (evs) < n && gl_mono_ms () < deadline) {
        json_decref (evs);
        gl_sleep_ms (100);
        evs = t_events (type, corr);
    }
    assert_int_equal (json_array_size (evs), n);
    return evs;
}

static const char *
t_str (const json_t *obj, const char *name)
{
    return json_string_value (json_object_get (obj, name));
}

static int64_t
t_int (const json_t *obj, const char *name)
{
    return (int64_t) json_integer_value (json_object_get (obj, name));
}

//  True when the page's items hold an item with this id.
static bool
t_has_id (const json_t *page, const char *id)
{
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get (page, "items"), i, item)
        if (t_str (item, "id") && strcmp (t_str (item, "id"), id) == 0)
            return true;
    return false;
}

//  --------------------------------------------------------------------------------------------
//  Helpers

static void
t_create_id (int user, const char *body, char *id)
{
    json_t *rec = t_call_json (user, "POST", "/api/v1/complaints", body, 201);
    snprintf (id, GL_ID_LEN + 1, "%s", t_str (rec, "id"));
    assert_true (gl_id_valid (id));
    json_decref (rec);
}

static json_t *
t_get (int user, const char *id, int status)
{
    char path[128];
    snprintf (path, sizeof path, "/api/v1/complaints/%s", id);
    return t_call_json (user, "GET", path, NULL, status);
}

static json_t *
t_act (int user, const char *id, const char *action, const char *body, int status)
{
    char path[160];
    snprintf (path, sizeof path, "/api/v1/complaints/%s/%s", id, action);
    return t_call_json (user, "POST", path, body ? body : "{}", status);
}

static void
t_act_error (int user, const char *id, const char *action, const char *body, int status,
             const char *code, const char *field)
{
    char path[160];
    snprintf (path, sizeof path, "/api/v1/complaints/%s/%s", id, action);
    t_call_error (user, "POST", path, body ? body : "{}", status, code, field);
}

static int
t_setup (void **state)
{
    char *extra[]
        = { "GL_INTAKE_CFM_FOCAL_PSEA=unit:psea-fp", "GL_INTAKE_CFM_SWEEP_MS=200", NULL };
    return t_setup_common ("complaints", extra);
}

//  --------------------------------------------------------------------------------------------
//  The state machine on the driven clock

static void
test_lifecycle (void **state)
{
    t_secret ("SECRET-complaint-text-lifecycle");
    t_secret ("SECRET-response-lifecycle");
    t_secret ("0791234567");
    t_secret ("791234567");
    int64_t received = s_now;
    char id[GL_ID_LEN + 1];
    t_create_id (U_AGENT1,
                 "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                 "\"category\":\"distribution\",\"phone\":\"0791234567\","
                 "\"description\":\"SECRET-complaint-text-lifecycle\"}",
                 id);
    json_t *rec = t_get (U_AGENT2, id, 200);
    assert_string_equal (t_str (rec, "status"), "received");
    assert_string_equal (t_str (rec, "phone"), "962791234567");
    assert_int_equal (t_int (rec, "acknowledge_due"), received + 24 * T_HOUR_MS);
    assert_int_equal (t_int (rec, "respond_due"), received + 168 * T_HOUR_MS);
    assert_false (json_is_true (json_object_get (rec, "overdue")));
    assert_false (json_is_true (json_object_get (rec, "sensitive")));
    json_decref (rec);

    //  Agents log and read; they do not handle.
    char path[160];
    snprintf (path, sizeof path, "/api/v1/complaints/%s/acknowledge", id);
    assert_int_equal (t_call_status (U_AGENT1, "POST", path, "{}"), 403);

    //  Impossible transitions, named.
    t_act_error (U_SUPER, id, "start", NULL, 409, "invalid_transition", "status");
    t_act_error (U_SUPER, id, "respond",
                 "{\"response\":\"SECRET-response-lifecycle\",\"response_channel\":\"call\"}",
                 409, "invalid_transition", "status");
    t_act_error (U_SUPER, id, "close", "{\"outcome\":\"resolved\",\"answer\":\"x\"}", 409,
                 "invalid_transition", "status");

    //  A day and an hour later it is overdue for acknowledgement.
    t_clock_advance (25 * T_HOUR_MS);
    rec = t_get (U_SUPER, id, 200);
    assert_true (json_is_true (json_object_get (rec, "overdue")));
    assert_string_equal (t_str (rec, "overdue_kind"), "acknowledge");
    json_decref (rec);
    //  The passed deadline is announced, once.
    json_t *over = t_wait_events ("complaint.overdue", id, 1);
    json_t *od = json_object_get (json_array_get (over, 0), "data");
    assert_string_equal (t_str (od, "overdue_kind"), "acknowledge");
    assert_int_equal (t_int (od, "due"), received + 24 * T_HOUR_MS);
    json_decref (over);
    json_t *page = t_call_json (U_SUPER, "GET", "/api/v1/complaints?overdue=true", NULL, 200);
    assert_true (t_has_id (page, id));
    assert_null (json_object_get (json_array_get (json_object_get (page, "items"), 0),
                                  "description"));
    json_decref (page);
    page = t_call_json (U_SUPER, "GET", "/api/v1/complaints?overdue=false", NULL, 200);
    assert_false (t_has_id (page, id));
    json_decref (page);

    rec = t_act (U_SUPER, id, "acknowledge", NULL, 200);
    assert_string_equal (t_str (rec, "status"), "acknowledged");
    assert_false (json_is_true (json_object_get (rec, "overdue")));
    json_decref (rec);
    t_act_error (U_SUPER, id, "acknowledge", NULL, 409, "invalid_transition", "status");
    //  Closing without the answer given to the person is refused.
    t_act_error (U_SUPER, id, "close", "{\"outcome\":\"resolved\"}", 422, "answer_required",
                 "answer");
    rec = t_act (U_PROT, id, "start", NULL, 200);
    assert_string_equal (t_str (rec, "status"), "in_progress");
    json_decref (rec);

    //  Past the response deadline: overdue to respond.
    t_clock_advance (7 * T_DAY_MS);
    rec = t_get (U_SUPER, id, 200);
    assert_string_equal (t_str (rec, "overdue_kind"), "respond");
    json_decref (rec);
    over = t_wait_events ("complaint.overdue", id, 2);
    od = json_object_get (json_array_get (over, 1), "data");
    assert_string_equal (t_str (od, "overdue_kind"), "respond");
    assert_string_equal (t_str (od, "status"), "in_progress");
    json_decref (over);
    t_act_error (U_SUPER, id, "respond", "{\"response_channel\":\"call\"}", 400, "missing_field",
                 "response");
    t_act_error (U_SUPER, id, "respond",
                 "{\"response\":\"SECRET-response-lifecycle\",\"response_channel\":\"pigeon\"}",
                 400, "invalid_field", "response_channel");
    rec = t_act (U_SUPER, id, "respond",
                 "{\"response\":\"SECRET-response-lifecycle\",\"response_channel\":\"call\"}",
                 200);
    assert_string_equal (t_str (rec, "status"), "responded");
    json_decref (rec);
    t_act_error (U_SUPER, id, "respond",
                 "{\"response\":\"again\",\"response_channel\":\"call\"}", 409,
                 "invalid_transition", "status");
    rec = t_act (U_SUPER, id, "close", "{\"outcome\":\"resolved\"}", 200);
    assert_string_equal (t_str (rec, "status"), "closed");
    assert_string_equal (t_str (rec, "answer"), "SECRET-response-lifecycle");
    assert_int_equal (json_array_size (json_object_get (rec, "history")), 5);
    json_decref (rec);
    t_act_error (U_SUPER, id, "close", "{\"outcome\":\"resolved\"}", 409, "invalid_transition",
                 "status");
    snprintf (path, sizeof path, "/api/v1/complaints/%s", id);
    t_call_error (U_SUPER, "PATCH", path, "{\"category\":\"other\"}", 409, "invalid_transition",
                  "status");

    //  The events: ids, codes and due times, in order; lateness recorded.
    json_t *evs = t_wait_events (NULL, id, 7);
    static const char *const types[]
        = { "complaint.received", "complaint.overdue",  "complaint.acknowledged",
            "complaint.updated",  "complaint.overdue",  "complaint.responded",
            "complaint.closed" };
    for (size_t i = 0; i < 7; i++)
        assert_string_equal (t_str (json_array_get (evs, i), "type"), types[i]);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_str (data, "type"), "complaint");
    assert_string_equal (t_str (data, "channel"), "call");
    assert_true (json_is_false (json_object_get (data, "sensitive")));
    assert_int_equal (t_int (data, "acknowledge_due"), received + 24 * T_HOUR_MS);
    assert_int_equal (t_int (data, "respond_due"), received + 168 * T_HOUR_MS);
    assert_null (json_object_get (data, "description"));
    data = json_object_get (json_array_get (evs, 2), "data");
    assert_true (json_is_true (json_object_get (data, "late")));
    data = json_object_get (json_array_get (evs, 5), "data");
    assert_true (json_is_true (json_object_get (data, "late")));
    data = json_object_get (json_array_get (evs, 6), "data");
    assert_string_equal (t_str (data, "outcome"), "resolved");
    assert_string_equal (t_str (data, "status"), "closed");
    json_decref (evs);
}

//  Deadlines per type, the policy on closing, anonymous feedback.
static void
test_types_and_anonymous (void **state)
{
    int64_t received = s_now;
    char id[GL_ID_LEN + 1];
    t_create_id (U_AGENT1,
                 "{\"type\":\"suggestion\",\"channel\":\"suggestion_box\",\"language\":\"fr\","
                 "\"anonymous\":true,\"description\":\"Ouvrir le samedi\"}",
                 id);
    json_t *rec = t_get (U_SUPER, id, 200);
    assert_true (json_is_true (json_object_get (rec, "anonymous")));
    assert_true (json_is_null (json_object_get (rec, "phone")));
    assert_int_equal (t_int (rec, "acknowledge_due"), received + 72 * T_HOUR_MS);
    assert_int_equal (t_int (rec, "respond_due"), received + 720 * T_HOUR_MS);
    json_decref (rec);
    //  Anonymous: nobody to answer; acknowledged, then closed as unreachable without an answer.
    json_decref (t_act (U_SUPER, id, "acknowledge", NULL, 200));
    rec = t_act (U_SUPER, id, "close", "{\"outcome\":\"unreachable\"}", 200);
    assert_string_equal (t_str (rec, "status"), "closed");
    assert_true (json_is_null (json_object_get (rec, "answer")));
    json_decref (rec);

    //  Logged in a contact: the contact is the way back to the person.
    json_t *contact = t_call_json (U_AGENT1, "POST", "/api/v1/contacts",
                                   "{\"channel\":\"call\",\"anonymous\":true,"
                                   "\"language\":\"ar\",\"categories\":[\"education\"],"
                                   "\"outcome\":\"complaint_logged\"}",
                                   201);
    char body[300];
    snprintf (body, sizeof body,
              "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
              "\"contact_id\":\"%s\",\"description\":\"x\"}",
              t_str (contact, "id"));
    rec = t_call_json (U_AGENT2, "POST", "/api/v1/complaints", body, 201);
    assert_string_equal (t_str (rec, "contact_id"), t_str (contact, "id"));
    json_decref (rec);
    json_decref (contact);

    //  Feedback closed straight after acknowledgement with the answer given there and then.
    t_create_id (U_AGENT2,
                 "{\"type\":\"appreciation\",\"channel\":\"walk_in\",\"language\":\"en\","
                 "\"case_number\":\"ABC-123\",\"description\":\"thanks\"}",
                 id);
    json_decref (t_act (U_SUPER, id, "acknowledge", NULL, 200));
    rec = t_act (U_SUPER, id, "close",
                 "{\"outcome\":\"resolved\",\"answer\":\"thanked on the spot\"}", 200);
    assert_string_equal (t_str (rec, "answer"), "thanked on the spot");
    json_decref (rec);

    //  Listing by type and status.
    json_t *page = t_call_json (U_AGENT1, "GET",
                                "/api/v1/complaints?type=appreciation&status=closed", NULL, 200);
    assert_true (t_has_id (page, id));
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get (page, "items"), i, item)
        assert_string_equal (t_str (item, "type"), "appreciation");
    json_decref (page);
    t_call_error (U_AGENT1, "GET", "/api/v1/complaints?status=lost", NULL, 400,
                  "invalid_parameter", "status");
    t_call_error (U_AGENT1, "GET", "/api/v1/complaints?colour=red", NULL, 400,
                  "unknown_parameter", "colour");
}

static void
test_validation (void **state)
{
    const char *path = "/api/v1/complaints";
    t_call_error (U_AGENT1, "POST", path,
                  "{\"channel\":\"call\",\"language\":\"ar\",\"anonymous\":true,"
                  "\"description\":\"x\"}",
                  400, "missing_field", "type");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"rant\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"anonymous\":true,\"description\":\"x\"}",
                  400, "invalid_field", "type");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"anonymous\":true,\"phone\":\"0791234567\",\"description\":\"x\"}",
                  400, "invalid_field", "anonymous");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"description\":\"x\"}",
                  400, "missing_field", "anonymous");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"anonymous\":true,\"sensitive_kind\":\"gossip\",\"description\":\"x\"}",
                  400, "invalid_field", "sensitive_kind");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"Arabic!\","
                  "\"anonymous\":true,\"description\":\"x\"}",
                  400, "invalid_field", "language");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"anonymous\":true,\"description\":\"x\",\"mood\":\"bad\"}",
                  400, "unknown_field", "mood");
    t_call_error (U_AGENT1, "POST", path,
                  "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                  "\"contact_id\":\"not-an-id\",\"description\":\"x\"}",
                  400, "invalid_field", "contact_id");
    //  An oversized description.
    size_t big = 4100;
    char *body = malloc (big + 200);
    assert_non_null (body);
    int n = snprintf (body, big + 200,
                      "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                      "\"anonymous\":true,\"description\":\"");
    memset (body + n, 'a', big);
    snprintf (body + n + big, 200, "\"}");
    t_call_error (U_AGENT1, "POST", path, body, 400, "invalid_field", "description");
    free (body);
    //  A contact that does not exist.
    char nobody[GL_ID_LEN + 1], with_contact[256];
    gl_id_new (nobody);
    snprintf (with_contact, sizeof with_contact,
              "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
              "\"contact_id\":\"%s\",\"description\":\"x\"}",
              nobody);
    t_call_error (U_AGENT1, "POST", path, with_contact, 404, "not_found", "contact_id");
    //  Malformed JSON, and unknown complaints.
    assert_int_equal (t_call_status (U_AGENT1, "POST", path, "{\"type\":"), 400);
    char missing[GL_ID_LEN + 1];
    gl_id_new (missing);
    json_decref (t_get (U_SUPER, missing, 404));
    t_act_error (U_SUPER, missing, "acknowledge", NULL, 404, "not_found", NULL);
    json_decref (t_get (U_SUPER, "nope", 404));
}

//  --------------------------------------------------------------------------------------------
//  Sensitive complaints

static void
test_sensitive (void **state)
{
    t_secret ("SECRET-psea-allegation");
    char id[GL_ID_LEN + 1];
    json_t *rec = t_call_json (U_AGENT1, "POST", "/api/v1/complaints",
                               "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                               "\"anonymous\":true,\"sensitive_kind\":\"psea\","
                               "\"description\":\"SECRET-psea-allegation\"}",
                               201);
    snprintf (id, sizeof id, "%s", t_str (rec, "id"));
    assert_true (json_is_true (json_object_get (rec, "sensitive")));
    //  Sensitive deadlines: an hour to acknowledge.
    assert_int_equal (t_int (rec, "acknowledge_due"), t_int (rec, "received_at") + T_HOUR_MS);
    json_decref (rec);

    //  Nobody but the focal point sees it: not the agent who logged it, nor another agent, a
    //  supervisor, or protection staff outside the PSEA focal unit.
    int blind[] = { U_AGENT1, U_AGENT2, U_SUPER, U_PROT };
    for (size_t i = 0; i < 4; i++) {
        json_decref (t_get (blind[i], id, 404));
        json_t *page = t_call_json (blind[i], "GET", "/api/v1/complaints?limit=200", NULL, 200);
        assert_false (t_has_id (page, id));
        json_decref (page);
    }
    t_act_error (U_SUPER, id, "acknowledge", NULL, 404, "not_found", NULL);
    rec = t_get (U_FOCAL, id, 200);
    assert_string_equal (t_str (rec, "description"), "SECRET-psea-allegation");
    assert_string_equal (t_str (rec, "sensitive_kind"), "psea");
    json_decref (rec);
    json_t *page = t_call_json (U_FOCAL, "GET", "/api/v1/complaints?sensitive=true", NULL, 200);
    assert_true (t_has_id (page, id));
    json_decref (page);
    json_decref (t_act (U_FOCAL, id, "acknowledge", NULL, 200));

    //  Every read audited: the focal point's reads, the refused ones.
    char path[300];
    snprintf (path, sizeof path,
              "/api/v1/audit?record_type=complaint&action=read_denied&record_id=%s", id);
    page = t_call_json (U_SUPER, "GET", path, NULL, 200);
    assert_true (json_array_size (json_object_get (page, "items")) >= 4);
    json_decref (page);
    snprintf (path, sizeof path, "/api/v1/audit?record_type=complaint&action=read&record_id=%s",
              id);
    page = t_call_json (U_SUPER, "GET", path, NULL, 200);
    json_t *items = json_object_get (page, "items");
    assert_int_equal (json_array_size (items), 2);          //  the GET and the list
    size_t i;
    json_t *entry;
    json_array_foreach (items, i, entry)
        assert_string_equal (t_str (entry, "actor"), s_users[U_FOCAL].id);
    json_decref (page);

    //  The focal point was alerted at once: notification.requested to the PSEA unit.
    json_t *evs = t_wait_events ("notification.requested", id, 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_str (data, "template"), "complaint.sensitive");
    assert_string_equal (t_str (data, "priority"), "emergency");
    assert_true (gl_id_valid (t_str (data, "notification_id")));
    json_t *recipient = json_object_get (data, "recipient");
    assert_string_equal (t_str (recipient, "kind"), "unit");
    assert_string_equal (t_str (recipient, "code"), "psea-fp");
    assert_string_equal (json_string_value (json_array_get (json_object_get (data, "channels"),
                                                            0)),
                         "console");
    assert_string_equal (t_str (json_object_get (data, "params"), "complaint_id"), id);
    json_decref (evs);
    evs = t_wait_events ("complaint.received", id, 1);
    data = json_object_get (json_array_get (evs, 0), "data");
    assert_true (json_is_true (json_object_get (data, "sensitive")));
    json_decref (evs);

    //  Fraud goes to protection staff (the default focal point: the protection role).
    t_create_id (U_AGENT1,
                 "{\"type\":\"complaint\",\"channel\":\"sms\",\"language\":\"en\","
                 "\"anonymous\":true,\"sensitive_kind\":\"fraud\",\"description\":\"d\"}",
                 id);
    json_decref (t_get (U_PROT, id, 200));
    json_decref (t_get (U_SUPER, id, 404));
    evs = t_wait_events ("notification.requested", id, 1);
    recipient = json_object_get (json_object_get (json_array_get (evs, 0), "data"), "recipient");
    assert_string_equal (t_str (recipient, "kind"), "role");
    assert_string_equal (t_str (recipient, "role"), "protection");
    json_decref (evs);
}

//  An ordinary complaint found to be about staff misconduct: made sensitive, alerted, hidden.
static void
test_made_sensitive (void **state)
{
    char id[GL_ID_LEN + 1];
    t_create_id (U_AGENT1,
                 "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                 "\"case_number\":\"XYZ-9\",\"description\":\"d\"}",
                 id);
    char path[128];
    snprintf (path, sizeof path, "/api/v1/complaints/%s", id);
    t_call_error (U_SUPER, "PATCH", path, "{}", 400, "missing_field", NULL);
    t_call_error (U_SUPER, "PATCH", path, "{\"sensitive_kind\":\"bad\"}", 400, "invalid_field",
                  "sensitive_kind");
    json_t *rec = t_call_json (U_SUPER, "PATCH", path,
                               "{\"sensitive_kind\":\"staff_misconduct\",\"category\":\"conduct\"}",
                               200);
    assert_true (json_is_true (json_object_get (rec, "sensitive")));
    assert_int_equal (t_int (rec, "acknowledge_due"), t_int (rec, "received_at") + T_HOUR_MS);
    json_decref (rec);
    //  The supervisor who reclassified it no longer sees it; the focal point (protection) does.
    json_decref (t_get (U_SUPER, id, 404));
    json_decref (t_get (U_AGENT1, id, 404));
    rec = t_get (U_PROT, id, 200);
    assert_string_equal (t_str (rec, "category"), "conduct");
    json_decref (rec);
    t_call_error (U_PROT, "PATCH", path, "{\"sensitive_kind\":null}", 422, "sensitive_kept",
                  "sensitive_kind");
    json_t *evs = t_wait_events ("complaint.updated", id, 1);
    json_t *changed = json_object_get (json_object_get (json_array_get (evs, 0), "data"),
                                       "changed");
    assert_int_equal (json_array_size (changed), 2);
    json_decref (evs);
    json_decref (t_wait_events ("notification.requested", id, 1));
}

static void
test_idempotency (void **state)
{
    const char *body = "{\"type\":\"feedback\",\"channel\":\"web\",\"language\":\"en\","
                       "\"anonymous\":true,\"description\":\"retry me\"}";
    t_resp_t a = t_call (U_AGENT1, "POST", "/api/v1/complaints", "Idempotency-Key: k-1\r\n", body);
    t_expect (&a, 201);
    t_resp_t b = t_call (U_AGENT1, "POST", "/api/v1/complaints", "Idempotency-Key: k-1\r\n", body);
    t_expect (&b, 201);
    json_t *ja = t_json (&a), *jb = t_json (&b);
    assert_string_equal (t_str (ja, "id"), t_str (jb, "id"));
    assert_non_null (gl_test_http_header (&b, "Idempotent-Replayed"));
    json_decref (t_wait_events ("complaint.received", t_str (ja, "id"), 1));
    json_decref (ja);
    json_decref (jb);
    gl_test_http_free (&a);
    gl_test_http_free (&b);
    t_resp_t c = t_call (U_AGENT1, "POST", "/api/v1/complaints", "Idempotency-Key: k-1\r\n",
                         "{\"type\":\"feedback\",\"channel\":\"web\",\"language\":\"en\","
                         "\"anonymous\":true,\"description\":\"another\"}");
    t_expect (&c, 409);
    gl_test_http_free (&c);
}


//  --------------------------------------------------------------------------------------------
//  A record and its events, never one without the other

//  Forbid (or allow again) intake's writes to the bus log, and only those: Redis's ACL lets the
//  default user write everything but gl:log:*, which it may still read.
static void
t_log_writable (bool writable)
{
    redisReply *r = writable ? gl_redis_cmd (s_rc, "ACL SETUSER default resetkeys ~*")
                             : gl_redis_cmd (s_rc, "ACL SETUSER default resetkeys ~intake:* "
                                                   "~gl:src:* ~gl:sources ~gl:cur:* "
                                                   "~gl:lease:* %%R~gl:log:*");
    assert_non_null (r);
    assert_int_equal (r->type, REDIS_REPLY_STATUS);
    freeReplyObject (r);
}

static long long
t_outbox_len (void)
{
    redisReply *r = gl_redis_cmd (s_rc, "HLEN intake:{intake}:outbox");
    assert_non_null (r);
    long long n = r->integer;
    freeReplyObject (r);
    return n;
}

//  The appends fail after a sensitive complaint was stored with its two events, and intake is
//  killed before its sweep could deliver them: the restarted intake delivers both, once; a
//  transition whose append fails while intake runs is delivered by the sweep.
static void
test_outbox (void **state)
{
    t_log_writable (false);
    json_t *rec = t_call_json (U_AGENT1, "POST", "/api/v1/complaints",
                               "{\"type\":\"complaint\",\"channel\":\"call\",\"language\":\"ar\","
                               "\"anonymous\":true,\"sensitive_kind\":\"psea\","
                               "\"description\":\"d\"}",
                               201);
    char id[GL_ID_LEN + 1];
    snprintf (id, sizeof id, "%s", t_str (rec, "id"));
    json_decref (rec);
    kill (s_intake, SIGKILL);
    assert_true (WIFSIGNALED (gl_test_wait (s_intake, 10000)));
    s_intake = -1;
    json_t *evs = t_events (NULL, id);
    assert_int_equal (json_array_size (evs), 0);
    json_decref (evs);
    assert_int_equal (t_outbox_len (), 2);
    t_log_writable (true);
    //  The dead process's lease expires on the business clock first.
    t_clock_write (s_now + 11000);
    s_intake = t_spawn (NULL);
    assert_true (s_intake > 0);
    json_decref (t_wait_events ("complaint.received", id, 1));
    json_decref (t_wait_events ("notification.requested", id, 1));
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (t_outbox_len () > 0 && gl_mono_ms () < deadline)
        gl_sleep_ms (50);
    assert_int_equal (t_outbox_len (), 0);

    t_log_writable (false);
    json_decref (t_act (U_FOCAL, id, "acknowledge", NULL, 200));
    assert_int_equal (t_outbox_len (), 1);
    t_log_writable (true);
    json_decref (t_wait_events ("complaint.acknowledged", id, 1));
    gl_sleep_ms (300);
    json_decref (t_wait_events ("complaint.received", id, 1));
}


//  No description, response, answer or phone number the tests sent is in intake's log (nor in
//  any event: every t_events call checks).
static void
test_no_personal_data (void **state)
{
    json_decref (t_events (NULL, NULL));
    FILE *f = fopen (s_log_path, "r");
    assert_non_null (f);
    size_t cap = 4 << 20;
    char *text = malloc (cap + 1);
    assert_non_null (text);
    size_t len = fread (text, 1, cap, f);
    text[len] = 0;
    fclose (f);
    assert_true (len > 0);
    for (int i = 0; i < s_secretc; i++) {
        if (strstr (text, s_secrets[i]))
            fprintf (stderr, "personal data in intake's log: %s\n", s_secrets[i]);
        assert_null (strstr (text, s_secrets[i]));
    }
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_lifecycle),
        cmocka_unit_test (test_types_and_anonymous),
        cmocka_unit_test (test_validation),
        cmocka_unit_test (test_sensitive),
        cmocka_unit_test (test_made_sensitive),
        cmocka_unit_test (test_idempotency),
        cmocka_unit_test (test_outbox),
        cmocka_unit_test (test_no_personal_data),
    };
    return cmocka_run_group_tests_name ("intake complaints", tests, t_setup, t_teardown);
}
