/*  gl_wq against a real redis-server: add/claim/complete, idempotent add, consumers splitting
    the work, reclaim from a consumer that went quiet, dead letters, bounds, Redis down, garbage
    in the stream. */
/* ctest: timeout=120 */
#include "gl/gl_clock.h"
#include "gl/gl_redis.h"
#include "gl/gl_wq.h"
#include "gl_testenv.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

static gl_testredis_t *s_env;

static gl_redis_t *
s_redis (void)
{
    gl_redis_t *r = gl_redis_new ("127.0.0.1", s_env->port, NULL, 2000, 2000);
    assert_non_null (r);
    return r;
}

//  A raw command whose integer reply we want.
static long long
s_int (gl_redis_t *r, const char *fmt, const char *a1, const char *a2)
{
    redisReply *reply = gl_redis_cmd (r, fmt, a1, a2);
    assert_non_null (reply);
    long long n = -1;
    assert_int_equal (gl_redis_reply_int (reply, &n), 0);
    freeReplyObject (reply);
    return n;
}

static void
s_raw (gl_redis_t *r, int argc, const char **argv)
{
    redisReply *reply = gl_redis_cmdargv (r, argc, argv, NULL);
    assert_non_null (reply);
    assert_int_not_equal (reply->type, REDIS_REPLY_ERROR);
    freeReplyObject (reply);
}

static gl_wq_stats_t
s_stats (gl_wq_t *wq)
{
    gl_wq_stats_t st;
    assert_int_equal (gl_wq_stats (wq, &st), 0);
    return st;
}

//  Claim until something comes back (reclaim waits on Redis's idle time): no timing assertion,
//  ctest's timeout bounds the wait.
static int
s_claim_poll (gl_wq_t *wq, int max, gl_wq_item_t **items)
{
    int count = 0;
    while (count == 0) {
        assert_int_equal (gl_wq_claim (wq, max, 0, items, &count), 0);
        if (count == 0)
            gl_sleep_ms (20);
    }
    return count;
}

static void
s_free_items (gl_wq_item_t **items, int count)
{
    for (int i = 0; i < count; i++)
        gl_wq_item_free (&items[i]);
}

static gl_wq_cmd_t
s_cmd (int argc, const char **argv)
{
    return (gl_wq_cmd_t) { .argc = argc, .argv = argv, .argvlen = NULL };
}

static void
test_add_claim_complete (void **state)
{
    gl_redis_t *r = s_redis ();
    gl_wq_t *wq = gl_wq_new (r, "basic", "c1", NULL);
    assert_non_null (wq);
    char ids[3][GL_WQ_ID_MAX];
    const char payload[] = "hello\0world";
    assert_int_equal (gl_wq_add (wq, "item-1", payload, sizeof payload, ids[0]), 0);
    //  The script cache is lost (as after a Redis restart): gl_redis reloads it.
    redisReply *flush = gl_redis_cmd (r, "SCRIPT FLUSH");
    freeReplyObject (flush);
    assert_int_equal (gl_wq_add (wq, "item-2", "two", 3, ids[1]), 0);
    assert_int_equal (gl_wq_add (wq, "item-3", NULL, 0, ids[2]), 0);
    assert_string_not_equal (ids[0], ids[1]);
    gl_wq_stats_t st = s_stats (wq);
    assert_int_equal (st.depth, 3);
    assert_int_equal (st.pending, 0);
    assert_int_equal (gl_wq_depth (wq), 3);

    gl_wq_item_t *items[10];
    int count = 0;
    assert_int_equal (gl_wq_claim (wq, 10, 0, items, &count), 0);
    assert_int_equal (count, 3);
    size_t len = 0;
    const char *p = gl_wq_item_payload (items[0], &len);
    assert_int_equal (len, sizeof payload);
    assert_memory_equal (p, payload, sizeof payload);
    assert_string_equal (gl_wq_item_key (items[0]), "item-1");
    assert_string_equal (gl_wq_item_id (items[0]), ids[0]);
    assert_int_equal (gl_wq_item_deliveries (items[0]), 1);
    assert_string_equal (gl_wq_item_key (items[2]), "item-3");
    gl_wq_item_payload (items[2], &len);
    assert_int_equal (len, 0);
    assert_int_equal (s_stats (wq).pending, 3);

    for (int i = 0; i < count; i++) {
        const char *hset[] = { "HSET", "test:{basic}:results", gl_wq_item_key (items[i]), "ok" };
        gl_wq_cmd_t cmd = s_cmd (4, hset);
        assert_int_equal (gl_wq_complete (wq, items[i], 1, &cmd), 0);
    }
    st = s_stats (wq);
    assert_int_equal (st.depth, 0);
    assert_int_equal (st.pending, 0);
    assert_int_equal (st.dead, 0);
    assert_int_equal (s_int (r, "HLEN %s", "test:{basic}:results", NULL), 3);
    //  Completing again applies nothing.
    const char *hincr[] = { "HINCRBY", "test:{basic}:twice", "n", "1" };
    gl_wq_cmd_t cmd = s_cmd (4, hincr);
    assert_int_equal (gl_wq_complete (wq, items[0], 1, &cmd), GL_WQ_ALREADY_DONE);
    assert_int_equal (s_int (r, "EXISTS %s", "test:{basic}:twice", NULL), 0);

    s_free_items (items, count);
    assert_int_equal (gl_wq_claim (wq, 10, 0, items, &count), 0);
    assert_int_equal (count, 0);
    //  Blocking with nothing to read returns nothing after block_ms.
    assert_int_equal (gl_wq_claim (wq, 10, 50, items, &count), 0);
    assert_int_equal (count, 0);
    gl_wq_destroy (&wq);
    assert_null (wq);
    gl_redis_destroy (&r);
}

