/*  gl_testintake — a real gl-intake for integration tests: started on free loopback ports against
    a test redis, with cheap Argon2, a bootstrap admin signed in, and a business clock file the
    test drives; plus the calls tests make over HTTP. One per test process (the tests that start
    intake differently keep their own helpers). */
#ifndef GL_TESTINTAKE_H
#define GL_TESTINTAKE_H
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define GL_TESTINTAKE_ADMIN_PASS "adminpass-123"
#define GL_TESTINTAKE_START_MS   INT64_C(1767225600000)     //  2026-01-01T00:00:00Z
#define GL_TESTINTAKE_ENV_MAX    48
#define GL_TESTINTAKE_SECRETS    64

typedef struct {
    int http_port;
    int router_port;
    int pub_port;
    int health_port;
    pid_t pid;
    char log_path[256];
    char clock_path[256];
    char env[GL_TESTINTAKE_ENV_MAX][256];
    int envc;
    char admin_token[128];
    char admin_id[GL_ID_LEN + 1];
    char secrets[GL_TESTINTAKE_SECRETS][128];   //  gl_testintake_secret
    int secretc;
} gl_testintake_t;

//  A user a test signs in as (roles and units as JSON arrays; id and token filled on sign-in).
typedef struct {
    const char *name;
    const char *roles;
    const char *units;
    char id[GL_ID_LEN + 1];
    char token[128];
} gl_testintake_account_t;

//  Start gl-intake against redis with the defaults above plus extra ("KEY=VALUE" strings,
//  NULL-terminated; may be NULL; a later entry wins), wait until /ready, sign the admin in.
//  NULL (with the reason and the log's path on stderr) when it did not come up.
gl_testintake_t *gl_testintake_start (gl_testredis_t *redis, const char *const *extra);

//  Start gl-intake again on the same redis, ports (a fresh health port) and log, with the same
//  settings plus extra (as for gl_testintake_start); stops the running one first, if any (a
//  test that killed it sets pid to -1). Waits until /ready. 0, or -1 (with the log's end on
//  stderr).
int gl_testintake_restart (gl_testintake_t *self, const char *const *extra);

//  SIGTERM (SIGKILL after 10 s), remove the log (kept when GL_TEST_KEEP_LOG is set) and clock
//  files, free.
void gl_testintake_destroy (gl_testintake_t **self_p);

//  Set the business clock (unix ms). 0, or -1 when the clock file could not be written.
int gl_testintake_clock (gl_testintake_t *self, int64_t ms);

//  The whole of intake's log file, NUL-terminated (caller frees), or NULL when it cannot be read.
char *gl_testintake_log (gl_testintake_t *self);

//  The end of intake's log on stderr, to explain a failure.
void gl_testintake_log_tail (gl_testintake_t *self);

//  0 when resp has this status; else -1, with the answer and the end of intake's log on stderr.
int gl_testintake_expect (gl_testintake_t *self, const gl_test_resp_t *resp, int status);

//  0 when resp is the one error shape with this status, error code and field (field NULL: the
//  field must be null); else -1 with what was expected and what came on stderr.
int gl_testintake_expect_error (gl_testintake_t *self, const gl_test_resp_t *resp, int status,
                                const char *code, const char *field);

//  Remember text the test sends (personal data, free text) that no event may hold (at most
//  GL_TESTINTAKE_SECRETS). 0, or -1 when the list is full.
int gl_testintake_secret (gl_testintake_t *self, const char *text);

//  The events of intake-1's log (read through redis) of type (NULL: all) whose corr is corr
//  (NULL: any), oldest first, as a JSON array of {type, id, corr, seq, ts, data} (caller frees).
//  NULL when the log cannot be read, an entry does not decode, or any entry holds a remembered
//  secret (the reason on stderr).
json_t *gl_testintake_events (gl_testintake_t *self, gl_redis_t *redis, const char *type,
                              const char *corr);

//  gl_testintake_events, waited for (up to 60 s) until it holds at least n events; whatever it
//  holds then (NULL as above).
json_t *gl_testintake_wait_events (gl_testintake_t *self, gl_redis_t *redis, const char *type,
                                   const char *corr, size_t n);

