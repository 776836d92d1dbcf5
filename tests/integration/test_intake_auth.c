/*  intake's accounts over real HTTP: gl-intake as a process against a private redis-server,
    its business clock driven through GL_CLOCK_FILE.

    Login and logout, the session cookie, wrong passwords, lock-out and the per-address limit
    (429 with Retry-After), idle and absolute session timeouts, CSRF for cookie sessions (and
    not for bearer tokens), API client tokens accepted and revoked, a disabled user's session
    refused at once, a role change taking effect on the next request (both through the session
    cache), another replica's logout seen within the cache's lifetime, users' validation and
    pagination, one's own password change, sessions surviving a SIGKILL of intake, the audit
    trail and its filters, the events (ids and codes only), and no password, token or username
    anywhere in intake's log.

    ctest: timeout=240 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl/gl_req.h"
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
#define T_ADMIN_PASS    "adminpass"                 //  the contract's; below the policy on purpose
#define T_IDLE_S        300
#define T_MAX_S         900

#include "gl_testhttp.h"
#include "gl_testintake.h"
typedef gl_test_resp_t t_resp_t;
#define t_connect gl_test_http_connect
#define t_raw gl_test_http_raw
#define t_free gl_test_http_free
#define t_header gl_test_http_header

//  --------------------------------------------------------------------------------------------
//  A tiny HTTP/1.1 client (as in test_intake.c): one request per connection.





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

static const char *
t_error_code (const t_resp_t *resp)
{
    static char code[64];
    json_t *json = t_json (resp);
    snprintf (code, sizeof code, "%s",
              json_string_value (json_object_get (json_object_get (json, "error"), "code")));
    json_decref (json);
    return code;
}

//  --------------------------------------------------------------------------------------------
//  The service

static gl_testredis_t *s_redis;
static pid_t s_intake = -1;
static int s_http_port;
static char s_log_path[256];
static char s_clock_path[200];
static int64_t s_now = T_START_MS;
static char s_env[24][256];
static int s_envc;
static char s_admin_token[128];
static int s_router_port;
static char s_admin_id[GL_ID_LEN + 1];
//  Every secret the test handed to or got from intake: none may appear in its log.
static char s_secrets[1024][128];
static int s_secretc;

static void
t_secret (const char *s)
{
    assert_true (s_secretc < 1024);
    snprintf (s_secrets[s_secretc++], sizeof s_secrets[0], "%s", s);
}

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

static int t_login (const char *username, const char *password, const char *ip, char *token,
                    char *csrf, char *user_id);

//  Move the business clock; the admin's session would not survive the jump, so it signs in again.
static void
t_clock_advance_s (int64_t s)
{
    t_clock_set (s_now + s * 1000);
    if (s_admin_token[0])
        assert_int_equal (t_login ("admin", T_ADMIN_PASS, "10.0.0.1", s_admin_token, NULL, NULL),
                          200);
}

static t_resp_t
t_get (const char *path)
{
    char request[2048];
    int n = snprintf (request, sizeof request,
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    return t_raw (s_http_port, request, (size_t) n);
}

static int
t_wait_ready (void)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (gl_mono_ms () < deadline) {
        t_resp_t resp = t_get ("/ready");
        int status = resp.status;
        t_free (&resp);
        if (status == 200)
            return 0;
        gl_sleep_ms (100);
    }
    return -1;
}

//  A request. token: bearer (or NULL); extra: more header lines, each ending in \r\n.
static t_resp_t
t_call (const char *method, const char *path, const char *token, const char *extra,
        const char *body)
{
    return gl_testintake_request (s_http_port, method, path, token, extra, body);
}

static void
t_expect (const t_resp_t *resp, int status)
{
    if (resp->status != status)
        fprintf (stderr, "expected %d, got: %s\n", status, resp->raw);
    assert_int_equal (resp->status, status);
}

//  Log in from address ip; fills token, csrf (may be NULL), cookie line (may be NULL).
static int
t_login (const char *username, const char *password, const char *ip, char *token, char *csrf,
         char *user_id)
{
    char body[512], extra[128];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", username, password);
    snprintf (extra, sizeof extra, "X-Real-IP: %s\r\n", ip);
    t_resp_t resp = t_call ("POST", "/api/v1/auth/login", NULL, extra, body);
    int status = resp.status;
    if (status == 200) {
        json_t *json = t_json (&resp);
        const char *t = json_string_value (json_object_get (json, "token"));
        const char *c = json_string_value (json_object_get (json, "csrf_token"));
        assert_non_null (t);
        assert_non_null (c);
        if (token)
            snprintf (token, 128, "%s", t);
        if (csrf)
            snprintf (csrf, 64, "%s", c);
        if (user_id)
            snprintf (user_id, GL_ID_LEN + 1, "%s",
                      json_string_value (json_object_get (json_object_get (json, "user"), "id")));
        t_secret (t);
        t_secret (c);
        json_decref (json);
    }
    t_free (&resp);
    return status;
}

//  Create a user as admin; returns its id in id.
static void
t_create_user (const char *username, const char *password, const char *roles_json, char *id)
{
    char body[1024];
    snprintf (body, sizeof body,
              "{\"username\":\"%s\",\"password\":\"%s\",\"roles\":%s,\"units\":[\"unit-a\"],"
              "\"languages\":[\"ar\",\"en\"],\"display_name\":\"Test %s\"}",
              username, password, roles_json, username);
    t_secret (password);
    t_resp_t resp = t_call ("POST", "/api/v1/users", s_admin_token, NULL, body);
    t_expect (&resp, 201);
    json_t *json = t_json (&resp);
    snprintf (id, GL_ID_LEN + 1, "%s", json_string_value (json_object_get (json, "id")));
    assert_true (gl_id_valid (id));
    json_decref (json);
    t_free (&resp);
}

static int
t_status (const char *method, const char *path, const char *token, const char *body)
{
    t_resp_t resp = t_call (method, path, token, NULL, body);
    int status = resp.status;
    t_free (&resp);
    return status;
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
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-intake-auth-%d.log", (int) getpid ());
    snprintf (s_clock_path, sizeof s_clock_path, "/tmp/gl-test-intake-auth-%d.clock",
              (int) getpid ());
    unlink (s_log_path);
    t_clock_set (T_START_MS);
    int n = 0;
    snprintf (s_env[n++], 256, "GL_REDIS_HOST=127.0.0.1");
    snprintf (s_env[n++], 256, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (s_env[n++], 256, "GL_HTTP_PORT=%d", s_http_port);
    snprintf (s_env[n++], 256, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    snprintf (s_env[n++], 256, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", gl_test_free_port ());
    s_router_port = gl_test_free_port ();
    snprintf (s_env[n++], 256, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", s_router_port);
    snprintf (s_env[n++], 256, "GL_SOURCE=intake-1");
    snprintf (s_env[n++], 256, "GL_BUS_TOKENS=tok-auth-test");
    snprintf (s_env[n++], 256, "GL_LOG_LEVEL=debug");
    snprintf (s_env[n++], 256, "GL_CLOCK_FILE=%s", s_clock_path);
    snprintf (s_env[n++], 256, "GL_INTAKE_BOOTSTRAP_ADMIN=admin:" T_ADMIN_PASS);
    snprintf (s_env[n++], 256, "GL_INTAKE_ARGON2_OPSLIMIT=1");
    snprintf (s_env[n++], 256, "GL_INTAKE_ARGON2_MEMLIMIT=8192");
    snprintf (s_env[n++], 256, "GL_INTAKE_SESSION_IDLE_S=%d", T_IDLE_S);
    snprintf (s_env[n++], 256, "GL_INTAKE_SESSION_MAX_S=%d", T_MAX_S);
    snprintf (s_env[n++], 256, "GL_INTAKE_CLIENT_IP_HEADER=X-Real-IP");
    snprintf (s_env[n++], 256, "GL_INTAKE_LOGIN_IP_MAX_FAILURES=8");
    s_envc = n;
    s_intake = t_spawn_intake ();
    if (s_intake < 0 || t_wait_ready () != 0) {
        fprintf (stderr, "gl-intake did not become ready; its log is %s\n", s_log_path);
        return -1;
    }
    t_secret (T_ADMIN_PASS);
    if (t_login ("admin", T_ADMIN_PASS, "10.0.0.1", s_admin_token, NULL, s_admin_id) != 200)
        return -1;
    return 0;
}

static int
t_teardown (void **state)
{
    if (s_intake > 0)
        gl_test_stop (s_intake, 10000);
    gl_testredis_destroy (&s_redis);
    unlink (s_log_path);
    unlink (s_clock_path);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  Tests

//  Stop intake with SIGTERM: it must exit 0 and its log must hold nothing from the sanitizers
//  (leaks are reported at exit). Returns the log's text (static).
static const char *
t_stop_cleanly (void)
{
    int status = gl_test_stop (s_intake, 10000);
    s_intake = -1;
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        fprintf (stderr, "gl-intake did not stop cleanly (status %d)\n", status);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    FILE *f = fopen (s_log_path, "r");
    assert_non_null (f);
    static char text[8 << 20];
    size_t len = fread (text, 1, sizeof text - 1, f);
    fclose (f);
    text[len] = 0;
    if (strstr (text, "Sanitizer") || strstr (text, "runtime error"))
        fprintf (stderr, "gl-intake's log:\n%s\n", text);
    assert_null (strstr (text, "Sanitizer"));
    assert_null (strstr (text, "runtime error"));
    return text;
}


static void
test_login_logout (void **state)
{
    char body[256];
    snprintf (body, sizeof body, "{\"username\":\"ADMIN\",\"password\":\"%s\"}", T_ADMIN_PASS);
    t_resp_t resp = t_call ("POST", "/api/v1/auth/login", NULL, "X-Real-IP: 10.0.0.1\r\n", body);
    t_expect (&resp, 200);
    //  The cookie: HttpOnly, SameSite=Strict, Path=/, not Secure (GL_INTAKE_COOKIE_SECURE=0).
    const char *cookie = t_header (&resp, "Set-Cookie");
    assert_non_null (cookie);
    assert_true (strncmp (cookie, "gl_session=gls_", 15) == 0);
    assert_non_null (strstr (cookie, "; HttpOnly"));
    assert_non_null (strstr (cookie, "; SameSite=Strict"));
    assert_non_null (strstr (cookie, "; Path=/"));
    assert_null (strstr (cookie, "Secure"));
    json_t *json = t_json (&resp);
    const char *token = json_string_value (json_object_get (json, "token"));
    assert_int_equal (strlen (token), 80);
    assert_non_null (strstr (cookie, token));
    char tok[128];
    snprintf (tok, sizeof tok, "%s", token);
    t_secret (tok);
    t_secret (json_string_value (json_object_get (json, "csrf_token")));
    json_t *user = json_object_get (json, "user");
    assert_string_equal (json_string_value (json_object_get (user, "username")), "admin");
    assert_string_equal (json_string_value (json_array_get (json_object_get (user, "roles"), 0)),
                         "admin");
    assert_null (json_object_get (user, "pwhash"));
    assert_int_equal (json_integer_value (json_object_get (json, "expires_ms")),
                      s_now + T_MAX_S * 1000);
    json_decref (json);
    t_free (&resp);

    resp = t_call ("GET", "/api/v1/auth/me", tok, NULL, NULL);
    t_expect (&resp, 200);
    json = t_json (&resp);
    assert_string_equal (json_string_value (json_object_get (json, "kind")), "user");
    assert_string_equal (json_string_value (json_object_get (json, "id")), s_admin_id);
    json_decref (json);
    t_free (&resp);

    assert_int_equal (t_status ("POST", "/api/v1/auth/logout", tok, "{}"), 200);
    resp = t_call ("GET", "/api/v1/auth/me", tok, NULL, NULL);
    t_expect (&resp, 401);
    assert_string_equal (t_error_code (&resp), "unauthorized");
    assert_non_null (t_header (&resp, "WWW-Authenticate"));
    t_free (&resp);
    //  The admin's other session is untouched.
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", s_admin_token, NULL), 200);
    //  No credentials, malformed ones, and a well-formed token nobody was given.
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", NULL, NULL), 401);
    resp = t_call ("GET", "/api/v1/auth/me", NULL, "Authorization: Basic YTpi\r\n", NULL);
    t_expect (&resp, 401);
    t_free (&resp);
    char forged[128];
    snprintf (forged, sizeof forged, "%s", s_admin_token);
    forged[strlen (forged) - 1] = forged[strlen (forged) - 1] == 'A' ? 'B' : 'A';
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", forged, NULL), 401);
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", "gls_x", NULL), 401);
    //  Bad bodies are 400, and name the field.
    resp = t_call ("POST", "/api/v1/auth/login", NULL, NULL, "{\"username\":\"admin\"}");
    t_expect (&resp, 400);
    assert_string_equal (t_error_code (&resp), "missing_field");
    t_free (&resp);
    resp = t_call ("POST", "/api/v1/auth/login", NULL, NULL,
                   "{\"username\":\"admin\",\"password\":\"x\",\"remember\":true}");
    t_expect (&resp, 400);
    assert_string_equal (t_error_code (&resp), "unknown_field");
    t_free (&resp);
}

static void
test_wrong_password_and_lockout (void **state)
{
    char id[GL_ID_LEN + 1];
    t_create_user ("qzlocky", "qzlocky-password-1", "[\"agent\"]", id);
    //  Wrong password and unknown user: the same answer.
    t_resp_t resp = t_call ("POST", "/api/v1/auth/login", NULL, "X-Real-IP: 10.1.0.1\r\n",
                            "{\"username\":\"qzlocky\",\"password\":\"wrong-password-0\"}");
    t_expect (&resp, 401);
    json_t *wrong = t_json (&resp);
    t_free (&resp);
    resp = t_call ("POST", "/api/v1/auth/login", NULL, "X-Real-IP: 10.1.0.2\r\n",
                   "{\"username\":\"qznobody-here\",\"password\":\"wrong-password-0\"}");
    t_expect (&resp, 401);
    json_t *unknown = t_json (&resp);
    t_free (&resp);
    assert_true (json_equal (wrong, unknown));
    json_decref (wrong);
    json_decref (unknown);
    t_secret ("wrong-password-0");

    //  Four more failures (five in all) lock the username ...
    for (int i = 1; i < 5; i++)
        assert_int_equal (t_login ("qzlocky", "wrong-password-0", "10.1.0.1", NULL, NULL, NULL),
                          401);
    //  ... so even the right password gets 429, with Retry-After.
    resp = t_call ("POST", "/api/v1/auth/login", NULL, "X-Real-IP: 10.1.0.3\r\n",
                   "{\"username\":\"qzlocky\",\"password\":\"qzlocky-password-1\"}");
    t_expect (&resp, 429);
    assert_string_equal (t_error_code (&resp), "too_many_requests");
    const char *retry = t_header (&resp, "Retry-After");
    assert_non_null (retry);
    assert_int_equal (atoi (retry), 900);
    t_free (&resp);
    //  Other users are not affected.
    char token[128];
    assert_int_equal (t_login ("admin", T_ADMIN_PASS, "10.1.0.4", token, NULL, NULL), 200);

    //  Ten minutes later: still locked, for five more minutes.
    t_clock_advance_s (600);
    resp = t_call ("POST", "/api/v1/auth/login", NULL, "X-Real-IP: 10.1.0.3\r\n",
                   "{\"username\":\"qzlocky\",\"password\":\"qzlocky-password-1\"}");
    t_expect (&resp, 429);
    assert_int_equal (atoi (t_header (&resp, "Retry-After")), 300);
    t_free (&resp);
    //  Past the lock: in.
    t_clock_advance_s (301);
    assert_int_equal (t_login ("qzlocky", "qzlocky-password-1", "10.1.0.3", token, NULL, NULL),
                      200);

    //  An admin's password reset clears a lock.
    for (int i = 0; i < 5; i++)
        assert_int_equal (t_login ("qzlocky", "wrong-password-0", "10.1.0.5", NULL, NULL, NULL),
                          401);
    assert_int_equal (t_login ("qzlocky", "qzlocky-password-1", "10.1.0.5", NULL, NULL, NULL), 429);
    char path[128];
    snprintf (path, sizeof path, "/api/v1/users/%s/password", id);
    t_secret ("qzlocky-password-2");
    assert_int_equal (
        t_status ("POST", path, s_admin_token, "{\"password\":\"qzlocky-password-2\"}"), 200);
    //  ... and ends the user's sessions.
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", token, NULL), 401);
    assert_int_equal (t_login ("qzlocky", "qzlocky-password-1", "10.1.0.5", NULL, NULL, NULL), 401);
    assert_int_equal (t_login ("qzlocky", "qzlocky-password-2", "10.1.0.5", NULL, NULL, NULL), 200);
}

static void
test_address_rate_limit (void **state)
{
    //  Eight failures from one address (GL_INTAKE_LOGIN_IP_MAX_FAILURES=8), spread over
    //  usernames so that none is locked.
    for (int i = 0; i < 8; i++) {
        char name[32];
        snprintf (name, sizeof name, "qzspray%d", i);
        assert_int_equal (t_login (name, "qzspray-password-0", "192.0.2.7", NULL, NULL, NULL), 401);
        t_clock_advance_s (10);
    }
    t_secret ("qzspray-password-0");
    //  The ninth attempt from that address is refused before any check, even a right one.
    t_resp_t resp = t_call ("POST", "/api/v1/auth/login", NULL, "X-Real-IP: 192.0.2.7\r\n",
                            "{\"username\":\"admin\",\"password\":\"" T_ADMIN_PASS "\"}");
    t_expect (&resp, 429);
    //  Free again when the oldest failure (80 s ago) leaves the 900 s window.
    assert_int_equal (atoi (t_header (&resp, "Retry-After")), 820);
    t_free (&resp);
    //  Another address is not affected.
    assert_int_equal (t_login ("admin", T_ADMIN_PASS, "192.0.2.8", NULL, NULL, NULL), 200);
    t_clock_advance_s (821);
    assert_int_equal (t_login ("admin", T_ADMIN_PASS, "192.0.2.7", NULL, NULL, NULL), 200);
}

static void
test_session_timeouts (void **state)
{
    char id[GL_ID_LEN + 1], token[128];
    t_create_user ("qzidler", "qzidler-password", "[\"agent\"]", id);
    assert_int_equal (t_login ("qzidler", "qzidler-password", "10.2.0.1", token, NULL, NULL), 200);
    //  Used every 200 s: alive, across more than the idle timeout in all.
    for (int i = 0; i < 3; i++) {
        t_clock_advance_s (200);
        assert_int_equal (t_status ("GET", "/api/v1/auth/me", token, NULL), 200);
    }
    //  Idle for longer than 300 s: gone.
    t_clock_advance_s (T_IDLE_S + 1);
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", token, NULL), 401);
    //  And it stays gone when the time would have allowed it.
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", token, NULL), 401);

    //  The absolute lifetime (900 s) ends a session that is never idle.
    assert_int_equal (t_login ("qzidler", "qzidler-password", "10.2.0.1", token, NULL, NULL), 200);
    for (int i = 0; i < 4; i++) {
        t_clock_advance_s (220);
        assert_int_equal (t_status ("GET", "/api/v1/auth/me", token, NULL), 200);
    }
    t_clock_advance_s (T_MAX_S - 4 * 220 + 1);
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", token, NULL), 401);
}

static void
test_csrf_for_cookies_only (void **state)
{
    char id[GL_ID_LEN + 1], token[128], csrf[64], line[512];
    t_create_user ("qzcookie", "qzcookie-password", "[\"agent\"]", id);
    assert_int_equal (t_login ("qzcookie", "qzcookie-password", "10.3.0.1", token, csrf, NULL),
                      200);
    //  A cookie GET needs no CSRF token.
    snprintf (line, sizeof line, "Cookie: theme=dark; gl_session=%s; other=1\r\n", token);
    t_resp_t resp = t_call ("GET", "/api/v1/auth/me", NULL, line, NULL);
    t_expect (&resp, 200);
    t_free (&resp);
    //  A state change with the cookie alone: refused.
    resp = t_call ("POST", "/api/v1/auth/logout", NULL, line, "{}");
    t_expect (&resp, 401);
    assert_non_null (strstr (t_header (&resp, "WWW-Authenticate"), "csrf_token_required"));
    t_free (&resp);
    //  With a wrong CSRF token (another session's): refused.
    char other_csrf[64];
    assert_int_equal (t_login ("qzcookie", "qzcookie-password", "10.3.0.1", NULL, other_csrf, NULL),
                      200);
    snprintf (line, sizeof line, "Cookie: gl_session=%s\r\nX-CSRF-Token: %s\r\n", token,
              other_csrf);
    resp = t_call ("POST", "/api/v1/auth/logout", NULL, line, "{}");
    t_expect (&resp, 401);
    t_free (&resp);
    //  With its own: accepted (logout, which also clears the cookie).
    snprintf (line, sizeof line, "Cookie: gl_session=%s\r\nX-CSRF-Token: %s\r\n", token, csrf);
    resp = t_call ("POST", "/api/v1/auth/logout", NULL, line, "{}");
    t_expect (&resp, 200);
    assert_non_null (strstr (t_header (&resp, "Set-Cookie"), "Max-Age=0"));
    t_free (&resp);
    resp = t_call ("GET", "/api/v1/auth/me", NULL, line, NULL);
    t_expect (&resp, 401);
    t_free (&resp);
    //  Bearer tokens need no CSRF token on a state change.
    char path[128];
    snprintf (path, sizeof path, "/api/v1/users/%s", id);
    assert_int_equal (t_status ("PATCH", path, s_admin_token, "{\"display_name\":\"C\"}"), 200);
}

static char s_client_token[128];
static char s_client_id[GL_ID_LEN + 1];

static void
test_api_client (void **state)
{
    t_resp_t resp = t_call ("POST", "/api/v1/clients", s_admin_token, NULL,
                            "{\"name\":\"asterisk-1\",\"roles\":[\"api_client\"]}");
    t_expect (&resp, 201);
    json_t *json = t_json (&resp);
    snprintf (s_client_token, sizeof s_client_token, "%s",
              json_string_value (json_object_get (json, "token")));
    snprintf (s_client_id, sizeof s_client_id, "%s",
              json_string_value (json_object_get (json, "id")));
    assert_true (strncmp (s_client_token, "glc_", 4) == 0);
    assert_int_equal (strlen (s_client_token), 80);
    t_secret (s_client_token);
    json_decref (json);
    t_free (&resp);

    resp = t_call ("GET", "/api/v1/auth/me", s_client_token, NULL, NULL);
    t_expect (&resp, 200);
    json = t_json (&resp);
    assert_string_equal (json_string_value (json_object_get (json, "kind")), "client");
    assert_string_equal (json_string_value (json_object_get (json, "id")), s_client_id);
    assert_string_equal (json_string_value (json_array_get (json_object_get (json, "roles"), 0)),
                         "api_client");
    json_decref (json);
    t_free (&resp);
    //  Its role is api_client only.
    assert_int_equal (t_status ("GET", "/api/v1/users", s_client_token, NULL), 403);
    assert_int_equal (t_status ("POST", "/api/v1/auth/logout", s_client_token, "{}"), 403);
    //  A client token in the cookie is not a session.
    char line[256];
    snprintf (line, sizeof line, "Cookie: gl_session=%s\r\n", s_client_token);
    resp = t_call ("GET", "/api/v1/auth/me", NULL, line, NULL);
    t_expect (&resp, 401);
    t_free (&resp);
    //  Listing never shows the token.
    resp = t_call ("GET", "/api/v1/clients", s_admin_token, NULL, NULL);
    t_expect (&resp, 200);
    assert_null (strstr (resp.body, "glc_"));
    assert_non_null (strstr (resp.body, s_client_id));
    t_free (&resp);
    //  Only roles: ["api_client"].
    resp = t_call ("POST", "/api/v1/clients", s_admin_token, NULL,
                   "{\"name\":\"x\",\"roles\":[\"admin\"]}");
    t_expect (&resp, 400);
    t_free (&resp);

    //  Revoked: refused at once; revoking again changes nothing; unknown ids are 404.
    char path[128];
    snprintf (path, sizeof path, "/api/v1/clients/%s", s_client_id);
    resp = t_call ("DELETE", path, s_admin_token, NULL, NULL);
    t_expect (&resp, 200);
    json = t_json (&resp);
    assert_true (json_is_true (json_object_get (json, "revoked")));
    assert_int_equal (json_integer_value (json_object_get (json, "revoked_ms")), s_now);
    json_decref (json);
    t_free (&resp);
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", s_client_token, NULL), 401);
    assert_int_equal (t_status ("DELETE", path, s_admin_token, NULL), 200);
    char unknown[GL_ID_LEN + 1], upath[128];
    gl_id_new (unknown);
    snprintf (upath, sizeof upath, "/api/v1/clients/%s", unknown);
    assert_int_equal (t_status ("DELETE", upath, s_admin_token, NULL), 404);
}

static void
test_disabled_user_refused_at_once (void **state)
{
    char id[GL_ID_LEN + 1], token[128], path[128];
    t_create_user ("qzleaver", "qzleaver-password", "[\"agent\",\"supervisor\"]", id);
    assert_int_equal (t_login ("qzleaver", "qzleaver-password", "10.4.0.1", token, NULL, NULL),
                      200);
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", token, NULL), 200);
    snprintf (path, sizeof path, "/api/v1/users/%s/disable", id);
    t_resp_t resp = t_call ("POST", path, s_admin_token, NULL, NULL);
    t_expect (&resp, 200);
    json_t *json = t_json (&resp);
    assert_true (json_is_true (json_object_get (json, "disabled")));
    json_decref (json);
    t_free (&resp);
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", token, NULL), 401);
    assert_int_equal (t_login ("qzleaver", "qzleaver-password", "10.4.0.1", NULL, NULL, NULL), 401);
    snprintf (path, sizeof path, "/api/v1/users/%s/enable", id);
    assert_int_equal (t_status ("POST", path, s_admin_token, "{}"), 200);
    assert_int_equal (t_login ("qzleaver", "qzleaver-password", "10.4.0.1", NULL, NULL, NULL), 200);
    //  An admin cannot disable themselves or drop their own admin role.
    snprintf (path, sizeof path, "/api/v1/users/%s/disable", s_admin_id);
    assert_int_equal (t_status ("POST", path, s_admin_token, NULL), 409);
    snprintf (path, sizeof path, "/api/v1/users/%s", s_admin_id);
    assert_int_equal (t_status ("PATCH", path, s_admin_token, "{\"roles\":[\"agent\"]}"), 409);
}

static void
test_role_change_takes_effect (void **state)
{
    char id[GL_ID_LEN + 1], token[128], path[128];
    t_create_user ("qzpromoted", "qzpromoted-password", "[\"agent\"]", id);
    assert_int_equal (t_login ("qzpromoted", "qzpromoted-password", "10.5.0.1", token, NULL, NULL),
                      200);
    assert_int_equal (t_status ("GET", "/api/v1/audit", token, NULL), 403);
    snprintf (path, sizeof path, "/api/v1/users/%s", id);
    t_resp_t resp = t_call ("PATCH", path, s_admin_token, NULL,
                            "{\"roles\":[\"supervisor\"],\"units\":[\"unit-b\",\"unit-c\"]}");
    t_expect (&resp, 200);
    json_t *json = t_json (&resp);
    assert_string_equal (json_string_value (json_array_get (json_object_get (json, "roles"), 0)),
                         "supervisor");
    assert_int_equal (json_array_size (json_object_get (json, "units")), 2);
    assert_int_equal (json_array_size (json_object_get (json, "languages")), 2);
    json_decref (json);
    t_free (&resp);
    //  Same token, next request: the new role.
    assert_int_equal (t_status ("GET", "/api/v1/audit", token, NULL), 200);
    resp = t_call ("GET", "/api/v1/auth/me", token, NULL, NULL);
    json = t_json (&resp);
    assert_string_equal (json_string_value (json_array_get (json_object_get (json, "units"), 1)),
                         "unit-c");
    json_decref (json);
    t_free (&resp);
    //  And back.
    assert_int_equal (t_status ("PATCH", path, s_admin_token, "{\"roles\":[\"agent\"]}"), 200);
    assert_int_equal (t_status ("GET", "/api/v1/audit", token, NULL), 403);
}

//  Another replica's change (here: the session deleted in Redis, as its logout does) reaches this
//  process within GL_INTAKE_SESSION_CACHE_MS (1 s by default): polled with a bound, not timed.
static void
test_session_cache_sees_other_replicas (void **state)
{
    char id[GL_ID_LEN + 1], token[128], key[160];
    t_create_user ("qzreplica", "qzreplica-password", "[\"agent\"]", id);
    assert_int_equal (t_login ("qzreplica", "qzreplica-password", "10.5.1.1", token, NULL, NULL),
                      200);
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", token, NULL), 200);
    gl_redis_t *redis = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 5000);
    assert_non_null (redis);
    snprintf (key, sizeof key, "intake:{intake}:user_sessions:%s", id);
    redisReply *r = gl_redis_cmd (redis, "ZRANGE %s 0 -1", key);
    assert_true (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    snprintf (key, sizeof key, "intake:{intake}:session:%s", r->element[0]->str);
    freeReplyObject (r);
    r = gl_redis_cmd (redis, "DEL %s", key);
    assert_true (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject (r);
    gl_redis_destroy (&redis);
    int status = 200;
    int64_t deadline = gl_mono_ms () + 10000;
    while (status == 200 && gl_mono_ms () < deadline) {
        status = t_status ("GET", "/api/v1/auth/me", token, NULL);
        if (status == 200)
            gl_sleep_ms (100);
    }
    assert_int_equal (status, 401);
}

static void
test_user_validation_and_listing (void **state)
{
    static const struct {
        const char *body;
        int status;
        const char *code;
    } cases[] = {
        { "{\"username\":\"shorty\",\"password\":\"123456789\",\"roles\":[\"agent\"]}", 400,
          "invalid_field" },
        { "{\"username\":\"Upper\",\"password\":\"1234567890\",\"roles\":[\"agent\"]}", 400,
          "invalid_field" },
        { "{\"username\":\"norole\",\"password\":\"1234567890\",\"roles\":[]}", 400,
          "invalid_field" },
        { "{\"username\":\"badrole\",\"password\":\"1234567890\",\"roles\":[\"api_client\"]}",
          400, "invalid_field" },
        { "{\"username\":\"dup\",\"password\":\"1234567890\",\"roles\":[\"agent\",\"agent\"]}",
          400, "invalid_field" },
        { "{\"username\":\"badunit\",\"password\":\"1234567890\",\"roles\":[\"agent\"],"
          "\"units\":[\"Unit A\"]}",
          400, "invalid_field" },
        { "{\"username\":\"badlang\",\"password\":\"1234567890\",\"roles\":[\"agent\"],"
          "\"languages\":[\"english\"]}",
          400, "invalid_field" },
        { "{\"username\":\"nopass\",\"roles\":[\"agent\"]}", 400, "missing_field" },
        { "{\"username\":\"extra\",\"password\":\"1234567890\",\"roles\":[\"agent\"],\"x\":1}",
          400, "unknown_field" },
        { "{\"username\":\"admin\",\"password\":\"1234567890\",\"roles\":[\"agent\"]}", 409,
          "conflict" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        t_resp_t resp = t_call ("POST", "/api/v1/users", s_admin_token, NULL, cases[i].body);
        t_expect (&resp, cases[i].status);
        assert_string_equal (t_error_code (&resp), cases[i].code);
        t_free (&resp);
    }
    //  Unknown ids: 404; an empty update: 400.
    char unknown[GL_ID_LEN + 1], path[128];
    gl_id_new (unknown);
    snprintf (path, sizeof path, "/api/v1/users/%s", unknown);
    assert_int_equal (t_status ("GET", path, s_admin_token, NULL), 404);
    assert_int_equal (t_status ("PATCH", path, s_admin_token, "{\"display_name\":\"x\"}"), 404);
    assert_int_equal (t_status ("PATCH", path, s_admin_token, "{}"), 400);

    //  The list, two at a time, in username order, each user once.
    char seen[32][80];
    size_t count = 0;
    char cursor[512] = "";
    for (int pages = 0; pages < 20; pages++) {
        char url[700];
        snprintf (url, sizeof url, "/api/v1/users?limit=2%s%s", cursor[0] ? "&cursor=" : "",
                  cursor);
        t_resp_t resp = t_call ("GET", url, s_admin_token, NULL, NULL);
        t_expect (&resp, 200);
        json_t *json = t_json (&resp);
        size_t i;
        json_t *item;
        json_array_foreach (json_object_get (json, "items"), i, item) {
            assert_true (count < 32);
            snprintf (seen[count], sizeof seen[0], "%s",
                      json_string_value (json_object_get (item, "username")));
            assert_null (json_object_get (item, "pwhash"));
            if (count > 0)
                assert_true (strcmp (seen[count - 1], seen[count]) < 0);
            count++;
        }
        const char *next = json_string_value (json_object_get (json, "next_cursor"));
        snprintf (cursor, sizeof cursor, "%s", next ? next : "");
        json_decref (json);
        t_free (&resp);
        if (!cursor[0])
            break;
    }
    assert_true (count >= 6);   //  admin and the users made above
    assert_int_equal (t_status ("GET", "/api/v1/users?cursor=bm90LW91cnM", s_admin_token, NULL),
                      400);
}

//  A user's e-mail and phone: validated, shown to the admin, changed by PATCH, and read by
//  notifier over the bus ("intake.user_contact"), with the read audited.
static void
test_user_contact (void **state)
{
    (void) state;
    t_resp_t resp = t_call ("POST", "/api/v1/users", s_admin_token, NULL,
                            "{\"username\":\"reach\",\"password\":\"1234567890\","
                            "\"roles\":[\"protection\"],\"email\":\"not-an-address\"}");
    t_expect (&resp, 400);
    json_t *json = t_json (&resp);
    assert_string_equal (json_string_value (json_object_get (json_object_get (json, "error"),
                                                             "field")),
                         "email");
    json_decref (json);
    t_free (&resp);
    assert_int_equal (t_status ("POST", "/api/v1/users", s_admin_token,
                                "{\"username\":\"reach\",\"password\":\"1234567890\","
                                "\"roles\":[\"protection\"],\"phone\":\"12ab\"}"),
                      400);
    resp = t_call ("POST", "/api/v1/users", s_admin_token, NULL,
                   "{\"username\":\"reach\",\"password\":\"1234567890\","
                   "\"roles\":[\"protection\"],\"languages\":[\"fr\"],"
                   "\"email\":\"duty@example.org\",\"phone\":\"+256700000001\"}");
    t_expect (&resp, 201);
    json = t_json (&resp);
    char id[GL_ID_LEN + 1];
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (json, "id")));
    assert_string_equal (json_string_value (json_object_get (json, "email")), "duty@example.org");
    json_decref (json);
    t_free (&resp);
    char path[128];
    snprintf (path, sizeof path, "/api/v1/users/%s", id);
    assert_int_equal (t_status ("PATCH", path, s_admin_token, "{\"phone\":\"+256700000002\"}"),
                      200);

    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_router_port);
    gl_req_t *client = gl_req_new (endpoint);
    assert_non_null (client);
    gl_reply_t reply = { 0 };
    json_t *body = json_pack ("{s:s, s:s, s:s}", "user_id", id, "purpose", "emergency.alarm",
                              "requester", "notifier");
    //  Without the bus token: 401.
    assert_int_equal (gl_req_call (client, "intake.user_contact", NULL, body, 10000, &reply), 0);
    assert_int_equal (reply.status, 401);
    assert_int_equal (gl_req_set_auth (client, "tok-auth-test"), 0);
    assert_int_equal (gl_req_call (client, "intake.user_contact", NULL, body, 10000, &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_string_equal (json_string_value (json_object_get (reply.body, "email")),
                         "duty@example.org");
    assert_string_equal (json_string_value (json_object_get (reply.body, "phone")),
                         "+256700000002");
    assert_string_equal (json_string_value (json_object_get (reply.body, "language")), "fr");
    assert_false (json_is_true (json_object_get (reply.body, "disabled")));
    json_decref (body);
    //  Unknown user, malformed id, unknown field.
    char other[GL_ID_LEN + 1];
    gl_id_new (other);
    body = json_pack ("{s:s, s:s, s:s}", "user_id", other, "purpose", "x", "requester",
                      "notifier");
    assert_int_equal (gl_req_call (client, "intake.user_contact", NULL, body, 10000, &reply), 0);
    assert_int_equal (reply.status, 404);
    json_decref (body);
    body = json_pack ("{s:s, s:s, s:s}", "user_id", "nope", "purpose", "x", "requester",
                      "notifier");
    assert_int_equal (gl_req_call (client, "intake.user_contact", NULL, body, 10000, &reply), 0);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error_field, "user_id");
    json_decref (body);
    body = json_pack ("{s:s, s:s, s:s, s:s}", "user_id", id, "purpose", "x", "requester",
                      "notifier", "phone", "1");
    assert_int_equal (gl_req_call (client, "intake.user_contact", NULL, body, 10000, &reply), 0);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error_field, "phone");
    json_decref (body);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);
    //  The read is in the audit trail, with the asking service as the actor.
    resp = t_call ("GET", "/api/v1/audit?actor=notifier&record_type=user_contact", s_admin_token,
                   NULL, NULL);
    t_expect (&resp, 200);
    json = t_json (&resp);
    json_t *items = json_object_get (json, "items");
    assert_int_equal (json_array_size (items), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (items, 0),
                                                             "record_id")),
                         id);
    json_decref (json);
    t_free (&resp);
}

static void
test_own_password_change (void **state)
{
    char id[GL_ID_LEN + 1], a[128], b[128];
    t_create_user ("qzchanger", "qzchanger-password", "[\"protection\"]", id);
    assert_int_equal (t_login ("qzchanger", "qzchanger-password", "10.6.0.1", a, NULL, NULL), 200);
    assert_int_equal (t_login ("qzchanger", "qzchanger-password", "10.6.0.1", b, NULL, NULL), 200);
    //  b is in use (and so in the session cache) when the password changes.
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", b, NULL), 200);
    t_resp_t resp = t_call ("POST", "/api/v1/auth/password", a, NULL,
                            "{\"current_password\":\"not-my-password\","
                            "\"new_password\":\"qzchanger-password-2\"}");
    t_expect (&resp, 400);
    json_t *json = t_json (&resp);
    assert_string_equal (
        json_string_value (json_object_get (json_object_get (json, "error"), "field")),
        "current_password");
    json_decref (json);
    t_free (&resp);
    assert_int_equal (t_status ("POST", "/api/v1/auth/password", a,
                                "{\"current_password\":\"qzchanger-password\","
                                "\"new_password\":\"short\"}"),
                      400);
    t_secret ("qzchanger-password-2");
    t_secret ("not-my-password");
    assert_int_equal (t_status ("POST", "/api/v1/auth/password", a,
                                "{\"current_password\":\"qzchanger-password\","
                                "\"new_password\":\"qzchanger-password-2\"}"),
                      200);
    //  This session stays, the other one ends.
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", a, NULL), 200);
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", b, NULL), 401);
    assert_int_equal (t_login ("qzchanger", "qzchanger-password", "10.6.0.1", NULL, NULL, NULL),
                      401);
    assert_int_equal (t_login ("qzchanger", "qzchanger-password-2", "10.6.0.1", NULL, NULL, NULL),
                      200);
}

//  Sessions live in Redis: intake killed and started again, the same token still works.
static void
test_sessions_survive_a_restart (void **state)
{
    char id[GL_ID_LEN + 1], token[128];
    t_create_user ("qzsurvivor", "qzsurvivor-password", "[\"agent\"]", id);
    assert_int_equal (t_login ("qzsurvivor", "qzsurvivor-password", "10.7.0.1", token, NULL, NULL),
                      200);
    kill (s_intake, SIGKILL);
    gl_test_wait (s_intake, 10000);
    //  The dead process's lease on "intake-1" runs out in business time.
    t_clock_set (s_now + 15000);
    s_intake = t_spawn_intake ();
    assert_true (s_intake > 0);
    assert_int_equal (t_wait_ready (), 0);
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", token, NULL), 200);
    assert_int_equal (t_status ("GET", "/api/v1/auth/me", s_admin_token, NULL), 200);
    //  The bootstrap admin is not made twice.
    t_resp_t resp = t_call ("GET", "/api/v1/users?limit=200", s_admin_token, NULL, NULL);
    json_t *json = t_json (&resp);
    size_t i, admins = 0;
    json_t *item;
    json_array_foreach (json_object_get (json, "items"), i, item)
        admins += strcmp (json_string_value (json_object_get (item, "username")), "admin") == 0;
    assert_int_equal (admins, 1);
    json_decref (json);
    t_free (&resp);
}

//  GET /api/v1/audit with its filters.
static json_t *
t_audit (const char *query, const char *token)
{
    char url[1024];
    snprintf (url, sizeof url, "/api/v1/audit%s", query);
    t_resp_t resp = t_call ("GET", url, token, NULL, NULL);
    t_expect (&resp, 200);
    json_t *json = t_json (&resp);
    t_free (&resp);
    return json;
}

static void
test_audit_trail (void **state)
{
    char id[GL_ID_LEN + 1], sup_token[128], query[512];
    int64_t before = s_now;
    t_clock_advance_s (5);
    t_create_user ("qzaudited", "qzaudited-password", "[\"agent\"]", id);
    assert_int_equal (t_login ("qzaudited", "wrong-password-0", "10.8.0.1", NULL, NULL, NULL), 401);
    char path[128];
    snprintf (path, sizeof path, "/api/v1/users/%s", id);
    assert_int_equal (t_status ("PATCH", path, s_admin_token, "{\"roles\":[\"supervisor\"]}"),
                      200);
    assert_int_equal (
        t_login ("qzaudited", "qzaudited-password", "10.8.0.1", sup_token, NULL, NULL), 200);

    //  Everything about this user, newest first.
    snprintf (query, sizeof query, "?record_type=user&record_id=%s", id);
    json_t *json = t_audit (query, sup_token);
    json_t *items = json_object_get (json, "items");
    assert_int_equal (json_array_size (items), 4);
    static const char *const actions[] = { "login", "update", "login_failed", "create" };
    int64_t last_time = INT64_MAX;
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_array_get (items, i);
        assert_string_equal (json_string_value (json_object_get (e, "action")), actions[i]);
        assert_string_equal (json_string_value (json_object_get (e, "record_id")), id);
        assert_true (gl_id_valid (json_string_value (json_object_get (e, "request_id"))));
        int64_t t = json_integer_value (json_object_get (e, "time_ms"));
        assert_true (t <= last_time && t >= before);
        last_time = t;
    }
    json_t *update = json_array_get (items, 1);
    assert_string_equal (json_string_value (json_object_get (update, "actor")), s_admin_id);
    assert_string_equal (json_string_value (json_array_get (json_object_get (update, "roles"), 0)),
                         "admin");
    assert_string_equal (json_string_value (json_object_get (update, "detail")), "roles_changed");
    json_t *failed = json_array_get (items, 2);
    assert_string_equal (json_string_value (json_object_get (failed, "detail")),
                         "wrong_password");
    json_decref (json);

    //  By actor and action; by time range (nothing before this test's start matches a later
    //  range); paging one at a time walks the same entries.
    snprintf (query, sizeof query, "?actor=%s&action=update&record_id=%s", s_admin_id, id);
    json = t_audit (query, s_admin_token);
    assert_int_equal (json_array_size (json_object_get (json, "items")), 1);
    json_decref (json);
    snprintf (query, sizeof query, "?record_id=%s&from=%" PRId64 "&to=%" PRId64, id,
              s_now + 1, s_now + 1000);
    json = t_audit (query, s_admin_token);
    assert_int_equal (json_array_size (json_object_get (json, "items")), 0);
    json_decref (json);
    snprintf (query, sizeof query, "?record_id=%s&from=%" PRId64 "&to=%" PRId64, id, before,
              s_now);
    json = t_audit (query, s_admin_token);
    assert_int_equal (json_array_size (json_object_get (json, "items")), 4);
    json_decref (json);
    char cursor[256] = "";
    int pages = 0;
    do {
        snprintf (query, sizeof query, "?record_id=%s&limit=1%s%s", id,
                  cursor[0] ? "&cursor=" : "", cursor);
        json = t_audit (query, s_admin_token);
        json_t *e = json_array_get (json_object_get (json, "items"), 0);
        if (e)
            assert_string_equal (json_string_value (json_object_get (e, "action")),
                                 actions[pages]);
        pages += e ? 1 : 0;
        const char *next = json_string_value (json_object_get (json, "next_cursor"));
        snprintf (cursor, sizeof cursor, "%s", next ? next : "");
        json_decref (json);
    } while (cursor[0] && pages < 10);
    assert_int_equal (pages, 4);

    //  Reading the trail is on the trail.
    snprintf (query, sizeof query, "?record_type=audit&actor=%s&limit=1", s_admin_id);
    json = t_audit (query, s_admin_token);
    assert_string_equal (
        json_string_value (json_object_get (json_array_get (json_object_get (json, "items"), 0),
                                            "action")),
        "read");
    json_decref (json);

    //  Who may read it, and bad queries.
    char agent_token[128], agent_id[GL_ID_LEN + 1];
    t_create_user ("qzplainagent", "qzplainagent-password", "[\"agent\"]", agent_id);
    assert_int_equal (t_login ("qzplainagent", "qzplainagent-password", "10.8.0.2",
                               agent_token, NULL, NULL),
                      200);
    assert_int_equal (t_status ("GET", "/api/v1/audit", agent_token, NULL), 403);
    assert_int_equal (t_status ("GET", "/api/v1/audit", NULL, NULL), 401);
    assert_int_equal (t_status ("GET", "/api/v1/audit?from=abc", s_admin_token, NULL), 400);
    assert_int_equal (t_status ("GET", "/api/v1/audit?from=10&to=5", s_admin_token, NULL), 400);
    assert_int_equal (t_status ("GET", "/api/v1/audit?actor=Bob%20Smith", s_admin_token, NULL),
                      400);
    assert_int_equal (t_status ("GET", "/api/v1/audit?colour=red", s_admin_token, NULL), 400);
    assert_int_equal (t_status ("GET", "/api/v1/audit?cursor=bm9wZQ", s_admin_token, NULL), 400);
}

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
    json_array_append_new (c->events, json_pack ("{s:s, s:O}", "type", ev->type, "data",
                                                 ev->data));
    gl_event_destroy (&ev);
    return 0;
}

static void
test_events_carry_ids_and_codes (void **state)
{
    gl_redis_t *redis = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 5000);
    t_events_t c = { json_array () };
    assert_true (gl_log_read (redis, "intake-1", 1, 0, 10000, t_collect, &c, NULL) > 0);
    gl_redis_destroy (&redis);
    size_t counts[5] = { 0 };
    static const char *const types[]
        = { "user.created", "user.updated", "user.disabled", "client.created", "client.revoked" };
    size_t i;
    json_t *ev;
    json_array_foreach (c.events, i, ev) {
        const char *type = json_string_value (json_object_get (ev, "type"));
        for (size_t k = 0; k < 5; k++)
            if (strcmp (type, types[k]) == 0) {
                counts[k]++;
                char *text = json_dumps (json_object_get (ev, "data"), JSON_COMPACT);
                //  No usernames, display names, passwords or tokens.
                assert_null (strstr (text, "qz"));
                assert_null (strstr (text, "Test "));
                assert_null (strstr (text, "gls_"));
                assert_null (strstr (text, "glc_"));
                for (int n = 0; n < s_secretc; n++)
                    assert_null (strstr (text, s_secrets[n]));
                free (text);
            }
    }
    //  The bootstrap admin and the users made by this test; updates, one disable, one client
    //  made and revoked (once, though revoked twice).
    assert_true (counts[0] >= 10);
    assert_true (counts[1] >= 5);
    assert_int_equal (counts[2], 1);
    assert_int_equal (counts[3], 1);
    assert_int_equal (counts[4], 1);
    //  The first user.created is the bootstrap admin: ids and codes only.
    json_array_foreach (c.events, i, ev)
        if (strcmp (json_string_value (json_object_get (ev, "type")), "user.created") == 0) {
            json_t *data = json_object_get (ev, "data");
            assert_string_equal (json_string_value (json_object_get (data, "user_id")),
                                 s_admin_id);
            assert_string_equal (
                json_string_value (json_array_get (json_object_get (data, "roles"), 0)), "admin");
            break;
        }
    json_decref (c.events);
}

//  Last: intake stops cleanly, and its log (debug level, the whole run, both processes) holds
//  none of the secrets or usernames.
static void
test_no_secrets_in_the_log (void **state)
{
    const char *text = t_stop_cleanly ();
    assert_non_null (strstr (text, "intake: ready"));
    for (int i = 0; i < s_secretc; i++) {
        if (strstr (text, s_secrets[i]))
            fprintf (stderr, "secret %d found in the log\n", i);
        assert_null (strstr (text, s_secrets[i]));
    }
    //  Every test username starts with "qz" (which no id, code or message holds).
    assert_null (strstr (text, "qz"));
    assert_null (strstr (text, "gls_"));
    assert_null (strstr (text, "glc_"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_login_logout),
        cmocka_unit_test (test_wrong_password_and_lockout),
        cmocka_unit_test (test_address_rate_limit),
        cmocka_unit_test (test_session_timeouts),
        cmocka_unit_test (test_csrf_for_cookies_only),
        cmocka_unit_test (test_api_client),
        cmocka_unit_test (test_disabled_user_refused_at_once),
        cmocka_unit_test (test_role_change_takes_effect),
        cmocka_unit_test (test_session_cache_sees_other_replicas),
        cmocka_unit_test (test_user_validation_and_listing),
        cmocka_unit_test (test_user_contact),
        cmocka_unit_test (test_own_password_change),
        cmocka_unit_test (test_sessions_survive_a_restart),
        cmocka_unit_test (test_audit_trail),
        cmocka_unit_test (test_events_carry_ids_and_codes),
        cmocka_unit_test (test_no_secrets_in_the_log),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
