/*  The role matrix: every route of gl-intake against every kind of caller, over real HTTP.

    The routes come from `gl-intake --routes` ("METHOD PATTERN role,role" per line), so a route
    added by any concern is walked with no edit here. The callers: nobody (no credentials), one
    user of each role (agent, supervisor, protection, admin) and an API client. Each request
    fills the path parameters with a well-formed id that names nothing, and sends {} to methods
    that take a body. Then:
      - a public route never answers 401 or 403;
      - any other route answers 401 without credentials;
      - 403 to a caller none of whose roles the route allows;
      - anything but 401 and 403 to a caller it allows.
    Besides, no answer is a 500 or a dropped connection.

    A request may end the caller's own session (logout) or otherwise spend a credential; before
    each request the caller's credential is checked and renewed when it stopped working.

    ctest: timeout=300 */
#include "gl/gl_clock.h"
#include "gl/gl_id.h"
#include "gl_testenv.h"
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define T_MAX_RESPONSE  (1 << 20)
#define T_WAIT_MS       60000
#define T_ROUTES_MAX    512
#define T_PASSWORD      "matrix-password-1"

//  --------------------------------------------------------------------------------------------
//  A tiny HTTP/1.1 client: one request per connection; status and body.

typedef struct {
    int status;
    char *raw;
    const char *body;
    size_t body_len;
} t_resp_t;

static int s_http_port;

static t_resp_t
t_call (const char *method, const char *path, const char *token, const char *body)
{
    t_resp_t resp = { 0 };
    resp.raw = calloc (1, T_MAX_RESPONSE + 1);
    assert_non_null (resp.raw);
    resp.body = resp.raw;
    char request[4096];
    int n = snprintf (request, sizeof request,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (token)
        n += snprintf (request + n, sizeof request - (size_t) n,
                       "Authorization: Bearer %s\r\n", token);
    if (body)
        n += snprintf (request + n, sizeof request - (size_t) n,
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen (body), body);
    else
        n += snprintf (request + n, sizeof request - (size_t) n, "\r\n");
    assert_true (n > 0 && (size_t) n < sizeof request);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) s_http_port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
        close (fd);
        return resp;
    }
    const char *p = request;
    size_t left = (size_t) n;
    while (left > 0) {
        ssize_t sent = send (fd, p, left, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            break;
        p += sent;
        left -= (size_t) sent;
    }
    size_t len = 0;
    while (len < T_MAX_RESPONSE) {
        ssize_t got = recv (fd, resp.raw + len, T_MAX_RESPONSE - len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t) got;
        //  A stream (server-sent events) never ends by itself: its status line and headers
        //  are the answer.
        resp.raw[len] = 0;
        char *head_end = strstr (resp.raw, "\r\n\r\n");
        bool stream = false;
        if (head_end) {
            *head_end = 0;
            stream = strstr (resp.raw, "text/event-stream") != NULL;
            *head_end = '\r';
        }
        if (stream)
            break;
    }
    close (fd);
    resp.raw[len] = 0;
    int status = 0;
    if (sscanf (resp.raw, "HTTP/1.%*d %d", &status) == 1)
        resp.status = status;
    char *end = strstr (resp.raw, "\r\n\r\n");
    resp.body = end ? end + 4 : resp.raw + len;
    resp.body_len = len - (size_t) (resp.body - resp.raw);
    return resp;
}