//  A request: token as bearer (NULL: none), extra header lines each ending in "\r\n" (NULL:
//  none), body as JSON text (NULL: none).
gl_test_resp_t gl_testintake_call (gl_testintake_t *self, const char *method, const char *path,
                                   const char *token, const char *extra, const char *body);

//  The same request to the HTTP port of any intake (for tests that start it their own way,
//  e.g. to kill and restart it). A status of 0 when the request could not be made.
gl_test_resp_t gl_testintake_request (int http_port, const char *method, const char *path,
                                      const char *token, const char *extra, const char *body);

//  The body of resp parsed as JSON (new reference), or NULL.
json_t *gl_test_json (const gl_test_resp_t *resp);

//  A string / integer member of a JSON object (NULL / 0 when absent).
const char *gl_test_str (const json_t *obj, const char *name);
int64_t gl_test_int (const json_t *obj, const char *name);

//  True when the page's "items" hold an item whose "id" is id.
bool gl_test_has_id (const json_t *page, const char *id);

//  The error code of a {"error":{...}} body ("" when none). Static buffer.
const char *gl_test_error_code (const gl_test_resp_t *resp);
const char *gl_test_error_field (const gl_test_resp_t *resp);

//  Create a user as the admin (roles and units as JSON arrays, e.g. "[\"agent\"]", units NULL
//  for none) and sign them in: token (128 bytes) and id (GL_ID_LEN + 1) filled. 0, or -1.
int gl_testintake_user (gl_testintake_t *self, const char *username, const char *roles,
                        const char *units, char *token, char *id);

//  As gl_testintake_user, for a staff member who also speaks ar and en and is shown as
//  "Test <username>". 0, or -1.
int gl_testintake_staff (gl_testintake_t *self, const char *username, const char *roles,
                         const char *units, char *token, char *id);

//  Sign in again (sessions do not survive long clock jumps): "admin" with the bootstrap
//  password, anyone else with the password gl_testintake_user gave. token (128 bytes) and id
//  (GL_ID_LEN + 1) filled. 0, or -1 (the answer on stderr).
int gl_testintake_login (gl_testintake_t *self, const char *username, char *token, char *id);

//  An API client (role api_client) made by the admin: its token (128 bytes). 0, or -1.
int gl_testintake_client (gl_testintake_t *self, const char *name, char *token);

#endif

/*  The cmocka harness the intake tests share: a test that defines its users first

        enum { U_ADMIN, ..., U_COUNT };         //  U_ADMIN (0) is the bootstrap admin
        static gl_testintake_account_t s_users[U_COUNT] = { { "admin", NULL, NULL }, ... };
        #define GL_TESTINTAKE_HARNESS
        #include "gl_testintake.h"

    (after cmocka.h) gets s_redis, s_rc (its own redis connection), s_in, s_now (the business
    clock), and t_* helpers that assert: t_setup_common (extra settings) / t_teardown, t_call*,
    t_expect, t_json, t_clock_write / t_clock_advance (everyone signs in again), t_secret,
    t_events / t_wait_events (every event checked for the remembered secrets). */
#if defined(GL_TESTINTAKE_HARNESS) && !defined(GL_TESTINTAKE_HARNESS_INCLUDED)
#define GL_TESTINTAKE_HARNESS_INCLUDED
#include "gl/gl_redis.h"
#include <stdio.h>

typedef gl_test_resp_t t_resp_t;

static gl_testredis_t *s_redis;
static gl_redis_t *s_rc;                //  the test's own connection
static gl_testintake_t *s_in;           //  gl-intake, started by gl_testintake
static int64_t s_now;

#define t_str    gl_test_str
#define t_int    gl_test_int
#define t_has_id gl_test_has_id

//  Personal data and free text the tests send: none may appear in an event (t_events checks).
static __attribute__ ((unused)) void
t_secret (const char *s)
{
    assert_int_equal (gl_testintake_secret (s_in, s), 0);
}

static __attribute__ ((unused)) json_t *
t_json (const t_resp_t *resp)
{
    json_t *json = gl_test_json (resp);
    if (!json)
        fprintf (stderr, "not JSON: %s\n", resp->raw);
    assert_non_null (json);
    return json;
}

static __attribute__ ((unused)) void
t_clock_write (int64_t ms)
{
    assert_int_equal (gl_testintake_clock (s_in, ms), 0);
    s_now = ms;
}

