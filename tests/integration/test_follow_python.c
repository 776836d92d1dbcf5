/*  docs/examples/follow.py — the outside subscriber docs/events.md shows — really follows the
    stream without loss: it starts after 50 events were published (it must fetch them with
    log.range when a heartbeat reveals them), then 50 more arrive live, and it prints every seq
    1..100 exactly once, in order. Runs under Debian's /usr/bin/python3 with python3-zmq and python3-msgpack.
    ctest: timeout=120 labels=nosan */
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_logrange.h"
#include "gl/gl_pub.h"
#include "gl_testenv.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

static gl_testredis_t *s_redis;
static gl_rep_t *s_rep;
static atomic_bool s_stop;

static void *
s_server (void *arg)
{
    zpoller_t *poller = zpoller_new (gl_rep_sock (s_rep), NULL);
    while (!atomic_load (&s_stop)) {
        void *which = zpoller_wait (poller, gl_rep_pending (s_rep) ? 0 : 50);
        if (which || gl_rep_pending (s_rep))
            gl_rep_dispatch (s_rep);
    }
    zpoller_destroy (&poller);
    return arg;
}

static void
test_follow (void **state)
{
    gl_redis_t *rp = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 2000);
    gl_redis_t *rs = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 2000);
    gl_pub_opts_t po;
    gl_pub_opts_default (&po);
    po.bind = "tcp://127.0.0.1:*";
    po.heartbeat_ms = 100;
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "follow-1", &po, err, sizeof err);
    assert_non_null (pub);
    for (int i = 0; i < 50; i++) {
        gl_event_t *ev = gl_event_new ("test.followed");
        assert_int_equal (gl_pub_send (pub, ev, 0), 0);
        gl_event_destroy (&ev);
    }
    s_rep = gl_rep_new ("tcp://127.0.0.1:*");
    assert_non_null (s_rep);
    assert_int_equal (gl_logrange_register (s_rep, rs), 0);
    pthread_t thread;
    pthread_create (&thread, NULL, s_server, NULL);

    char out[128], script[1024], e1[300], e2[300];
    snprintf (out, sizeof out, "/tmp/gl-follow-%d.out", (int) getpid ());
    unlink (out);
    snprintf (script, sizeof script, "%s/docs/examples/follow.py", getenv ("GL_SOURCE_DIR"));
    snprintf (e1, sizeof e1, "GL_BUS_PUB_ENDPOINTS=%s", gl_pub_endpoint (pub));
    snprintf (e2, sizeof e2, "GL_ENDPOINT_INTAKE=%s", gl_rep_endpoint (s_rep));
    char *env[] = { e1, e2, "GL_FOLLOW_UNTIL=follow-1:100", NULL };
    char *argv[] = { "/usr/bin/python3", script, NULL };
    pid_t pid = gl_test_spawn ("/usr/bin/python3", argv, env, out);
    assert_true (pid > 0);

    //  Heartbeats reveal the first 50; then 50 more, live.
    for (int i = 0; i < 20; i++) {
        gl_pub_tick (pub);
        gl_sleep_ms (50);
    }
    for (int i = 0; i < 50; i++) {
        gl_event_t *ev = gl_event_new ("test.followed");
        assert_int_equal (gl_pub_send (pub, ev, 0), 0);
        gl_event_destroy (&ev);
        gl_pub_tick (pub);
    }
    int status = -1;
    while ((status = gl_test_wait (pid, 100)) == -1)
        gl_pub_tick (pub);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);

    FILE *f = fopen (out, "r");
    assert_non_null (f);
    char line[256];
    int expect = 1;
    while (fgets (line, sizeof line, f)) {
        char src[64], type[64];
        int seq;
        if (sscanf (line, "%63s %d %63s", src, &seq, type) != 3)
            continue;       //  anything else the interpreter printed
        assert_string_equal (src, "follow-1");
        assert_int_equal (seq, expect);
        expect++;
    }
    fclose (f);
    assert_int_equal (expect, 101);
    unlink (out);

    atomic_store (&s_stop, true);
    pthread_join (thread, NULL);
    gl_rep_destroy (&s_rep);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&rs);
}

static int
s_setup (void **state)
{
    gl_log_init ("test_follow_python", GL_LOG_WARN, false);
    s_redis = gl_testredis_start (NULL);
    return s_redis ? 0 : -1;
}

static int
s_teardown (void **state)
{
    gl_testredis_destroy (&s_redis);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test (test_follow) };
    int rc = cmocka_run_group_tests (tests, s_setup, s_teardown);
    zsys_shutdown ();
    return rc;
}