//  Child process: once the parent's connection is blocked in XREADGROUP, add one item.
static void
s_add_when_blocked (int port)
{
    gl_redis_t *c = gl_redis_new ("127.0.0.1", port, NULL, 2000, 2000);
    for (int i = 0; i < 500; i++) {
        redisReply *l = gl_redis_cmd (c, "CLIENT LIST");
        bool blocked = l && l->type == REDIS_REPLY_STRING && strstr (l->str, "cmd=xreadgroup");
        if (l)
            freeReplyObject (l);
        if (blocked)
            break;
        gl_sleep_ms (10);
    }
    gl_wq_t *producer = gl_wq_new (c, "block", NULL, NULL);
    int rc = producer ? gl_wq_add (producer, "b-1", "x", 1, NULL) : -1;
    gl_wq_destroy (&producer);
    gl_redis_destroy (&c);
    _exit (rc == 0 ? 0 : 1);
}

static void
test_blocking_claim_gets_new_item (void **state)
{
    gl_redis_t *r = s_redis ();
    gl_wq_t *wq = gl_wq_new (r, "block", "c1", NULL);
    gl_wq_item_t *items[4];
    int count = 0;
    assert_int_equal (gl_wq_claim (wq, 4, 0, items, &count), 0);
    assert_int_equal (count, 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0)
        s_add_when_blocked (s_env->port);
    while (count == 0)
        assert_int_equal (gl_wq_claim (wq, 4, 1500, items, &count), 0);
    int status = gl_test_wait (pid, 30000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    assert_int_equal (count, 1);
    assert_string_equal (gl_wq_item_key (items[0]), "b-1");
    assert_int_equal (gl_wq_item_deliveries (items[0]), 1);
    assert_int_equal (gl_wq_complete (wq, items[0], 0, NULL), 0);
    gl_wq_item_free (&items[0]);
    assert_int_equal (gl_wq_depth (wq), 0);
    //  A producer handle cannot claim.
    gl_wq_t *producer = gl_wq_new (r, "block", NULL, NULL);
    assert_non_null (producer);
    assert_int_equal (gl_wq_claim (producer, 4, 0, items, &count), -1);
    assert_non_null (strstr (gl_wq_errstr (producer), "consumer"));
    gl_wq_destroy (&producer);
    gl_wq_destroy (&wq);
    gl_redis_destroy (&r);
}

static void
test_same_key_twice_is_one_item (void **state)
{
    gl_redis_t *r = s_redis ();
    gl_wq_t *wq = gl_wq_new (r, "dup", "c1", NULL);
    char id1[GL_WQ_ID_MAX], id2[GL_WQ_ID_MAX];
    assert_int_equal (gl_wq_add (wq, "dup-1", "a", 1, id1), 0);
    assert_int_equal (gl_wq_add (wq, "dup-1", "b", 1, id2), GL_WQ_DUPLICATE);
    assert_string_equal (id1, id2);
    assert_int_equal (gl_wq_depth (wq), 1);

    gl_wq_item_t *items[4];
    int count = 0;
    assert_int_equal (gl_wq_claim (wq, 4, 0, items, &count), 0);
    assert_int_equal (count, 1);
    //  Still a duplicate while it is pending with a worker.
    assert_int_equal (gl_wq_add (wq, "dup-1", "c", 1, NULL), GL_WQ_DUPLICATE);
    size_t len;
    assert_memory_equal (gl_wq_item_payload (items[0], &len), "a", 1);
    assert_int_equal (gl_wq_complete (wq, items[0], 0, NULL), 0);
    gl_wq_item_free (&items[0]);
    //  And once done (within done_ttl_ms).
    assert_int_equal (gl_wq_add (wq, "dup-1", "d", 1, id2), GL_WQ_DUPLICATE);
    assert_string_equal (id1, id2);
    assert_int_equal (gl_wq_depth (wq), 0);
    assert_int_equal (gl_wq_claim (wq, 4, 0, items, &count), 0);
    assert_int_equal (count, 0);

    //  A marker whose entry vanished behind the queue's back (or holding garbage) does not
    //  block the key forever.
    assert_int_equal (gl_wq_add (wq, "dup-2", "a", 1, id1), 0);
    const char *xdel[] = { "XDEL", "gl:wq:{dup}", id1 };
    s_raw (r, 3, xdel);
    assert_int_equal (gl_wq_add (wq, "dup-2", "a", 1, id2), 0);
    assert_string_not_equal (id1, id2);
    const char *set[] = { "SET", "gl:wq:{dup}:k:dup-3", "garbage" };
    s_raw (r, 3, set);
    assert_int_equal (gl_wq_add (wq, "dup-3", "a", 1, NULL), 0);
    gl_wq_destroy (&wq);
    gl_redis_destroy (&r);
}

static int
s_cmp_str (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
test_two_consumers_split_the_work (void **state)
{
    gl_redis_t *ra = s_redis (), *rb = s_redis ();
    gl_wq_t *a = gl_wq_new (ra, "split", "a", NULL);
    gl_wq_t *b = gl_wq_new (rb, "split", "b", NULL);
    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf (key, sizeof key, "s-%02d", i);
        assert_int_equal (gl_wq_add (a, key, key, strlen (key), NULL), 0);
    }
    gl_wq_item_t *ia[10], *ib[10];
    int na = 0, nb = 0;
    assert_int_equal (gl_wq_claim (a, 10, 0, ia, &na), 0);
    assert_int_equal (gl_wq_claim (b, 10, 0, ib, &nb), 0);
    assert_int_equal (na, 10);
    assert_int_equal (nb, 10);
    char *keys[20];
    for (int i = 0; i < 10; i++) {
        keys[i] = (char *) gl_wq_item_key (ia[i]);
        keys[10 + i] = (char *) gl_wq_item_key (ib[i]);
    }
    qsort (keys, 20, sizeof (char *), s_cmp_str);
    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf (key, sizeof key, "s-%02d", i);
        assert_string_equal (keys[i], key);
    }
    gl_wq_item_t *more[10];
    int n = 0;
    assert_int_equal (gl_wq_claim (a, 10, 0, more, &n), 0);
    assert_int_equal (n, 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal (gl_wq_complete (a, ia[i], 0, NULL), 0);
        assert_int_equal (gl_wq_complete (b, ib[i], 0, NULL), 0);
    }
    s_free_items (ia, na);
    s_free_items (ib, nb);
    assert_int_equal (gl_wq_depth (a), 0);
    //  The batch caps a claim.
    gl_wq_opts_t opts = { .batch = 3 };
    gl_wq_t *c = gl_wq_new (ra, "split", "c", &opts);
    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf (key, sizeof key, "t-%d", i);
        assert_int_equal (gl_wq_add (c, key, "x", 1, NULL), 0);
    }
    assert_int_equal (gl_wq_claim (c, 10, 0, more, &n), 0);
    assert_int_equal (n, 3);
    s_free_items (more, n);
    gl_wq_destroy (&c);
    gl_wq_destroy (&a);
    gl_wq_destroy (&b);
    gl_redis_destroy (&ra);
    gl_redis_destroy (&rb);
}

