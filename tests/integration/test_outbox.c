/*  gl_outbox's batched delivery against a real Redis: deferred events go out in order in one
    append per run of equal flags, their entries are cleared, the sweep flushes before it looks
    (nothing doubled), a full queue flushes itself, and what a destroyed outbox still held is
    delivered by the next sweep.
    ctest: timeout=120 */
#include "gl/gl_buslog.h"
#include "gl/gl_outbox.h"
#include "gl/gl_pub.h"
#include "gl/gl_sub.h"
#include "gl_testenv.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#define T_KEY "obx:{obx}:outbox"

static gl_testredis_t *s_redis;
static gl_redis_t *s_rc;
static gl_pub_t *s_pub;
static int s_wakes;

static void
t_wake (void *arg)
{
    (void) arg;
    s_wakes++;
}

//  The i payloads of src's log, in order, as a JSON array of integers.
static int
t_collect (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    (void) seq;
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    assert_non_null (ev);
    json_array_append_new (arg, json_integer (gl_event_int (ev, "i", -1)));
    gl_event_destroy (&ev);
    return 0;
}

static json_t *
t_log (void)
{
    json_t *seen = json_array ();
    assert_true (gl_log_read (s_rc, "obx-1", 1, 0, 100000, t_collect, seen, NULL) >= 0);
    return seen;
}

static long long
t_outbox_len (void)
{
    redisReply *r = gl_redis_cmd (s_rc, "HLEN %s", T_KEY);
    assert_non_null (r);
    long long n = r->integer;
    freeReplyObject (r);
    return n;
}

//  A service's write: the entry is stored (as its script would, with the record), then the
//  event is deferred.
static void
t_write (gl_outbox_t *outbox, int i, int flags)
{
    gl_event_t *ev = gl_event_new ("test.deferred");
    assert_non_null (ev);
    json_object_set_new (ev->data, "i", json_integer (i));
    char *entry = gl_outbox_entry (outbox, ev, flags);
    assert_non_null (entry);
    redisReply *r = gl_redis_cmd (s_rc, "HSET %s %s %s", T_KEY, ev->id, entry);
    assert_non_null (r);
    freeReplyObject (r);
    free (entry);
    assert_int_equal (gl_outbox_defer (outbox, ev, flags), 0);
    //  The outbox keeps its own copy: the caller's event may go at once.
    json_object_set_new (ev->data, "i", json_integer (-1));
    gl_event_destroy (&ev);
}

static void
t_assert_log (json_t *seen, int from, int to)
{
    assert_int_equal (json_array_size (seen), (size_t) (to - from + 1));
    for (int i = from; i <= to; i++)
        assert_int_equal (json_integer_value (json_array_get (seen, (size_t) (i - from))), i);
}

static void
test_defer_then_flush (void **state)
{
    (void) state;
    gl_outbox_t *outbox = gl_outbox_new (s_rc, s_pub, T_KEY, NULL);
    assert_non_null (outbox);
    gl_outbox_set_wake (outbox, t_wake, NULL);
    s_wakes = 0;
    //  Plain and critical events mixed: order is kept across the runs of equal flags.
    for (int i = 1; i <= 10; i++)
        t_write (outbox, i, i >= 4 && i <= 6 ? GL_PUB_CRITICAL : 0);
    assert_int_equal (s_wakes, 1);              //  once, when the queue stopped being empty
    assert_int_equal (gl_outbox_deferred (outbox), 10);
    json_t *seen = t_log ();
    assert_int_equal (json_array_size (seen), 0);   //  nothing sent before the flush
    json_decref (seen);
    assert_int_equal (t_outbox_len (), 10);
    assert_int_equal (gl_outbox_flush (outbox), 10);
    assert_int_equal (gl_outbox_deferred (outbox), 0);
    assert_int_equal (t_outbox_len (), 0);
    seen = t_log ();
    t_assert_log (seen, 1, 10);
    json_decref (seen);
    //  Nothing queued: a flush is a no-op; the next deferral wakes again.
    assert_int_equal (gl_outbox_flush (outbox), 0);
    t_write (outbox, 11, 0);
    assert_int_equal (s_wakes, 2);
    //  gl_outbox_deliver sends what is queued first, so the order holds.
    gl_event_t *ev = gl_event_new ("test.deferred");
    json_object_set_new (ev->data, "i", json_integer (12));
    char *entry = gl_outbox_entry (outbox, ev, 0);
    redisReply *r = gl_redis_cmd (s_rc, "HSET %s %s %s", T_KEY, ev->id, entry);
    freeReplyObject (r);
    free (entry);
    assert_int_equal (gl_outbox_deliver (outbox, ev, 0), 0);
    gl_event_destroy (&ev);
    assert_int_equal (gl_outbox_deferred (outbox), 0);
    assert_int_equal (t_outbox_len (), 0);
    seen = t_log ();
    t_assert_log (seen, 1, 12);
    json_decref (seen);
    gl_outbox_destroy (&outbox);
}

