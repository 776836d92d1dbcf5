/*  intake over real HTTP on loopback, with a small blocking client on plain sockets.

    Group 1, the service: gl-intake as a real process against a private redis-server, on free
    ports: /health and /ready (also while Redis is down and after it is back), the OpenAPI
    document against the route table (`gl-intake --routes`), the error shape for 404, 405, 413,
    415, malformed JSON, unknown fields and 401, static files and path traversal, the
    service.started event in gl:log:{intake-1}, log.range over the bus, nothing personal in the
    access log, and SIGTERM -> exit 0 with service.stopping.

    Group 2, the framework (http.c, compiled into this test): a real evhttp server on loopback
    with test routes and a test authentication hook (roles from a header), for what the
    service's own routes do not reach yet: route precedence, path parameters, roles,
    validation helpers, pagination, handlers that fail, and programmer errors that abort.

    ctest: timeout=180 */
#undef NDEBUG                               //  http.c's asserts on programmer errors, live here
#include "../../services/intake/http.c"
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_logrange.h"
#include "gl/gl_req.h"
#include "gl_testenv.h"
#include <arpa/inet.h>
#include <errno.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/wait.h>
#include <cmocka.h>

#define T_MAX_RESPONSE  (1 << 20)
#define T_WAIT_MS       60000       //  bound on waits for a state change (ctest bounds the rest)
#define T_TOKEN         "tok-intake-test"

#include "gl_testhttp.h"
typedef gl_test_resp_t t_resp_t;
#define t_connect gl_test_http_connect
#define t_free gl_test_http_free
#define t_header gl_test_http_header

//  --------------------------------------------------------------------------------------------
//  A tiny HTTP/1.1 client: one request per connection, read until the server closes.


static void
t_send_all (int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;         //  the server refused and closed: its answer is still readable
        data += n;
        len -= (size_t) n;
    }
}

static t_resp_t
t_raw (int port, const char *request, size_t len)
{
    t_resp_t resp = { 0 };
    resp.raw = calloc (1, T_MAX_RESPONSE + 1);
    assert_non_null (resp.raw);
    resp.body = resp.raw;
    int fd = t_connect (port);
    if (fd < 0)
        return resp;
    t_send_all (fd, request, len);
    while (resp.raw_len < T_MAX_RESPONSE) {
        ssize_t n = recv (fd, resp.raw + resp.raw_len, T_MAX_RESPONSE - resp.raw_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        resp.raw_len += (size_t) n;
    }
    close (fd);
    assert_true (resp.raw_len < T_MAX_RESPONSE);
    resp.raw[resp.raw_len] = 0;
    int status = 0;
    if (sscanf (resp.raw, "HTTP/1.%*d %d", &status) == 1)
        resp.status = status;
    char *end = strstr (resp.raw, "\r\n\r\n");
    resp.body = end ? end + 4 : resp.raw + resp.raw_len;
    resp.body_len = resp.raw_len - (size_t) (resp.body - resp.raw);
    return resp;
}

//  headers: extra lines, each ending in \r\n (may be NULL). body may be NULL.
static t_resp_t
t_http (int port, const char *method, const char *path, const char *headers, const char *body,
        size_t body_len)
{
    size_t cap = 4096 + body_len;
    char *request = malloc (cap);
    assert_non_null (request);
    int n = snprintf (request, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s",
                      method, path, headers ? headers : "");
    if (body)
        n += snprintf (request + n, cap - (size_t) n, "Content-Length: %zu\r\n", body_len);
    n += snprintf (request + n, cap - (size_t) n, "\r\n");
    if (body) {
        memcpy (request + n, body, body_len);
        n += (int) body_len;
    }
    t_resp_t resp = t_raw (port, request, (size_t) n);
    free (request);
    return resp;
}

static t_resp_t
t_get (int port, const char *path)
{
    return t_http (port, "GET", path, NULL, NULL, 0);
}

static t_resp_t
t_post_json (int port, const char *path, const char *json)
{
    return t_http (port, "POST", path, "Content-Type: application/json\r\n", json, strlen (json));
}


//  The value of a response header (case-insensitive name), or NULL. Static buffer.

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

//  The one error shape, exactly: {"error":{"code","message","field"}}, plus the headers every
//  API answer carries.
static void
t_assert_error (const t_resp_t *resp, int status, const char *code, const char *field)
{
    if (resp->status != status)
        fprintf (stderr, "expected %d %s, got: %s\n", status, code, resp->raw);
    assert_int_equal (resp->status, status);
    assert_string_equal (t_header (resp, "Content-Type"), "application/json");
    assert_string_equal (t_header (resp, "Cache-Control"), "no-store");
    assert_string_equal (t_header (resp, "X-Content-Type-Options"), "nosniff");
    assert_non_null (t_header (resp, "Content-Security-Policy"));
    assert_true (gl_id_valid (t_header (resp, "X-Request-Id")));
    json_t *json = t_json (resp);
    assert_int_equal (json_object_size (json), 1);
    json_t *error = json_object_get (json, "error");
    assert_true (json_is_object (error));
    assert_int_equal (json_object_size (error), 3);
    assert_string_equal (json_string_value (json_object_get (error, "code")), code);
    assert_true (json_string_length (json_object_get (error, "message")) > 0);
    json_t *f = json_object_get (error, "field");
    if (field)
        assert_string_equal (json_string_value (f), field);
    else
        assert_true (json_is_null (f));
    json_decref (json);
}

static const char *
t_error_message (const t_resp_t *resp)
{
    static char message[256];
    json_t *json = t_json (resp);
    snprintf (message, sizeof message, "%s",
              json_string_value (json_object_get (json_object_get (json, "error"), "message")));
    json_decref (json);
    return message;
}

//  Poll port/path until it answers status; returns the status it last answered.
static int
t_wait_status (int port, const char *path, int status)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    int last = 0;
    while (gl_mono_ms () < deadline) {
        t_resp_t resp = t_get (port, path);
        last = resp.status;
        t_free (&resp);
        if (last == status)
            break;
        gl_sleep_ms (100);
    }
    return last;
}