static void
test_reclaim_from_quiet_consumer (void **state)
{
    gl_redis_t *ra = s_redis (), *rb = s_redis ();
    gl_wq_opts_t opts = { .reclaim_idle_ms = 200 };
    gl_wq_t *a = gl_wq_new (ra, "reclaim", "a", &opts);
    gl_wq_t *b = gl_wq_new (rb, "reclaim", "b", &opts);
    assert_int_equal (gl_wq_add (a, "r-1", "work", 4, NULL), 0);
    gl_wq_item_t *ia[4], *ib[4];
    int n = 0;
    assert_int_equal (gl_wq_claim (a, 4, 0, ia, &n), 0);
    assert_int_equal (n, 1);
    //  a goes quiet; b gets the item once it has been idle for reclaim_idle_ms.
    assert_int_equal (s_claim_poll (b, 4, ib), 1);
    assert_string_equal (gl_wq_item_key (ib[0]), "r-1");
    assert_string_equal (gl_wq_item_id (ib[0]), gl_wq_item_id (ia[0]));
    assert_int_equal (gl_wq_item_deliveries (ib[0]), 2);
    //  Both now hold it: whichever completes first applies the effect, the other applies
    //  nothing.
    const char *incr[] = { "HINCRBY", "test:{reclaim}:results", "r-1", "1" };
    gl_wq_cmd_t cmd = s_cmd (4, incr);
    assert_int_equal (gl_wq_complete (a, ia[0], 1, &cmd), 0);
    assert_int_equal (gl_wq_complete (b, ib[0], 1, &cmd), GL_WQ_ALREADY_DONE);
    redisReply *v = gl_redis_cmd (ra, "HGET test:{reclaim}:results r-1");
    assert_non_null (v);
    assert_string_equal (v->str, "1");
    freeReplyObject (v);
    gl_wq_stats_t st = s_stats (a);
    assert_int_equal (st.depth, 0);
    assert_int_equal (st.pending, 0);
    gl_wq_item_free (&ia[0]);
    gl_wq_item_free (&ib[0]);
    gl_wq_destroy (&a);
    gl_wq_destroy (&b);
    gl_redis_destroy (&ra);
    gl_redis_destroy (&rb);
}

