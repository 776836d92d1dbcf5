/*  "log.range": an outside system fetches the events it missed, by request, over real sockets,
    and gets a clear error for a bad request or an unknown source.
    ctest: timeout=120 */
#include "gl/gl_log.h"
#include "gl/gl_logrange.h"
#include "gl/gl_pub.h"
#include "gl_testenv.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static gl_testredis_t *s_redis;
static gl_rep_t *s_rep;
static atomic_bool s_stop;

static void *
s_server (void *arg)
{
    gl_redis_t *redis = arg;
    zpoller_t *poller = zpoller_new (gl_rep_sock (s_rep), NULL);
    while (!atomic_load (&s_stop)) {
        void *which = zpoller_wait (poller, gl_rep_pending (s_rep) ? 0 : 50);
        if (which || gl_rep_pending (s_rep))
            gl_rep_dispatch (s_rep);
    }
    zpoller_destroy (&poller);
    (void) redis;
    return NULL;
}

static void
test_range (void **state)
{
    gl_redis_t *rp = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 2000);
    gl_redis_t *rs = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 2000);
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "range-1", NULL, err, sizeof err);
    assert_non_null (pub);
    for (int i = 1; i <= 30; i++) {
        gl_event_t *ev = gl_event_new ("test.ranged");
        json_object_set_new (ev->data, "i", json_integer (i));
        assert_int_equal (gl_pub_send (pub, ev, 0), 0);
        gl_event_destroy (&ev);
    }
    s_rep = gl_rep_new ("tcp://127.0.0.1:*");
    assert_non_null (s_rep);
    assert_int_equal (gl_logrange_register (s_rep, rs), 0);
    pthread_t thread;
    pthread_create (&thread, NULL, s_server, rs);
    gl_req_t *client = gl_req_new (gl_rep_endpoint (s_rep));

    gl_reply_t reply = { 0 };
    assert_int_equal (gl_logrange_fetch (client, "range-1", 11, 20, 1000, 5000, &reply), 0);
    json_t *events = json_object_get (reply.body, "events");
    assert_int_equal (json_array_size (events), 10);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (events, 0), "seq")), 11);
    json_t *data = json_object_get (json_array_get (events, 9), "data");
    assert_int_equal (json_integer_value (json_object_get (data, "i")), 20);
    assert_int_equal (json_integer_value (json_object_get (reply.body, "head")), 30);
    gl_reply_clear (&reply);

    //  max bounds the answer; "to" 0 means the end
    assert_int_equal (gl_logrange_fetch (client, "range-1", 25, 0, 3, 5000, &reply), 0);
    assert_int_equal (json_array_size (json_object_get (reply.body, "events")), 3);
    gl_reply_clear (&reply);

    //  unknown source, bad fields: clear errors naming the field
    assert_int_equal (gl_logrange_fetch (client, "nobody-1", 1, 0, 10, 5000, &reply), -1);
    assert_int_equal (reply.status, 404);
    assert_string_equal (reply.error_code, "unknown_source");
    gl_reply_clear (&reply);
    assert_int_equal (gl_logrange_fetch (client, "range-1", 1, 0, 5000, 5000, &reply), -1);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error_field, "max");
    gl_reply_clear (&reply);
    json_t *body = json_pack ("{s:s, s:i, s:s}", "src", "range-1", "from", 1, "extra", "x");
    gl_req_call (client, "log.range", "", body, 5000, &reply);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error_field, "extra");
    gl_reply_clear (&reply);
    json_decref (body);
    body = json_pack ("{s:s, s:s}", "src", "range-1", "from", "one");
    gl_req_call (client, "log.range", "", body, 5000, &reply);
    assert_int_equal (reply.status, 400);
    assert_string_equal (reply.error_field, "from");
    gl_reply_clear (&reply);
    json_decref (body);

    atomic_store (&s_stop, true);
    pthread_join (thread, NULL);
    gl_req_destroy (&client);
    gl_rep_destroy (&s_rep);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&rs);
}

static int
s_setup (void **state)
{
    gl_log_init ("test_logrange", GL_LOG_WARN, false);
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
    const struct CMUnitTest tests[] = { cmocka_unit_test (test_range) };
    int rc = cmocka_run_group_tests (tests, s_setup, s_teardown);
    zsys_shutdown ();
    return rc;
}