//  --------------------------------------------------------------------------------------------
//  Group 1: the service as a process

static gl_testredis_t *s_redis;
static pid_t s_intake = -1;
static int s_http_port, s_health_port, s_router_port, s_pub_port;
static char s_log_path[256];
static char s_env[16][256];

static int
t_service_setup (void **state)
{
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    s_http_port = gl_test_free_port ();
    s_health_port = gl_test_free_port ();
    s_router_port = gl_test_free_port ();
    s_pub_port = gl_test_free_port ();
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-intake-%d.log", (int) getpid ());
    unlink (s_log_path);
    int n = 0;
    snprintf (s_env[n++], 256, "GL_REDIS_HOST=127.0.0.1");
    snprintf (s_env[n++], 256, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (s_env[n++], 256, "GL_HTTP_PORT=%d", s_http_port);
    snprintf (s_env[n++], 256, "GL_HEALTH_PORT=%d", s_health_port);
    snprintf (s_env[n++], 256, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", s_pub_port);
    snprintf (s_env[n++], 256, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", s_router_port);
    snprintf (s_env[n++], 256, "GL_SERVICE=intake");
    snprintf (s_env[n++], 256, "GL_SOURCE=intake-1");
    snprintf (s_env[n++], 256, "GL_BUS_TOKENS=%s", T_TOKEN);
    snprintf (s_env[n++], 256, "GL_LOG_LEVEL=debug");
    char *env[17];
    for (int i = 0; i < n; i++)
        env[i] = s_env[i];
    env[n] = NULL;
    char *argv[] = { "gl-intake", NULL };
    s_intake = gl_test_spawn (gl_test_build_path ("services/intake/gl-intake"), argv, env,
                              s_log_path);
    if (s_intake < 0)
        return -1;
    if (t_wait_status (s_http_port, "/ready", 200) != 200) {
        fprintf (stderr, "gl-intake did not become ready; its log is %s\n", s_log_path);
        return -1;
    }
    return 0;
}

static int
t_service_teardown (void **state)
{
    if (s_intake > 0)
        gl_test_stop (s_intake, 10000);
    gl_testredis_destroy (&s_redis);
    unlink (s_log_path);
    return 0;
}

static void
test_health_and_ready (void **state)
{
    t_resp_t resp = t_get (s_http_port, "/health");
    assert_int_equal (resp.status, 200);
    assert_string_equal (t_header (&resp, "Cache-Control"), "no-store");
    assert_string_equal (t_header (&resp, "Referrer-Policy"), "no-referrer");
    assert_non_null (strstr (t_header (&resp, "Content-Security-Policy"), "default-src 'self'"));
    json_t *json = t_json (&resp);
    assert_string_equal (json_string_value (json_object_get (json, "status")), "ok");
    assert_string_equal (json_string_value (json_object_get (json, "service")), "intake");
    assert_string_equal (json_string_value (json_object_get (json, "instance")), "intake-1");
    json_decref (json);
    t_free (&resp);

    resp = t_get (s_http_port, "/ready");
    assert_int_equal (resp.status, 200);
    json = t_json (&resp);
    assert_string_equal (json_string_value (json_object_get (json, "status")), "ready");
    json_decref (json);
    t_free (&resp);

    //  HEAD: the headers of GET, no body.
    resp = t_http (s_http_port, "HEAD", "/health", NULL, NULL, 0);
    assert_int_equal (resp.status, 200);
    assert_non_null (t_header (&resp, "Content-Length"));
    assert_int_equal (resp.body_len, 0);
    t_free (&resp);

    //  The health port says the same, and serves the metrics the API counted.
    resp = t_get (s_health_port, "/ready");
    assert_int_equal (resp.status, 200);
    t_free (&resp);
    resp = t_get (s_health_port, "/metrics");
    assert_int_equal (resp.status, 200);
    assert_non_null (strstr (resp.body, "greenline_intake_http_requests_total{route=\"/health\","
                                        "method=\"GET\",class=\"2xx\"}"));
    assert_non_null (strstr (resp.body, "greenline_intake_http_request_seconds_bucket{route="
                                        "\"/health\",method=\"GET\""));
    t_free (&resp);
    //  /metrics is not on the API port.
    resp = t_get (s_http_port, "/metrics");
    t_assert_error (&resp, 404, "not_found", NULL);
    t_free (&resp);
}

//  Every route of the table is in the document with the same roles, and every operation of the
//  document is a route.
static void
test_openapi_matches_routes (void **state)
{
    t_resp_t resp = t_get (s_http_port, "/api/v1/openapi.json");
    assert_int_equal (resp.status, 200);
    json_t *doc = t_json (&resp);
    t_free (&resp);
    assert_string_equal (json_string_value (json_object_get (doc, "openapi")), "3.0.3");
    json_t *paths = json_object_get (doc, "paths");
    assert_true (json_is_object (paths));

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
    char line[512];
    size_t routes = 0;
    while (fgets (line, sizeof line, f)) {
        char method[16], pattern[256], roles[128];
        assert_int_equal (sscanf (line, "%15s %255s %127s", method, pattern, roles), 3);
        //  {name*} is written {name} in OpenAPI.
        char *star = strstr (pattern, "*}");
        if (star)
            memmove (star, star + 1, strlen (star + 1) + 1);
        for (char *p = method; *p; p++)
            *p = (char) (*p - 'A' + 'a');
        json_t *op = json_object_get (json_object_get (paths, pattern), method);
        if (!op)
            fprintf (stderr, "route %s %s is not in docs/api.md\n", method, pattern);
        assert_non_null (op);
        char doc_roles[128] = "";
        size_t i, n = 0;
        json_t *role;
        json_array_foreach (json_object_get (op, "x-roles"), i, role)
            n += (size_t) snprintf (doc_roles + n, sizeof doc_roles - n, "%s%s", i ? "," : "",
                                    json_string_value (role));
        if (strcmp (doc_roles, roles) != 0)
            fprintf (stderr, "%s %s: roles %s in the code, %s in docs/api.md\n", method, pattern,
                     roles, doc_roles);
        assert_string_equal (doc_roles, roles);
        assert_true (json_object_size (json_object_get (op, "responses")) > 0);
        routes++;
    }
    fclose (f);
    unlink (out_path);
    size_t operations = 0;
    const char *path;
    json_t *item;
    json_object_foreach (paths, path, item) {
        const char *method;
        json_t *op;
        json_object_foreach (item, method, op)
            if (strcmp (method, "parameters") != 0 && strcmp (method, "summary") != 0
                && strcmp (method, "description") != 0)
                operations++;
    }
    //  Every route was found in the document; equal counts mean nothing else is documented.
    if (operations != routes)
        fprintf (stderr, "docs/api.md documents %zu operations, the route table has %zu\n",
                 operations, routes);
    assert_true (routes >= 7);
    assert_int_equal (operations, routes);
    json_decref (doc);
}

static void
test_not_found_and_method (void **state)
{
    t_resp_t resp = t_get (s_http_port, "/api/v1/no-such-thing");
    t_assert_error (&resp, 404, "not_found", NULL);
    t_free (&resp);

    resp = t_http (s_http_port, "DELETE", "/health", NULL, NULL, 0);
    t_assert_error (&resp, 405, "method_not_allowed", NULL);
    assert_string_equal (t_header (&resp, "Allow"), "GET, HEAD");
    t_free (&resp);

    resp = t_http (s_http_port, "PUT", "/api/v1/console/errors", "Content-Type: application/json\r\n",
                   "{}", 2);
    t_assert_error (&resp, 405, "method_not_allowed", NULL);
    assert_string_equal (t_header (&resp, "Allow"), "POST");
    t_free (&resp);

    resp = t_http (s_http_port, "OPTIONS", "/health", NULL, NULL, 0);
    t_assert_error (&resp, 405, "method_not_allowed", NULL);
    assert_string_equal (t_header (&resp, "Allow"), "GET, HEAD");
    t_free (&resp);
}

static void
test_body_limits_and_parsing (void **state)
{
    //  Just over GL_HTTP_MAX_BODY (64 KiB): our 413.
    size_t big = 65536 + 100;
    char *body = malloc (big);
    assert_non_null (body);
    memset (body, ' ', big);
    body[0] = '{';
    body[big - 1] = '}';
    t_resp_t resp = t_http (s_http_port, "POST", "/api/v1/console/errors",
                            "Content-Type: application/json\r\n", body, big);
    t_assert_error (&resp, 413, "payload_too_large", NULL);
    t_free (&resp);
    free (body);

    //  Far over the hard cap: libevent refuses it (its own page), after reading it.
    big = 3 << 20;
    body = calloc (1, big);
    assert_non_null (body);
    resp = t_http (s_http_port, "POST", "/api/v1/console/errors",
                   "Content-Type: application/json\r\n", body, big);
    assert_int_equal (resp.status, 413);
    t_free (&resp);
    free (body);

    resp = t_post_json (s_http_port, "/api/v1/console/errors", "{\"kind\":\n  \"script\",,}");
    t_assert_error (&resp, 400, "invalid_json", NULL);
    assert_non_null (strstr (t_error_message (&resp), "line 2, column"));
    t_free (&resp);

    resp = t_post_json (s_http_port, "/api/v1/console/errors",
                        "{\"kind\":\"script\",\"kind\":\"api\",\"view\":\"agent\"}");
    t_assert_error (&resp, 400, "invalid_json", NULL);
    assert_non_null (strstr (t_error_message (&resp), "duplicate"));
    t_free (&resp);

    char deep[512] = "";
    for (int i = 0; i < 40; i++)
        strcat (deep, "[");
    resp = t_post_json (s_http_port, "/api/v1/console/errors", deep);
    t_assert_error (&resp, 400, "invalid_json", NULL);
    assert_non_null (strstr (t_error_message (&resp), "nested deeper"));
    t_free (&resp);

    resp = t_post_json (s_http_port, "/api/v1/console/errors", "[\"script\"]");
    t_assert_error (&resp, 400, "invalid_json", NULL);
    t_free (&resp);

    resp = t_post_json (s_http_port, "/api/v1/console/errors",
                        "{\"kind\":\"script\",\"view\":\"agent\",\"colour\":\"red\"}");
    t_assert_error (&resp, 400, "unknown_field", "colour");
    t_free (&resp);

    resp = t_post_json (s_http_port, "/api/v1/console/errors", "{\"kind\":\"script\"}");
    t_assert_error (&resp, 400, "missing_field", "view");
    t_free (&resp);

    resp = t_post_json (s_http_port, "/api/v1/console/errors",
                        "{\"kind\":\"script\",\"view\":\"kitchen\"}");
    t_assert_error (&resp, 400, "invalid_field", "view");
    t_free (&resp);

    const char *ok = "{\"kind\":\"script\",\"view\":\"agent\"}";
    resp = t_http (s_http_port, "POST", "/api/v1/console/errors", "Content-Type: text/plain\r\n",
                   ok, strlen (ok));
    t_assert_error (&resp, 415, "unsupported_media_type", NULL);
    t_free (&resp);
    resp = t_http (s_http_port, "POST", "/api/v1/console/errors",
                   "Content-Type: application/json; charset=latin1\r\n", ok, strlen (ok));
    t_assert_error (&resp, 415, "unsupported_media_type", NULL);
    t_free (&resp);

    resp = t_http (s_http_port, "POST", "/api/v1/console/errors",
                   "Content-Type: application/json; charset=utf-8\r\n", ok, strlen (ok));
    assert_int_equal (resp.status, 202);
    t_free (&resp);
    resp = t_get (s_health_port, "/metrics");
    assert_non_null (strstr (resp.body, "greenline_intake_console_errors_total{kind=\"script\","
                                        "view=\"agent\"} 1"));
    t_free (&resp);
}

static void
test_unauthorized (void **state)
{
    t_resp_t resp = t_get (s_http_port, "/api/v1/system/info");
    t_assert_error (&resp, 401, "unauthorized", NULL);
    t_free (&resp);
    resp = t_http (s_http_port, "GET", "/api/v1/system/info",
                   "Authorization: Bearer made-up\r\nCookie: session=made-up\r\n", NULL, 0);
    t_assert_error (&resp, 401, "unauthorized", NULL);
    t_free (&resp);
}

static void
test_static_files_and_traversal (void **state)
{
    t_resp_t resp = t_get (s_http_port, "/");
    assert_int_equal (resp.status, 200);
    assert_string_equal (t_header (&resp, "Content-Type"), "text/html; charset=utf-8");
    assert_string_equal (t_header (&resp, "Cache-Control"), "no-cache");
    assert_non_null (strstr (t_header (&resp, "Content-Security-Policy"), "default-src 'self'"));
    assert_non_null (strstr (resp.body, "/console/status.js"));
    t_free (&resp);

    resp = t_get (s_http_port, "/console/console.css");
    assert_int_equal (resp.status, 200);
    assert_string_equal (t_header (&resp, "Content-Type"), "text/css; charset=utf-8");
    //  A validator: the next load with it costs a 304 without the file.
    char etag[64];
    assert_non_null (t_header (&resp, "ETag"));
    snprintf (etag, sizeof etag, "%s", t_header (&resp, "ETag"));
    assert_true (etag[0] == '"' && strlen (etag) > 2);
    size_t full = resp.body_len;
    assert_true (full > 100);
    t_free (&resp);
    const char *conditions[] = { "%s", "W/%s", "\"nope\", %s", "*" };
    for (size_t i = 0; i < sizeof conditions / sizeof conditions[0]; i++) {
        char cond[128], request[512];
        snprintf (cond, sizeof cond, conditions[i], etag);
        int n = snprintf (request, sizeof request,
                          "GET /console/console.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                          "If-None-Match: %s\r\n\r\n", cond);
        resp = t_raw (s_http_port, request, (size_t) n);
        assert_int_equal (resp.status, 304);
        assert_int_equal (resp.body_len, 0);
        assert_string_equal (t_header (&resp, "ETag"), etag);
        t_free (&resp);
    }
    {
        char request[512];
        int n = snprintf (request, sizeof request,
                          "GET /console/console.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                          "If-None-Match: \"0-0-0\"\r\n\r\n");
        resp = t_raw (s_http_port, request, (size_t) n);
        assert_int_equal (resp.status, 200);
        assert_int_equal (resp.body_len, full);
        t_free (&resp);
    }
    resp = t_get (s_http_port, "/console/status.js");
    assert_int_equal (resp.status, 200);
    assert_string_equal (t_header (&resp, "Content-Type"), "text/javascript; charset=utf-8");
    assert_non_null (strstr (resp.body, "/ready"));
    t_free (&resp);

    const char *malformed[] = { "/console/../../../etc/passwd", "/console/%2e%2e/%2e%2e/etc/passwd",
                                "/console/..%2f..%2fetc%2fpasswd", "/console/./index.html",
                                "/console/%00.css", "/console/%zz.css", "/console/%ff.css" };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        resp = t_get (s_http_port, malformed[i]);
        t_assert_error (&resp, 400, "invalid_path", NULL);
        t_free (&resp);
    }
    const char *missing[] = { "/console/nope.css", "/console/.hidden.css", "/console/index",
                              "/console/", "/console", "/console//console.css" };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        resp = t_get (s_http_port, missing[i]);
        t_assert_error (&resp, 404, "not_found", NULL);
        t_free (&resp);
    }
}

//  A body on GET is refused and the connection closed, so a request hidden in it is never run.
static void
test_no_request_in_a_get_body (void **state)
{
    const char *inner = "GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n";
    char request[512];
    int n = snprintf (request, sizeof request,
                      "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen (inner), inner);
    t_resp_t resp = t_raw (s_http_port, request, (size_t) n);
    t_assert_error (&resp, 400, "bad_request", NULL);
    assert_string_equal (t_header (&resp, "Connection"), "close");
    int answers = 0;
    for (const char *p = resp.raw; (p = strstr (p, "HTTP/1.1 ")); p++)
        answers++;
    assert_int_equal (answers, 1);
    t_free (&resp);
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
    json_array_append_new (c->events,
                           json_pack ("{s:s, s:I, s:O}", "type", ev->type, "seq",
                                      (json_int_t) ev->seq, "data", ev->data));
    gl_event_destroy (&ev);
    return 0;
}

//  intake-1's log, decoded: [{type, seq, data}, ...].
static json_t *
t_read_log (void)
{
    gl_redis_t *redis = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 5000);
    t_events_t c = { json_array () };
    assert_true (gl_log_read (redis, "intake-1", 1, 0, 1000, t_collect, &c, NULL) >= 0);
    gl_redis_destroy (&redis);
    return c.events;
}

static void
test_service_started_event (void **state)
{
    json_t *events = t_read_log ();
    json_t *first = json_array_get (events, 0);
    assert_non_null (first);
    assert_string_equal (json_string_value (json_object_get (first, "type")), "service.started");
    json_t *data = json_object_get (first, "data");
    assert_string_equal (json_string_value (json_object_get (data, "service")), "intake");
    assert_string_equal (json_string_value (json_object_get (data, "instance")), "intake-1");
    assert_true (json_string_length (json_object_get (data, "version")) > 0);
    assert_int_equal (json_integer_value (json_object_get (data, "pid")), (json_int_t) s_intake);
    json_decref (events);
}

//  log.range is answered through the ROUTER that the libevent loop watches (ZMQ_FD), and the
//  GL_BUS_TOKENS setting is applied.
static void
test_log_range_over_the_bus (void **state)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_router_port);
    gl_req_t *client = gl_req_new (endpoint);
    assert_non_null (client);
    gl_reply_t reply = { 0 };
    gl_logrange_fetch (client, "intake-1", 1, 0, 10, 10000, &reply);
    assert_int_equal (reply.status, 401);
    gl_reply_clear (&reply);

    assert_int_equal (gl_req_set_auth (client, T_TOKEN), 0);
    //  Several in a row: each wakes the loop through the socket's edge-triggered fd.
    for (int i = 0; i < 5; i++) {
        assert_int_equal (gl_logrange_fetch (client, "intake-1", 1, 0, 10, 10000, &reply), 0);
        assert_int_equal (reply.status, 200);
        json_t *first = json_array_get (json_object_get (reply.body, "events"), 0);
        assert_string_equal (json_string_value (json_object_get (first, "type")),
                             "service.started");
        gl_reply_clear (&reply);
    }
    gl_req_destroy (&client);
}