static void
test_dead_letter_inspect_replay (void **state)
{
    gl_clock_set_manual (1700000000000LL);
    gl_redis_t *r = s_redis ();
    gl_wq_opts_t opts = { .max_deliveries = 2, .reclaim_idle_ms = 1 };
    gl_wq_t *wq = gl_wq_new (r, "dead", "c1", &opts);
    char id[GL_WQ_ID_MAX];
    assert_int_equal (gl_wq_add (wq, "d-1", "p1", 2, id), 0);
    gl_wq_item_t *items[4];
    assert_int_equal (s_claim_poll (wq, 4, items), 1);
    assert_int_equal (gl_wq_item_deliveries (items[0]), 1);
    assert_int_equal (gl_wq_fail (wq, items[0], "smtp 550"), 0);
    gl_wq_item_free (&items[0]);
    assert_int_equal (s_claim_poll (wq, 4, items), 1);
    assert_int_equal (gl_wq_item_deliveries (items[0]), 2);
    assert_int_equal (gl_wq_fail (wq, items[0], "smtp 451"), 0);
    gl_wq_item_t *stale = items[0];
    //  The third delivery exceeds max_deliveries: dead-lettered, never returned.
    while (s_stats (wq).dead == 0) {
        int n = 0;
        assert_int_equal (gl_wq_claim (wq, 4, 0, items, &n), 0);
        assert_int_equal (n, 0);
        gl_sleep_ms (5);
    }
    gl_wq_stats_t st = s_stats (wq);
    assert_int_equal (st.depth, 0);
    assert_int_equal (st.pending, 0);
    assert_int_equal (st.dead, 1);
    //  The worker that still holds it can neither complete nor fail it now.
    assert_int_equal (gl_wq_complete (wq, stale, 0, NULL), GL_WQ_GONE);
    assert_int_equal (gl_wq_fail (wq, stale, "late"), GL_WQ_GONE);
    assert_int_equal (gl_wq_dead (wq, stale, "late"), GL_WQ_GONE);
    gl_wq_item_free (&stale);

    gl_wq_dead_t *dead[10];
    int nd = 0;
    assert_int_equal (gl_wq_dead_list (wq, NULL, 10, dead, &nd), 0);
    assert_int_equal (nd, 1);
    assert_string_equal (gl_wq_dead_reason (dead[0]), "max deliveries");
    assert_string_equal (gl_wq_dead_error (dead[0]), "smtp 451");
    assert_int_equal (gl_wq_dead_deliveries (dead[0]), 3);
    assert_int_equal (gl_wq_dead_when (dead[0]), 1700000000000LL);
    assert_string_equal (gl_wq_dead_item_id (dead[0]), id);
    assert_string_equal (gl_wq_dead_item_key (dead[0]), "d-1");
    size_t len;
    assert_memory_equal (gl_wq_dead_payload (dead[0], &len), "p1", 2);
    assert_int_equal (len, 2);
    char dead_id[GL_WQ_ID_MAX];
    snprintf (dead_id, sizeof dead_id, "%s", gl_wq_dead_id (dead[0]));
    gl_wq_dead_free (&dead[0]);
    assert_int_equal (gl_wq_dead_list (wq, dead_id, 10, dead, &nd), 0);
    assert_int_equal (nd, 0);

    //  Replay: a new item, deliveries start again, the dead letter is gone.
    char new_id[GL_WQ_ID_MAX];
    assert_int_equal (gl_wq_dead_replay (wq, dead_id, new_id), 0);
    assert_string_not_equal (new_id, id);
    assert_int_equal (s_stats (wq).dead, 0);
    assert_int_equal (gl_wq_dead_replay (wq, dead_id, NULL), -1);
    assert_non_null (strstr (gl_wq_errstr (wq), "no such"));
    assert_int_equal (s_claim_poll (wq, 4, items), 1);
    assert_string_equal (gl_wq_item_id (items[0]), new_id);
    assert_int_equal (gl_wq_item_deliveries (items[0]), 1);
    assert_int_equal (gl_wq_complete (wq, items[0], 0, NULL), 0);
    gl_wq_item_free (&items[0]);

    //  A permanent failure goes to the dead letters at once. The key is free again: adding it
    //  anew makes a new item, and replaying the old dead letter is then refused.
    assert_int_equal (gl_wq_add (wq, "d-2", "p2", 2, NULL), 0);
    assert_int_equal (s_claim_poll (wq, 4, items), 1);
    assert_int_equal (gl_wq_dead (wq, items[0], "permanent: no such address"), 0);
    gl_wq_item_free (&items[0]);
    assert_int_equal (gl_wq_dead_list (wq, NULL, 10, dead, &nd), 0);
    assert_int_equal (nd, 1);
    assert_string_equal (gl_wq_dead_reason (dead[0]), "permanent: no such address");
    assert_null (gl_wq_dead_error (dead[0]));
    assert_int_equal (gl_wq_dead_deliveries (dead[0]), 1);
    snprintf (dead_id, sizeof dead_id, "%s", gl_wq_dead_id (dead[0]));
    gl_wq_dead_free (&dead[0]);
    assert_int_equal (gl_wq_add (wq, "d-2", "p2", 2, NULL), 0);
    assert_int_equal (gl_wq_dead_replay (wq, dead_id, NULL), GL_WQ_DUPLICATE);
    assert_int_equal (s_stats (wq).dead, 1);
    assert_int_equal (gl_wq_dead_delete (wq, dead_id), 0);
    assert_int_equal (gl_wq_dead_delete (wq, dead_id), -1);
    assert_int_equal (s_stats (wq).dead, 0);
    assert_int_equal (gl_wq_dead_replay (wq, "1-0", NULL), -1);
    assert_int_equal (gl_wq_dead_replay (wq, "not-an-id", NULL), -1);
    gl_wq_destroy (&wq);
    gl_redis_destroy (&r);
    gl_clock_use_system ();
}

