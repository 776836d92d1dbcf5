/*  gl_service and gl_outbox: a service skeleton run on a thread of this test against a real
    redis-server and real sockets: it applies events from another source exactly once and stages
    its own in the outbox, answers requests, runs timers, delivers a dead replica's outbox entry
    once (not twice when it is already in the log), sets a malformed entry aside, and stops on
    SIGTERM with service.stopping in its log.
    ctest: timeout=120 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_service.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static gl_testredis_t *s_redis;
static atomic_int s_ticks;
static atomic_int s_state;          //  0 starting, 1 running, 2 failed to start, 3 stopped
static atomic_int s_rc = -1;
static char s_router[256];
static atomic_int s_health_port;
static pthread_t s_thread;

//  demo.ping -> write demo:{svc}:seen:<n> and stage demo.pong in the outbox, in the same commit.
static int
s_apply (void *arg, const gl_event_t *ev, gl_tx_t *tx)
{
    gl_service_t *svc = arg;
    if (strcmp (ev->type, "demo.ping") != 0)
        return 0;
    int64_t n = gl_event_int (ev, "n", -1);
    gl_tx_cmdf (tx, "INCR demo:{svc}:seen:%lld", (long long) n);
    gl_event_t *pong = gl_event_new ("demo.pong");
    json_object_set_new (pong->data, "n", json_integer (n));
    int rc = gl_outbox_stage (gl_service_outbox (svc), tx, pong, 0);
    gl_event_destroy (&pong);
    return rc;
}

static int
s_echo (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    (void) arg;
    json_t *v = json_object_get (req->body, "say");
    if (!json_is_string (v))
        return gl_rep_error (err, 400, "invalid_field", "say", "say must be a string");
    *reply = json_pack ("{s:O}", "said", v);
    return 200;
}

static int
s_tick (gl_service_t *svc, void *arg)
{
    (void) svc;
    (void) arg;
    atomic_fetch_add (&s_ticks, 1);
    return 0;
}

static void *
s_run (void *arg)
{
    (void) arg;
    char err[256];
    gl_service_t *svc = gl_service_new ("svc", err, sizeof err);
    if (!svc) {
        fprintf (stderr, "gl_service_new: %s\n", err);
        atomic_store (&s_state, 2);
        return NULL;
    }
    snprintf (s_router, sizeof s_router, "%s", gl_rep_endpoint (gl_service_rep (svc)));
    atomic_store (&s_health_port, gl_health_port (gl_service_health (svc)));
    if (gl_service_on (svc, "svc.echo", s_echo, svc) != 0
        || !gl_service_subscribe (svc, NULL, "demo.", 0, s_apply, svc, err, sizeof err)
        || gl_service_every (svc, 50, s_tick, NULL) != 0) {
        fprintf (stderr, "setup: %s\n", err);
        gl_service_destroy (&svc);
        atomic_store (&s_state, 2);
        return NULL;
    }
    atomic_store (&s_state, 1);
    atomic_store (&s_rc, gl_service_run (svc));
    gl_service_destroy (&svc);
    atomic_store (&s_state, 3);
    return NULL;
}

//  Count events of type in src's log (and, with n >= 0, those whose data.n is n).
typedef struct {
    const char *type;
    int64_t n;
    int count;
} s_count_t;

static int
s_count_entry (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    (void) seq;
    s_count_t *c = arg;
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    if (ev && strcmp (ev->type, c->type) == 0 && (c->n < 0 || gl_event_int (ev, "n", -1) == c->n))
        c->count++;
    gl_event_destroy (&ev);
    return 0;
}

static int
s_count (gl_redis_t *redis, const char *src, const char *type, int64_t n)
{
    s_count_t c = { type, n, 0 };
    gl_log_read (redis, src, 1, 0, 100000, s_count_entry, &c, NULL);
    return c.count;
}

static long long
s_get_int (gl_redis_t *redis, const char *fmt, long long arg)
{
    redisReply *r = gl_redis_cmd (redis, fmt, arg);
    long long v = r && r->type == REDIS_REPLY_STRING ? atoll (r->str)
                  : r && r->type == REDIS_REPLY_INTEGER ? r->integer
                                                          : -1;
    if (r)
        freeReplyObject (r);
    return v;
}

static void
test_service (void **state)
{
    (void) state;
    gl_redis_t *redis = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 2000);
    char err[256];

    //  A dead replica's leftover outbox entries, written before the service starts: one whose
    //  event never reached the log, and one that is malformed.
    gl_event_t *left = gl_event_new ("demo.left");
    json_object_set_new (left->data, "n", json_integer (7));
    char entry[512];
    snprintf (entry, sizeof entry,
              "{\"type\":\"demo.left\",\"id\":\"%s\",\"ts\":%lld,\"corr\":\"\",\"flags\":0,"
              "\"src\":\"svc-9\",\"seq\":0,\"data\":{\"n\":7}}",
              left->id, (long long) left->ts);
    redisReply *r = gl_redis_cmd (redis, "HSET svc:{svc}:outbox %s %s", left->id, entry);
    assert_non_null (r);
    freeReplyObject (r);
    r = gl_redis_cmd (redis, "HSET svc:{svc}:outbox 0123456789abcdef0123456789abcdef {oops");
    freeReplyObject (r);
    gl_event_destroy (&left);

    assert_int_equal (pthread_create (&s_thread, NULL, s_run, NULL), 0);
    while (atomic_load (&s_state) == 0)
        gl_sleep_ms (10);
    assert_int_equal (atomic_load (&s_state), 1);

    //  Events from another source, applied once each, each answered by a pong from the outbox.
    gl_pub_t *pub = gl_pub_new (redis, "demotest-1", NULL, err, sizeof err);
    assert_non_null (pub);
    for (int i = 1; i <= 20; i++) {
        gl_event_t *ev = gl_event_new (i % 5 ? "demo.ping" : "other.thing");
        json_object_set_new (ev->data, "n", json_integer (i));
        assert_int_equal (gl_pub_send (pub, ev, 0), 0);
        gl_event_destroy (&ev);
    }
    while (s_count (redis, "svc-1", "demo.pong", -1) < 16)
        gl_sleep_ms (20);
    for (int i = 1; i <= 20; i++) {
        int want = i % 5 ? 1 : 0;
        assert_int_equal (s_count (redis, "svc-1", "demo.pong", i), want);
        assert_int_equal (s_get_int (redis, "GET demo:{svc}:seen:%lld", i), want ? 1 : -1);
    }
    //  The dead replica's event was delivered once, under the sweeper's name; the malformed
    //  entry was set aside; the outbox is empty.
    while (s_count (redis, "svc-1", "demo.left", 7) < 1)
        gl_sleep_ms (20);
    r = gl_redis_cmd (redis, "HLEN svc:{svc}:outbox");
    assert_int_equal (r->integer, 0);
    freeReplyObject (r);
    r = gl_redis_cmd (redis, "HEXISTS svc:{svc}:outbox:bad 0123456789abcdef0123456789abcdef");
    assert_int_equal (r->integer, 1);
    freeReplyObject (r);

    //  Requests.
    gl_req_t *client = gl_req_new (s_router);
    gl_reply_t reply = { 0 };
    json_t *body = json_pack ("{s:s}", "say", "hello");
    assert_int_equal (gl_req_call (client, "svc.echo", NULL, body, 2000, &reply), 0);
    assert_int_equal (reply.status, 200);
    assert_string_equal (json_string_value (json_object_get (reply.body, "said")), "hello");
    json_decref (body);
    body = json_pack ("{s:i}", "say", 3);
    assert_int_equal (gl_req_call (client, "svc.echo", NULL, body, 2000, &reply), 0);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error_field, "say");
    json_decref (body);
    gl_reply_clear (&reply);
    gl_req_destroy (&client);

    //  The bus figures reach /metrics (updated about once a second by the loop). The service
    //  applies "demo." events from every source, its own too: 16 pings, 16 pongs, the leftover;
    //  it skips 4 other.thing and its own service.started.
    const char *want = "greenline_bus_applied_total{service=\"svc\",group=\"svc\"} 33";
    bool seen = false;
    int tries = 0;
    while (!seen) {
        static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        gl_test_resp_t resp = gl_test_http_raw (atomic_load (&s_health_port), get, sizeof get - 1);
        seen = resp.status == 200 && strstr (resp.body, want)
               && strstr (resp.body, "greenline_bus_skipped_total{service=\"svc\",group=\"svc\"} 5")
               && strstr (resp.body, "greenline_bus_requests_total{service=\"svc\"}");
        if (!seen && ++tries % 50 == 0)
            fprintf (stderr, "waiting for the metrics; they are now:\n%s\n",
                     resp.body ? resp.body : "(none)");
        gl_test_http_free (&resp);
        if (!seen)
            gl_sleep_ms (100);
    }

    //  Timers run.
    while (atomic_load (&s_ticks) < 3)
        gl_sleep_ms (10);

    //  A stop: SIGTERM to the service's thread; run returns 0 and says so in its log.
    pthread_kill (s_thread, SIGTERM);
    pthread_join (s_thread, NULL);
    assert_int_equal (atomic_load (&s_rc), 0);
    assert_int_equal (s_count (redis, "svc-1", "service.started", -1), 1);
    assert_int_equal (s_count (redis, "svc-1", "service.stopping", -1), 1);
    //  Nothing was delivered twice.
    assert_int_equal (s_count (redis, "svc-1", "demo.pong", -1), 16);
    assert_int_equal (s_count (redis, "svc-1", "demo.left", -1), 1);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&redis);
}

//  A service that cannot start says why.
static void
test_bad_setting (void **state)
{
    (void) state;
    setenv ("GL_BUS_IDEM_TTL_MS", "abc", 1);
    char err[256];
    gl_service_t *svc = gl_service_new ("svc", err, sizeof err);
    assert_null (svc);
    assert_non_null (strstr (err, "GL_BUS_IDEM_TTL_MS"));
    unsetenv ("GL_BUS_IDEM_TTL_MS");
    assert_null (gl_service_new ("Bad Name", err, sizeof err));
}

static int
s_setup (void **state)
{
    (void) state;
    //  SIGTERM stays blocked here, so that it reaches only the service thread's signalfd.
    sigset_t stop;
    sigemptyset (&stop);
    sigaddset (&stop, SIGINT);
    sigaddset (&stop, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &stop, NULL);
    gl_log_init ("test_service", GL_LOG_WARN, false);
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    gl_testredis_export (s_redis);
    setenv ("GL_HEALTH_PORT", "0", 1);
    unsetenv ("GL_SOURCE");
    unsetenv ("GL_BUS_PUB_ENDPOINTS");
    unsetenv ("GL_CONFIG");
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    gl_testredis_destroy (&s_redis);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_bad_setting),
        cmocka_unit_test (test_service),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
