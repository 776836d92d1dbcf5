/*  gl_health over real HTTP on loopback, with a small blocking client on plain sockets. */
/* ctest: timeout=120 */
#include "gl/gl_config.h"
#include "gl/gl_health.h"
#include "gl/gl_metrics.h"
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#define S_MAX_RESPONSE (1 << 20)

typedef struct {
    int status;              //  0 when the server closed without a status line
    char *raw;               //  whole response, NUL-terminated
    size_t raw_len;
    const char *body;        //  inside raw
    size_t body_len;
} s_resp_t;

static int
s_connect (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (connect (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    return fd;
}

//  Send everything; a server that closes early (it refused the request) is not an error here.
static void
s_send_all (int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t) n;
    }
}

static void
s_parse (s_resp_t *resp)
{
    resp->status = 0;
    resp->body = resp->raw + resp->raw_len;
    resp->body_len = 0;
    int status = 0;
    if (sscanf (resp->raw, "HTTP/1.%*d %d", &status) == 1)
        resp->status = status;
    char *end = strstr (resp->raw, "\r\n\r\n");
    if (end) {
        resp->body = end + 4;
        resp->body_len = resp->raw_len - (size_t) (resp->body - resp->raw);
    }
}

//  Read until the server closes (requests carry "Connection: close").
static s_resp_t
s_read_to_close (int fd)
{
    s_resp_t resp = { 0 };
    resp.raw = malloc (S_MAX_RESPONSE + 1);
    assert_non_null (resp.raw);
    while (resp.raw_len < S_MAX_RESPONSE) {
        ssize_t n = recv (fd, resp.raw + resp.raw_len, S_MAX_RESPONSE - resp.raw_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;      //  EOF, or a reset after the server refused the request
        resp.raw_len += (size_t) n;
    }
    assert_true (resp.raw_len < S_MAX_RESPONSE);
    resp.raw[resp.raw_len] = 0;
    s_parse (&resp);
    return resp;
}

static s_resp_t
s_raw (int port, const char *request, size_t len)
{
    int fd = s_connect (port);
    s_send_all (fd, request, len);
    s_resp_t resp = s_read_to_close (fd);
    close (fd);
    return resp;
}

static s_resp_t
s_request (int port, const char *method, const char *path)
{
    char request[512];
    snprintf (request, sizeof request,
              "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", method, path);
    return s_raw (port, request, strlen (request));
}

static void
s_resp_free (s_resp_t *resp)
{
    free (resp->raw);
    resp->raw = NULL;
}

//  Value of a response header (case-insensitive name) copied into out; false when absent.
static bool
s_header (const s_resp_t *resp, const char *name, char *out, size_t cap)
{
    size_t len = strlen (name);
    for (const char *p = strstr (resp->raw, "\r\n"); p && p < resp->body; p = strstr (p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp (line, name, len) == 0 && line[len] == ':') {
            const char *v = line + len + 1;
            while (*v == ' ')
                v++;
            const char *eol = strstr (v, "\r\n");
            size_t n = (size_t) (eol - v);
            assert_true (n < cap);
            memcpy (out, v, n);
            out[n] = 0;
            return true;
        }
    }
    return false;
}

static json_t *
s_json (const s_resp_t *resp)
{
    char type[128];
    assert_true (s_header (resp, "Content-Type", type, sizeof type));
    assert_string_equal (type, "application/json");
    json_error_t err;
    json_t *json = json_loadb (resp->body, resp->body_len, 0, &err);
    assert_non_null (json);
    return json;
}

//  The error body shape every endpoint shares.
static void
s_assert_error (const s_resp_t *resp, int status, const char *code)
{
    assert_int_equal (resp->status, status);
    json_t *json = s_json (resp);
    json_t *error = json_object_get (json, "error");
    assert_true (json_is_object (error));
    assert_int_equal (json_object_size (json), 1);
    assert_int_equal (json_object_size (error), 3);
    assert_string_equal (json_string_value (json_object_get (error, "code")), code);
    assert_true (json_is_string (json_object_get (error, "message")));
    assert_true (json_string_length (json_object_get (error, "message")) > 0);
    assert_true (json_is_null (json_object_get (error, "field")));
    json_decref (json);
}

static void
s_assert_alive (int port)
{
    s_resp_t resp = s_request (port, "GET", "/health");
    assert_int_equal (resp.status, 200);
    s_resp_free (&resp);
}

static void
test_health_ok (void **state)
{
    gl_health_t *h = gl_health_new ("test-svc", NULL, 0);
    assert_non_null (h);
    int port = gl_health_port (h);
    assert_true (port > 0);
    s_resp_t resp = s_request (port, "GET", "/health");
    assert_int_equal (resp.status, 200);
    char value[128];
    assert_true (s_header (&resp, "Cache-Control", value, sizeof value));
    assert_string_equal (value, "no-store");
    json_t *json = s_json (&resp);
    assert_int_equal (json_object_size (json), 3);
    assert_string_equal (json_string_value (json_object_get (json, "status")), "ok");
    assert_string_equal (json_string_value (json_object_get (json, "service")), "test-svc");
    assert_true (json_is_integer (json_object_get (json, "uptime_s")));
    assert_true (json_integer_value (json_object_get (json, "uptime_s")) >= 0);
    json_decref (json);
    s_resp_free (&resp);

    //  The query string does not change the endpoint; HEAD answers without a body.
    resp = s_request (port, "GET", "/health?verbose=1");
    assert_int_equal (resp.status, 200);
    s_resp_free (&resp);
    resp = s_request (port, "HEAD", "/health");
    assert_int_equal (resp.status, 200);
    assert_int_equal (resp.body_len, 0);
    assert_true (s_header (&resp, "Content-Length", value, sizeof value));
    assert_true (atoi (value) > 0);
    s_resp_free (&resp);
    gl_health_destroy (&h);
    assert_null (h);
}

static void
test_ready_flips (void **state)
{
    gl_health_t *h = gl_health_new ("test-svc", "127.0.0.1", 0);
    assert_non_null (h);
    int port = gl_health_port (h);

    s_resp_t resp = s_request (port, "GET", "/ready");
    assert_int_equal (resp.status, 503);
    json_t *json = s_json (&resp);
    assert_string_equal (json_string_value (json_object_get (json, "status")), "not ready");
    assert_string_equal (json_string_value (json_object_get (json, "reason")), "starting");
    json_decref (json);
    s_resp_free (&resp);

    gl_health_set_ready (h, true, NULL);
    resp = s_request (port, "GET", "/ready");
    assert_int_equal (resp.status, 200);
    json = s_json (&resp);
    assert_int_equal (json_object_size (json), 1);
    assert_string_equal (json_string_value (json_object_get (json, "status")), "ready");
    json_decref (json);
    s_resp_free (&resp);

    gl_health_set_ready (h, false, "redis unreachable");
    resp = s_request (port, "GET", "/ready");
    assert_int_equal (resp.status, 503);
    json = s_json (&resp);
    assert_string_equal (json_string_value (json_object_get (json, "reason")), "redis unreachable");
    json_decref (json);
    s_resp_free (&resp);

    //  Bytes outside printable ASCII are replaced, long reasons cut; no reason still says why.
    char long_reason[400];
    memset (long_reason, 'r', sizeof long_reason - 1);
    long_reason[sizeof long_reason - 1] = 0;
    const char *cases[][2] = {
        { "bad\xff\n\"byte\"", "bad??\"byte\"" },
        { NULL, "unspecified" },
        { long_reason, NULL },
    };
    for (size_t i = 0; i < 3; i++) {
        gl_health_set_ready (h, false, cases[i][0]);
        resp = s_request (port, "GET", "/ready");
        assert_int_equal (resp.status, 503);
        json = s_json (&resp);
        const char *reason = json_string_value (json_object_get (json, "reason"));
        if (cases[i][1])
            assert_string_equal (reason, cases[i][1]);
        else
            assert_int_equal (strlen (reason), 127);
        json_decref (json);
        s_resp_free (&resp);
    }
    gl_health_destroy (&h);
}

static void
test_metrics_endpoint (void **state)
{
    gl_metric_t *c = gl_metrics_counter ("greenline_test_http_frames_total", "Frames, by reason.",
                                         "reason=\"msgpack\"");
    gl_metric_t *h = gl_metrics_histogram ("greenline_test_http_handle_seconds", "Handling.", NULL);
    gl_metric_inc (c, 3);
    gl_metric_observe_us (h, 2000);
    gl_health_t *health = gl_health_new ("test-svc", NULL, 0);
    assert_non_null (health);
    s_resp_t resp = s_request (gl_health_port (health), "GET", "/metrics");
    assert_int_equal (resp.status, 200);
    char type[128];
    assert_true (s_header (&resp, "Content-Type", type, sizeof type));
    assert_non_null (strstr (type, "text/plain; version=0.0.4"));
    const char *lines[] = {
        "# HELP greenline_test_http_frames_total Frames, by reason.\n",
        "# TYPE greenline_test_http_frames_total counter\n",
        "\ngreenline_test_http_frames_total{reason=\"msgpack\"} 3\n",
        "# TYPE greenline_test_http_handle_seconds histogram\n",
        "\ngreenline_test_http_handle_seconds_bucket{le=\"0.001\"} 0\n",
        "\ngreenline_test_http_handle_seconds_bucket{le=\"0.0025\"} 1\n",
        "\ngreenline_test_http_handle_seconds_bucket{le=\"+Inf\"} 1\n",
        "\ngreenline_test_http_handle_seconds_sum 0.002000\n",
        "\ngreenline_test_http_handle_seconds_count 1\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        assert_non_null (strstr (resp.body, lines[i]));
    //  Nothing changed between the scrape and now: the body is exactly the registry's text.
    char *text = gl_metrics_render ();
    assert_int_equal (resp.body_len, strlen (text));
    assert_memory_equal (resp.body, text, resp.body_len);
    free (text);
    s_resp_free (&resp);
    gl_health_destroy (&health);
}

static void
test_not_found_and_method (void **state)
{
    gl_health_t *h = gl_health_new ("test-svc", NULL, 0);
    assert_non_null (h);
    int port = gl_health_port (h);
    const char *paths[] = { "/", "/nope", "/health/extra", "/%68ealth", "/metrics.txt" };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        s_resp_t resp = s_request (port, "GET", paths[i]);
        s_assert_error (&resp, 404, "not_found");
        s_resp_free (&resp);
    }
    const char *methods[] = { "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE" };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        s_resp_t resp = s_request (port, methods[i], i % 2 ? "/nope" : "/health");
        s_assert_error (&resp, 405, "method_not_allowed");
        char allow[64];
        assert_true (s_header (&resp, "Allow", allow, sizeof allow));
        assert_string_equal (allow, "GET, HEAD");
        s_resp_free (&resp);
    }
    gl_health_destroy (&h);
}