static void
test_max_len_bound (void **state)
{
    gl_redis_t *r = s_redis ();
    gl_wq_opts_t opts = { .max_len = 3 };
    gl_wq_t *wq = gl_wq_new (r, "bounded", "c1", &opts);
    assert_int_equal (gl_wq_add (wq, "m-1", "x", 1, NULL), 0);
    assert_int_equal (gl_wq_add (wq, "m-2", "x", 1, NULL), 0);
    assert_int_equal (gl_wq_add (wq, "m-3", "x", 1, NULL), 0);
    assert_int_equal (gl_wq_add (wq, "m-4", "x", 1, NULL), -1);
    assert_non_null (strstr (gl_wq_errstr (wq), "queue full"));
    //  A duplicate is still recognised as one when full.
    assert_int_equal (gl_wq_add (wq, "m-2", "x", 1, NULL), GL_WQ_DUPLICATE);
    gl_wq_item_t *items[1];
    int n = 0;
    assert_int_equal (gl_wq_claim (wq, 1, 0, items, &n), 0);
    assert_int_equal (n, 1);
    //  Pending items still count against the bound.
    assert_int_equal (gl_wq_add (wq, "m-4", "x", 1, NULL), -1);
    assert_int_equal (gl_wq_complete (wq, items[0], 0, NULL), 0);
    gl_wq_item_free (&items[0]);
    assert_int_equal (gl_wq_add (wq, "m-4", "x", 1, NULL), 0);
    assert_int_equal (gl_wq_depth (wq), 3);
    gl_wq_destroy (&wq);
    gl_redis_destroy (&r);
}