//  Personal data may be in paths, queries and bodies: none of it reaches the log.
static void
test_access_log_requests (void **state)
{
    t_resp_t resp = t_get (s_http_port, "/console/SECRET-MARKER-PATH.css?name=SECRET-MARKER-QUERY");
    t_assert_error (&resp, 404, "not_found", NULL);
    t_free (&resp);
    resp = t_post_json (s_http_port, "/api/v1/console/errors",
                        "{\"kind\":\"script\",\"view\":\"agent\",\"SECRET-MARKER-FIELD\":1}");
    t_assert_error (&resp, 400, "unknown_field", "SECRET-MARKER-FIELD");
    t_free (&resp);
    resp = t_get (s_http_port, "/nowhere/SECRET-MARKER-404");
    t_assert_error (&resp, 404, "not_found", NULL);
    t_free (&resp);
}

static void
test_ready_follows_redis (void **state)
{
    gl_testredis_kill (s_redis);
    assert_int_equal (t_wait_status (s_http_port, "/ready", 503), 503);
    t_resp_t resp = t_get (s_http_port, "/ready");
    assert_int_equal (resp.status, 503);
    json_t *json = t_json (&resp);
    assert_string_equal (json_string_value (json_object_get (json, "status")), "not ready");
    assert_string_equal (json_string_value (json_object_get (json, "reason")),
                         "redis unreachable");
    assert_string_equal (
        json_string_value (json_object_get (json_object_get (json, "error"), "code")),
        "not_ready");
    json_decref (json);
    t_free (&resp);
    assert_int_equal (t_wait_status (s_health_port, "/ready", 503), 503);
    //  Alive all along.
    resp = t_get (s_http_port, "/health");
    assert_int_equal (resp.status, 200);
    t_free (&resp);

    assert_int_equal (gl_testredis_restart (s_redis), 0);
    assert_int_equal (t_wait_status (s_http_port, "/ready", 200), 200);
    assert_int_equal (t_wait_status (s_health_port, "/ready", 200), 200);
}

