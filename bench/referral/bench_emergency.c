/*  The emergency path's latency, measured end to end on this machine: from an agent's POST
    /api/v1/emergencies at intake to referral's notification.requested (the alarm for the on-duty
    officer) appended and published, received on referral's PUB socket. gl-intake and gl-referral
    (plain build) run on one private redis-server (appendfsync everysec) on the system clock,
    while background threads keep intake busy with ordinary work (agents logging contacts). The
    figures (p50, p99, max, background rate) are printed, not asserted: a test must not fail on
    timing. What is asserted: every emergency's alarm arrives, once.

    Run: bench/referral/run.sh (not part of ctest: benchmarks live in bench/). */
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define B_EMERGENCIES   300
#define B_LOADERS       2
#define B_TOKEN         "tok-referral-bench"
#define B_ADMIN         "adminpass"
#define B_PASS          "password-bench-1"

enum { U_ADMIN, U_AGENT, U_LOAD1, U_LOAD2, U_DUTY, U_COUNT };

static struct {
    const char *name, *roles, *units;
    char id[GL_ID_LEN + 1];
    char token[200];
} s_users[U_COUNT] = {
    { "admin", NULL, NULL, "", "" },
    { "agent1", "[\"agent\"]", "[]", "", "" },
    { "load1", "[\"agent\"]", "[]", "", "" },
    { "load2", "[\"agent\"]", "[]", "", "" },
    { "duty1", "[\"protection\"]", "[\"protection\"]", "", "" },
};

static gl_testredis_t *s_redis;
static pid_t s_intake = -1, s_referral = -1;
static int s_http_port, s_pub_port, s_ref_pub_port, s_router_port;
static char s_log_path[200], s_conf_path[300];
static atomic_bool s_stop;
static atomic_long s_load_ok, s_load_other;

static gl_test_resp_t
t_call (int user, const char *method, const char *path, const char *body)
{
    char request[4096];
    int n = snprintf (request, sizeof request,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (user >= 0)
        n += snprintf (request + n, sizeof request - (size_t) n, "Authorization: Bearer %s\r\n",
                       s_users[user].token);
    if (body)
        n += snprintf (request + n, sizeof request - (size_t) n,
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen (body), body);
    else
        n += snprintf (request + n, sizeof request - (size_t) n, "\r\n");
    return gl_test_http_raw (s_http_port, request, (size_t) n);
}

static json_t *
t_ok (int user, const char *method, const char *path, const char *body, int status)
{
    gl_test_resp_t resp = t_call (user, method, path, body);
    if (resp.status != status)
        fprintf (stderr, "%s %s: expected %d, got %s\n", method, path, status, resp.raw);
    assert_int_equal (resp.status, status);
    json_t *json = json_loadb (resp.body, resp.body_len, 0, NULL);
    gl_test_http_free (&resp);
    assert_non_null (json);
    return json;
}

static int
t_login (int user)
{
    char body[256];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", s_users[user].name,
              user == U_ADMIN ? B_ADMIN : B_PASS);
    gl_test_resp_t resp = t_call (-1, "POST", "/api/v1/auth/login", body);
    int status = resp.status;
    if (status == 200) {
        json_t *json = json_loadb (resp.body, resp.body_len, 0, NULL);
        snprintf (s_users[user].token, sizeof s_users[user].token, "%s",
                  json_string_value (json_object_get (json, "token")));
        snprintf (s_users[user].id, sizeof s_users[user].id, "%s",
                  json_string_value (json_object_get (json_object_get (json, "user"), "id")));
        json_decref (json);
    }
    gl_test_http_free (&resp);
    return status;
}

static pid_t
t_spawn (const char *binary, char env[][400], int n)
{
    char *envp[24];
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    char *argv[] = { (char *) binary, NULL };
    char rel[128];
    snprintf (rel, sizeof rel, "services/%s/gl-%s", binary, binary);
    return gl_test_spawn (gl_test_build_path (rel), argv, envp, s_log_path);
}