static void
test_redis_down_is_an_error (void **state)
{
    gl_testredis_t *own = gl_testredis_start (NULL);
    assert_non_null (own);
    gl_redis_t *r = gl_redis_new ("127.0.0.1", own->port, NULL, 500, 200);
    gl_wq_t *wq = gl_wq_new (r, "down", "c1", NULL);
    assert_int_equal (gl_wq_add (wq, "x-1", "x", 1, NULL), 0);
    gl_wq_item_t *items[2];
    int n = 0;
    assert_int_equal (gl_wq_claim (wq, 2, 0, items, &n), 0);
    assert_int_equal (n, 1);
    gl_testredis_kill (own);

    assert_int_equal (gl_wq_add (wq, "x-2", "x", 1, NULL), -1);
    assert_non_null (strstr (gl_wq_errstr (wq), "redis unavailable"));
    gl_wq_item_t *more[2];
    assert_int_equal (gl_wq_claim (wq, 2, 0, more, &n), -1);
    assert_int_equal (n, 0);
    assert_int_equal (gl_wq_claim (wq, 2, 100, more, &n), -1);
    assert_int_equal (gl_wq_complete (wq, items[0], 0, NULL), -1);
    assert_int_equal (gl_wq_fail (wq, items[0], "x"), -1);
    assert_int_equal (gl_wq_dead (wq, items[0], "x"), -1);
    gl_wq_stats_t st;
    assert_int_equal (gl_wq_stats (wq, &st), -1);
    assert_int_equal (gl_wq_depth (wq), -1);
    gl_wq_dead_t *dead[2];
    assert_int_equal (gl_wq_dead_list (wq, NULL, 2, dead, &n), -1);
    assert_int_equal (gl_wq_dead_replay (wq, "1-0", NULL), -1);
    assert_non_null (strstr (gl_wq_errstr (wq), "redis unavailable"));

    //  Back up (AOF replayed, or empty): the queue works again; completing is safe to retry.
    assert_int_equal (gl_testredis_restart (own), 0);
    assert_true (gl_wq_complete (wq, items[0], 0, NULL) >= 0);
    gl_wq_item_free (&items[0]);
    assert_true (gl_wq_add (wq, "x-2", "x", 1, NULL) >= 0);
    assert_int_equal (gl_wq_stats (wq, &st), 0);
    gl_wq_destroy (&wq);
    gl_redis_destroy (&r);
    gl_testredis_destroy (&own);
}

static void
test_malformed_entries_are_dead_lettered (void **state)
{
    gl_redis_t *r = s_redis ();
    gl_wq_opts_t opts = { .max_payload = 64 };
    gl_wq_t *wq = gl_wq_new (r, "garbage", "c1", &opts);
    char big[100];
    memset (big, 'z', sizeof big);
    big[99] = 0;
    const char *e1[] = { "XADD", "gl:wq:{garbage}", "*", "foo", "bar" };
    const char *e2[] = { "XADD", "gl:wq:{garbage}", "*", "k", "", "p", "x" };
    const char *e3[] = { "XADD", "gl:wq:{garbage}", "*", "k", "has space", "p", "x" };
    const char *e4[] = { "XADD", "gl:wq:{garbage}", "*", "k", "nopayload" };
    const char *e5[] = { "XADD", "gl:wq:{garbage}", "*", "k", "big", "p", big };
    const char *e6[] = { "XADD", "gl:wq:{garbage}", "*", "k", "nomarker", "p", "x" };
    s_raw (r, 5, e1);
    s_raw (r, 7, e2);
    s_raw (r, 7, e3);
    s_raw (r, 5, e4);
    s_raw (r, 7, e5);
    s_raw (r, 7, e6);
    //  Many fields.
    const char *e7[3 + 80];
    e7[0] = "XADD", e7[1] = "gl:wq:{garbage}", e7[2] = "*";
    for (int i = 0; i < 80; i++)
        e7[3 + i] = i % 2 ? "v" : "f";
    s_raw (r, 83, e7);
    //  A second entry for a key that is already queued.
    assert_int_equal (gl_wq_add (wq, "good-1", "fine", 4, NULL), 0);
    const char *e8[] = { "XADD", "gl:wq:{garbage}", "*", "k", "good-1", "p", "copy" };
    s_raw (r, 7, e8);

    gl_wq_item_t *items[16];
    int n = 0;
    assert_int_equal (gl_wq_claim (wq, 16, 0, items, &n), 0);
    assert_int_equal (n, 1);
    assert_string_equal (gl_wq_item_key (items[0]), "good-1");
    size_t len;
    assert_memory_equal (gl_wq_item_payload (items[0], &len), "fine", 4);
    assert_int_equal (gl_wq_complete (wq, items[0], 0, NULL), 0);
    gl_wq_item_free (&items[0]);
    gl_wq_stats_t st = s_stats (wq);
    assert_int_equal (st.depth, 0);
    assert_int_equal (st.pending, 0);
    assert_int_equal (st.dead, 8);

    gl_wq_dead_t *dead[16];
    int nd = 0;
    assert_int_equal (gl_wq_dead_list (wq, NULL, 16, dead, &nd), 0);
    assert_int_equal (nd, 8);
    const char *want[] = { "malformed: no item key", "malformed: bad item key",
                           "malformed: bad item key", "malformed: no payload",
                           "malformed: payload too large", "malformed: not added through the queue",
                           "malformed: no item key", "duplicate: item key belongs to another entry" };
    for (int i = 0; i < nd; i++)
        assert_string_equal (gl_wq_dead_reason (dead[i]), want[i]);
    //  The dead letter keeps what it can of the item, within bounds.
    assert_null (gl_wq_dead_item_key (dead[0]));
    assert_string_equal (gl_wq_dead_item_key (dead[4]), "big");
    gl_wq_dead_payload (dead[4], &len);
    assert_int_equal (len, 64);
    //  A malformed item cannot be replayed.
    assert_int_equal (gl_wq_dead_replay (wq, gl_wq_dead_id (dead[0]), NULL), -1);
    assert_non_null (strstr (gl_wq_errstr (wq), "cannot replay"));
    for (int i = 0; i < nd; i++)
        gl_wq_dead_free (&dead[i]);
    gl_wq_destroy (&wq);
    gl_redis_destroy (&r);
}