static void
test_sigterm_clean_exit (void **state)
{
    assert_true (s_intake > 0);
    kill (s_intake, SIGTERM);
    int status = gl_test_wait (s_intake, 30000);
    s_intake = -1;
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);

    json_t *events = t_read_log ();
    json_t *last = json_array_get (events, json_array_size (events) - 1);
    assert_non_null (last);
    assert_string_equal (json_string_value (json_object_get (last, "type")), "service.stopping");
    assert_string_equal (
        json_string_value (json_object_get (json_object_get (last, "data"), "instance")),
        "intake-1");
    json_decref (events);

    //  The access log has the patterns, and nothing of what the clients sent.
    FILE *f = fopen (s_log_path, "r");
    assert_non_null (f);
    char line[2048];
    bool access = false;
    while (fgets (line, sizeof line, f)) {
        if (strstr (line, "SECRET-MARKER"))
            fprintf (stderr, "personal data in the log: %s", line);
        assert_null (strstr (line, "SECRET-MARKER"));
        access = access || strstr (line, "http: GET /console/{path*} 404") != NULL;
    }
    fclose (f);
    assert_true (access);
}

//  --------------------------------------------------------------------------------------------
//  Group 2: the framework in this process

static struct event_base *s_base;
static http_t *s_http;
static intake_t *s_owner;
static pthread_t s_loop;
static int s_port;

