/*  intake's callers and their cases over real HTTP: gl-intake as a process against a private
    redis-server, its business clock driven through GL_CLOCK_FILE, users and an API client made
    through the accounts API.

    The extract: CSV import (quotes, CRLF, BOM; malformed rows refused with row and column and
    nothing written; oversized files and fields; newer-wins), the push. Verification: wrong
    answers counted, the lock-out (423, Retry-After) and its end on the driven clock, a grant
    bound to agent, case and call, its expiry, and nothing shown before it; every attempt in the
    audit trail. Change requests: pending -> sent -> applied | rejected, impossible steps
    refused, the case updated only when applied, the events (codes only: no phone number, case
    number or language in any event byte). Abusive flags. intake.delivery_details over real
    ZeroMQ, audited with the asking service as actor. Booking: 503 when no scheduler listens
    (and nothing written in intake), then a stand-in scheduler (a gl_rep server in a thread of
    this test) for the success path, the idempotency key, refusals and a scheduler too slow.
    Finally: no case or phone number in intake's log.

    ctest: timeout=300 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl/gl_rep.h"
#include "gl/gl_req.h"
#include "gl_testenv.h"
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
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
#include <time.h>
#include <unistd.h>
#include "gl/gl_log.h"
#include <cmocka.h>

#define T_WAIT_MS       60000
#define T_START_MS      INT64_C(1767225600000)      //  2026-01-01T00:00:00Z
#define T_ADMIN_PASS    "adminpass"
#define T_BUS_TOKEN     "tok-callers-test"
#define T_LOCK_S        600
#define T_GRANT_S       900
#define T_MAX_ROWS      50
#define T_MAX_BODY      262144

//  Personal data used below; none of it may appear in an event or in intake's log.
#define T_CASE_A        "QZA-11C00001"
#define T_CASE_B        "QZB-22C00002"
#define T_CASE_C        "QZC-33C00003"
#define T_PHONE_A1      "+256770111001"
#define T_PHONE_A2      "+256770111002"
#define T_PHONE_NEW     "+256770999555"
#define T_PHONE_PRANK   "+256770666013"
#define T_DOB_A         "1987-06-15"

#include "gl_testhttp.h"
#include "gl_testintake.h"
typedef gl_test_resp_t t_resp_t;
#define t_connect gl_test_http_connect
#define t_raw gl_test_http_raw
#define t_free gl_test_http_free
#define t_header gl_test_http_header

static gl_testredis_t *s_redis;
static pid_t s_intake = -1;
static int s_http_port, s_router_port, s_sched_port;
static char s_log_path[200], s_clock_path[200];
static char s_env[32][256];
static int64_t s_now = T_START_MS;
static char s_admin[128], s_agent[128], s_agent2[128], s_super[128], s_client[128];
static char s_agent_id[GL_ID_LEN + 1], s_agent2_id[GL_ID_LEN + 1];
static char s_call[GL_ID_LEN + 1];          //  the call agent 1 is on with case A's caller

//  --------------------------------------------------------------------------------------------
//  A tiny HTTP/1.1 client (as in test_intake.c): one request per connection.




//  A request. token: bearer (or NULL); extra: more header lines, each ending in \r\n.
static t_resp_t
t_call (const char *method, const char *path, const char *token, const char *extra,
        const char *body)
{
    return gl_testintake_request (s_http_port, method, path, token, extra, body);
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


//  The call's status must be status; returns the body as JSON (caller decrefs).
static json_t *
t_ok (const char *method, const char *path, const char *token, const char *body, int status)
{
    t_resp_t resp = t_call (method, path, token, NULL, body);
    if (resp.status != status)
        fprintf (stderr, "%s %s: expected %d, got: %s\n", method, path, status, resp.raw);
    assert_int_equal (resp.status, status);
    json_t *json = t_json (&resp);
    t_free (&resp);
    return json;
}

//  The one error shape with this status and code (and field, when not NULL); returns the
//  message (static).
static const char *
t_error (const char *method, const char *path, const char *token, const char *body, int status,
         const char *code, const char *field)
{
    static char message[512];
    json_t *json = t_ok (method, path, token, body, status);
    json_t *error = json_object_get (json, "error");
    assert_int_equal (json_object_size (json), 1);
    assert_int_equal (json_object_size (error), 3);
    const char *got = json_string_value (json_object_get (error, "code"));
    if (!got || strcmp (got, code) != 0)
        fprintf (stderr, "%s %s: expected code %s, got %s\n", method, path, code, got);
    assert_string_equal (got, code);
    if (field)
        assert_string_equal (json_string_value (json_object_get (error, "field")), field);
    snprintf (message, sizeof message, "%s",
              json_string_value (json_object_get (error, "message")));
    json_decref (json);
    return message;
}

//  --------------------------------------------------------------------------------------------
//  The business clock, accounts

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
t_clock_advance_s (int64_t s)
{
    t_clock_set (s_now + s * 1000);
}

static int
t_login (const char *username, const char *password, char *token, char *user_id)
{
    char body[512];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", username, password);
    t_resp_t resp = t_call ("POST", "/api/v1/auth/login", NULL, NULL, body);
    int status = resp.status;
    if (status == 200) {
        json_t *json = t_json (&resp);
        snprintf (token, 128, "%s", json_string_value (json_object_get (json, "token")));
        if (user_id)
            snprintf (user_id, GL_ID_LEN + 1, "%s",
                      json_string_value (json_object_get (json_object_get (json, "user"), "id")));
        json_decref (json);
    }
    else
        fprintf (stderr, "login %s: %s\n", username, resp.raw);
    t_free (&resp);
    return status;
}

static int
t_user (const char *username, const char *roles_json, char *token, char *user_id)
{
    char body[1024], password[64];
    snprintf (password, sizeof password, "%s-password-1", username);
    snprintf (body, sizeof body,
              "{\"username\":\"%s\",\"password\":\"%s\",\"roles\":%s,\"units\":[\"unit-a\"],"
              "\"languages\":[\"ar\",\"en\"],\"display_name\":\"Test %s\"}",
              username, password, roles_json, username);
    t_resp_t resp = t_call ("POST", "/api/v1/users", s_admin, NULL, body);
    int status = resp.status;
    t_free (&resp);
    if (status != 201) {
        fprintf (stderr, "cannot create %s: %d\n", username, status);
        return -1;
    }
    return t_login (username, password, token, user_id) == 200 ? 0 : -1;
}

static int
t_client (char *token)
{
    t_resp_t resp = t_call ("POST", "/api/v1/clients", s_admin, NULL,
                            "{\"name\":\"registration system\",\"roles\":[\"api_client\"]}");
    int rc = -1;
    if (resp.status == 201) {
        json_t *json = t_json (&resp);
        snprintf (token, 128, "%s", json_string_value (json_object_get (json, "token")));
        json_decref (json);
        rc = 0;
    }
    else
        fprintf (stderr, "cannot create the client: %s\n", resp.raw);
    t_free (&resp);
    return rc;
}

//  Audit entries matching the query (e.g. "actor=...&action=verify_failed"), as admin.
static size_t
t_audit_count (const char *query)
{
    char path[512];
    snprintf (path, sizeof path, "/api/v1/audit?limit=200&%s", query);
    json_t *page = t_ok ("GET", path, s_admin, NULL, 200);
    size_t n = json_array_size (json_object_get (page, "items"));
    json_decref (page);
    return n;
}

//  Of those entries, how many have this detail code.
static size_t
t_audit_details (const char *query, const char *detail)
{
    char path[512];
    snprintf (path, sizeof path, "/api/v1/audit?limit=200&%s", query);
    json_t *page = t_ok ("GET", path, s_admin, NULL, 200);
    size_t i, n = 0;
    json_t *item;
    json_array_foreach (json_object_get (page, "items"), i, item)
        n += strcmp (json_string_value (json_object_get (item, "detail")), detail) == 0;
    json_decref (page);
    return n;
}

static bool
t_contains (const char *bytes, size_t len, const char *needle)
{
    size_t n = strlen (needle);
    for (size_t i = 0; n <= len && i + n <= len; i++)
        if (memcmp (bytes + i, needle, n) == 0)
            return true;
    return false;
}

//  --------------------------------------------------------------------------------------------
//  intake's log

typedef struct {
    json_t *events;
    bool raw_ok;        //  no personal data in any event's bytes
} t_events_t;

static const char *const s_personal[] = {
    T_CASE_A, T_CASE_B, T_CASE_C, "QZA-", "QZB-", "QZC-", "770111001", "770111002", "770999555",
    "770666013", T_DOB_A, NULL,
};

static int
t_collect (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    t_events_t *c = arg;
    for (size_t i = 0; s_personal[i]; i++)
        if (t_contains (bytes, len, s_personal[i])) {
            fprintf (stderr, "personal data in event %" PRIu64 "\n", seq);
            c->raw_ok = false;
        }
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    assert_non_null (ev);
    json_array_append_new (c->events, json_pack ("{s:s, s:s, s:O}", "type", ev->type, "corr",
                                                 ev->corr, "data", ev->data));
    gl_event_destroy (&ev);
    return 0;
}

//  Every event intake-1 has published, decoded; asserts none carries personal data.
static json_t *
t_events (void)
{
    gl_redis_t *redis = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 5000);
    t_events_t c = { json_array (), true };
    assert_true (gl_log_read (redis, "intake-1", 1, 0, 100000, t_collect, &c, NULL) >= 0);
    gl_redis_destroy (&redis);
    assert_true (c.raw_ok);
    return c.events;
}

//  The events of type whose data field key equals value.
static size_t
t_events_count (json_t *events, const char *type, const char *key, const char *value)
{
    size_t i, n = 0;
    json_t *ev;
    json_array_foreach (events, i, ev) {
        if (strcmp (json_string_value (json_object_get (ev, "type")), type) != 0)
            continue;
        const char *v = json_string_value (json_object_get (json_object_get (ev, "data"), key));
        n += !key || (v && strcmp (v, value) == 0);
    }
    return n;
}

static long long
t_redis_int (const char *command)
{
    gl_redis_t *redis = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 5000);
    redisReply *r = gl_redis_cmd (redis, command);
    long long v = -1;
    assert_non_null (r);
    gl_redis_reply_int (r, &v);
    freeReplyObject (r);
    gl_redis_destroy (&redis);
    return v;
}

//  --------------------------------------------------------------------------------------------
//  Setup

static int
t_wait_ready (void)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (gl_mono_ms () < deadline) {
        t_resp_t resp = t_call ("GET", "/ready", NULL, NULL, NULL);
        int status = resp.status;
        t_free (&resp);
        if (status == 200)
            return 0;
        gl_sleep_ms (100);
    }
    return -1;
}

static int
t_setup (void **state)
{
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    s_http_port = gl_test_free_port ();
    s_router_port = gl_test_free_port ();
    s_sched_port = gl_test_free_port ();
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-intake-callers-%d.log", (int) getpid ());
    snprintf (s_clock_path, sizeof s_clock_path, "/tmp/gl-test-intake-callers-%d.clock",
              (int) getpid ());
    unlink (s_log_path);
    t_clock_set (T_START_MS);
    int n = 0;
    snprintf (s_env[n++], 256, "GL_REDIS_HOST=127.0.0.1");
    snprintf (s_env[n++], 256, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (s_env[n++], 256, "GL_HTTP_PORT=%d", s_http_port);
    snprintf (s_env[n++], 256, "GL_HTTP_MAX_BODY=%d", T_MAX_BODY);
    snprintf (s_env[n++], 256, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    snprintf (s_env[n++], 256, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (s_env[n++], 256, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", s_router_port);
    snprintf (s_env[n++], 256, "GL_ENDPOINT_SCHEDULER=tcp://127.0.0.1:%d", s_sched_port);
    snprintf (s_env[n++], 256, "GL_INTAKE_SCHEDULER_TIMEOUT_MS=1500");
    snprintf (s_env[n++], 256, "GL_SOURCE=intake-1");
    snprintf (s_env[n++], 256, "GL_BUS_TOKENS=" T_BUS_TOKEN);
    snprintf (s_env[n++], 256, "GL_LOG_LEVEL=debug");
    snprintf (s_env[n++], 256, "GL_CLOCK_FILE=%s", s_clock_path);
    snprintf (s_env[n++], 256, "GL_INTAKE_BOOTSTRAP_ADMIN=admin:" T_ADMIN_PASS);
    snprintf (s_env[n++], 256, "GL_INTAKE_ARGON2_OPSLIMIT=1");
    snprintf (s_env[n++], 256, "GL_INTAKE_ARGON2_MEMLIMIT=8192");
    //  Sessions outlive the clock's jumps below.
    snprintf (s_env[n++], 256, "GL_INTAKE_SESSION_IDLE_S=86400");
    snprintf (s_env[n++], 256, "GL_INTAKE_SESSION_MAX_S=2592000");
    snprintf (s_env[n++], 256, "GL_INTAKE_VERIFY_LOCK_S=%d", T_LOCK_S);
    snprintf (s_env[n++], 256, "GL_INTAKE_VERIFY_GRANT_S=%d", T_GRANT_S);
    snprintf (s_env[n++], 256, "GL_INTAKE_IMPORT_MAX_ROWS=%d", T_MAX_ROWS);
    char *env[33];
    for (int i = 0; i < n; i++)
        env[i] = s_env[i];
    env[n] = NULL;
    char *argv[] = { "gl-intake", NULL };
    s_intake = gl_test_spawn (gl_test_build_path ("services/intake/gl-intake"), argv, env,
                              s_log_path);
    if (s_intake < 0 || t_wait_ready () != 0) {
        fprintf (stderr, "gl-intake did not become ready; its log is %s\n", s_log_path);
        return -1;
    }
    if (t_login ("admin", T_ADMIN_PASS, s_admin, NULL) != 200
        || t_user ("qzagent", "[\"agent\"]", s_agent, s_agent_id) != 0
        || t_user ("qzagent2", "[\"agent\"]", s_agent2, s_agent2_id) != 0
        || t_user ("qzsuper", "[\"supervisor\"]", s_super, NULL) != 0 || t_client (s_client) != 0)
        return -1;
    gl_id_new (s_call);
    return 0;
}

static int
t_teardown (void **state)
{
    int rc = 0;
    if (s_intake > 0) {
        int status = gl_test_stop (s_intake, 10000);
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
            fprintf (stderr, "gl-intake did not stop cleanly (status %d); log %s\n", status,
                     s_log_path);
            rc = -1;
        }
    }
    //  Nothing personal in the log, and nothing from the sanitizers.
    FILE *f = fopen (s_log_path, "r");
    char line[2048];
    while (f && fgets (line, sizeof line, f)) {
        for (size_t i = 0; s_personal[i]; i++)
            if (strstr (line, s_personal[i])) {
                fprintf (stderr, "personal data in intake's log: %s", line);
                rc = -1;
            }
        if (strstr (line, "Sanitizer") || strstr (line, "runtime error")) {
            fprintf (stderr, "gl-intake: %s", line);
            rc = -1;
        }
    }
    if (f)
        fclose (f);
    gl_testredis_destroy (&s_redis);
    if (rc == 0)
        unlink (s_log_path);
    unlink (s_clock_path);
    return rc;
}

//  The import body {"csv": text}, text escaped for JSON.
static char *
t_csv_body (const char *text)
{
    json_t *body = json_pack ("{s:s}", "csv", text);
    char *out = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    assert_non_null (out);
    return out;
}

static json_t *
t_import (const char *text, int status)
{
    char *body = t_csv_body (text);
    json_t *json = t_ok ("POST", "/api/v1/cases/import", s_client, body, status);
    free (body);
    return json;
}

static const char *
t_import_refused (const char *text)
{
    char *body = t_csv_body (text);
    const char *message
        = t_error ("POST", "/api/v1/cases/import", s_client, body, 400, "invalid_csv", "csv");
    free (body);
    return message;
}

static void
t_counts (json_t *result, int rows, int created, int updated, int unchanged, int stale)
{
    assert_int_equal (json_integer_value (json_object_get (result, "rows")), rows);
    assert_int_equal (json_integer_value (json_object_get (result, "created")), created);
    assert_int_equal (json_integer_value (json_object_get (result, "updated")), updated);
    assert_int_equal (json_integer_value (json_object_get (result, "unchanged")), unchanged);
    assert_int_equal (json_integer_value (json_object_get (result, "stale")), stale);
    json_decref (result);
}

//  POST verify for case with answers (JSON object text) in call, as token.
static t_resp_t
t_verify (const char *token, const char *case_no, const char *call, const char *answers)
{
    char path[256], body[512];
    snprintf (path, sizeof path, "/api/v1/cases/%s/verify", case_no);
    snprintf (body, sizeof body, "{\"call_id\":\"%s\",\"answers\":%s}", call, answers);
    return t_call ("POST", path, token, NULL, body);
}

//  --------------------------------------------------------------------------------------------
//  The extract

static void
test_import (void **state)
{
    //  A BOM, CRLF line ends, quoted fields holding commas and quotes, columns in any order,
    //  phones separated by ';', an empty line.
    const char *csv
        = "\xef\xbb\xbf"
          "as_of,case_no,registration_status,rsd_status,next_appointment,family_size,dob,phones,"
          "language,location\r\n"
          "2025-12-01," T_CASE_A ",\"Active, renewal due\",Recognised,2026-02-03,4," T_DOB_A
          ",\"" T_PHONE_A1 ";" T_PHONE_A2 "\",ar,kla-01\r\n"
          "\r\n"
          "2025-12-01," T_CASE_B ",\"Hold, \"\"pending\"\"\",,,2,1990-01-31,,en,\r\n"
          "2025-12-01,qzc-33c00003,Active,,,3,,+256 770 333 003,fr,kla-02\r\n";
    t_counts (t_import (csv, 200), 3, 3, 0, 0, 0);
    //  The same file again changes nothing.
    t_counts (t_import (csv, 200), 3, 0, 0, 3, 0);
    //  An older extract is ignored; a newer one wins, field by field.
    t_counts (t_import ("case_no,as_of,rsd_status\n" T_CASE_A ",2025-11-01,Rejected\n", 200), 1,
              0, 0, 0, 1);
    t_counts (t_import ("case_no,as_of,family_size\n" T_CASE_B ",2025-12-05,03\n", 200), 1, 0,
              1, 0, 0);
    //  Who may import: admin and api_client, not agents.
    char *body = t_csv_body ("case_no,as_of\n" T_CASE_A ",2025-12-01\n");
    t_error ("POST", "/api/v1/cases/import", s_agent, body, 403, "forbidden", NULL);
    json_decref (t_ok ("POST", "/api/v1/cases/import", s_admin, body, 200));
    free (body);
    t_error ("POST", "/api/v1/cases/import", s_client, "{}", 400, "missing_field", "csv");
    t_error ("POST", "/api/v1/cases/import", s_client, "{\"csv\":\"a\",\"x\":1}", 400,
             "unknown_field", "x");
    t_error ("POST", "/api/v1/cases/import", s_client, "{\"csv\":5}", 400, "invalid_field",
             "csv");
}

static void
test_import_refusals (void **state)
{
    //  Row 3 is bad, row 2 is a new case: nothing is written, not even row 2.
    const char *message = t_import_refused ("case_no,as_of,dob\n"
                                            "QZN-00000001,2025-12-01,1980-01-01\n"
                                            "QZN-00000002,2025-12-01,1980-02-30\n"
                                            "QZN-00000003,2025-12-01,someday\n");
    assert_string_equal (message,
                         "row 3, column 3 (dob): not a date YYYY-MM-DD; 1 more rows refused");
    char call[GL_ID_LEN + 1];
    gl_id_new (call);
    t_resp_t resp = t_verify (s_agent, "QZN-00000001", call,
                              "{\"dob\":\"1980-01-01\",\"family_size\":1}");
    assert_int_equal (resp.status, 404);
    t_free (&resp);

    //  The reader's refusals, with row and column, quoting nothing.
    message = t_import_refused ("case_no,as_of\nQZN-1,\"2025-12-01\nQZN-2,2025-12-01\n");
    assert_non_null (strstr (message, "row 2, column 2"));
    message = t_import_refused ("case_no,as_of\nQZN-1,2025-12-01\nQZN\"2,2025-12-01\n");
    assert_non_null (strstr (message, "row 3, column 1"));
    message = t_import_refused ("case_no,as_of\nQZN-1,2025-12-01,extra\n");
    assert_non_null (strstr (message, "row 2, column 3"));
    message = t_import_refused ("case_no,as_of,colour\nQZN-1,2025-12-01,red\n");
    assert_string_equal (message, "row 1, column 3: unknown column (see docs/api/callers.md)");
    message = t_import_refused ("case_no,family_size\nQZN-1,2\n");
    assert_non_null (strstr (message, "no as_of column"));
    message = t_import_refused ("case_no,as_of,as_of\nQZN-1,2025-12-01,2025-12-01\n");
    assert_non_null (strstr (message, "row 1, column 3"));
    message = t_import_refused ("case_no,as_of\nQZN-1,2026-03-01\n");      //  the future
    assert_string_equal (message, "row 2, column 2 (as_of): in the future");
    message = t_import_refused ("case_no,as_of\nQZN$1,2025-12-01\n");
    assert_non_null (strstr (message, "row 2, column 1 (case_no)"));
    //  A quoted line end is read, but no field of the extract may hold one.
    message = t_import_refused ("case_no,as_of,rsd_status\nQZN-1,2025-12-01,\"two\r\nlines\"\n");
    assert_non_null (strstr (message, "row 2, column 3 (rsd_status)"));
    message = t_import_refused ("case_no,as_of,phones\nQZN-1,2025-12-01,+2567;+2568;x\n");
    assert_non_null (strstr (message, "row 2, column 3 (phones)"));
    //  Limits: a field over 256 bytes, more than GL_INTAKE_IMPORT_MAX_ROWS rows, a body over
    //  GL_HTTP_MAX_BODY.
    char csv[T_MAX_BODY + 1024];
    int n = snprintf (csv, sizeof csv, "case_no,as_of,registration_status\nQZN-1,2025-12-01,");
    memset (csv + n, 'x', 300);
    snprintf (csv + n + 300, sizeof csv - (size_t) n - 300, "\n");
    message = t_import_refused (csv);
    assert_non_null (strstr (message, "row 2, column 3"));
    n = snprintf (csv, sizeof csv, "case_no,as_of\n");
    for (int i = 0; i <= T_MAX_ROWS; i++)
        n += snprintf (csv + n, sizeof csv - (size_t) n, "QZM-%06d,2025-12-01\n", i);
    message = t_import_refused (csv);
    assert_non_null (strstr (message, "row 52"));
    n = snprintf (csv, sizeof csv, "case_no,as_of\n");
    while (n < T_MAX_BODY + 100)
        n += snprintf (csv + n, sizeof csv - (size_t) n, "QZM-000001,2025-12-01\n");
    char *body = t_csv_body (csv);
    t_error ("POST", "/api/v1/cases/import", s_client, body, 413, "payload_too_large", NULL);
    free (body);
}

static void
test_push (void **state)
{
    char path[128];
    snprintf (path, sizeof path, "/api/v1/cases/%s", "qzp-00000009");
    json_t *json = t_ok ("PUT", path, s_client,
                         "{\"as_of\":\"2025-12-10\",\"registration_status\":\"Active\","
                         "\"family_size\":2,\"dob\":\"1970-07-07\","
                         "\"phones\":[\"+256 770 123 456\"]}",
                         201);
    assert_string_equal (json_string_value (json_object_get (json, "result")), "created");
    json_decref (json);
    json = t_ok ("PUT", path, s_client,
                 "{\"as_of\":\"2025-12-11\",\"next_appointment\":null,\"language\":\"ar\"}", 200);
    assert_string_equal (json_string_value (json_object_get (json, "result")), "updated");
    json_decref (json);
    json = t_ok ("PUT", path, s_client, "{\"as_of\":\"2025-12-11\",\"language\":\"ar\"}", 200);
    assert_string_equal (json_string_value (json_object_get (json, "result")), "unchanged");
    json_decref (json);
    t_error ("PUT", path, s_client, "{\"as_of\":\"2025-12-01\",\"language\":\"en\"}", 409, "stale",
             "as_of");
    t_error ("PUT", path, s_client, "{\"as_of\":\"2025-12-12\"}", 400, "missing_field", NULL);
    t_error ("PUT", path, s_client, "{\"as_of\":\"2025-13-01\",\"language\":\"en\"}", 400,
             "invalid_field", "as_of");
    t_error ("PUT", path, s_client, "{\"as_of\":\"2027-01-01\",\"language\":\"en\"}", 400,
             "invalid_field", "as_of");
    t_error ("PUT", path, s_client, "{\"as_of\":\"2025-12-12\",\"family_size\":0}", 400,
             "invalid_field", "family_size");
    t_error ("PUT", path, s_client, "{\"as_of\":\"2025-12-12\",\"phones\":[\"12\"]}", 400,
             "invalid_field", "phones");
    t_error ("PUT", path, s_client, "{\"as_of\":\"2025-12-12\",\"language\":\"Arabic\"}", 400,
             "invalid_field", "language");
    t_error ("PUT", path, s_client, "{\"as_of\":\"2025-12-12\",\"name\":\"x\"}", 400,
             "unknown_field", "name");
    t_error ("PUT", "/api/v1/cases/qz%24p", s_client, "{\"as_of\":\"2025-12-12\"}", 400,
             "invalid_parameter", "case_no");
    t_error ("PUT", path, s_agent, "{\"as_of\":\"2025-12-12\",\"language\":\"en\"}", 403,
             "forbidden", NULL);
}

//  --------------------------------------------------------------------------------------------
//  Verification and disclosure

static void
test_verify_lockout_and_disclosure (void **state)
{
    char path[256];
    snprintf (path, sizeof path, "/api/v1/cases/%s?call_id=%s", T_CASE_A, s_call);
    //  Nothing before verification.
    t_error ("GET", path, s_agent, NULL, 403, "verification_required", NULL);
    size_t failed_before = 0;
    {
        char q[128];
        snprintf (q, sizeof q, "actor=%s&action=verify_failed", s_agent_id);
        failed_before = t_audit_count (q);
    }
    //  Malformed answers are refused without counting.
    t_resp_t resp = t_verify (s_agent, T_CASE_A, s_call, "{\"dob\":\"" T_DOB_A "\"}");
    assert_int_equal (resp.status, 400);
    t_free (&resp);
    resp = t_verify (s_agent, T_CASE_A, s_call,
                     "{\"dob\":\"" T_DOB_A "\",\"family_size\":4,\"location\":\"x\"}");
    assert_int_equal (resp.status, 400);
    t_free (&resp);
    resp = t_verify (s_agent, T_CASE_A, s_call, "{\"dob\":\"15/06/1987\",\"family_size\":4}");
    assert_int_equal (resp.status, 400);
    t_free (&resp);
    json_t *json;
    //  Two wrong answers: counted.
    for (int left = 2; left >= 1; left--) {
        resp = t_verify (s_agent, T_CASE_A, s_call, "{\"dob\":\"" T_DOB_A "\",\"family_size\":5}");
        assert_int_equal (resp.status, 200);
        json = t_json (&resp);
        assert_false (json_is_true (json_object_get (json, "verified")));
        assert_int_equal (json_integer_value (json_object_get (json, "attempts_left")), left);
        json_decref (json);
        t_free (&resp);
    }
    //  The third locks the case; then even the right answers, from anyone, are refused.
    resp = t_verify (s_agent, T_CASE_A, s_call, "{\"dob\":\"1987-06-16\",\"family_size\":4}");
    assert_int_equal (resp.status, 423);
    assert_int_equal (atoi (t_header (&resp, "Retry-After")), T_LOCK_S);
    t_free (&resp);
    resp = t_verify (s_agent2, T_CASE_A, s_call, "{\"dob\":\"" T_DOB_A "\",\"family_size\":4}");
    assert_int_equal (resp.status, 423);
    t_free (&resp);
    t_error ("GET", path, s_agent, NULL, 423, "locked", NULL);
    //  Every attempt is in the audit trail (not the malformed ones: nothing was checked).
    char q[160];
    snprintf (q, sizeof q, "actor=%s&action=verify_failed", s_agent_id);
    assert_int_equal (t_audit_count (q), failed_before + 3);
    snprintf (q, sizeof q, "actor=%s&action=verify_refused", s_agent2_id);
    assert_int_equal (t_audit_count (q), 1);

    //  Still locked a second before the end; open after it.
    t_clock_advance_s (T_LOCK_S - 1);
    resp = t_verify (s_agent, T_CASE_A, s_call, "{\"dob\":\"" T_DOB_A "\",\"family_size\":4}");
    assert_int_equal (resp.status, 423);
    t_free (&resp);
    t_clock_advance_s (2);
    resp = t_verify (s_agent, T_CASE_A, s_call, "{\"family_size\":4,\"dob\":\"" T_DOB_A "\"}");
    assert_int_equal (resp.status, 200);
    json = t_json (&resp);
    assert_true (json_is_true (json_object_get (json, "verified")));
    assert_int_equal (json_integer_value (json_object_get (json, "verified_until")),
                      s_now + T_GRANT_S * 1000);
    json_decref (json);
    t_free (&resp);
    snprintf (q, sizeof q, "actor=%s&action=verify_ok", s_agent_id);
    assert_int_equal (t_audit_count (q), 1);

    //  Now the case, each field with its as_of; never the date of birth.
    size_t reads = t_audit_count ("action=read&record_type=case");
    resp = t_call ("GET", path, s_agent, NULL, NULL);
    assert_int_equal (resp.status, 200);
    assert_null (strstr (resp.body, T_DOB_A));
    assert_null (strstr (resp.body, "dob"));
    json = t_json (&resp);
    t_free (&resp);
    assert_string_equal (json_string_value (json_object_get (json, "case_no")), T_CASE_A);
    json_t *reg = json_object_get (json, "registration_status");
    assert_string_equal (json_string_value (json_object_get (reg, "value")),
                         "Active, renewal due");
    assert_string_equal (json_string_value (json_object_get (reg, "as_of")), "2025-12-01");
    //  The older extract's "Rejected" did not win.
    assert_string_equal (
        json_string_value (json_object_get (json_object_get (json, "rsd_status"), "value")),
        "Recognised");
    assert_int_equal (
        json_integer_value (json_object_get (json_object_get (json, "family_size"), "value")), 4);
    json_t *phones = json_object_get (json_object_get (json, "phones"), "value");
    assert_int_equal (json_array_size (phones), 2);
    assert_string_equal (json_string_value (json_array_get (phones, 1)), T_PHONE_A2);
    assert_true (json_is_null (json_object_get (json, "resettlement_status")));
    assert_true (json_is_null (json_object_get (json, "abusive")));
    json_decref (json);
    assert_int_equal (t_audit_count ("action=read&record_type=case"), reads + 1);

    //  The grant is this agent's, for this case, in this call.
    t_error ("GET", path, s_agent2, NULL, 403, "verification_required", NULL);
    char other[GL_ID_LEN + 1], other_path[256];
    gl_id_new (other);
    snprintf (other_path, sizeof other_path, "/api/v1/cases/%s?call_id=%s", T_CASE_A, other);
    t_error ("GET", other_path, s_agent, NULL, 403, "verification_required", NULL);
    snprintf (other_path, sizeof other_path, "/api/v1/cases/%s?call_id=%s", T_CASE_B, s_call);
    t_error ("GET", other_path, s_agent, NULL, 403, "verification_required", NULL);
    snprintf (other_path, sizeof other_path, "/api/v1/cases/%s?contact_id=%s", T_CASE_A, s_call);
    json_decref (t_ok ("GET", other_path, s_agent, NULL, 200));     //  a contact id works alike
    snprintf (other_path, sizeof other_path, "/api/v1/cases/%s", T_CASE_A);
    t_error ("GET", other_path, s_agent, NULL, 400, "missing_field", "call_id");
    snprintf (other_path, sizeof other_path, "/api/v1/cases/%s?call_id=nope", T_CASE_A);
    t_error ("GET", other_path, s_agent, NULL, 400, "invalid_parameter", "call_id");
    t_error ("GET", path, s_client, NULL, 403, "forbidden", NULL);

    //  Case numbers are case-insensitive.
    snprintf (other_path, sizeof other_path, "/api/v1/cases/qza-11c00001?call_id=%s", s_call);
    json_decref (t_ok ("GET", other_path, s_agent, NULL, 200));
}

static void
test_verify_other_outcomes (void **state)
{
    char call[GL_ID_LEN + 1];
    gl_id_new (call);
    //  No date of birth on file for case C: cannot verify (and not counted).
    t_resp_t resp
        = t_verify (s_agent, T_CASE_C, call, "{\"dob\":\"1980-01-01\",\"family_size\":3}");
    assert_int_equal (resp.status, 409);
    assert_non_null (strstr (resp.body, "cannot_verify"));
    assert_non_null (strstr (resp.body, "answers.dob"));
    t_free (&resp);
    resp = t_verify (s_agent, "QZX-404", call, "{\"dob\":\"1980-01-01\",\"family_size\":3}");
    assert_int_equal (resp.status, 404);
    t_free (&resp);
    //  Failures are forgotten after a success.
    for (int i = 0; i < 2; i++) {
        resp = t_verify (s_agent, T_CASE_B, call, "{\"dob\":\"1990-01-31\",\"family_size\":9}");
        assert_int_equal (resp.status, 200);
        t_free (&resp);
    }
    resp = t_verify (s_agent, T_CASE_B, call, "{\"dob\":\"1990-01-31\",\"family_size\":3}");
    assert_int_equal (resp.status, 200);
    json_t *json = t_json (&resp);
    assert_true (json_is_true (json_object_get (json, "verified")));
    json_decref (json);
    t_free (&resp);
    resp = t_verify (s_agent, T_CASE_B, call, "{\"dob\":\"1990-01-31\",\"family_size\":9}");
    json = t_json (&resp);
    assert_int_equal (json_integer_value (json_object_get (json, "attempts_left")), 2);
    json_decref (json);
    t_free (&resp);
    //  The grant runs out on the business clock.
    char path[256];
    snprintf (path, sizeof path, "/api/v1/cases/%s?call_id=%s", T_CASE_B, call);
    json = t_ok ("GET", path, s_agent, NULL, 200);
    assert_string_equal (json_string_value (json_object_get (
                             json_object_get (json, "registration_status"), "value")),
                         "Hold, \"pending\"");
    json_decref (json);
    t_clock_advance_s (T_GRANT_S + 1);
    t_error ("GET", path, s_agent, NULL, 403, "verification_required", NULL);
    //  Both ids, or a bad one.
    char body[256];
    snprintf (body, sizeof body, "{\"call_id\":\"%s\",\"contact_id\":\"%s\",\"answers\":{}}", call,
              call);
    snprintf (path, sizeof path, "/api/v1/cases/%s/verify", T_CASE_B);
    t_error ("POST", path, s_agent, body, 400, "invalid_field", "call_id");
    t_error ("POST", path, s_agent, "{\"call_id\":\"x\",\"answers\":{}}", 400, "invalid_field",
             "call_id");
    snprintf (body, sizeof body, "{\"call_id\":\"%s\"}", call);
    t_error ("POST", path, s_agent, body, 400, "missing_field", "answers");
    snprintf (body, sizeof body, "{\"call_id\":\"%s\",\"answers\":[1]}", call);
    t_error ("POST", path, s_agent, body, 400, "invalid_field", "answers");
    t_error ("POST", path, s_client, body, 403, "forbidden", NULL);
    //  The questions to ask (GL_INTAKE_VERIFY_QUESTIONS, default dob,family_size), never an
    //  answer; the same for a case that does not exist, so nothing is revealed.
    static const char *const cases[] = { T_CASE_B, "QZX-404" };
    for (size_t i = 0; i < 2; i++) {
        snprintf (path, sizeof path, "/api/v1/cases/%s/verify-questions", cases[i]);
        json = t_ok ("GET", path, s_agent, NULL, 200);
        char *dump = json_dumps (json, JSON_COMPACT);
        assert_string_equal (dump, "{\"questions\":[\"dob\",\"family_size\"]}");
        free (dump);
        json_decref (json);
    }
    snprintf (path, sizeof path, "/api/v1/cases/%s/verify-questions?call_id=%s", T_CASE_B, call);
    t_error ("GET", path, s_agent, NULL, 400, "unknown_parameter", "call_id");
    t_error ("GET", "/api/v1/cases/a%20b/verify-questions", s_agent, NULL, 400,
             "invalid_parameter", "case_no");
    snprintf (path, sizeof path, "/api/v1/cases/%s/verify-questions", T_CASE_B);
    t_error ("GET", path, s_client, NULL, 403, "forbidden", NULL);
}

//  Verify agent 1 for case A in s_call again (after the clock moved past the first grant).
static void
t_verify_a (void)
{
    t_resp_t resp
        = t_verify (s_agent, T_CASE_A, s_call, "{\"dob\":\"" T_DOB_A "\",\"family_size\":4}");
    if (resp.status != 200)
        fprintf (stderr, "verify: %s\n", resp.raw);
    assert_int_equal (resp.status, 200);
    t_free (&resp);
}

//  --------------------------------------------------------------------------------------------
//  Change requests

static void
test_change_requests (void **state)
{
    t_verify_a ();
    char path[256], body[512], list[256];
    snprintf (path, sizeof path, "/api/v1/cases/%s/change-requests", T_CASE_A);
    snprintf (list, sizeof list, "/api/v1/cases/%s/change-requests?call_id=%s", T_CASE_A, s_call);
    //  Without the grant (another agent), and bad bodies.
    snprintf (body, sizeof body, "{\"call_id\":\"%s\",\"phones\":[\"" T_PHONE_NEW "\"]}", s_call);
    t_error ("POST", path, s_agent2, body, 403, "verification_required", NULL);
    snprintf (body, sizeof body, "{\"call_id\":\"%s\"}", s_call);
    t_error ("POST", path, s_agent, body, 400, "missing_field", NULL);
    snprintf (body, sizeof body, "{\"call_id\":\"%s\",\"phones\":[]}", s_call);
    t_error ("POST", path, s_agent, body, 400, "invalid_field", "phones");
    snprintf (body, sizeof body, "{\"call_id\":\"%s\",\"language\":\"xx-\"}", s_call);
    t_error ("POST", path, s_agent, body, 400, "invalid_field", "language");

    //  Request 1: phone and language.
    snprintf (body, sizeof body,
              "{\"call_id\":\"%s\",\"phones\":[\"+256 (770) 999-555\"],\"language\":\"prs\"}",
              s_call);
    json_t *json = t_ok ("POST", path, s_agent, body, 201);
    char id1[GL_ID_LEN + 1];
    snprintf (id1, sizeof id1, "%s", json_string_value (json_object_get (json, "id")));
    assert_true (gl_id_valid (id1));
    assert_string_equal (json_string_value (json_object_get (json, "status")), "pending");
    assert_string_equal (json_string_value (json_array_get (json_object_get (json, "fields"), 0)),
                         "phone");
    assert_string_equal (json_string_value (json_array_get (json_object_get (json, "fields"), 1)),
                         "language");
    assert_string_equal (json_string_value (json_array_get (
                             json_object_get (json_object_get (json, "values"), "phones"), 0)),
                         T_PHONE_NEW);
    json_decref (json);
    //  Not a silent overwrite: the case still has its old phones.
    char case_path[256];
    snprintf (case_path, sizeof case_path, "/api/v1/cases/%s?call_id=%s", T_CASE_A, s_call);
    json = t_ok ("GET", case_path, s_agent, NULL, 200);
    assert_string_equal (json_string_value (json_array_get (
                             json_object_get (json_object_get (json, "phones"), "value"), 0)),
                         T_PHONE_A1);
    json_decref (json);
    //  A pending request cannot be decided.
    char outcome[160];
    snprintf (outcome, sizeof outcome, "/api/v1/change-requests/%s/outcome", id1);
    t_error ("POST", outcome, s_client, "{\"status\":\"applied\"}", 409, "invalid_transition",
             "status");

    //  Export: the registration system takes it (with the case number and the values).
    json = t_ok ("GET", "/api/v1/change-requests/export?limit=10", s_client, NULL, 200);
    json_t *items = json_object_get (json, "items");
    assert_int_equal (json_array_size (items), 1);
    json_t *item = json_array_get (items, 0);
    assert_string_equal (json_string_value (json_object_get (item, "id")), id1);
    assert_string_equal (json_string_value (json_object_get (item, "status")), "sent");
    assert_string_equal (json_string_value (json_object_get (item, "case_no")), T_CASE_A);
    assert_string_equal (json_string_value (json_object_get (
                             json_object_get (item, "values"), "language")),
                         "prs");
    assert_int_equal (json_integer_value (json_object_get (json, "pending")), 0);
    json_decref (json);
    json = t_ok ("GET", "/api/v1/change-requests/export", s_client, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (json, "items")), 0);
    json_decref (json);
    json = t_ok ("GET", "/api/v1/change-requests/export?include_sent=true", s_client, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (json, "items")), 1);
    json_decref (json);
    t_error ("GET", "/api/v1/change-requests/export?limit=0", s_client, NULL, 400,
             "invalid_parameter", "limit");
    t_error ("GET", "/api/v1/change-requests/export", s_agent, NULL, 403, "forbidden", NULL);

    //  Applied: the case takes the new details, dated today.
    t_error ("POST", outcome, s_client, "{\"status\":\"applied\",\"reason\":\"x\"}", 400,
             "invalid_field", "reason");
    t_error ("POST", outcome, s_client, "{\"status\":\"done\"}", 400, "invalid_field", "status");
    json = t_ok ("POST", outcome, s_client, "{\"status\":\"applied\"}", 200);
    assert_string_equal (json_string_value (json_object_get (json, "status")), "applied");
    json_decref (json);
    t_error ("POST", outcome, s_client, "{\"status\":\"rejected\",\"reason\":\"dup\"}", 409,
             "invalid_transition", "status");
    json = t_ok ("GET", case_path, s_agent, NULL, 200);
    json_t *ph = json_object_get (json, "phones");
    assert_int_equal (json_array_size (json_object_get (ph, "value")), 1);
    assert_string_equal (json_string_value (json_array_get (json_object_get (ph, "value"), 0)),
                         T_PHONE_NEW);
    char today[16];
    time_t t = (time_t) (s_now / 1000);
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (today, sizeof today, "%Y-%m-%d", &tm);
    assert_string_equal (json_string_value (json_object_get (ph, "as_of")), today);
    assert_string_equal (json_string_value (json_object_get (
                             json_object_get (json, "language"), "value")),
                         "prs");
    json_decref (json);

    //  Request 2 (a second later): location, rejected.
    t_clock_advance_s (1);
    snprintf (body, sizeof body, "{\"call_id\":\"%s\",\"location\":\"kla-09\"}", s_call);
    json = t_ok ("POST", path, s_agent, body, 201);
    char id2[GL_ID_LEN + 1];
    snprintf (id2, sizeof id2, "%s", json_string_value (json_object_get (json, "id")));
    json_decref (json);
    json_decref (t_ok ("GET", "/api/v1/change-requests/export", s_client, NULL, 200));
    snprintf (outcome, sizeof outcome, "/api/v1/change-requests/%s/outcome", id2);
    t_error ("POST", outcome, s_client, "{\"status\":\"rejected\"}", 400, "missing_field",
             "reason");
    json_decref (t_ok ("POST", outcome, s_client,
                       "{\"status\":\"rejected\",\"reason\":\"location_unknown\"}", 200));
    json = t_ok ("GET", case_path, s_agent, NULL, 200);
    assert_string_equal (json_string_value (json_object_get (
                             json_object_get (json, "location"), "value")),
                         "kla-01");
    json_decref (json);
    char unknown[GL_ID_LEN + 1], upath[320];
    gl_id_new (unknown);
    snprintf (upath, sizeof upath, "/api/v1/change-requests/%s/outcome", unknown);
    t_error ("POST", upath, s_client, "{\"status\":\"applied\"}", 404, "not_found", NULL);

    //  History, newest first, in pages.
    snprintf (upath, sizeof upath, "%s&limit=1", list);
    json = t_ok ("GET", upath, s_agent, NULL, 200);
    items = json_object_get (json, "items");
    assert_int_equal (json_array_size (items), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (items, 0), "id")),
                         id2);
    assert_string_equal (
        json_string_value (json_object_get (json_array_get (items, 0), "reason")),
        "location_unknown");
    const char *cursor = json_string_value (json_object_get (json, "next_cursor"));
    assert_non_null (cursor);
    char next[512];
    snprintf (next, sizeof next, "%s&limit=1&cursor=%s", list, cursor);
    json_decref (json);
    json = t_ok ("GET", next, s_agent, NULL, 200);
    items = json_object_get (json, "items");
    assert_string_equal (json_string_value (json_object_get (json_array_get (items, 0), "id")),
                         id1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (items, 0), "status")),
                         "applied");
    assert_true (json_is_null (json_object_get (json, "next_cursor")));
    json_decref (json);
    t_error ("GET", list, s_agent2, NULL, 403, "verification_required", NULL);

    //  The events: each step of each request, codes only (t_events checks every byte).
    json_t *events = t_events ();
    assert_int_equal (t_events_count (events, "person.change_requested", "request_id", id1), 1);
    assert_int_equal (t_events_count (events, "person.change_sent", "request_id", id1), 1);
    assert_int_equal (t_events_count (events, "person.change_applied", "request_id", id1), 1);
    assert_int_equal (t_events_count (events, "person.change_requested", "request_id", id2), 1);
    assert_int_equal (t_events_count (events, "person.change_rejected", "reason",
                                      "location_unknown"),
                      1);
    size_t i;
    json_t *ev;
    json_array_foreach (events, i, ev) {
        const char *type = json_string_value (json_object_get (ev, "type"));
        if (strncmp (type, "person.change_", 14) != 0)
            continue;
        json_t *data = json_object_get (ev, "data");
        assert_string_equal (json_string_value (json_object_get (ev, "corr")), s_call);
        assert_true (json_is_array (json_object_get (data, "fields")));
        assert_null (json_object_get (data, "values"));
        assert_null (json_object_get (data, "phones"));
        const char *request_id = json_string_value (json_object_get (data, "request_id"));
        if (strcmp (request_id, id1) == 0) {
            assert_string_equal (
                json_string_value (json_array_get (json_object_get (data, "fields"), 0)),
                "phone");
        }
    }
    json_decref (events);
    //  The outbox is empty: every event went out.
    assert_int_equal (t_redis_int ("HLEN intake:{intake}:outbox"), 0);
}

//  --------------------------------------------------------------------------------------------
//  Abusive flags

static void
test_abusive_flag (void **state)
{
    t_error ("POST", "/api/v1/callers/flags", s_agent,
             "{\"phone\":\"" T_PHONE_PRANK "\",\"reason\":\"prank\"}", 403, "forbidden", NULL);
    t_error ("POST", "/api/v1/callers/flags", s_super, "{\"phone\":\"" T_PHONE_PRANK "\"}", 400,
             "missing_field", "reason");
    t_error ("POST", "/api/v1/callers/flags", s_super,
             "{\"phone\":\"" T_PHONE_PRANK "\",\"reason\":\"rude\"}", 400, "invalid_field",
             "reason");
    t_error ("POST", "/api/v1/callers/flags", s_super,
             "{\"phone\":\"" T_PHONE_PRANK "\",\"case_no\":\"" T_CASE_B "\",\"reason\":\"prank\"}",
             400, "invalid_field", "case_no");
    json_t *json = t_ok ("POST", "/api/v1/callers/flags", s_super,
                         "{\"phone\":\"" T_PHONE_PRANK "\",\"reason\":\"prank\"}", 201);
    char flag[GL_ID_LEN + 1];
    snprintf (flag, sizeof flag, "%s", json_string_value (json_object_get (json, "id")));
    assert_string_equal (json_string_value (json_object_get (json, "kind")), "phone");
    json_decref (json);
    t_error ("POST", "/api/v1/callers/flags", s_super,
             "{\"phone\":\"+256-770-666-013\",\"reason\":\"threats\"}", 409, "already_flagged",
             NULL);
    //  Agents see it, however the number is written.
    json = t_ok ("POST", "/api/v1/callers/lookup", s_agent,
                 "{\"phone\":\"+256 770 666 013\"}", 200);
    json_t *abusive = json_object_get (json, "abusive");
    assert_string_equal (json_string_value (json_object_get (abusive, "id")), flag);
    assert_string_equal (json_string_value (json_object_get (abusive, "reason")), "prank");
    assert_int_equal (json_integer_value (json_object_get (abusive, "flagged_at")), s_now);
    json_decref (json);
    json = t_ok ("POST", "/api/v1/callers/lookup", s_agent, "{\"phone\":\"" T_PHONE_A1 "\"}", 200);
    assert_true (json_is_null (json_object_get (json, "abusive")));
    json_decref (json);
    t_error ("POST", "/api/v1/callers/lookup", s_agent, "{}", 400, "missing_field", "case_no");
    t_error ("POST", "/api/v1/callers/lookup", s_agent, "{\"phone\":\"12ab\"}", 400,
             "invalid_field", "phone");

    //  A case's flag shows on the case.
    json = t_ok ("POST", "/api/v1/callers/flags", s_super,
                 "{\"case_no\":\"" T_CASE_A "\",\"reason\":\"abusive_language\"}", 201);
    char case_flag[GL_ID_LEN + 1];
    snprintf (case_flag, sizeof case_flag, "%s", json_string_value (json_object_get (json, "id")));
    json_decref (json);
    t_verify_a ();
    char path[256];
    snprintf (path, sizeof path, "/api/v1/cases/%s?call_id=%s", T_CASE_A, s_call);
    json = t_ok ("GET", path, s_agent, NULL, 200);
    assert_string_equal (
        json_string_value (json_object_get (json_object_get (json, "abusive"), "reason")),
        "abusive_language");
    json_decref (json);

    //  Cleared.
    char del[128];
    snprintf (del, sizeof del, "/api/v1/callers/flags/%s", flag);
    t_error ("DELETE", del, s_agent, NULL, 403, "forbidden", NULL);
    json_decref (t_ok ("DELETE", del, s_super, NULL, 200));
    t_error ("DELETE", del, s_super, NULL, 404, "not_found", NULL);
    json = t_ok ("POST", "/api/v1/callers/lookup", s_agent, "{\"phone\":\"" T_PHONE_PRANK "\"}",
                 200);
    assert_true (json_is_null (json_object_get (json, "abusive")));
    json_decref (json);

    json_t *events = t_events ();
    assert_int_equal (t_events_count (events, "person.flagged", "flag_id", flag), 1);
    assert_int_equal (t_events_count (events, "person.flagged", "flag_id", case_flag), 1);
    assert_int_equal (t_events_count (events, "person.unflagged", "flag_id", flag), 1);
    assert_int_equal (t_events_count (events, "person.flagged", "kind", "case"), 1);
    json_decref (events);
    assert_true (t_audit_count ("record_type=caller_flag&action=create") >= 2);
    assert_true (t_audit_count ("record_type=caller_flag&action=delete") >= 1);
}

//  --------------------------------------------------------------------------------------------
//  Delivery details over the bus

static gl_req_t *
t_bus_client (const char *token)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_router_port);
    gl_req_t *client = gl_req_new (endpoint);
    assert_non_null (client);
    if (token)
        assert_int_equal (gl_req_set_auth (client, token), 0);
    return client;
}

static int
t_delivery (gl_req_t *client, const char *body_text, gl_reply_t *reply)
{
    json_t *body = json_loads (body_text, 0, NULL);
    assert_non_null (body);
    assert_int_equal (gl_req_call (client, "intake.delivery_details", NULL, body, 10000, reply), 0);
    json_decref (body);
    return reply->status;
}

static void
test_delivery_details (void **state)
{
    t_verify_a ();      //  links s_call to case A
    gl_req_t *client = t_bus_client (T_BUS_TOKEN);
    gl_reply_t reply = { 0 };
    size_t audited = t_audit_count ("actor=scheduler&record_type=delivery_details");
    assert_int_equal (t_delivery (client,
                                  "{\"person_ref\":\"qzb-22c00002\",\"purpose\":"
                                  "\"appointment_reminder\",\"requester\":\"scheduler\"}",
                                  &reply),
                      200);
    assert_true (json_is_null (json_object_get (reply.body, "phone")));
    assert_int_equal (json_array_size (json_object_get (reply.body, "phones")), 0);
    assert_string_equal (json_string_value (json_object_get (reply.body, "language")), "en");
    //  By the call the caller was verified in: case A, with the phone applied above.
    char body[256];
    snprintf (body, sizeof body,
              "{\"person_ref\":\"%s\",\"purpose\":\"callback\",\"requester\":\"scheduler\"}",
              s_call);
    assert_int_equal (t_delivery (client, body, &reply), 200);
    assert_string_equal (json_string_value (json_object_get (reply.body, "phone")), T_PHONE_NEW);
    assert_string_equal (json_string_value (json_object_get (reply.body, "language")), "prs");
    assert_int_equal (t_audit_count ("actor=scheduler&record_type=delivery_details"),
                      audited + 2);
    assert_int_equal (t_audit_details ("actor=scheduler&record_type=delivery_details", "callback"),
                      1);
    //  Unknown people, bad requests, no token.
    assert_int_equal (t_delivery (client,
                                  "{\"person_ref\":\"QZX-0\",\"purpose\":\"x\",\"requester\":"
                                  "\"notifier\"}",
                                  &reply),
                      404);
    char unknown[GL_ID_LEN + 1];
    gl_id_new (unknown);
    snprintf (body, sizeof body,
              "{\"person_ref\":\"%s\",\"purpose\":\"x\",\"requester\":\"notifier\"}", unknown);
    assert_int_equal (t_delivery (client, body, &reply), 404);
    assert_int_equal (t_delivery (client,
                                  "{\"person_ref\":\"QZA-1\",\"purpose\":\"x\",\"requester\":"
                                  "\"notifier\",\"name\":1}",
                                  &reply),
                      400);
    assert_string_equal (reply.error_field, "name");
    assert_int_equal (t_delivery (client, "{\"person_ref\":\"QZA-1\",\"purpose\":\"x\"}", &reply),
                      400);
    assert_string_equal (reply.error_field, "requester");
    assert_int_equal (t_delivery (client,
                                  "{\"person_ref\":\"QZ A\",\"purpose\":\"x\",\"requester\":"
                                  "\"notifier\"}",
                                  &reply),
                      400);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
    client = t_bus_client (NULL);
    assert_int_equal (t_delivery (client,
                                  "{\"person_ref\":\"" T_CASE_A "\",\"purpose\":\"x\","
                                  "\"requester\":\"notifier\"}",
                                  &reply),
                      401);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
}

//  --------------------------------------------------------------------------------------------
//  Booking through scheduler

//  The stand-in scheduler: a gl_rep server in a thread, with idempotency on a Redis connection
//  of its own. It books (counting), refuses slot "taken" with 409, and sleeps past intake's
//  deadline for slot "slow".
typedef struct {
    pthread_t thread;
    volatile int stop;
    pthread_mutex_t lock;
    int handled;
    char last_key[GL_REQ_KEY_MAX + 1];
    json_t *last_body;
} t_sched_t;

static t_sched_t s_sched;

static int
t_on_book (void *arg, const gl_rep_request_t *req, json_t **reply_body, gl_rep_error_t *err)
{
    t_sched_t *s = arg;
    pthread_mutex_lock (&s->lock);
    s->handled++;
    snprintf (s->last_key, sizeof s->last_key, "%s", req->key);
    json_decref (s->last_body);
    s->last_body = json_deep_copy (req->body);
    pthread_mutex_unlock (&s->lock);
    const char *slot = json_string_value (json_object_get (req->body, "slot_id"));
    if (slot && strcmp (slot, "taken") == 0)
        return gl_rep_error (err, 409, "slot_taken", "slot_id", "the slot is no longer free");
    if (slot && strcmp (slot, "slow") == 0) {
        gl_sleep_ms (2500);
        return gl_rep_error (err, 409, "slot_taken", "slot_id", "too late");
    }
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    *reply_body = json_pack ("{s:s, s:s, s:I}", "appointment_id", id, "centre",
                             json_string_value (json_object_get (req->body, "centre")), "start",
                             (json_int_t) 1767780000000);
    return 200;
}

static void *
t_sched_run (void *arg)
{
    t_sched_t *s = arg;
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_sched_port);
    gl_rep_t *rep = gl_rep_new (endpoint);
    assert_non_null (rep);
    gl_redis_t *redis = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 5000);
    gl_rep_set_tokens (rep, T_BUS_TOKEN);
    gl_rep_set_idempotency (rep, redis, "scheduler:{scheduler}:idem:", 600000);
    assert_int_equal (gl_rep_on (rep, "scheduler.book", t_on_book, s), 0);
    zpoller_t *poller = zpoller_new (gl_rep_sock (rep), NULL);
    while (!s->stop) {
        void *which = zpoller_wait (poller, gl_rep_pending (rep) ? 0 : 100);
        if (which || gl_rep_pending (rep))
            gl_rep_dispatch (rep);
    }
    zpoller_destroy (&poller);
    gl_rep_destroy (&rep);
    gl_redis_destroy (&redis);
    return NULL;
}

static t_resp_t
t_book (const char *token, const char *idem, const char *slot)
{
    char body[512], extra[256] = "";
    snprintf (body, sizeof body,
              "{\"case_no\":\"%s\",\"call_id\":\"%s\",\"service\":\"registration_renewal\","
              "\"centre\":\"kla-01\",\"slot_id\":\"%s\"}",
              "qza-11c00001", s_call, slot);
    if (idem)
        snprintf (extra, sizeof extra, "Idempotency-Key: %s\r\n", idem);
    return t_call ("POST", "/api/v1/appointments", token, *extra ? extra : NULL, body);
}

static void
test_booking_without_scheduler (void **state)
{
    t_verify_a ();
    //  Validation and verification come first.
    char body[512];
    snprintf (body, sizeof body,
              "{\"case_no\":\"" T_CASE_A "\",\"call_id\":\"%s\",\"service\":\"s\","
              "\"centre\":\"c\"}",
              s_call);
    t_error ("POST", "/api/v1/appointments", s_agent, body, 400, "missing_field", "slot_id");
    snprintf (body, sizeof body,
              "{\"case_no\":\"" T_CASE_A "\",\"call_id\":\"%s\",\"service\":\"s\","
              "\"centre\":\"c\",\"slot_id\":\"a\",\"start\":1767780000000}",
              s_call);
    t_error ("POST", "/api/v1/appointments", s_agent, body, 400, "invalid_field", "slot_id");
    t_resp_t resp = t_book (s_agent2, NULL, "s-1");
    assert_int_equal (resp.status, 403);
    assert_non_null (strstr (resp.body, "verification_required"));
    t_free (&resp);
    resp = t_book (s_agent, "has space", "s-1");
    assert_int_equal (resp.status, 400);
    assert_non_null (strstr (resp.body, "invalid_header"));
    t_free (&resp);
    resp = t_book (s_client, NULL, "s-1");
    assert_int_equal (resp.status, 403);
    t_free (&resp);

    //  Nobody listens on GL_ENDPOINT_SCHEDULER: 503, and nothing written in intake (no key
    //  made, no event, nothing in the outbox; the audit trail is one stream that only grows).
    long long keys = t_redis_int ("DBSIZE");
    json_t *events = t_events ();
    size_t nevents = json_array_size (events);
    json_decref (events);
    resp = t_book (s_agent, "book-1", "s-1");
    if (resp.status != 503)
        fprintf (stderr, "%s\n", resp.raw);
    assert_int_equal (resp.status, 503);
    json_t *json = t_json (&resp);
    assert_string_equal (json_string_value (json_object_get (json_object_get (json, "error"),
                                                              "code")),
                         "scheduler_unavailable");
    json_decref (json);
    t_free (&resp);
    assert_int_equal (t_redis_int ("DBSIZE"), keys);
    events = t_events ();
    assert_int_equal (json_array_size (events), nevents);
    json_decref (events);
    assert_int_equal (t_audit_details ("action=book_result", "unavailable"), 1);
}

static void
test_booking_with_scheduler (void **state)
{
    memset (&s_sched, 0, sizeof s_sched);
    pthread_mutex_init (&s_sched.lock, NULL);
    assert_int_equal (pthread_create (&s_sched.thread, NULL, t_sched_run, &s_sched), 0);
    //  intake's client connects by itself once the server binds; the first calls may still find
    //  no connection (503): retry with the same key until scheduler answers.
    t_resp_t resp = { 0 };
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    do {
        t_free (&resp);
        resp = t_book (s_agent, "book-1", "s-1");
    } while (resp.status == 503 && gl_mono_ms () < deadline);
    if (resp.status != 201)
        fprintf (stderr, "%s\n", resp.raw);
    assert_int_equal (resp.status, 201);
    json_t *json = t_json (&resp);
    t_free (&resp);
    char appointment[GL_ID_LEN + 1];
    snprintf (appointment, sizeof appointment, "%s",
              json_string_value (json_object_get (json, "appointment_id")));
    assert_true (gl_id_valid (appointment));
    assert_string_equal (json_string_value (json_object_get (json, "centre")), "kla-01");
    json_decref (json);
    //  What scheduler got: the request's schema (docs/events.md ("intake: callers")).
    pthread_mutex_lock (&s_sched.lock);
    int handled = s_sched.handled;
    char key1[GL_REQ_KEY_MAX + 1];
    snprintf (key1, sizeof key1, "%s", s_sched.last_key);
    json_t *got = json_incref (s_sched.last_body);
    pthread_mutex_unlock (&s_sched.lock);
    assert_int_equal (handled, 1);
    assert_int_equal (strlen (key1), 34);
    assert_int_equal (strncmp (key1, "h-", 2), 0);
    assert_null (strstr (key1, "book-1"));
    assert_string_equal (json_string_value (json_object_get (got, "case_no")), T_CASE_A);
    assert_string_equal (json_string_value (json_object_get (got, "service")),
                         "registration_renewal");
    assert_string_equal (json_string_value (json_object_get (got, "slot_id")), "s-1");
    assert_string_equal (json_string_value (json_object_get (got, "call_id")), s_call);
    assert_string_equal (json_string_value (json_object_get (got, "agent_id")), s_agent_id);
    assert_string_equal (json_string_value (json_object_get (got, "language")), "prs");
    assert_int_equal (json_object_size (got), 7);
    json_decref (got);

    //  The same Idempotency-Key again: scheduler's stored answer, not a second booking.
    resp = t_book (s_agent, "book-1", "s-1");
    assert_int_equal (resp.status, 201);
    json = t_json (&resp);
    t_free (&resp);
    assert_string_equal (json_string_value (json_object_get (json, "appointment_id")),
                         appointment);
    json_decref (json);
    pthread_mutex_lock (&s_sched.lock);
    assert_int_equal (s_sched.handled, 1);
    pthread_mutex_unlock (&s_sched.lock);
    //  The same key with another body: scheduler's 422 key_reused, passed on.
    resp = t_book (s_agent, "book-1", "s-2");
    assert_int_equal (resp.status, 422);
    assert_non_null (strstr (resp.body, "key_reused"));
    t_free (&resp);
    //  Another key, or none: a new booking each time, with keys of their own.
    resp = t_book (s_agent, "book-2", "s-2");
    assert_int_equal (resp.status, 201);
    t_free (&resp);
    pthread_mutex_lock (&s_sched.lock);
    assert_int_equal (s_sched.handled, 2);
    assert_string_not_equal (s_sched.last_key, key1);
    pthread_mutex_unlock (&s_sched.lock);
    resp = t_book (s_agent, NULL, "s-3");
    assert_int_equal (resp.status, 201);
    t_free (&resp);
    pthread_mutex_lock (&s_sched.lock);
    assert_int_equal (strncmp (s_sched.last_key, "n-", 2), 0);
    pthread_mutex_unlock (&s_sched.lock);
    //  The same header from another user is another key (agent 2, once verified).
    t_resp_t v
        = t_verify (s_agent2, T_CASE_A, s_call, "{\"dob\":\"" T_DOB_A "\",\"family_size\":4}");
    assert_int_equal (v.status, 200);
    t_free (&v);
    resp = t_book (s_agent2, "book-1", "s-1");
    assert_int_equal (resp.status, 201);
    json = t_json (&resp);
    t_free (&resp);
    assert_string_not_equal (json_string_value (json_object_get (json, "appointment_id")),
                             appointment);
    json_decref (json);

    //  Scheduler refuses: its code and field, passed on.
    resp = t_book (s_agent, NULL, "taken");
    assert_int_equal (resp.status, 409);
    json = t_json (&resp);
    t_free (&resp);
    json_t *error = json_object_get (json, "error");
    assert_string_equal (json_string_value (json_object_get (error, "code")), "slot_taken");
    assert_string_equal (json_string_value (json_object_get (error, "field")), "slot_id");
    assert_string_equal (json_string_value (json_object_get (error, "message")),
                         "scheduler: the slot is no longer free");
    json_decref (json);
    //  Scheduler too slow: 503 at intake's deadline.
    resp = t_book (s_agent, NULL, "slow");
    assert_int_equal (resp.status, 503);
    assert_non_null (strstr (resp.body, "scheduler_unavailable"));
    t_free (&resp);
    assert_int_equal (t_audit_details ("action=book_result", "booked"), 5);
    assert_int_equal (t_audit_details ("action=book_result", "refused"), 2);

    s_sched.stop = 1;
    pthread_join (s_sched.thread, NULL);
    json_decref (s_sched.last_body);
    pthread_mutex_destroy (&s_sched.lock);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_import),
        cmocka_unit_test (test_import_refusals),
        cmocka_unit_test (test_push),
        cmocka_unit_test (test_verify_lockout_and_disclosure),
        cmocka_unit_test (test_verify_other_outcomes),
        cmocka_unit_test (test_change_requests),
        cmocka_unit_test (test_abusive_flag),
        cmocka_unit_test (test_delivery_details),
        cmocka_unit_test (test_booking_without_scheduler),
        cmocka_unit_test (test_booking_with_scheduler),
    };
    gl_log_init ("test_intake_callers", GL_LOG_WARN, false);
    return cmocka_run_group_tests_name ("intake callers", tests, t_setup, t_teardown);
}