static void
test_sweep_full_queue_and_destroy (void **state)
{
    (void) state;
    json_t *seen = t_log ();
    int next = (int) json_array_size (seen) + 1;
    json_decref (seen);
    gl_outbox_t *outbox = gl_outbox_new (s_rc, s_pub, T_KEY, NULL);
    assert_non_null (outbox);

    //  The sweep flushes the queue before it scans: each event once, not twice.
    for (int i = 0; i < 3; i++)
        t_write (outbox, next + i, 0);
    assert_int_equal (gl_outbox_sweep (outbox), 0);
    assert_int_equal (gl_outbox_deferred (outbox), 0);
    assert_int_equal (t_outbox_len (), 0);
    next += 3;

    //  A full queue flushes itself: memory stays bounded however long a loop pass is.
    for (int i = 0; i < GL_OUTBOX_BATCH_MAX + 5; i++)
        t_write (outbox, next + i, 0);
    assert_int_equal (gl_outbox_deferred (outbox), 5);
    assert_int_equal (t_outbox_len (), 5);
    assert_int_equal (gl_outbox_flush (outbox), 5);
    next += GL_OUTBOX_BATCH_MAX + 5;

    //  Destroyed with events queued (a process that stops mid-pass): the entries stay, and the
    //  next sweep delivers them.
    t_write (outbox, next, 0);
    t_write (outbox, next + 1, 0);
    gl_outbox_destroy (&outbox);
    assert_int_equal (t_outbox_len (), 2);
    outbox = gl_outbox_new (s_rc, s_pub, T_KEY, NULL);
    assert_int_equal (gl_outbox_sweep (outbox), 2);
    assert_int_equal (t_outbox_len (), 0);
    gl_outbox_destroy (&outbox);
    next += 2;

    //  Every event once; the batches in order (the sweep's two in the outbox's hash order).
    seen = t_log ();
    assert_int_equal (json_array_size (seen), (size_t) (next - 1));
    json_t *swept = json_array ();
    json_array_append (swept, json_array_get (seen, (size_t) (next - 3)));
    json_array_append (swept, json_array_get (seen, (size_t) (next - 2)));
    json_array_remove (seen, (size_t) (next - 2));
    json_array_remove (seen, (size_t) (next - 3));
    t_assert_log (seen, 1, next - 3);
    int64_t a = json_integer_value (json_array_get (swept, 0));
    int64_t b = json_integer_value (json_array_get (swept, 1));
    assert_true ((a == next - 2 && b == next - 1) || (a == next - 1 && b == next - 2));
    json_decref (swept);
    json_decref (seen);
}