//  Test hook: the role comes from a header. Test only: the real hook is the accounts issue's.
static int
t_auth (intake_t *intake, http_req_t *req, http_caller_t *caller)
{
    const char *role = http_header (req, "X-Test-Role");
    if (!role)
        return 401;
    if (strcmp (role, "down") == 0)
        return 503;
    if (strcmp (role, "broken") == 0)
        return 7;
    snprintf (caller->user_id, sizeof caller->user_id, "0123456789abcdef0123456789abcdef");
    caller->roles = strcmp (role, "supervisor") == 0 ? GL_ROLE_SUPERVISOR : GL_ROLE_AGENT;
    caller->unit_count = 1;
    snprintf (caller->units[0], sizeof caller->units[0], "unit-north");
    return 0;
}

static int
t_thing (intake_t *intake, http_req_t *req)
{
    return http_reply_json (req, 200, json_pack ("{s:s, s:s}", "id", http_param (req, "id"),
                                                 "route", http_route_pattern (req)));
}

static int
t_special (intake_t *intake, http_req_t *req)
{
    return http_reply_json (req, 200, json_pack ("{s:b}", "special", 1));
}

static int
t_file (intake_t *intake, http_req_t *req)
{
    return http_reply_json (req, 200, json_pack ("{s:s}", "rest", http_param (req, "rest")));
}

