/*  intake's QA reviews over real HTTP: gl-intake as a process against a private redis-server,
    its business clock driven through GL_CLOCK_FILE, contacts made through the contacts API.

    The scorecards (the configured file, and a bad file stopping the start with file:line); a
    sample drawn from one agent's contacts within a period (only that agent's, only that
    period, no repeats, at most the size asked); a contact scored on a scorecard with a comment
    (every criterion required, each within its maximum; unknown scorecards, criteria, contacts
    and contacts outside the sample refused, naming the field); the total, percentage and the
    pass rule of a critical criterion; the agent seeing its own feedback only and acknowledging
    it; the scores by criterion; the events, without the comments.

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


enum { U_ADMIN, U_AGENT1, U_AGENT2, U_SUPER, U_COUNT };
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

static char s_card_path[200];

static int
t_setup (void **state)
{
    snprintf (s_card_path, sizeof s_card_path, "/tmp/gl-test-intake-qa-%d.conf", (int) getpid ());
    FILE *f = fopen (s_card_path, "w");
    if (!f)
        return -1;
    fprintf (f, "# test scorecards\n"
                "scorecard standard\n"
                "  greeting          5\n"
                "  identification   10\n"
                "  accuracy         25\n"
                "  empathy          15\n"
                "  correct_referral 20\n"
                "  data_protection  15  critical\n"
                "  closing          10\n"
                "\n"
                "scorecard short   # a quick check\n"
                "  greeting 2\n"
                "  closing  2\n");
    fclose (f);
    char setting[260];
    snprintf (setting, sizeof setting, "GL_INTAKE_QA_SCORECARDS=%s", s_card_path);
    char *extra[] = { setting, NULL };
    return t_setup_common ("qa", extra);
}

static int
t_teardown_qa (void **state)
{
    unlink (s_card_path);
    return t_teardown (state);
}

static void
t_contact (int user, char *id)
{
    json_t *rec = t_call_json (user, "POST", "/api/v1/contacts",
                               "{\"channel\":\"call\",\"anonymous\":true,\"language\":\"ar\","
                               "\"categories\":[\"information_request\"],"
                               "\"outcome\":\"information_given\"}",
                               201);
    snprintf (id, GL_ID_LEN + 1, "%s", t_str (rec, "id"));
    json_decref (rec);
}

static bool
t_in (const json_t *array, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach (array, i, v)
        if (strcmp (json_string_value (v), id) == 0)
            return true;
    return false;
}

//  --------------------------------------------------------------------------------------------

static void
test_scorecards (void **state)
{
    json_t *res = t_call_json (U_AGENT1, "GET", "/api/v1/qa/scorecards", NULL, 200);
    json_t *items = json_object_get (res, "items");
    assert_int_equal (json_array_size (items), 2);
    json_t *standard = json_array_get (items, 0);
    assert_string_equal (t_str (standard, "code"), "standard");
    assert_int_equal (t_int (standard, "max"), 100);
    json_t *criteria = json_object_get (standard, "criteria");
    assert_int_equal (json_array_size (criteria), 7);
    assert_string_equal (t_str (json_array_get (criteria, 0), "code"), "greeting");
    assert_true (json_is_true (json_object_get (json_array_get (criteria, 5), "critical")));
    json_decref (res);

    //  A bad scorecard file stops the start, naming the file and line.
    char bad[220], log[220], setting[260], port[64];
    snprintf (bad, sizeof bad, "%s.bad", s_card_path);
    snprintf (log, sizeof log, "%s.log", s_card_path);
    FILE *f = fopen (bad, "w");
    assert_non_null (f);
    fprintf (f, "scorecard standard\n  greeting 5\n  empathy lots\n");
    fclose (f);
    snprintf (setting, sizeof setting, "GL_INTAKE_QA_SCORECARDS=%s", bad);
    snprintf (port, sizeof port, "GL_HTTP_PORT=%d", gl_test_free_port ());
    char *env[40];
    int n = 0;
    for (int i = 0; i < s_envc; i++)
        if (strncmp (s_env[i], "GL_INTAKE_QA_SCORECARDS=", 24) != 0
            && strncmp (s_env[i], "GL_SOURCE=", 10) != 0)
            env[n++] = s_env[i];
    env[n++] = setting;
    env[n++] = port;
    env[n++] = "GL_SOURCE=intake-9";
    env[n] = NULL;
    char *argv[] = { "gl-intake", NULL };
    unlink (log);
    pid_t pid = gl_test_spawn (gl_test_build_path ("services/intake/gl-intake"), argv, env, log);
    assert_true (pid > 0);
    int status = gl_test_wait (pid, 30000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) != 0);
    FILE *lf = fopen (log, "r");
    assert_non_null (lf);
    char text[8192];
    size_t len = fread (text, 1, sizeof text - 1, lf);
    text[len] = 0;
    fclose (lf);
    char want[260];
    snprintf (want, sizeof want, "%s:3: MAX must be a whole number", bad);
    if (!strstr (text, want))
        fprintf (stderr, "log: %s\n", text);
    assert_non_null (strstr (text, want));
    unlink (bad);
    unlink (log);
}

static void
test_sample_review_ack (void **state)
{
    t_secret ("SECRET-qa-comment-well-done");
    t_secret ("SECRET-agent-reply");
    //  agent1: four contacts today, one tomorrow; agent2: two today.
    int64_t day0 = s_now;
    char a1[4][GL_ID_LEN + 1], a1_late[GL_ID_LEN + 1], a2[2][GL_ID_LEN + 1];
    for (int i = 0; i < 4; i++)
        t_contact (U_AGENT1, a1[i]);
    for (int i = 0; i < 2; i++)
        t_contact (U_AGENT2, a2[i]);
    t_clock_advance (T_DAY_MS);
    t_contact (U_AGENT1, a1_late);

    //  A sample of three of agent1's contacts on day 0.
    char body[512];
    snprintf (body, sizeof body,
              "{\"agent_id\":\"%s\",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"size\":3}",
              s_users[U_AGENT1].id, day0, day0 + T_DAY_MS);
    json_t *sample = t_call_json (U_SUPER, "POST", "/api/v1/qa/samples", body, 201);
    json_t *ids = json_object_get (sample, "contact_ids");
    assert_int_equal (json_array_size (ids), 3);
    assert_int_equal (t_int (sample, "population"), 4);
    for (size_t i = 0; i < 3; i++) {
        const char *c = json_string_value (json_array_get (ids, i));
        bool mine = false;
        for (int k = 0; k < 4; k++)
            mine = mine || strcmp (c, a1[k]) == 0;
        assert_true (mine);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal (c, json_string_value (json_array_get (ids, k)));
    }
    char sample_id[GL_ID_LEN + 1], contact[GL_ID_LEN + 1];
    snprintf (sample_id, sizeof sample_id, "%s", t_str (sample, "id"));
    snprintf (contact, sizeof contact, "%s", json_string_value (json_array_get (ids, 0)));
    json_decref (sample);
    char path[200];
    snprintf (path, sizeof path, "/api/v1/qa/samples/%s", sample_id);
    sample = t_call_json (U_SUPER, "GET", path, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (sample, "contact_ids")), 3);
    json_decref (sample);
    assert_int_equal (t_call_status (U_AGENT1, "GET", path, NULL), 403);
    //  A sample larger than the population holds it all.
    snprintf (body, sizeof body,
              "{\"agent_id\":\"%s\",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"size\":50}",
              s_users[U_AGENT1].id, day0, day0 + 2 * T_DAY_MS);
    sample = t_call_json (U_SUPER, "POST", "/api/v1/qa/samples", body, 201);
    ids = json_object_get (sample, "contact_ids");
    assert_int_equal (json_array_size (ids), 5);
    assert_true (t_in (ids, a1_late));
    assert_false (t_in (ids, a2[0]));
    json_decref (sample);
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\",\"from\":5,\"to\":1}",
              s_users[U_AGENT1].id);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/samples", body, 400, "invalid_field", "from");
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\",\"from\":1,\"to\":5}",
              s_users[U_SUPER].id);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/samples", body, 422, "unknown_agent",
                  "agent_id");
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\",\"from\":1,\"to\":5,\"size\":51}",
              s_users[U_AGENT1].id);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/samples", body, 400, "invalid_field", "size");

    //  Scoring: every criterion, within its maximum, on a known scorecard.
    const char *scores = "{\"greeting\":5,\"identification\":8,\"accuracy\":20,\"empathy\":12,"
                         "\"correct_referral\":20,\"data_protection\":15,\"closing\":7}";
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"sample_id\":\"%s\",\"scorecard\":\"nope\","
              "\"scores\":%s}",
              contact, sample_id, scores);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 422, "unknown_scorecard",
                  "scorecard");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"scorecard\":\"standard\",\"scores\":{\"greeting\":5}}",
              contact);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 400, "missing_field",
                  "scores.identification");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"scorecard\":\"short\",\"scores\":{\"greeting\":3,"
              "\"closing\":1}}",
              contact);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 400, "invalid_field",
                  "scores.greeting");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"scorecard\":\"short\",\"scores\":{\"greeting\":1,"
              "\"closing\":1,\"humour\":2}}",
              contact);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 400, "invalid_field",
                  "scores.humour");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"sample_id\":\"%s\",\"scorecard\":\"short\","
              "\"scores\":{\"greeting\":1,\"closing\":1}}",
              a2[0], sample_id);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 422, "not_in_sample",
                  "sample_id");
    char missing[GL_ID_LEN + 1];
    gl_id_new (missing);
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"scorecard\":\"short\",\"scores\":{\"greeting\":1,"
              "\"closing\":1}}",
              missing);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 422, "unknown_contact",
                  "contact_id");
    assert_int_equal (t_call_status (U_AGENT1, "POST", "/api/v1/qa/reviews", body), 403);

    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"sample_id\":\"%s\",\"scorecard\":\"standard\","
              "\"scores\":%s,\"comment\":\"SECRET-qa-comment-well-done\"}",
              contact, sample_id, scores);
    json_t *review = t_call_json (U_SUPER, "POST", "/api/v1/qa/reviews", body, 201);
    assert_int_equal (t_int (review, "total"), 87);
    assert_int_equal (t_int (review, "percent"), 87);
    assert_true (json_is_true (json_object_get (review, "passed")));
    assert_string_equal (t_str (review, "agent_id"), s_users[U_AGENT1].id);
    assert_string_equal (t_str (review, "status"), "completed");
    char review_id[GL_ID_LEN + 1];
    snprintf (review_id, sizeof review_id, "%s", t_str (review, "id"));
    json_decref (review);
    //  A second review, on the second contact: a zero on data protection fails it.
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"scorecard\":\"standard\",\"scores\":{\"greeting\":3,"
              "\"identification\":10,\"accuracy\":25,\"empathy\":15,\"correct_referral\":20,"
              "\"data_protection\":0,\"closing\":10}}",
              a1[1]);
    review = t_call_json (U_SUPER, "POST", "/api/v1/qa/reviews", body, 201);
    assert_int_equal (t_int (review, "total"), 83);
    assert_false (json_is_true (json_object_get (review, "passed")));
    json_decref (review);

    //  The agent sees its feedback, another agent does not.
    snprintf (path, sizeof path, "/api/v1/qa/reviews/%s", review_id);
    review = t_call_json (U_AGENT1, "GET", path, NULL, 200);
    assert_string_equal (t_str (review, "comment"), "SECRET-qa-comment-well-done");
    json_decref (review);
    t_call_error (U_AGENT2, "GET", path, NULL, 404, "not_found", NULL);
    json_t *page = t_call_json (U_AGENT1, "GET", "/api/v1/qa/reviews?unacknowledged=true", NULL,
                                200);
    assert_int_equal (json_array_size (json_object_get (page, "items")), 2);
    assert_true (t_has_id (page, review_id));
    json_decref (page);
    page = t_call_json (U_AGENT2, "GET", "/api/v1/qa/reviews", NULL, 200);
    assert_int_equal (json_array_size (json_object_get (page, "items")), 0);
    json_decref (page);
    snprintf (path, sizeof path, "/api/v1/qa/reviews?agent_id=%s", s_users[U_AGENT1].id);
    t_call_error (U_AGENT2, "GET", path, NULL, 403, "forbidden", "agent_id");

    //  The agent acknowledges (with a reply); once.
    snprintf (path, sizeof path, "/api/v1/qa/reviews/%s/acknowledge", review_id);
    t_call_error (U_AGENT2, "POST", path, "{}", 404, "not_found", NULL);
    json_t *ack = t_call_json (U_AGENT1, "POST", path, "{\"comment\":\"SECRET-agent-reply\"}",
                               200);
    assert_string_equal (t_str (ack, "status"), "acknowledged");
    assert_int_equal (t_int (ack, "acknowledged_at"), s_now);
    assert_false (json_is_true (json_object_get (ack, "already")));
    json_decref (ack);
    ack = t_call_json (U_AGENT1, "POST", path, "{}", 200);
    assert_true (json_is_true (json_object_get (ack, "already")));
    assert_string_equal (t_str (ack, "agent_comment"), "SECRET-agent-reply");
    json_decref (ack);
    assert_int_equal (t_call_status (U_SUPER, "POST", path, "{}"), 403);
    page = t_call_json (U_AGENT1, "GET", "/api/v1/qa/reviews?unacknowledged=true", NULL, 200);
    assert_int_equal (json_array_size (json_object_get (page, "items")), 1);
    json_decref (page);

    //  Scores by criterion, for the agent.
    snprintf (path, sizeof path, "/api/v1/qa/scores?agent_id=%s", s_users[U_AGENT1].id);
    json_t *figures = t_call_json (U_SUPER, "GET", path, NULL, 200);
    json_t *card = json_array_get (json_object_get (figures, "scorecards"), 0);
    assert_string_equal (t_str (card, "scorecard"), "standard");
    assert_int_equal (t_int (card, "reviews"), 2);
    assert_int_equal (t_int (card, "passed"), 1);
    assert_true (json_real_value (json_object_get (card, "average_total")) == 85.0);
    json_t *criteria = json_object_get (card, "criteria");
    assert_int_equal (json_array_size (criteria), 7);
    assert_string_equal (t_str (json_array_get (criteria, 0), "code"), "greeting");
    assert_true (json_real_value (json_object_get (json_array_get (criteria, 0), "average"))
                 == 4.0);
    assert_true (json_real_value (json_object_get (json_array_get (criteria, 5), "average"))
                 == 7.5);
    assert_true (json_real_value (json_object_get (json_array_get (criteria, 5), "percent"))
                 == 50.0);
    json_decref (figures);
    figures = t_call_json (U_AGENT1, "GET", "/api/v1/qa/scores", NULL, 200);
    assert_string_equal (t_str (figures, "agent_id"), s_users[U_AGENT1].id);
    assert_int_equal (json_array_size (json_object_get (figures, "scorecards")), 1);
    json_decref (figures);
    figures = t_call_json (U_AGENT2, "GET", "/api/v1/qa/scores", NULL, 200);
    assert_int_equal (json_array_size (json_object_get (figures, "scorecards")), 0);
    json_decref (figures);
    snprintf (path, sizeof path, "/api/v1/qa/scores?agent_id=%s&from=%" PRId64,
              s_users[U_AGENT1].id, s_now + 1);
    figures = t_call_json (U_SUPER, "GET", path, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (figures, "scorecards")), 0);
    json_decref (figures);

    //  The events: scores and totals, no comment.
    json_t *evs = t_wait_events ("qa.review_completed", review_id, 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_str (data, "agent_id"), s_users[U_AGENT1].id);
    assert_string_equal (t_str (data, "scorecard"), "standard");
    assert_int_equal (t_int (data, "total"), 87);
    assert_int_equal (t_int (json_object_get (data, "scores"), "accuracy"), 20);
    json_decref (evs);
    evs = t_wait_events ("qa.feedback_acknowledged", review_id, 1);
    data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_str (data, "agent_id"), s_users[U_AGENT1].id);
    assert_true (json_is_true (json_object_get (data, "commented")));
    json_decref (evs);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_scorecards),
        cmocka_unit_test (test_sample_review_ack),
    };
    return cmocka_run_group_tests_name ("intake QA reviews", tests, t_setup, t_teardown_qa);
}