static int
t_setup (void **state)
{
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    s_http_port = gl_test_free_port ();
    s_pub_port = gl_test_free_port ();
    s_ref_pub_port = gl_test_free_port ();
    s_router_port = gl_test_free_port ();
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-referral-bench-%d.log", (int) getpid ());
    snprintf (s_conf_path, sizeof s_conf_path, "%s/referral.conf", s_redis->dir);
    unlink (s_log_path);
    char env[24][400];
    int n = 0;
    snprintf (env[n++], 400, "GL_REDIS_HOST=127.0.0.1");
    snprintf (env[n++], 400, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (env[n++], 400, "GL_BUS_TOKENS=" B_TOKEN);
    snprintf (env[n++], 400, "GL_LOG_LEVEL=warn");
    snprintf (env[n++], 400, "GL_ENDPOINT_REFERRAL=tcp://127.0.0.1:%d", s_router_port);
    int common = n;
    snprintf (env[n++], 400, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", s_pub_port);
    snprintf (env[n++], 400, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:*");
    snprintf (env[n++], 400, "GL_SOURCE=intake-1");
    snprintf (env[n++], 400, "GL_HTTP_PORT=%d", s_http_port);
    snprintf (env[n++], 400, "GL_INTAKE_BOOTSTRAP_ADMIN=admin:" B_ADMIN);
    snprintf (env[n++], 400, "GL_INTAKE_ARGON2_OPSLIMIT=1");
    snprintf (env[n++], 400, "GL_INTAKE_ARGON2_MEMLIMIT=8192");
    snprintf (env[n++], 400, "GL_INTAKE_INDEX_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    s_intake = t_spawn ("intake", env, n);
    int64_t deadline = gl_mono_ms () + 60000;
    while (t_login (U_ADMIN) != 200) {
        if (gl_mono_ms () > deadline)
            return -1;
        gl_sleep_ms (100);
    }
    for (int u = U_AGENT; u < U_COUNT; u++) {
        char body[512];
        snprintf (body, sizeof body,
                  "{\"username\":\"%s\",\"password\":\"%s\",\"roles\":%s,\"units\":%s}",
                  s_users[u].name, B_PASS, s_users[u].roles, s_users[u].units);
        json_decref (t_ok (U_ADMIN, "POST", "/api/v1/users", body, 201));
        if (t_login (u) != 200)
            return -1;
    }
    FILE *f = fopen (s_conf_path, "w");
    fprintf (f,
             "unit protection 24x7 focal=%s\nmember protection %s\n"
             "roster protection daily 00:00-24:00 %s\ndefault protection\n"
             "sla * * ack=4h resolve=3d\nescalation focal=1h supervisor=2h\n"
             "emergency protection ack=5m repeat=2m\n",
             s_users[U_DUTY].id, s_users[U_DUTY].id, s_users[U_DUTY].id);
    fclose (f);
    n = common;
    snprintf (env[n++], 400, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", s_ref_pub_port);
    snprintf (env[n++], 400, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", s_router_port);
    snprintf (env[n++], 400, "GL_BUS_PUB_ENDPOINTS=tcp://127.0.0.1:%d", s_pub_port);
    snprintf (env[n++], 400, "GL_REFERRAL_CONFIG=%s", s_conf_path);
    snprintf (env[n++], 400, "GL_HEALTH_PORT=0");
    s_referral = t_spawn ("referral", env, n);
    return s_referral > 0 ? 0 : -1;
}

static int
t_teardown (void **state)
{
    if (s_referral > 0)
        gl_test_stop (s_referral, 10000);
    if (s_intake > 0)
        gl_test_stop (s_intake, 10000);
    gl_testredis_destroy (&s_redis);
    return 0;
}

//  Background: an agent logging contacts as fast as intake takes them.
static void *
t_loader (void *arg)
{
    int user = *(int *) arg;
    const char *body = "{\"channel\":\"call\",\"direction\":\"inbound\",\"language\":\"ar\","
                       "\"anonymous\":true,\"categories\":[\"health.access\"],"
                       "\"outcome\":\"information_given\"}";
    while (!atomic_load (&s_stop)) {
        gl_test_resp_t resp = t_call (user, "POST", "/api/v1/contacts", body);
        if (resp.status == 201)
            atomic_fetch_add (&s_load_ok, 1);
        else
            atomic_fetch_add (&s_load_other, 1);
        gl_test_http_free (&resp);
    }
    return NULL;
}

static int
t_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  Wait on sub for the alarm about id; true when it came.
static bool
t_wait_alarm (zsock_t *sub, const char *id, int64_t timeout_ms)
{
    int64_t deadline = gl_mono_ms () + timeout_ms;
    while (gl_mono_ms () < deadline) {
        zmsg_t *msg = zmsg_recv (sub);
        if (!msg)
            continue;
        zframe_t *topic = zmsg_first (msg), *body = zmsg_next (msg);
        bool hit = false;
        if (topic && body) {
            gl_event_err_t why;
            gl_event_t *ev = gl_event_decode (zframe_data (body), zframe_size (body), &why, NULL, 0);
            if (ev && strcmp (ev->corr, id) == 0
                && strcmp (gl_event_str (ev, "template", ""), "emergency.alarm") == 0
                && strcmp (gl_event_str (ev, "priority", ""), "emergency") == 0)
                hit = true;
            gl_event_destroy (&ev);
        }
        zmsg_destroy (&msg);
        if (hit)
            return true;
    }
    return false;
}

static void
test_emergency_latency_under_load (void **state)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_ref_pub_port);
    zsock_t *sub = zsock_new_sub (endpoint, "notification.requested");
    assert_non_null (sub);
    zsock_set_rcvtimeo (sub, 200);
    json_t *c = t_ok (U_AGENT, "POST", "/api/v1/contacts",
                      "{\"channel\":\"call\",\"direction\":\"inbound\",\"language\":\"ar\","
                      "\"anonymous\":true,\"categories\":[\"protection_concern.threat\"],"
                      "\"outcome\":\"emergency_raised\"}", 201);
    char contact[GL_ID_LEN + 1], body[512];
    snprintf (contact, sizeof contact, "%s", json_string_value (json_object_get (c, "id")));
    json_decref (c);
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"type\":\"threat_to_life\",\"callback_possible\":true}",
              contact);
    //  Warm up until referral is subscribed and our SUB connected (a SUB that joins late
    //  misses what was published before: ZeroMQ's slow joiner).
    json_t *a;
    for (int tries = 0;; tries++) {
        assert_true (tries < 30);
        a = t_ok (U_AGENT, "POST", "/api/v1/emergencies", body, 202);
        bool came = t_wait_alarm (sub, json_string_value (json_object_get (a, "emergency_id")), 2000);
        json_decref (a);
        if (came)
            break;
    }

    pthread_t loaders[B_LOADERS];
    int users[B_LOADERS] = { U_LOAD1, U_LOAD2 };
    //  GL_BENCH_LOADERS=0 measures the quiet path for comparison.
    int nload = getenv ("GL_BENCH_LOADERS") ? atoi (getenv ("GL_BENCH_LOADERS")) : B_LOADERS;
    if (nload < 0 || nload > B_LOADERS)
        nload = B_LOADERS;
    for (int i = 0; i < nload; i++)
        assert_int_equal (pthread_create (&loaders[i], NULL, t_loader, &users[i]), 0);
    gl_sleep_ms (500);
    long load_start = atomic_load (&s_load_ok);
    int64_t load_t0 = gl_mono_us ();
    int64_t lat[B_EMERGENCIES];
    for (int i = 0; i < B_EMERGENCIES; i++) {
        int64_t t0 = gl_mono_us ();
        a = t_ok (U_AGENT, "POST", "/api/v1/emergencies", body, 202);
        bool came = t_wait_alarm (sub, json_string_value (json_object_get (a, "emergency_id")), 30000);
        lat[i] = gl_mono_us () - t0;
        json_decref (a);
        assert_true (came);
        gl_sleep_ms (10);
    }
    double secs = (double) (gl_mono_us () - load_t0) / 1e6;
    long load = atomic_load (&s_load_ok) - load_start;
    atomic_store (&s_stop, true);
    for (int i = 0; i < nload; i++)
        pthread_join (loaders[i], NULL);
    qsort (lat, B_EMERGENCIES, sizeof lat[0], t_cmp);
    fprintf (stderr,
             "emergency raised at intake's API -> alarm queued and published by referral, "
             "%d emergencies under %.0f contacts/s of background load (%ld other answers): "
             "p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
             B_EMERGENCIES, (double) load / secs, atomic_load (&s_load_other),
             (double) lat[B_EMERGENCIES / 2] / 1000.0,
             (double) lat[B_EMERGENCIES * 99 / 100] / 1000.0,
             (double) lat[B_EMERGENCIES - 1] / 1000.0);
    zsock_destroy (&sub);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_emergency_latency_under_load),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
