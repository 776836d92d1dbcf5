/*  gl_redis finds the primary through Redis Sentinel (docs/operations.md, "Scale out"): a real
    primary, a real replica and a real redis-sentinel on loopback; the client is given a wrong
    first address and only the sentinel; it reaches the primary, and after the primary is killed
    and the sentinel promotes the replica, the next command lands on the new primary with the
    data written before.
    ctest: timeout=180 */
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static gl_testredis_t *s_primary, *s_replica;
static pid_t s_sentinel = -1;
static int s_sentinel_port;
static char s_conf[256], s_log[256];

//  The string reply of a command on a fresh connection to port (NULL when none); caller frees.
static char *
s_ask (int port, const char *cmd)
{
    gl_redis_t *r = gl_redis_new ("127.0.0.1", port, NULL, 1000, 0);
    redisReply *reply = gl_redis_cmd (r, "%s", cmd);
    char *out = NULL;
    if (reply && (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS))
        out = strdup (reply->str);
    if (reply)
        freeReplyObject (reply);
    gl_redis_destroy (&r);
    return out;
}

static void
test_bad_settings (void **state)
{
    (void) state;
    gl_redis_t *r = gl_redis_new ("127.0.0.1", 1, NULL, 1000, 0);
    assert_int_equal (gl_redis_set_sentinels (r, "nohostport", "greenline", NULL), -1);
    assert_int_equal (gl_redis_set_sentinels (r, "127.0.0.1:0", "greenline", NULL), -1);
    assert_int_equal (gl_redis_set_sentinels (r, "127.0.0.1:26379", "", NULL), -1);
    assert_int_equal (gl_redis_set_sentinels (r, "127.0.0.1:26379", "two words", NULL), -1);
    gl_redis_destroy (&r);
}

static void
test_failover (void **state)
{
    (void) state;
    //  A wrong first guess (port 1): only the sentinel knows where the primary is.
    gl_redis_t *r = gl_redis_new ("127.0.0.1", 1, NULL, 2000, 60000);
    char sentinels[64];
    snprintf (sentinels, sizeof sentinels, "127.0.0.1:%d", s_sentinel_port);
    assert_int_equal (gl_redis_set_sentinels (r, sentinels, "greenline", NULL), 0);
    redisReply *reply = gl_redis_cmd (r, "SET before-failover kept");
    assert_non_null (reply);
    assert_int_equal (reply->type, REDIS_REPLY_STATUS);
    freeReplyObject (reply);
    //  The write reaches the replica before the primary dies.
    reply = gl_redis_cmd (r, "WAIT 1 10000");
    assert_non_null (reply);
    assert_int_equal (reply->integer, 1);
    freeReplyObject (reply);

    gl_testredis_kill (s_primary);
    //  The sentinel notices (down-after 1 s) and promotes the replica. The command that meets the
    //  dead connection fails (NULL: it may or may not have run, gl_redis.h); the next one
    //  reconnects — asking the sentinel, waiting within the reconnect budget — and lands on the
    //  new primary. SET is safe to repeat.
    reply = gl_redis_cmd (r, "SET after-failover yes");
    if (!reply)
        reply = gl_redis_cmd (r, "SET after-failover yes");
    assert_non_null (reply);
    assert_int_equal (reply->type, REDIS_REPLY_STATUS);
    freeReplyObject (reply);
    reply = gl_redis_cmd (r, "GET before-failover");
    assert_non_null (reply);
    assert_string_equal (reply->str, "kept");
    freeReplyObject (reply);
    char *role = NULL;
    gl_redis_t *direct = gl_redis_new ("127.0.0.1", s_replica->port, NULL, 1000, 0);
    reply = gl_redis_cmd (direct, "ROLE");
    assert_non_null (reply);
    role = strdup (reply->element[0]->str);
    freeReplyObject (reply);
    gl_redis_destroy (&direct);
    assert_string_equal (role, "master");
    free (role);
    reply = gl_redis_cmd (r, "GET after-failover");
    assert_string_equal (reply->str, "yes");
    freeReplyObject (reply);
    gl_redis_destroy (&r);
}

static int
s_setup (void **state)
{
    (void) state;
    gl_log_init ("test_redis_sentinel", GL_LOG_WARN, false);
    s_primary = gl_testredis_start (NULL);
    if (!s_primary)
        return -1;
    char extra[64];
    snprintf (extra, sizeof extra, "--replicaof 127.0.0.1 %d", s_primary->port);
    s_replica = gl_testredis_start (extra);
    if (!s_replica)
        return -1;
    //  The replica is in sync before the sentinel starts watching.
    for (int i = 0; i < 300; i++) {
        gl_redis_t *r = gl_redis_new ("127.0.0.1", s_replica->port, NULL, 1000, 0);
        redisReply *reply = gl_redis_cmd (r, "INFO replication");
        bool up = reply && reply->type == REDIS_REPLY_STRING
                  && strstr (reply->str, "master_link_status:up");
        if (reply)
            freeReplyObject (reply);
        gl_redis_destroy (&r);
        if (up)
            break;
        gl_sleep_ms (50);
    }
    s_sentinel_port = gl_test_free_port ();
    snprintf (s_conf, sizeof s_conf, "/tmp/gl-test-sentinel-%d.conf", (int) getpid ());
    snprintf (s_log, sizeof s_log, "/tmp/gl-test-sentinel-%d.log", (int) getpid ());
    FILE *f = fopen (s_conf, "w");
    if (!f)
        return -1;
    fprintf (f,
             "port %d\nbind 127.0.0.1\ndaemonize no\n"
             "sentinel monitor greenline 127.0.0.1 %d 1\n"
             "sentinel down-after-milliseconds greenline 1000\n"
             "sentinel failover-timeout greenline 10000\n",
             s_sentinel_port, s_primary->port);
    fclose (f);
    char *argv[] = { "redis-server", s_conf, "--sentinel", NULL };
    s_sentinel = gl_test_spawn ("/usr/bin/redis-server", argv, NULL, s_log);
    if (s_sentinel < 0)
        return -1;
    //  Ready when it knows the primary.
    for (int i = 0; i < 300; i++) {
        char *pong = s_ask (s_sentinel_port, "PING");
        bool ok = pong && strcmp (pong, "PONG") == 0;
        free (pong);
        if (ok)
            return 0;
        gl_sleep_ms (50);
    }
    return -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    if (s_sentinel > 0)
        gl_test_stop (s_sentinel, 5000);
    gl_testredis_destroy (&s_replica);
    gl_testredis_destroy (&s_primary);
    unlink (s_conf);
    unlink (s_log);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_bad_settings),
        cmocka_unit_test (test_failover),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