static int
t_staff (intake_t *intake, http_req_t *req)
{
    const http_caller_t *c = http_caller (req);
    return http_reply_json (req, 200, json_pack ("{s:s, s:i, s:s}", "user", c->user_id, "roles",
                                                 (int) c->roles, "unit", c->units[0]));
}

static int
t_validate (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "s", "n", "b", "e", "id", NULL };
    static const char *const colours[] = { "red", "green", NULL };
    const char *s = NULL, *e = "none", *id = "none";
    int64_t n = -1;
    bool b = false;
    if (http_body_only (req, fields) || http_body_str (req, "s", true, 5, &s)
        || http_body_int (req, "n", false, 1, 10, &n) || http_body_bool (req, "b", false, &b)
        || http_body_enum (req, "e", false, colours, &e) || http_body_id (req, "id", false, &id))
        return -1;
    return http_reply_json (req, 200, json_pack ("{s:s, s:I, s:b, s:s, s:s}", "s", s, "n",
                                                 (json_int_t) n, "b", b, "e", e, "id", id));
}

static int
t_items (intake_t *intake, http_req_t *req)
{
    static const char *const params[] = { "limit", "cursor", NULL };
    http_page_t page;
    if (http_query_only (req, params) || http_page (req, &page))
        return -1;
    char next[64];
    snprintf (next, sizeof next, "after:%d", page.limit);
    json_t *items = json_pack ("[i, s?]", page.limit, page.has_cursor ? page.cursor : NULL);
    return http_reply_page (req, items, page.limit < 100 ? next : NULL);
}

static int
t_noreply (intake_t *intake, http_req_t *req)
{
    return 0;
}

static int
t_fail (intake_t *intake, http_req_t *req)
{
    return http_reply_error (req, 500, "db_exploded", "SECRET internal detail", NULL);
}

static int
t_twice (intake_t *intake, http_req_t *req)
{
    http_reply_json (req, 201, json_object ());
    return http_reply_json (req, 200, json_object ());
}

static void *
t_run_loop (void *arg)
{
    event_base_dispatch (s_base);
    return NULL;
}

static int
t_framework_setup (void **state)
{
    if (evthread_use_pthreads () != 0)
        return -1;
    s_base = event_base_new ();
    s_owner = calloc (1, sizeof *s_owner);
    s_owner->authenticate = t_auth;
    s_http = http_new (s_owner);
    s_owner->http = s_http;
    http_route (s_http, "GET", "/t/things/{id}", GL_ROLE_PUBLIC, t_thing);
    http_route (s_http, "GET", "/t/things/special", GL_ROLE_PUBLIC, t_special);
    http_route (s_http, "GET", "/t/files/{rest*}", GL_ROLE_PUBLIC, t_file);
    http_route (s_http, "GET", "/t/staff", GL_ROLE_SUPERVISOR | GL_ROLE_ADMIN, t_staff);
    http_route (s_http, "POST", "/t/validate", GL_ROLE_PUBLIC, t_validate);
    http_route (s_http, "GET", "/t/items", GL_ROLE_PUBLIC, t_items);
    http_route (s_http, "GET", "/t/noreply", GL_ROLE_PUBLIC, t_noreply);
    http_route (s_http, "GET", "/t/fail", GL_ROLE_PUBLIC, t_fail);
    http_route (s_http, "GET", "/t/twice", GL_ROLE_PUBLIC, t_twice);
    http_opts_t opts = { .host = "127.0.0.1", .port = 0, .max_body = 1024, .max_headers = 8192,
                         .timeout_s = 10 };
    char err[128];
    if (http_listen (s_http, s_base, &opts, err, sizeof err) != 0)
        return -1;
    s_port = http_port (s_http);
    return pthread_create (&s_loop, NULL, t_run_loop, NULL) == 0 ? 0 : -1;
}

static int
t_framework_teardown (void **state)
{
    event_base_loopexit (s_base, NULL);
    pthread_join (s_loop, NULL);
    http_destroy (&s_http);
    event_base_free (s_base);
    free (s_owner);
    return 0;
}

//  The value of key in the JSON body (a string), or NULL. Static buffer.
static const char *
t_field (const t_resp_t *resp, const char *key)
{
    static char value[256];
    json_t *json = t_json (resp);
    json_t *v = json_object_get (json, key);
    if (json_is_string (v))
        snprintf (value, sizeof value, "%s", json_string_value (v));
    else if (v)
        snprintf (value, sizeof value, "%lld", (long long) json_integer_value (v));
    json_decref (json);
    return v ? value : NULL;
}

static void
test_routes_and_parameters (void **state)
{
    t_resp_t resp = t_get (s_port, "/t/things/special");
    assert_int_equal (resp.status, 200);
    assert_non_null (strstr (resp.body, "\"special\":true"));
    t_free (&resp);

    resp = t_get (s_port, "/t/things/a%20b");
    assert_int_equal (resp.status, 200);
    assert_string_equal (t_field (&resp, "id"), "a b");
    assert_string_equal (t_field (&resp, "route"), "/t/things/{id}");
    t_free (&resp);

    resp = t_get (s_port, "/t/things/%C3%A9t%C3%A9+x");
    assert_string_equal (t_field (&resp, "id"), "\xc3\xa9t\xc3\xa9+x");
    t_free (&resp);

    resp = t_get (s_port, "/t/files/a/b%20c/d.txt");
    assert_int_equal (resp.status, 200);
    assert_string_equal (t_field (&resp, "rest"), "a/b c/d.txt");
    t_free (&resp);

    const char *bad[] = { "/t/things/%FF", "/t/things/%C0%AF", "/t/things/a%2Fb", "/t/things/%0a",
                          "/t/things/%", "/t/things/..", "/t/files/a/../b" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        resp = t_get (s_port, bad[i]);
        t_assert_error (&resp, 400, "invalid_path", NULL);
        t_free (&resp);
    }
    const char *none[] = { "/t/things", "/t/things/", "/t/things/a/b", "/t/files", "//t/things/a",
                           "/t/Things/a" };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        resp = t_get (s_port, none[i]);
        t_assert_error (&resp, 404, "not_found", NULL);
        t_free (&resp);
    }
    char longpath[1200] = "/t/things/";
    memset (longpath + 10, 'x', 1100);
    resp = t_get (s_port, longpath);
    t_assert_error (&resp, 414, "uri_too_long", NULL);
    t_free (&resp);
}