//  Garbage in: an error status (or, for the floods, a closed connection), and the server keeps
//  serving.
static void
test_malformed_requests (void **state)
{
    gl_health_t *h = gl_health_new ("test-svc", NULL, 0);
    assert_non_null (h);
    int port = gl_health_port (h);

    //  Small enough to arrive in one piece, so libevent's answer is deterministic. A method
    //  libevent does not know never reaches our callback: libevent answers 501 itself.
    static const struct {
        const char *request;
        int status;
    } small[] = {
        { "GARBAGE\r\n\r\n", 400 },
        { "GET\r\n\r\n", 400 },
        { "GET /health HTTP/9.9\r\n\r\n", 400 },
        { "BREW /health HTTP/1.1\r\nHost: x\r\n\r\n", 501 },
        { "GET /health HTTP/1.1\r\nno colon here\r\n\r\n", 400 },
        { "\r\n\r\n\r\n", 400 },
        { "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400 },
        { "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 413 },
    };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        s_resp_t resp = s_raw (port, small[i].request, strlen (small[i].request));
        assert_int_equal (resp.status, small[i].status);
        s_resp_free (&resp);
        s_assert_alive (port);
    }

    //  Binary bytes, NULs included.
    char binary[512];
    for (size_t i = 0; i < sizeof binary; i++)
        binary[i] = (char) (i * 37 + 11);
    s_resp_t resp = s_raw (port, binary, sizeof binary);
    assert_true (resp.status == 0 || resp.status == 400);
    s_resp_free (&resp);
    s_assert_alive (port);

    //  A 256 KiB request line, and 256 KiB of headers: far over the 8 KiB limit. The server
    //  answers 400 and closes while we are still sending, so the answer may be lost to the reset.
    size_t big = 256 * 1024;
    char *line = malloc (big + 64);
    assert_non_null (line);
    memcpy (line, "GET /", 5);
    memset (line + 5, 'a', big);
    strcpy (line + 5 + big, " HTTP/1.1\r\n\r\n");
    resp = s_raw (port, line, strlen (line));
    assert_true (resp.status == 0 || resp.status == 413 || resp.status == 400);
    s_resp_free (&resp);
    s_assert_alive (port);

    size_t used = (size_t) sprintf (line, "GET /health HTTP/1.1\r\n");
    while (used + 40 < big)
        used += (size_t) sprintf (line + used, "X-Filler-%06zu: %020zu\r\n", used, used);
    strcpy (line + used, "\r\n");
    resp = s_raw (port, line, strlen (line));
    assert_true (resp.status == 0 || resp.status == 413 || resp.status == 400);
    s_resp_free (&resp);
    free (line);
    s_assert_alive (port);

    //  Connect and leave without a word; and a half-sent request cut off.
    close (s_connect (port));
    int fd = s_connect (port);
    s_send_all (fd, "GET /hea", 8);
    close (fd);
    s_assert_alive (port);
    gl_health_destroy (&h);
}

//  Keep-alive request on an open connection; reads exactly one response (by Content-Length).
static int
s_keepalive_get (int fd, const char *path)
{
    char request[256];
    snprintf (request, sizeof request, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    s_send_all (fd, request, strlen (request));
    char buf[8192];
    size_t len = 0;
    char *body = NULL;
    long want = -1;
    while (len < sizeof buf - 1) {
        ssize_t n = recv (fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return 0;
        len += (size_t) n;
        buf[len] = 0;
        if (!body && (body = strstr (buf, "\r\n\r\n")) != NULL) {
            for (char *p = buf; p < body && want < 0; p++)
                if (strncasecmp (p, "\r\nContent-Length:", 17) == 0)
                    want = strtol (p + 17, NULL, 10);
            assert_true (want >= 0);
            body += 4;
        }
        if (body && (long) (len - (size_t) (body - buf)) >= want)
            break;
    }
    int status = 0;
    sscanf (buf, "HTTP/1.%*d %d", &status);
    return status;
}

static void
test_connection_limit (void **state)
{
    gl_config_t *config = gl_config_new ();
    gl_config_set (config, "GL_HEALTH_MAX_CONNS", "4");
    gl_health_t *h = gl_health_new_from_config ("test-svc", config);
    assert_non_null (h);
    int port = gl_health_port (h);

    //  Four keep-alive connections, each proven accepted by a served request. Accepting the
    //  fourth reaches the limit and pauses the listener.
    int fds[5];
    for (int i = 0; i < 4; i++) {
        fds[i] = s_connect (port);
        assert_int_equal (s_keepalive_get (fds[i], "/health"), 200);
    }
    //  The fifth waits in the backlog; it is served once the others have gone.
    fds[4] = s_connect (port);
    const char *fifth = "GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    s_send_all (fds[4], fifth, strlen (fifth));
    for (int i = 0; i < 4; i++)
        close (fds[i]);
    s_resp_t resp = s_read_to_close (fds[4]);
    close (fds[4]);
    assert_int_equal (resp.status, 503);
    s_resp_free (&resp);

    resp = s_request (port, "GET", "/metrics");
    assert_int_equal (resp.status, 200);
    char *line = strstr (resp.body, "\ngreenline_health_accept_paused_total ");
    assert_non_null (line);
    assert_true (strtol (line + strlen ("\ngreenline_health_accept_paused_total "), NULL, 10) >= 1);
    s_resp_free (&resp);
    gl_health_destroy (&h);
    gl_config_destroy (&config);
}

typedef struct {
    int port;
    gl_metric_t *counter;
    int failures;
} s_load_t;

static void *
s_incrementer (void *arg)
{
    s_load_t *load = arg;
    for (int i = 0; i < 250000; i++)
        gl_metric_inc (load->counter, 1);
    return NULL;
}

static void *
s_scraper (void *arg)
{
    s_load_t *load = arg;
    for (int i = 0; i < 25; i++) {
        int fd = s_connect (load->port);
        const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        s_send_all (fd, req, strlen (req));
        char buf[4096];
        ssize_t n = recv (fd, buf, sizeof buf - 1, 0);
        if (n < 12 || strncmp (buf, "HTTP/1.1 200", 12) != 0)
            load->failures++;
        while (n > 0)
            n = recv (fd, buf, sizeof buf, 0);
        close (fd);
    }
    return NULL;
}

static void
test_scrapes_during_updates (void **state)
{
    gl_health_t *h = gl_health_new ("test-svc", NULL, 0);
    assert_non_null (h);
    s_load_t loads[6];
    pthread_t threads[6];
    gl_metric_t *counter = gl_metrics_counter ("greenline_test_http_load_total", "Load.", NULL);
    for (int i = 0; i < 6; i++) {
        loads[i] = (s_load_t) { gl_health_port (h), counter, 0 };
        assert_int_equal (pthread_create (&threads[i], NULL, i < 4 ? s_incrementer : s_scraper,
                                          &loads[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join (threads[i], NULL);
        assert_int_equal (loads[i].failures, 0);
    }
    s_resp_t resp = s_request (gl_health_port (h), "GET", "/metrics");
    assert_non_null (strstr (resp.body, "\ngreenline_test_http_load_total 1000000\n"));
    s_resp_free (&resp);
    gl_health_destroy (&h);
}

static void
test_config_and_bad_arguments (void **state)
{
    gl_config_t *config = gl_config_new ();
    gl_config_set (config, "GL_HEALTH_PORT", "80a");
    assert_null (gl_health_new_from_config ("test-svc", config));
    assert_non_null (strstr (gl_config_error (config), "GL_HEALTH_PORT"));
    gl_config_destroy (&config);

    config = gl_config_new ();
    gl_config_set (config, "GL_HEALTH_MAX_CONNS", "0");
    assert_null (gl_health_new_from_config ("test-svc", config));
    assert_non_null (strstr (gl_config_error (config), "GL_HEALTH_MAX_CONNS"));
    gl_config_destroy (&config);

    assert_null (gl_health_new ("bad name", NULL, 0));
    assert_null (gl_health_new ("", NULL, 0));
    assert_null (gl_health_new ("test-svc", NULL, 70000));
    assert_null (gl_health_new ("test-svc", NULL, -1));

    //  A port that is taken: the second server cannot bind and says so.
    gl_health_t *first = gl_health_new ("test-svc", NULL, 0);
    assert_non_null (first);
    config = gl_config_new ();
    char port[16];
    snprintf (port, sizeof port, "%d", gl_health_port (first));
    gl_config_set (config, "GL_HEALTH_HOST", "127.0.0.1");
    gl_config_set (config, "GL_HEALTH_PORT", port);
    assert_null (gl_health_new_from_config ("test-svc", config));
    assert_null (gl_config_error (config));
    gl_config_destroy (&config);
    s_assert_alive (gl_health_port (first));
    gl_health_destroy (&first);
}

//  Destroy must stop the thread and free open connections (ASan checks the leaks), including
//  right after new, before the loop may have started.
static void
test_destroy_with_open_connections (void **state)
{
    gl_health_t *h = gl_health_new ("test-svc", NULL, 0);
    assert_non_null (h);
    gl_health_destroy (&h);
    assert_null (h);
    gl_health_destroy (&h);

    h = gl_health_new ("test-svc", NULL, 0);
    int port = gl_health_port (h);
    int idle = s_connect (port);
    int partial = s_connect (port);
    s_send_all (partial, "GET /health HTTP/1.1\r\n", 22);
    int served = s_connect (port);
    assert_int_equal (s_keepalive_get (served, "/health"), 200);
    gl_health_destroy (&h);
    //  The server side is gone: each client reads EOF (or a reset).
    int fds[] = { idle, partial, served };
    for (int i = 0; i < 3; i++) {
        char c;
        assert_true (recv (fds[i], &c, 1, 0) <= 0);
        close (fds[i]);
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_health_ok),
        cmocka_unit_test (test_ready_flips),
        cmocka_unit_test (test_metrics_endpoint),
        cmocka_unit_test (test_not_found_and_method),
        cmocka_unit_test (test_malformed_requests),
        cmocka_unit_test (test_connection_limit),
        cmocka_unit_test (test_scrapes_during_updates),
        cmocka_unit_test (test_config_and_bad_arguments),
        cmocka_unit_test (test_destroy_with_open_connections),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