static __attribute__ ((unused)) t_resp_t
t_call (int user, const char *method, const char *path, const char *extra, const char *body)
{
    const char *token = user >= 0 ? s_users[user].token : NULL;
    return gl_testintake_call (s_in, method, path, token, extra, body);
}

static __attribute__ ((unused)) void
t_expect (const t_resp_t *resp, int status)
{
    assert_int_equal (gl_testintake_expect (s_in, resp, status), 0);
}

//  The one error shape, with code and field (NULL: field must be null).
static __attribute__ ((unused)) void
t_call_error (int user, const char *method, const char *path, const char *body, int status,
              const char *code, const char *field)
{
    t_resp_t resp = t_call (user, method, path, NULL, body);
    int rc = gl_testintake_expect_error (s_in, &resp, status, code, field);
    gl_test_http_free (&resp);
    assert_int_equal (rc, 0);
}

static __attribute__ ((unused)) int
t_call_status (int user, const char *method, const char *path, const char *body)
{
    t_resp_t resp = t_call (user, method, path, NULL, body);
    int status = resp.status;
    gl_test_http_free (&resp);
    return status;
}

//  A 2xx answer's body as JSON (caller frees).
static __attribute__ ((unused)) json_t *
t_call_json (int user, const char *method, const char *path, const char *body, int status)
{
    t_resp_t resp = t_call (user, method, path, NULL, body);
    t_expect (&resp, status);
    json_t *json = t_json (&resp);
    gl_test_http_free (&resp);
    return json;
}

//  Move the business clock forward; sessions do not survive long jumps, so everyone signs in
//  again.
static __attribute__ ((unused)) void
t_clock_advance (int64_t ms)
{
    t_clock_write (s_now + ms);
    for (int u = 0; u < U_COUNT; u++)
        assert_int_equal (gl_testintake_login (s_in, s_users[u].name, s_users[u].token,
                                               s_users[u].id),
                          0);
}

//  A private redis, gl-intake on it with the settings these tests share plus extra
//  (NULL-terminated), and every user of s_users made and signed in.
static __attribute__ ((unused)) int
t_setup_common (const char *const *extra)
{
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    s_rc = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 5000, 5000);
    const char *settings[GL_TESTINTAKE_ENV_MAX] = {
        "GL_BUS_TOKENS=tok-part2-test", "GL_INTAKE_SESSION_IDLE_S=86400",
        "GL_INTAKE_SESSION_MAX_S=2592000", "GL_INTAKE_PHONE_COUNTRY_CODE=962",
    };
    for (int i = 0, n = 4; extra && extra[i] && n < GL_TESTINTAKE_ENV_MAX - 1; i++)
        settings[n++] = extra[i];
    s_in = gl_testintake_start (s_redis, settings);
    if (!s_in)
        return -1;
    s_now = GL_TESTINTAKE_START_MS;
    snprintf (s_users[0].token, sizeof s_users[0].token, "%s", s_in->admin_token);
    snprintf (s_users[0].id, sizeof s_users[0].id, "%s", s_in->admin_id);
    for (int u = 1; u < U_COUNT; u++)
        if (gl_testintake_staff (s_in, s_users[u].name, s_users[u].roles, s_users[u].units,
                                 s_users[u].token, s_users[u].id)
            != 0)
            return -1;
    return 0;
}

static __attribute__ ((unused)) int
t_teardown (void **state)
{
    gl_testintake_destroy (&s_in);
    gl_redis_destroy (&s_rc);
    gl_testredis_destroy (&s_redis);
    return 0;
}

//  Events of type (NULL: all) in intake-1's log whose corr is corr (NULL: any), oldest first.
//  Checks every entry for secrets.
static __attribute__ ((unused)) json_t *
t_events (const char *type, const char *corr)
{
    json_t *evs = gl_testintake_events (s_in, s_rc, type, corr);
    assert_non_null (evs);
    return evs;
}

//  Wait until the log holds n events of type for corr; returns them.
static __attribute__ ((unused)) json_t *
t_wait_events (const char *type, const char *corr, size_t n)
{
    json_t *evs = gl_testintake_wait_events (s_in, s_rc, type, corr, n);
    assert_non_null (evs);
    assert_int_equal (json_array_size (evs), n);
    return evs;
}

#endif