static void
test_roles (void **state)
{
    t_resp_t resp = t_get (s_port, "/t/staff");
    t_assert_error (&resp, 401, "unauthorized", NULL);
    t_free (&resp);
    resp = t_http (s_port, "GET", "/t/staff", "X-Test-Role: agent\r\n", NULL, 0);
    t_assert_error (&resp, 403, "forbidden", NULL);
    t_free (&resp);
    resp = t_http (s_port, "GET", "/t/staff", "X-Test-Role: down\r\n", NULL, 0);
    t_assert_error (&resp, 503, "unavailable", NULL);
    t_free (&resp);
    resp = t_http (s_port, "GET", "/t/staff", "X-Test-Role: broken\r\n", NULL, 0);
    t_assert_error (&resp, 500, "internal", NULL);
    t_free (&resp);
    resp = t_http (s_port, "GET", "/t/staff", "X-Test-Role: supervisor\r\n", NULL, 0);
    assert_int_equal (resp.status, 200);
    assert_string_equal (t_field (&resp, "unit"), "unit-north");
    t_free (&resp);
    //  Authentication comes before the query and the body: an unauthenticated caller learns
    //  nothing about them.
    resp = t_get (s_port, "/t/staff?%zz");
    t_assert_error (&resp, 401, "unauthorized", NULL);
    t_free (&resp);
}

static void
test_validation (void **state)
{
    t_resp_t resp = t_post_json (s_port, "/t/validate", "{}");
    t_assert_error (&resp, 400, "missing_field", "s");
    t_free (&resp);
    resp = t_http (s_port, "POST", "/t/validate", NULL, "", 0);
    t_assert_error (&resp, 400, "missing_field", "s");     //  no body reads as {}
    t_free (&resp);
    resp = t_post_json (s_port, "/t/validate", "{\"s\":\"\"}");
    t_assert_error (&resp, 400, "missing_field", "s");
    t_free (&resp);
    resp = t_post_json (s_port, "/t/validate", "{\"s\":\"h\xc3\xa9llo\"}");     //  5 characters
    assert_int_equal (resp.status, 200);
    assert_string_equal (t_field (&resp, "n"), "-1");
    t_free (&resp);
    struct {
        const char *body;
        const char *code;
        const char *field;
    } cases[] = {
        { "{\"s\":\"sixsix\"}", "invalid_field", "s" },
        { "{\"s\":5}", "invalid_field", "s" },
        { "{\"s\":\"ok\",\"n\":11}", "invalid_field", "n" },
        { "{\"s\":\"ok\",\"n\":0}", "invalid_field", "n" },
        { "{\"s\":\"ok\",\"n\":1.0}", "invalid_field", "n" },
        { "{\"s\":\"ok\",\"n\":\"3\"}", "invalid_field", "n" },
        { "{\"s\":\"ok\",\"b\":1}", "invalid_field", "b" },
        { "{\"s\":\"ok\",\"e\":\"blue\"}", "invalid_field", "e" },
        { "{\"s\":\"ok\",\"id\":\"0123456789ABCDEF0123456789abcdef\"}", "invalid_field", "id" },
        { "{\"s\":\"ok\",\"zz\":null}", "unknown_field", "zz" },
        { "{\"s\":\"ok\"} {}", "invalid_json", NULL },
        { "{\"s\":\"a\\u0000b\"}", "invalid_json", NULL },
        { "{\"s\":\"ok\",\"n\":1e999}", "invalid_json", NULL },
        { "\"s\"", "invalid_json", NULL },
        { "{\"s\":\"\xff\"}", "invalid_json", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        resp = t_post_json (s_port, "/t/validate", cases[i].body);
        t_assert_error (&resp, 400, cases[i].code, cases[i].field);
        t_free (&resp);
    }
    resp = t_post_json (s_port, "/t/validate",
                        "{\"s\":\"ok\",\"n\":10,\"b\":true,\"e\":\"green\","
                        "\"id\":\"0123456789abcdef0123456789abcdef\"}");
    assert_int_equal (resp.status, 200);
    assert_string_equal (t_field (&resp, "e"), "green");
    assert_string_equal (t_field (&resp, "n"), "10");
    t_free (&resp);
    //  This server's body limit is 1024 bytes.
    char big[2048];
    memset (big, ' ', sizeof big);
    big[0] = '{';
    big[sizeof big - 1] = '}';
    resp = t_http (s_port, "POST", "/t/validate", "Content-Type: application/json\r\n", big,
                   sizeof big);
    t_assert_error (&resp, 413, "payload_too_large", NULL);
    t_free (&resp);
}

static void
test_pagination (void **state)
{
    t_resp_t resp = t_get (s_port, "/t/items");
    assert_int_equal (resp.status, 200);
    json_t *json = t_json (&resp);
    assert_int_equal (json_integer_value (json_array_get (json_object_get (json, "items"), 0)),
                      HTTP_PAGE_DEFAULT);
    assert_true (json_is_null (json_array_get (json_object_get (json, "items"), 1)));
    char cursor[128];
    snprintf (cursor, sizeof cursor, "%s", json_string_value (json_object_get (json, "next_cursor")));
    json_decref (json);
    t_free (&resp);
    //  The cursor is opaque (not the text the handler gave) and comes back decoded.
    assert_null (strstr (cursor, "after"));
    char path[256];
    snprintf (path, sizeof path, "/t/items?limit=7&cursor=%s", cursor);
    resp = t_get (s_port, path);
    assert_int_equal (resp.status, 200);
    json = t_json (&resp);
    assert_int_equal (json_integer_value (json_array_get (json_object_get (json, "items"), 0)), 7);
    assert_string_equal (json_string_value (json_array_get (json_object_get (json, "items"), 1)),
                         "after:50");
    json_decref (json);
    t_free (&resp);
    resp = t_get (s_port, "/t/items?limit=200");
    assert_int_equal (resp.status, 200);
    assert_non_null (strstr (resp.body, "\"next_cursor\":null"));
    t_free (&resp);

    const char *bad_limit[] = { "/t/items?limit=0", "/t/items?limit=201", "/t/items?limit=abc",
                                "/t/items?limit=", "/t/items?limit=-1", "/t/items?limit=+5" };
    for (size_t i = 0; i < sizeof bad_limit / sizeof bad_limit[0]; i++) {
        resp = t_get (s_port, bad_limit[i]);
        t_assert_error (&resp, 400, "invalid_parameter", "limit");
        t_free (&resp);
    }
    resp = t_get (s_port, "/t/items?cursor=%21%21%21");
    t_assert_error (&resp, 400, "invalid_parameter", "cursor");
    t_free (&resp);
    resp = t_get (s_port, "/t/items?cursor=AA");      //  decodes to a NUL byte
    t_assert_error (&resp, 400, "invalid_parameter", "cursor");
    t_free (&resp);
    resp = t_get (s_port, "/t/items?limit=1&limit=2");
    t_assert_error (&resp, 400, "invalid_parameter", "limit");
    t_free (&resp);
    resp = t_get (s_port, "/t/items?sort=name");
    t_assert_error (&resp, 400, "unknown_parameter", "sort");
    t_free (&resp);
    resp = t_get (s_port, "/t/items?limit=%zz");
    t_assert_error (&resp, 400, "invalid_parameter", "limit");
    t_free (&resp);
}

static void
test_handler_faults (void **state)
{
    t_resp_t resp = t_get (s_port, "/t/noreply");
    t_assert_error (&resp, 500, "internal", NULL);
    t_free (&resp);
    resp = t_get (s_port, "/t/fail");
    t_assert_error (&resp, 500, "internal", NULL);
    assert_string_equal (t_error_message (&resp), "internal error");
    assert_null (strstr (resp.raw, "SECRET"));
    t_free (&resp);
    resp = t_get (s_port, "/t/twice");
    assert_int_equal (resp.status, 201);
    t_free (&resp);
}

//  Programmer errors abort at registration (so they fail at start, in every build).
static void
t_expect_abort (const char *method, const char *pattern, uint32_t roles)
{
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        //  Quiet: the assertion message is expected.
        int devnull = open ("/dev/null", O_WRONLY);
        dup2 (devnull, 2);
        http_t *http = http_new (NULL);
        http_route (http, "GET", "/dup/{id}", GL_ROLE_PUBLIC, t_thing);
        http_route (http, method, pattern, roles, t_thing);
        _exit (0);
    }
    int status = 0;
    waitpid (pid, &status, 0);
    if (!(WIFSIGNALED (status) && WTERMSIG (status) == SIGABRT))
        fprintf (stderr, "%s %s was accepted\n", method, pattern);
    assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGABRT);
}