static void
test_invalid_arguments (void **state)
{
    gl_redis_t *r = s_redis ();
    assert_null (gl_wq_new (r, "a}b", "c1", NULL));
    assert_null (gl_wq_new (r, "", "c1", NULL));
    assert_null (gl_wq_new (r, "ok", "has space", NULL));
    gl_wq_opts_t bad = { .batch = -1 };
    assert_null (gl_wq_new (r, "ok", "c1", &bad));
    bad = (gl_wq_opts_t) { .batch = 100000 };
    assert_null (gl_wq_new (r, "ok", "c1", &bad));

    gl_wq_opts_t opts = { .max_payload = 8 };
    gl_wq_t *wq = gl_wq_new (r, "args", "c1", &opts);
    assert_non_null (wq);
    assert_int_equal (gl_wq_add (wq, "", "x", 1, NULL), -1);
    assert_int_equal (gl_wq_add (wq, "with space", "x", 1, NULL), -1);
    assert_int_equal (gl_wq_add (wq, "new\nline", "x", 1, NULL), -1);
    char longkey[GL_WQ_KEY_MAX + 2];
    memset (longkey, 'k', sizeof longkey - 1);
    longkey[GL_WQ_KEY_MAX + 1] = 0;
    assert_int_equal (gl_wq_add (wq, longkey, "x", 1, NULL), -1);
    longkey[GL_WQ_KEY_MAX] = 0;
    assert_int_equal (gl_wq_add (wq, longkey, "x", 1, NULL), 0);
    assert_int_equal (gl_wq_add (wq, "k2", "123456789", 9, NULL), -1);
    assert_non_null (strstr (gl_wq_errstr (wq), "exceeds"));
    gl_wq_item_t *items[2];
    int n = 0;
    assert_int_equal (gl_wq_claim (wq, 0, 0, items, &n), -1);
    gl_wq_dead_t *dead[2];
    assert_int_equal (gl_wq_dead_list (wq, NULL, 0, dead, &n), -1);
    assert_int_equal (gl_wq_dead_list (wq, "zz", 2, dead, &n), -1);
    assert_int_equal (gl_wq_dead_delete (wq, "1-x"), -1);
    assert_int_equal (gl_wq_prune_consumers (wq, -1), -1);
    gl_wq_destroy (&wq);
    gl_redis_destroy (&r);
}

static void
test_failing_effect_leaves_item_pending (void **state)
{
    gl_redis_t *r = s_redis ();
    gl_wq_t *wq = gl_wq_new (r, "effect", "c1", NULL);
    assert_int_equal (gl_wq_add (wq, "e-1", "x", 1, NULL), 0);
    const char *set[] = { "SET", "test:{effect}:str", "text" };
    s_raw (r, 3, set);
    gl_wq_item_t *items[1];
    int n = 0;
    assert_int_equal (gl_wq_claim (wq, 1, 0, items, &n), 0);
    const char *bad[] = { "HINCRBY", "test:{effect}:str", "f", "1" };
    gl_wq_cmd_t cmd = s_cmd (4, bad);
    assert_int_equal (gl_wq_complete (wq, items[0], 1, &cmd), -1);
    assert_non_null (strstr (gl_wq_errstr (wq), "WRONGTYPE"));
    assert_int_equal (s_stats (wq).pending, 1);
    //  Two commands in the one step, binary-safe arguments.
    const char *hset[] = { "HSET", "test:{effect}:h", "f", "a\0b" };
    size_t hlen[] = { 4, 15, 1, 3 };
    const char *incr[] = { "INCR", "test:{effect}:n" };
    gl_wq_cmd_t cmds[2] = { { 4, hset, hlen }, s_cmd (2, incr) };
    assert_int_equal (gl_wq_complete (wq, items[0], 2, cmds), 0);
    assert_int_equal (s_int (r, "HSTRLEN %s %s", "test:{effect}:h", "f"), 3);
    assert_int_equal (s_int (r, "GET %s", "test:{effect}:n", NULL), 1);
    assert_int_equal (s_stats (wq).pending, 0);
    gl_wq_item_free (&items[0]);
    gl_wq_destroy (&wq);
    gl_redis_destroy (&r);
}