//  The clear hook: what it is given, and the synchronous HDEL when it declines.
static int s_clear_calls;
static size_t s_clear_n;
static int
t_clear (const char *key, const char *const *ids, size_t n, void *arg)
{
    s_clear_calls++;
    s_clear_n = n;
    assert_string_equal (key, T_KEY);
    for (size_t i = 0; i < n; i++)
        assert_true (gl_id_valid (ids[i]));
    if (arg)
        return -1;                      //  declines: the outbox deletes them itself
    //  What an asynchronous connection would do, later: here at once, on the test's own.
    const char *argv[2 + GL_OUTBOX_BATCH_MAX] = { "HDEL", key };
    for (size_t i = 0; i < n; i++)
        argv[2 + i] = ids[i];
    redisReply *r = gl_redis_cmdargv (s_rc, (int) (2 + n), argv, NULL);
    assert_non_null (r);
    freeReplyObject (r);
    return 0;
}

//  Held entries (written over an asynchronous connection, reply not handled yet) are left by
//  the sweep; released, they are delivered once. The clear hook replaces the flush's HDEL.
static void
test_hold_and_clear (void **state)
{
    (void) state;
    json_t *seen = t_log ();
    int next = (int) json_array_size (seen) + 1;
    json_decref (seen);
    gl_outbox_t *outbox = gl_outbox_new (s_rc, s_pub, T_KEY, NULL);
    assert_non_null (outbox);

    //  An entry in Redis whose writer holds it: the sweep leaves it alone.
    gl_event_t *ev = gl_event_new ("test.deferred");
    json_object_set_new (ev->data, "i", json_integer (next));
    char *entry = gl_outbox_entry (outbox, ev, 0);
    assert_int_equal (gl_outbox_hold (outbox, ev->id), 0);
    assert_int_equal (gl_outbox_held (outbox), 1);
    redisReply *r = gl_redis_cmd (s_rc, "HSET %s %s %s", T_KEY, ev->id, entry);
    freeReplyObject (r);
    free (entry);
    assert_int_equal (gl_outbox_sweep (outbox), 0);
    assert_int_equal (t_outbox_len (), 1);
    //  The writer's reply comes: release, defer, and the flush clears it through the hook.
    gl_outbox_release (outbox, ev->id);
    gl_outbox_release (outbox, ev->id);         //  twice: nothing happens
    assert_int_equal (gl_outbox_held (outbox), 0);
    gl_outbox_set_clear (outbox, t_clear, NULL);
    assert_int_equal (gl_outbox_defer (outbox, ev, 0), 0);
    gl_event_destroy (&ev);
    t_write (outbox, next + 1, 0);
    assert_int_equal (gl_outbox_flush (outbox), 2);
    assert_int_equal (s_clear_calls, 1);
    assert_int_equal (s_clear_n, 2);
    assert_int_equal (t_outbox_len (), 0);
    //  A hook that declines: the outbox's own HDEL.
    gl_outbox_set_clear (outbox, t_clear, (void *) 1);
    t_write (outbox, next + 2, 0);
    assert_int_equal (gl_outbox_flush (outbox), 1);
    assert_int_equal (s_clear_calls, 2);
    assert_int_equal (t_outbox_len (), 0);
    //  A writer that dies holding an entry: the next process's sweep delivers it.
    ev = gl_event_new ("test.deferred");
    json_object_set_new (ev->data, "i", json_integer (next + 3));
    entry = gl_outbox_entry (outbox, ev, 0);
    assert_int_equal (gl_outbox_hold (outbox, ev->id), 0);
    r = gl_redis_cmd (s_rc, "HSET %s %s %s", T_KEY, ev->id, entry);
    freeReplyObject (r);
    free (entry);
    gl_event_destroy (&ev);
    gl_outbox_destroy (&outbox);
    outbox = gl_outbox_new (s_rc, s_pub, T_KEY, NULL);
    assert_int_equal (gl_outbox_sweep (outbox), 1);
    assert_int_equal (t_outbox_len (), 0);
    gl_outbox_destroy (&outbox);
    seen = t_log ();
    //  The four of this test, in order (earlier tests' swept events are in hash order).
    assert_int_equal (json_array_size (seen), (size_t) (next + 3));
    for (int i = 0; i < 4; i++)
        assert_int_equal (json_integer_value (json_array_get (seen, (size_t) (next - 1 + i))),
                          next + i);
    json_decref (seen);
}