static void
test_registration_errors_abort (void **state)
{
    t_expect_abort ("GET", "/dup/{other}", GL_ROLE_PUBLIC);        //  same shape
    t_expect_abort ("GET", "/dup/{id", GL_ROLE_PUBLIC);
    t_expect_abort ("GET", "dup", GL_ROLE_PUBLIC);
    t_expect_abort ("GET", "/dup//x", GL_ROLE_PUBLIC);
    t_expect_abort ("GET", "/dup/{a*}/x", GL_ROLE_PUBLIC);
    t_expect_abort ("GET", "/dup/{a}/{a}", GL_ROLE_PUBLIC);
    t_expect_abort ("GET", "/dup/x y", GL_ROLE_PUBLIC);
    t_expect_abort ("FETCH", "/dup/x", GL_ROLE_PUBLIC);
    t_expect_abort ("GET", "/dup/x", 0);
    t_expect_abort ("GET", "/dup/x", GL_ROLE_PUBLIC | GL_ROLE_AGENT);
}

int
main (void)
{
    const struct CMUnitTest service[] = {
        cmocka_unit_test (test_health_and_ready),
        cmocka_unit_test (test_openapi_matches_routes),
        cmocka_unit_test (test_not_found_and_method),
        cmocka_unit_test (test_body_limits_and_parsing),
        cmocka_unit_test (test_unauthorized),
        cmocka_unit_test (test_static_files_and_traversal),
        cmocka_unit_test (test_no_request_in_a_get_body),
        cmocka_unit_test (test_service_started_event),
        cmocka_unit_test (test_log_range_over_the_bus),
        cmocka_unit_test (test_access_log_requests),
        cmocka_unit_test (test_ready_follows_redis),
        cmocka_unit_test (test_sigterm_clean_exit),
    };
    const struct CMUnitTest framework[] = {
        cmocka_unit_test (test_routes_and_parameters),
        cmocka_unit_test (test_roles),
        cmocka_unit_test (test_validation),
        cmocka_unit_test (test_pagination),
        cmocka_unit_test (test_handler_faults),
        cmocka_unit_test (test_registration_errors_abort),
    };
    gl_log_init ("test_intake", GL_LOG_WARN, false);
    int failed = cmocka_run_group_tests_name ("intake service", service, t_service_setup,
                                              t_service_teardown);
    failed += cmocka_run_group_tests_name ("intake http framework", framework, t_framework_setup,
                                           t_framework_teardown);
    return failed;
}