static void
test_stream_deleted_group_recreated (void **state)
{
    gl_redis_t *r = s_redis ();
    gl_wq_t *wq = gl_wq_new (r, "lost", "c1", NULL);
    assert_int_equal (s_int (r, "DEL %s", "gl:wq:{lost}", NULL), 1);
    //  XADD makes a stream without a group; the claim creates the group again.
    assert_int_equal (gl_wq_add (wq, "l-1", "x", 1, NULL), 0);
    gl_wq_item_t *items[1];
    int n = 0;
    assert_int_equal (gl_wq_claim (wq, 1, 0, items, &n), 0);
    assert_int_equal (n, 1);
    assert_int_equal (gl_wq_complete (wq, items[0], 0, NULL), 0);
    gl_wq_item_free (&items[0]);
    assert_int_equal (s_int (r, "DEL %s", "gl:wq:{lost}", NULL), 1);
    assert_int_equal (gl_wq_claim (wq, 1, 100, items, &n), 0);
    assert_int_equal (n, 0);
    gl_wq_destroy (&wq);
    gl_redis_destroy (&r);
}

static void
test_prune_idle_consumers (void **state)
{
    gl_redis_t *r = s_redis ();
    gl_wq_t *a = gl_wq_new (r, "prune", "a", NULL);
    gl_wq_t *b = gl_wq_new (r, "prune", "b", NULL);
    gl_wq_t *c = gl_wq_new (r, "prune", "c", NULL);
    gl_wq_item_t *items[1];
    int n = 0;
    //  (Redis creates a consumer when it first gets an item.)
    assert_int_equal (gl_wq_add (a, "p-0", "x", 1, NULL), 0);
    assert_int_equal (gl_wq_claim (a, 1, 0, items, &n), 0);
    assert_int_equal (n, 1);
    assert_int_equal (gl_wq_complete (a, items[0], 0, NULL), 0);
    gl_wq_item_free (&items[0]);
    assert_int_equal (gl_wq_add (b, "p-1", "x", 1, NULL), 0);
    assert_int_equal (gl_wq_claim (b, 1, 0, items, &n), 0);
    assert_int_equal (n, 1);
    gl_sleep_ms (20);
    //  a holds nothing and is idle: removed; b holds an item: kept.
    assert_int_equal (gl_wq_prune_consumers (c, 5), 1);
    assert_int_equal (gl_wq_prune_consumers (c, 5), 0);
    assert_int_equal (gl_wq_complete (b, items[0], 0, NULL), 0);
    gl_wq_item_free (&items[0]);
    gl_wq_destroy (&a);
    gl_wq_destroy (&b);
    gl_wq_destroy (&c);
    gl_redis_destroy (&r);
}

static int
s_setup (void **state)
{
    s_env = gl_testredis_start (NULL);
    return s_env ? 0 : -1;
}

static int
s_teardown (void **state)
{
    gl_testredis_destroy (&s_env);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_add_claim_complete),
        cmocka_unit_test (test_blocking_claim_gets_new_item),
        cmocka_unit_test (test_same_key_twice_is_one_item),
        cmocka_unit_test (test_two_consumers_split_the_work),
        cmocka_unit_test (test_reclaim_from_quiet_consumer),
        cmocka_unit_test (test_dead_letter_inspect_replay),
        cmocka_unit_test (test_max_len_bound),
        cmocka_unit_test (test_redis_down_is_an_error),
        cmocka_unit_test (test_malformed_entries_are_dead_lettered),
        cmocka_unit_test (test_invalid_arguments),
        cmocka_unit_test (test_failing_effect_leaves_item_pending),
        cmocka_unit_test (test_stream_deleted_group_recreated),
        cmocka_unit_test (test_prune_idle_consumers),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