//  A subscriber's staged events: settle delivers those whose transaction committed (their
//  entries are there) in staging order, once each, keeps the others until a sweep.
static void
test_settle (void **state)
{
    (void) state;
    json_t *seen = t_log ();
    int next = (int) json_array_size (seen) + 1;
    json_decref (seen);
    gl_outbox_t *outbox = gl_outbox_new (s_rc, s_pub, T_KEY, NULL);
    assert_non_null (outbox);
    gl_tx_t *tx = gl_tx_new ();
    gl_event_t *evs[3];
    for (int i = 0; i < 3; i++) {
        evs[i] = gl_event_new ("test.staged");
        json_object_set_new (evs[i]->data, "i", json_integer (next + i));
        assert_int_equal (gl_outbox_stage (outbox, tx, evs[i], 0), 0);
    }
    //  The first staged twice (its transaction retried): one entry, one append.
    assert_int_equal (gl_outbox_stage (outbox, tx, evs[0], 0), 0);
    assert_int_equal (gl_outbox_staged (outbox), 4);
    //  Commit what a transaction of events 0 and 1 would write; event 2's was rolled back.
    for (int i = 0; i < 2; i++) {
        char *entry = gl_outbox_entry (outbox, evs[i], 0);
        redisReply *r = gl_redis_cmd (s_rc, "HSET %s %s %s", T_KEY, evs[i]->id, entry);
        freeReplyObject (r);
        free (entry);
    }
    assert_int_equal (gl_outbox_settle (outbox), 2);
    assert_int_equal (t_outbox_len (), 0);
    assert_int_equal (gl_outbox_settle (outbox), 0);          //  event 2: still not there
    //  Event 2 committed late: the next settle delivers it.
    char *entry = gl_outbox_entry (outbox, evs[2], 0);
    redisReply *r = gl_redis_cmd (s_rc, "HSET %s %s %s", T_KEY, evs[2]->id, entry);
    freeReplyObject (r);
    free (entry);
    assert_int_equal (gl_outbox_settle (outbox), 1);
    assert_int_equal (t_outbox_len (), 0);
    seen = t_log ();
    assert_int_equal (json_array_size (seen), (size_t) (next + 2));
    for (int i = 0; i < 3; i++)
        assert_int_equal (json_integer_value (json_array_get (seen, (size_t) (next - 1 + i))),
                          next + i);
    json_decref (seen);
    //  A staged event never committed is forgotten by a complete sweep.
    gl_event_t *lost = gl_event_new ("test.staged");
    json_object_set_new (lost->data, "i", json_integer (-1));
    assert_int_equal (gl_outbox_stage (outbox, tx, lost, 0), 0);
    assert_int_equal (gl_outbox_sweep (outbox), 0);
    assert_int_equal (gl_outbox_settle (outbox), 0);
    gl_event_destroy (&lost);
    for (int i = 0; i < 3; i++)
        gl_event_destroy (&evs[i]);
    gl_tx_destroy (&tx);
    gl_outbox_destroy (&outbox);
}

static int
t_setup (void **state)
{
    (void) state;
    s_redis = gl_testredis_start (NULL);
    assert_non_null (s_redis);
    s_rc = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 2000);
    assert_non_null (s_rc);
    char err[256];
    s_pub = gl_pub_new (s_rc, "obx-1", NULL, err, sizeof err);
    assert_non_null (s_pub);
    return 0;
}

static int
t_teardown (void **state)
{
    (void) state;
    gl_pub_destroy (&s_pub);
    gl_redis_destroy (&s_rc);
    gl_testredis_destroy (&s_redis);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_defer_then_flush),
        cmocka_unit_test (test_sweep_full_queue_and_destroy),
        cmocka_unit_test (test_hold_and_clear),
        cmocka_unit_test (test_settle),
    };
    return cmocka_run_group_tests_name ("gl_outbox batches", tests, t_setup, t_teardown);
}
