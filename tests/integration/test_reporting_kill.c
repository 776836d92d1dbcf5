/*  gl-reporting killed with SIGKILL in the middle of a stream of calls, three times, and started
    again (also while events keep coming): the figures at the end count every call exactly once
    — the checkpoint and the bus cursors move together, the rest is replayed from the log. And a
    standby replica taking over from a killed active one.
    ctest: timeout=300 labels=nosan */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <cmocka.h>
#include "test_reporting_env.h"

#define T_CALLS 1500

static void
test_kill_mid_stream (void **state)
{
    const char *extra[] = { "GL_REPORTING_CHECKPOINT_MS=20", NULL };
    s_pid = t_spawn (NULL, extra);
    int64_t wait_sum = 0;
    int mid = 0;
    for (int i = 0; i < T_CALLS; i++) {
        char id[32];
        snprintf (id, sizeof id, "k%d", i);
        int64_t offer = T_H (8, 0, 0) + i * 20000LL;
        int wait = i % 97;
        t_offered (id, i % 3 ? "ar" : "fr", offer);
        t_answered (id, i % 3 ? "ar" : "fr", offer, wait, "agent-k");
        t_ended (id, i % 3 ? "ar" : "fr", offer, wait, 60 + i % 7, "agent-k");
        wait_sum += wait * 1000LL;
        if (i == T_CALLS / 4 || i == T_CALLS / 2 || i == 3 * T_CALLS / 4) {
            //  Mid-stream: some of the stream is checkpointed, not all of it.
            redisReply *cur = gl_redis_cmd (s_rc, "HGET gl:cur:{reporting} intake-1");
            gl_cursor_t c = { 0, 0 };
            if (cur && cur->type == REDIS_REPLY_STRING)
                gl_cursor_parse (cur->str, cur->len, &c);
            if (cur)
                freeReplyObject (cur);
            mid += c.seq > 0 && c.seq < s_published;
            kill (s_pid, SIGKILL);
            assert_true (gl_test_wait (s_pid, 10000) >= 0);
            //  Its leases lapse on the business clock; events keep coming meanwhile.
            t_clock_set (s_now + 15000);
            for (int k = 0; k < 20; k++)
                gl_pub_tick (s_pub);
            s_pid = t_spawn (NULL, extra);
        }
    }
    assert_true (mid > 0);
    json_t *params = json_pack ("{s:s}", "period", "day");
    json_t *r = NULL;
    while (true) {
        r = t_ok ("reporting.report", "supervisor", json_incref (params),
                  json_pack ("{s:s}", "date", "2026-03-10"));
        if (t_path (r, "calls.handled") >= T_CALLS)
            break;
        json_decref (r);
        gl_pub_tick (s_pub);
        gl_sleep_ms (50);
    }
    assert_int_equal (t_path (r, "calls.offered"), T_CALLS);
    assert_int_equal (t_path (r, "calls.answered"), T_CALLS);
    assert_int_equal (t_path (r, "calls.handled"), T_CALLS);
    assert_int_equal (t_path (r, "calls.asa_ms"), llround ((double) wait_sum / T_CALLS));
    assert_int_equal (t_path (r, "calls.by_language.fr.offered"), T_CALLS / 3);
    json_decref (r);
    json_decref (params);
    //  A clean stop, then the checkpoint's lifetime counts: every event once.
    int status = gl_test_stop (s_pid, 10000);
    s_pid = -1;
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    redisReply *t = gl_redis_cmd (s_rc, "HGET reporting:{reporting}:agg t");
    assert_non_null (t);
    assert_int_equal (t->type, REDIS_REPLY_STRING);
    char want[64];
    snprintf (want, sizeof want, "events|type=call.offered\t%d\n", T_CALLS);
    assert_non_null (strstr (t->str, want));
    snprintf (want, sizeof want, "events|type=call.ended\t%d\n", T_CALLS);
    assert_non_null (strstr (t->str, want));
    assert_null (strstr (t->str, "events.duplicate"));
    freeReplyObject (t);
}

//  Two replicas: the second stands by while the first holds the consumer group's lease, takes
//  over when the first is killed, and ends with every call counted once.
static void
test_standby_takes_over (void **state)
{
    const char *extra[] = { "GL_REPORTING_CHECKPOINT_MS=20", NULL };
    s_pid = t_spawn (NULL, extra);
    t_offered ("first", "ar", T_H (7, 0, 0));
    t_wait_applied (1);                     //  the first replica is active
    char router2[64];
    snprintf (router2, sizeof router2, "tcp://127.0.0.1:%d", gl_test_free_port ());
    s_router_override = router2;
    pid_t standby = t_spawn (NULL, extra);
    s_router_override = NULL;
    int n = 600;
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf (id, sizeof id, "s%d", i);
        int64_t offer = T_H (8, 0, 0) + i * 20000LL;
        t_offered (id, "ar", offer);
        t_abandoned (id, "ar", offer, 10 + i % 50);
        if (i == n / 2) {
            kill (s_pid, SIGKILL);
            assert_true (gl_test_wait (s_pid, 10000) >= 0);
            s_pid = standby;
            t_clock_set (s_now + 15000);    //  the dead replica's lease lapses
        }
    }
    gl_req_destroy (&s_req);
    s_req = gl_req_new (router2);
    assert_int_equal (gl_req_set_auth (s_req, T_TOKEN), 0);
    json_t *params = json_pack ("{s:s}", "period", "day");
    while (true) {
        json_t *r = t_ok ("reporting.report", "supervisor", json_incref (params),
                          json_pack ("{s:s}", "date", "2026-03-10"));
        int64_t abandoned = t_path (r, "calls.abandoned");
        int64_t offered = t_path (r, "calls.offered");
        json_decref (r);
        if (abandoned >= n) {
            assert_int_equal (abandoned, n);
            assert_int_equal (offered, n + 1);
            break;
        }
        t_clock_set (s_now + 1000);
        gl_pub_tick (s_pub);
        gl_sleep_ms (50);
    }
    json_decref (params);
}

static int
t_setup (void **state)
{
    t_env_start ("reporting-kill");
    return 0;
}

static int
t_teardown (void **state)
{
    t_env_stop ();
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown (test_kill_mid_stream, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown (test_standby_takes_over, t_setup, t_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