static void
t_free (t_resp_t *resp)
{
    free (resp->raw);
    resp->raw = NULL;
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

//  --------------------------------------------------------------------------------------------
//  The service and the callers

static gl_testredis_t *s_redis;
static pid_t s_intake = -1;
static char s_log_path[256];
static char s_env[16][256];

typedef struct {
    const char *name;           //  as the report prints it
    const char *role;           //  the role code, NULL for nobody
    const char *username;       //  users only
    char token[128];
} t_identity_t;

static t_identity_t s_ids[] = {
    { "none", NULL, NULL, "" },
    { "agent", "agent", "qzm-agent", "" },
    { "supervisor", "supervisor", "qzm-supervisor", "" },
    { "protection", "protection", "qzm-protection", "" },
    { "admin", "admin", "qzm-admin", "" },
    { "api_client", "api_client", NULL, "" },
};
#define T_IDENTITIES (sizeof s_ids / sizeof s_ids[0])

static char s_root_token[128];          //  the bootstrap admin: makes users and clients

static int
t_login (const char *username, const char *password, char *token)
{
    char body[256];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", username, password);
    t_resp_t resp = t_call ("POST", "/api/v1/auth/login", NULL, body);
    int status = resp.status;
    if (status == 200) {
        json_t *json = t_json (&resp);
        snprintf (token, 128, "%s", json_string_value (json_object_get (json, "token")));
        json_decref (json);
    }
    else
        fprintf (stderr, "login of %s: %s\n", username, resp.raw);
    t_free (&resp);
    return status;
}

//  A fresh credential for identity i: log the user in, or make a new API client.
static void
t_renew (t_identity_t *id)
{
    if (!id->role)
        return;
    if (id->username) {
        assert_int_equal (t_login (id->username, T_PASSWORD, id->token), 200);
        return;
    }
    t_resp_t resp = t_call ("POST", "/api/v1/clients", s_root_token,
                            "{\"name\":\"matrix client\",\"roles\":[\"api_client\"]}");
    assert_int_equal (resp.status, 201);
    json_t *json = t_json (&resp);
    snprintf (id->token, sizeof id->token, "%s",
              json_string_value (json_object_get (json, "token")));
    json_decref (json);
    t_free (&resp);
}

//  Renew the credential when the last request spent it (a logout, say).
static void
t_ensure (t_identity_t *id)
{
    if (!id->role)
        return;
    t_resp_t resp = t_call ("GET", "/api/v1/auth/me", id->token, NULL);
    int status = resp.status;
    t_free (&resp);
    if (status != 200)
        t_renew (id);
}

static int
t_setup (void **state)
{
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    s_http_port = gl_test_free_port ();
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-intake-roles-%d.log", (int) getpid ());
    unlink (s_log_path);
    int n = 0;
    snprintf (s_env[n++], 256, "GL_REDIS_HOST=127.0.0.1");
    snprintf (s_env[n++], 256, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (s_env[n++], 256, "GL_HTTP_PORT=%d", s_http_port);
    snprintf (s_env[n++], 256, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    snprintf (s_env[n++], 256, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (s_env[n++], 256, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (s_env[n++], 256, "GL_SOURCE=intake-1");
    snprintf (s_env[n++], 256, "GL_BUS_TOKENS=tok-roles-test");
    snprintf (s_env[n++], 256, "GL_INTAKE_BOOTSTRAP_ADMIN=admin:adminpass");
    snprintf (s_env[n++], 256, "GL_INTAKE_ARGON2_OPSLIMIT=1");
    snprintf (s_env[n++], 256, "GL_INTAKE_ARGON2_MEMLIMIT=8192");
    char *env[17];
    for (int i = 0; i < n; i++)
        env[i] = s_env[i];
    env[n] = NULL;
    char *argv[] = { "gl-intake", NULL };
    s_intake = gl_test_spawn (gl_test_build_path ("services/intake/gl-intake"), argv, env,
                              s_log_path);
    if (s_intake < 0)
        return -1;
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    int status = 0;
    while (status != 200 && gl_mono_ms () < deadline) {
        t_resp_t resp = t_call ("GET", "/ready", NULL, NULL);
        status = resp.status;
        t_free (&resp);
        if (status != 200)
            gl_sleep_ms (100);
    }
    if (status != 200) {
        fprintf (stderr, "gl-intake did not become ready; its log is %s\n", s_log_path);
        return -1;
    }
    if (t_login ("admin", "adminpass", s_root_token) != 200)
        return -1;
    for (size_t i = 0; i < T_IDENTITIES; i++) {
        if (!s_ids[i].username)
            continue;
        char body[512];
        snprintf (body, sizeof body,
                  "{\"username\":\"%s\",\"password\":\"%s\",\"roles\":[\"%s\"],"
                  "\"units\":[\"unit-a\"],\"languages\":[\"ar\"]}",
                  s_ids[i].username, T_PASSWORD, s_ids[i].role);
        t_resp_t resp = t_call ("POST", "/api/v1/users", s_root_token, body);
        status = resp.status;
        t_free (&resp);
        if (status != 201)
            return -1;
    }
    return 0;
}

static int
t_teardown (void **state)
{
    if (s_intake > 0)
        gl_test_stop (s_intake, 10000);
    gl_testredis_destroy (&s_redis);
    unlink (s_log_path);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  The matrix

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


typedef struct {
    char method[16];
    char pattern[512];
    char roles[160];
} t_route_t;

//  The route table, from gl-intake --routes.
static size_t
t_routes (t_route_t *routes, size_t max)
{
    char out_path[300];
    snprintf (out_path, sizeof out_path, "%s.routes", s_log_path);
    unlink (out_path);
    char *argv[] = { "gl-intake", "--routes", NULL };
    pid_t pid = gl_test_spawn (gl_test_build_path ("services/intake/gl-intake"), argv, NULL,
                               out_path);
    assert_true (pid > 0);
    int status = gl_test_wait (pid, 30000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    FILE *f = fopen (out_path, "r");
    assert_non_null (f);
    char line[1024];
    size_t n = 0;
    while (fgets (line, sizeof line, f)) {
        assert_true (n < max);
        t_route_t *r = &routes[n++];
        assert_int_equal (sscanf (line, "%15s %511s %159s", r->method, r->pattern, r->roles), 3);
    }
    fclose (f);
    unlink (out_path);
    return n;
}

//  The pattern with every {name} and {name*} replaced by an id that names nothing.
static void
t_fill (const char *pattern, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = pattern; *p && n + 1 < cap;) {
        if (*p == '{') {
            const char *close = strchr (p, '}');
            assert_non_null (close);
            char id[GL_ID_LEN + 1];
            gl_id_new (id);
            n += (size_t) snprintf (out + n, cap - n, "%s", id);
            p = close + 1;
        }
        else
            out[n++] = *p++;
    }
    out[n] = 0;
}

//  True when roles (comma-separated codes) holds code.
static bool
t_has_role (const char *roles, const char *code)
{
    size_t len = strlen (code);
    for (const char *p = roles; p && *p;) {
        const char *comma = strchr (p, ',');
        size_t n = comma ? (size_t) (comma - p) : strlen (p);
        if (n == len && strncmp (p, code, len) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

static void
test_role_matrix (void **state)
{
    static t_route_t routes[T_ROUTES_MAX];
    size_t count = t_routes (routes, T_ROUTES_MAX);
    assert_true (count > 0);
    for (size_t i = 0; i < T_IDENTITIES; i++)
        t_renew (&s_ids[i]);

    size_t requests = 0, public_routes = 0, allowed = 0, refused_401 = 0, refused_403 = 0;
    int failures = 0;
    for (size_t r = 0; r < count; r++) {
        const t_route_t *route = &routes[r];
        bool is_public = t_has_role (route->roles, "public");
        public_routes += is_public;
        bool body = strcmp (route->method, "POST") == 0 || strcmp (route->method, "PUT") == 0
                    || strcmp (route->method, "PATCH") == 0;
        for (size_t i = 0; i < T_IDENTITIES; i++) {
            t_identity_t *id = &s_ids[i];
            t_ensure (id);
            char path[1024];
            t_fill (route->pattern, path, sizeof path);
            t_resp_t resp = t_call (route->method, path, id->role ? id->token : NULL,
                                    body ? "{}" : NULL);
            requests++;
            int status = resp.status;
            const char *why = NULL;
            int expect = 0;             //  0: anything but 401/403
            if (is_public)
                expect = 0;
            else if (!id->role)
                expect = 401;
            else if (!t_has_role (route->roles, id->role))
                expect = 403;
            if (status == 0 || status == 500)
                why = "no answer or an internal error";
            else if (expect == 0 && (status == 401 || status == 403))
                why = is_public ? "a public route refused" : "a role in the route's set refused";
            else if (expect != 0 && status != expect)
                why = expect == 401 ? "no credentials were not refused with 401"
                                    : "a role outside the route's set was not refused with 403";
            if (why) {
                fprintf (stderr, "MATRIX FAIL %s %s [%s] as %s: %d (%s): %.300s\n",
                         route->method, route->pattern, route->roles, id->name, status, why,
                         resp.body);
                failures++;
            }
            allowed += expect == 0;
            refused_401 += status == 401;
            refused_403 += status == 403;
            t_free (&resp);
        }
    }
    printf ("role matrix: %zu routes (%zu public) x %zu identities = %zu requests; "
            "%zu allowed by role, %zu answered 401, %zu answered 403; %d failures\n",
            count, public_routes, T_IDENTITIES, requests, allowed, refused_401, refused_403,
            failures);
    assert_int_equal (failures, 0);
    assert_int_equal (requests, count * T_IDENTITIES);
}

//  The matrix's premise: each credential is what the matrix takes it for.
static void
test_identities_are_what_they_say (void **state)
{
    for (size_t i = 0; i < T_IDENTITIES; i++) {
        t_identity_t *id = &s_ids[i];
        t_ensure (id);
        t_resp_t resp = t_call ("GET", "/api/v1/auth/me", id->role ? id->token : NULL, NULL);
        if (!id->role) {
            assert_int_equal (resp.status, 401);
            t_free (&resp);
            continue;
        }
        assert_int_equal (resp.status, 200);
        json_t *json = t_json (&resp);
        json_t *roles = json_object_get (json, "roles");
        assert_int_equal (json_array_size (roles), 1);
        assert_string_equal (json_string_value (json_array_get (roles, 0)), id->role);
        json_decref (json);
        t_free (&resp);
    }
}

//  Last: after the whole matrix, intake stops cleanly.
static void
test_clean_stop (void **state)
{
    t_stop_cleanly ();
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_role_matrix),
        cmocka_unit_test (test_identities_are_what_they_say),
        cmocka_unit_test (test_clean_stop),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
