/*  The reliable bus in one process, against a real redis-server and real ZeroMQ sockets:
    append-then-publish, gaps fetched from the log, duplicates, malformed frames, leases and
    fencing, standby subscribers, handler retries, epochs, trimming behind the slowest cursor.
    ctest: timeout=180 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_pub.h"
#include "gl/gl_sub.h"
#include "gl_testenv.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

static gl_testredis_t *s_redis;

typedef struct {
    uint64_t count;
    uint64_t last[8];
    int fail_next;      //  handler returns -1 this many times
    uint64_t limit;     //  handler returns -1 once it applied this many (0: no limit)
    bool order_ok;
} s_apply_t;

//  The handler's effect goes through the transaction: a counter per source and a sum.
static int
s_apply (void *arg, const gl_event_t *ev, gl_tx_t *tx)
{
    s_apply_t *a = arg;
    if (a->fail_next > 0) {
        a->fail_next--;
        gl_tx_cmdf (tx, "INCR test:should-never-land");
        return -1;
    }
    if (a->limit && a->count >= a->limit)
        return -1;
    int idx = ev->src[strlen (ev->src) - 1] - '0';
    if (idx >= 0 && idx < 8) {
        if (a->last[idx] + 1 != ev->seq && a->last[idx] != 0)
            a->order_ok = false;
        a->last[idx] = ev->seq;
    }
    a->count++;
    gl_tx_cmdf (tx, "HINCRBY test:applied %s 1", ev->src);
    gl_tx_cmdf (tx, "INCRBY test:sum %lld", (long long) gl_event_int (ev, "x", 0));
    return 0;
}

static gl_redis_t *
s_connect (void)
{
    return gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 5000);
}

static long long
s_get_int (gl_redis_t *r, const char *fmt, const char *arg)
{
    redisReply *rep = gl_redis_cmd (r, fmt, arg);
    long long v = 0;
    if (rep && rep->type != REDIS_REPLY_NIL)
        gl_redis_reply_int (rep, &v);
    if (rep)
        freeReplyObject (rep);
    return v;
}

static void
s_flush (void)
{
    gl_redis_t *r = s_connect ();
    redisReply *rep = gl_redis_cmd (r, "FLUSHALL");
    assert_non_null (rep);
    freeReplyObject (rep);
    gl_redis_destroy (&r);
}

static int
s_send (gl_pub_t *pub, int x)
{
    gl_event_t *ev = gl_event_new ("test.happened");
    json_object_set_new (ev->data, "x", json_integer (x));
    int rc = gl_pub_send (pub, ev, 0);
    gl_event_destroy (&ev);
    return rc;
}

static gl_sub_t *
s_sub (gl_redis_t *r, const char *group, const char *endpoints, s_apply_t *a, int batch)
{
    gl_sub_opts_t o;
    gl_sub_opts_default (&o);
    o.endpoints = endpoints;
    o.batch = batch;
    o.poll_ms = 100;
    o.lease_ms = 3000;
    char err[256];
    gl_sub_t *sub = gl_sub_new (r, group, &o, s_apply, a, err, sizeof err);
    assert_non_null (sub);
    return sub;
}

//  Run the subscriber until it applied `want` events in total (ctest's TIMEOUT bounds this).
static void
s_run_until (gl_sub_t *sub, s_apply_t *a, uint64_t want)
{
    while (a->count < want || gl_sub_stats (sub).applied < want)
        gl_sub_run_once (sub, 50);
}

static void
test_publish_and_apply (void **state)
{
    s_flush ();
    gl_redis_t *rp = s_connect (), *rs = s_connect ();
    gl_pub_opts_t po;
    gl_pub_opts_default (&po);
    po.bind = "tcp://127.0.0.1:*";
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "test-1", &po, err, sizeof err);
    assert_non_null (pub);
    s_apply_t a = { .order_ok = true };
    gl_sub_t *sub = s_sub (rs, "alpha", gl_pub_endpoint (pub), &a, 16);
    gl_sub_run_once (sub, 10);
    assert_true (gl_sub_active (sub));
    gl_sleep_ms (200);      //  let SUB connect; correctness does not depend on it
    long long sum = 0;
    for (int i = 1; i <= 2000; i++) {
        assert_int_equal (s_send (pub, i), 0);
        sum += i;
        if (i % 100 == 0)
            gl_sub_run_once (sub, 0);
    }
    assert_int_equal (gl_pub_seq (pub), 2000);
    s_run_until (sub, &a, 2000);
    assert_true (a.order_ok);
    assert_int_equal (s_get_int (rs, "HGET test:applied %s", "test-1"), 2000);
    assert_int_equal (s_get_int (rs, "GET %s", "test:sum"), sum);
    gl_cursor_t c = gl_sub_cursor (sub, "test-1");
    assert_int_equal (c.seq, 2000);
    gl_sub_destroy (&sub);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&rs);
}

//  Events published while nobody listened are fetched from the log on start; a second run of
//  the same group applies nothing twice.
static void
test_replay_from_log_and_restart (void **state)
{
    s_flush ();
    gl_redis_t *rp = s_connect (), *rs = s_connect ();
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "test-2", NULL, err, sizeof err);
    assert_non_null (pub);
    for (int i = 1; i <= 500; i++)
        assert_int_equal (s_send (pub, 1), 0);
    s_apply_t a = { .order_ok = true };
    gl_sub_t *sub = s_sub (rs, "beta", NULL, &a, 1);
    s_run_until (sub, &a, 500);
    gl_sub_destroy (&sub);
    for (int i = 1; i <= 100; i++)
        assert_int_equal (s_send (pub, 1), 0);
    s_apply_t b = { .order_ok = true };
    sub = s_sub (rs, "beta", NULL, &b, 1);
    s_run_until (sub, &b, 100);
    for (int i = 0; i < 5; i++)
        gl_sub_run_once (sub, 20);
    assert_int_equal (b.count, 100);
    assert_true (b.order_ok);
    assert_int_equal (s_get_int (rs, "HGET test:applied %s", "test-2"), 600);
    gl_sub_destroy (&sub);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&rs);
}

//  Garbage, truncated, wrongly framed and duplicate frames are counted and dropped.
static void
test_malformed_and_duplicate_frames (void **state)
{
    s_flush ();
    gl_redis_t *rp = s_connect (), *rs = s_connect ();
    gl_pub_opts_t po;
    gl_pub_opts_default (&po);
    po.bind = "tcp://127.0.0.1:*";
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "test-3", &po, err, sizeof err);
    assert_non_null (pub);
    //  A rogue publisher on another socket sends junk.
    zsock_t *rogue = zsock_new_pub ("@tcp://127.0.0.1:*");
    assert_non_null (rogue);
    char *rogue_ep = zsock_last_endpoint (rogue);
    char eps[600];
    snprintf (eps, sizeof eps, "%s,%s", gl_pub_endpoint (pub), rogue_ep);
    free (rogue_ep);
    s_apply_t a = { .order_ok = true };
    gl_sub_t *sub = s_sub (rs, "gamma", eps, &a, 1);
    gl_sub_run_once (sub, 10);
    gl_sleep_ms (300);
    assert_int_equal (s_send (pub, 5), 0);
    s_run_until (sub, &a, 1);
    //  The same event again (a duplicate), garbage, a huge-count frame, a lone frame, three frames.
    char *bytes = NULL;
    size_t len = 0;
    gl_event_t *ev = gl_event_new ("test.happened");
    snprintf (ev->src, sizeof ev->src, "test-3");
    ev->seq = 1;
    assert_int_equal (gl_event_encode (ev, &bytes, &len), 0);
    zmq_send (zsock_resolve (rogue), "test.happened", 13, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (rogue), bytes, len, 0);
    zmq_send (zsock_resolve (rogue), "test.x", 6, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (rogue), "\xdd\xff\xff\xff\xff", 5, 0);
    zmq_send (zsock_resolve (rogue), "test.x", 6, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (rogue), bytes, len / 2, 0);
    zmq_send (zsock_resolve (rogue), "lonely", 6, 0);
    zmq_send (zsock_resolve (rogue), "a", 1, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (rogue), "b", 1, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (rogue), "c", 1, 0);
    zmq_send (zsock_resolve (rogue), "other.type", 10, ZMQ_SNDMORE);   //  topic != type
    zmq_send (zsock_resolve (rogue), bytes, len, 0);
    zmq_send (zsock_resolve (rogue), GL_HEARTBEAT_TOPIC, strlen (GL_HEARTBEAT_TOPIC), ZMQ_SNDMORE);
    zmq_send (zsock_resolve (rogue), "\x81\xa3src\x01", 6, 0);         //  heartbeat, bad shape
    free (bytes);
    gl_event_destroy (&ev);
    uint64_t dropped = 0;
    while (dropped < 6 || gl_sub_stats (sub).duplicates < 1) {
        gl_sub_run_once (sub, 50);
        gl_sub_stats_t st = gl_sub_stats (sub);
        dropped = 0;
        for (int i = 0; i < GL_EVENT_ERR__COUNT; i++)
            dropped += st.rejected[i];
    }
    gl_sub_stats_t st = gl_sub_stats (sub);
    //  At least the replayed frame; the first live frame may also have been read from the log.
    assert_true (st.duplicates >= 1);
    assert_int_equal (st.rejected[GL_EVENT_ERR_MSGPACK], 2);
    assert_int_equal (st.rejected[GL_EVENT_ERR_SHAPE], 4);
    assert_int_equal (a.count, 1);
    //  Still working after all that.
    assert_int_equal (s_send (pub, 5), 0);
    s_run_until (sub, &a, 2);
    zsock_destroy (&rogue);
    gl_sub_destroy (&sub);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&rs);
}

//  A name is held by one process; a takeover after expiry fences the old holder.
static void
test_lease_and_fencing (void **state)
{
    s_flush ();
    gl_redis_t *r1 = s_connect (), *r2 = s_connect ();
    gl_clock_set_manual (1000000);
    gl_pub_opts_t po;
    gl_pub_opts_default (&po);
    po.lease_ms = 5000;
    char err[256];
    gl_pub_t *a = gl_pub_new (r1, "svc-1", &po, err, sizeof err);
    assert_non_null (a);
    gl_pub_t *b = gl_pub_new (r2, "svc-1", &po, err, sizeof err);
    assert_null (b);
    assert_non_null (strstr (err, "held by another"));
    //  auto naming picks the next free name
    b = gl_pub_new_auto (r2, "svc", 4, &po, err, sizeof err);
    assert_non_null (b);
    assert_string_equal (gl_pub_src (b), "svc-2");
    gl_pub_destroy (&b);
    assert_int_equal (s_send (a, 1), 0);
    //  a stalls past its lease; another process takes the name and writes
    gl_clock_advance (6000);
    b = gl_pub_new (r2, "svc-1", &po, err, sizeof err);
    assert_non_null (b);
    assert_int_equal (gl_pub_seq (b), 1);
    assert_int_equal (s_send (b, 1), 0);
    assert_int_equal (s_send (a, 1), GL_PUB_FENCED);
    assert_int_equal (gl_pub_tick (a), GL_PUB_FENCED);
    assert_int_equal (gl_pub_seq (b), 2);
    gl_pub_destroy (&a);
    //  a clean release lets a successor start at once
    gl_pub_destroy (&b);
    a = gl_pub_new (r1, "svc-1", &po, err, sizeof err);
    assert_non_null (a);
    assert_int_equal (gl_pub_seq (a), 2);
    gl_pub_destroy (&a);
    gl_clock_use_system ();
    gl_redis_destroy (&r1);
    gl_redis_destroy (&r2);
}

//  Only one replica of a consuming service applies; the standby takes over without repeats.
static void
test_standby_takeover (void **state)
{
    s_flush ();
    gl_redis_t *rp = s_connect (), *r1 = s_connect (), *r2 = s_connect ();
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "test-4", NULL, err, sizeof err);
    for (int i = 0; i < 300; i++)
        assert_int_equal (s_send (pub, 1), 0);
    s_apply_t a = { .order_ok = true }, b = { .order_ok = true };
    gl_sub_t *s1 = s_sub (r1, "delta", NULL, &a, 1);
    gl_sub_t *s2 = s_sub (r2, "delta", NULL, &b, 1);
    gl_sub_run_once (s1, 0);
    gl_sub_run_once (s2, 0);
    assert_true (gl_sub_active (s1));
    assert_false (gl_sub_active (s2));
    s_run_until (s1, &a, 300);
    for (int i = 0; i < 3; i++)
        gl_sub_run_once (s2, 10);
    assert_int_equal (b.count, 0);
    gl_sub_destroy (&s1);       //  releases the lease
    for (int i = 0; i < 200; i++)
        assert_int_equal (s_send (pub, 1), 0);
    while (!gl_sub_active (s2))
        gl_sub_run_once (s2, 50);
    s_run_until (s2, &b, 200);
    for (int i = 0; i < 3; i++)
        gl_sub_run_once (s2, 10);
    assert_int_equal (b.count, 200);
    assert_int_equal (s_get_int (rp, "HGET test:applied %s", "test-4"), 500);
    gl_sub_destroy (&s2);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&r1);
    gl_redis_destroy (&r2);
}

//  A handler that cannot apply now leaves no trace; the event is applied later, once.
static void
test_handler_retry (void **state)
{
    s_flush ();
    gl_redis_t *rp = s_connect (), *rs = s_connect ();
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "test-5", NULL, err, sizeof err);
    for (int i = 0; i < 10; i++)
        assert_int_equal (s_send (pub, 1), 0);
    s_apply_t a = { .order_ok = true, .fail_next = 2 };
    gl_sub_t *sub = s_sub (rs, "epsilon", NULL, &a, 4);
    s_run_until (sub, &a, 10);
    assert_true (a.order_ok);
    assert_int_equal (gl_sub_stats (sub).retries, 2);
    assert_int_equal (s_get_int (rs, "HGET test:applied %s", "test-5"), 10);
    assert_int_equal (s_get_int (rs, "GET %s", "test:should-never-land"), 0);
    gl_sub_destroy (&sub);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&rs);
}

//  Redis loses the tail of a log (as after a failover): the publisher starts a new epoch and a
//  subscriber that had applied the lost events applies the new ones from the epoch's base.
static void
test_epoch_after_lost_writes (void **state)
{
    s_flush ();
    gl_redis_t *rp = s_connect (), *rs = s_connect ();
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "test-6", NULL, err, sizeof err);
    for (int i = 0; i < 10; i++)
        assert_int_equal (s_send (pub, 1), 0);
    s_apply_t a = { .order_ok = true };
    gl_sub_t *sub = s_sub (rs, "zeta", NULL, &a, 1);
    s_run_until (sub, &a, 10);
    //  Simulate the loss of events 8..10: the log as a replica that missed them would hold it.
    redisReply *r = gl_redis_cmd (rp, "EVAL %s 2 gl:log:{test-6} gl:src:{test-6}",
        "local e = redis.call('XRANGE', KEYS[1], '-', '7-0') redis.call('DEL', KEYS[1]) "
        "for _, x in ipairs(e) do redis.call('XADD', KEYS[1], x[1], x[2][1], x[2][2]) end "
        "redis.call('HSET', KEYS[2], 'seq', 7) return #e");
    assert_non_null (r);
    assert_int_equal (r->integer, 7);
    freeReplyObject (r);
    assert_int_equal (s_send (pub, 100), 0);
    assert_int_equal (gl_pub_epoch (pub), 1);
    assert_int_equal (gl_pub_seq (pub), 8);
    assert_int_equal (gl_pub_stats (pub).epochs, 1);
    s_run_until (sub, &a, 11);
    gl_cursor_t c = gl_sub_cursor (sub, "test-6");
    assert_int_equal (c.epoch, 1);
    assert_int_equal (c.seq, 8);
    assert_int_equal (s_get_int (rs, "GET %s", "test:sum"), 110);
    gl_sub_destroy (&sub);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&rs);
}

static int
s_ignore_entry (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    return 0;
}

//  Trimming keeps everything the slowest group has not applied, and archives what it removes.
static void
test_trim_behind_slowest (void **state)
{
    s_flush ();
    gl_redis_t *rp = s_connect (), *rs = s_connect ();
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "test-7", NULL, err, sizeof err);
    for (int i = 0; i < 100; i++)
        assert_int_equal (s_send (pub, 1), 0);
    s_apply_t a = { .order_ok = true }, b = { .order_ok = true, .limit = 40 };
    gl_sub_t *fast = s_sub (rs, "fast", NULL, &a, 10);
    s_run_until (fast, &a, 100);
    gl_sub_destroy (&fast);
    //  "slow" registers and applies only 40 (its handler blocks after that).
    gl_sub_t *slow = s_sub (rs, "slow", NULL, &b, 1);
    while (b.count < 40)
        gl_sub_run_once (slow, 10);
    gl_sub_destroy (&slow);
    long long applied_slow = (long long) b.count;
    char dir[] = "/tmp/gl-archive-XXXXXX";
    assert_non_null (mkdtemp (dir));
    int64_t trimmed = gl_log_trim (rp, "test-7", dir, 0);
    //  Everything up to the slow cursor is gone, nothing after it.
    assert_int_equal (applied_slow, 40);
    assert_int_equal (trimmed, 40);
    uint64_t first = 0;
    gl_log_read (rp, "test-7", 1, 0, 1, s_ignore_entry, NULL, &first);
    assert_int_equal (first, (uint64_t) trimmed + 1);
    char path[256];
    snprintf (path, sizeof path, "%s/test-7/1-%lld.glog", dir, (long long) trimmed);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_true (st.st_size > trimmed * 40);
    //  The slow group resumes with nothing lost.
    s_apply_t c = { .order_ok = true };
    slow = s_sub (rs, "slow", NULL, &c, 1);
    s_run_until (slow, &c, 100 - (uint64_t) trimmed);
    assert_int_equal (gl_sub_stats (slow).lost, 0);
    gl_sub_destroy (&slow);

    //  A group that follows only other sources (opts.sources) reads nothing of test-7 and does
    //  not hold its trimming back, though it has no cursor for it; one that follows test-7 by
    //  its prefix does.
    gl_sub_opts_t o;
    gl_sub_opts_default (&o);
    o.poll_ms = 100;
    o.sources = "other-,elsewhere-";
    s_apply_t d = { .order_ok = true };
    gl_sub_t *picky = gl_sub_new (rs, "picky", &o, s_apply, &d, err, sizeof err);
    assert_non_null (picky);
    for (int i = 0; i < 20; i++)
        gl_sub_run_once (picky, 10);
    assert_int_equal (d.count, 0);
    assert_int_equal (gl_sub_stats (picky).fetched, 0);
    assert_int_equal (gl_sub_cursor (picky, "test-7").seq, 0);
    gl_sub_destroy (&picky);
    s_apply_t e = { .order_ok = true };
    slow = s_sub (rs, "slow", NULL, &e, 1);
    s_run_until (slow, &e, 0);
    gl_sub_destroy (&slow);
    //  (slow has applied all 100 by now; fast too.) Only picky has no cursor for test-7.
    int64_t more = gl_log_trim (rp, "test-7", dir, 0);
    assert_int_equal (more, 100 - trimmed);
    //  The same group following "test-" would hold it back (no cursor: nothing trimmed).
    for (int i = 0; i < 10; i++)
        assert_int_equal (s_send (pub, 1), 0);
    o.sources = "test-";
    picky = gl_sub_new (rs, "picky", &o, s_apply, &d, err, sizeof err);
    assert_non_null (picky);
    gl_sub_destroy (&picky);
    assert_int_equal (gl_log_trim (rp, "test-7", dir, 0), 0);
    redisReply *r = gl_redis_cmd (rp, "SREM gl:consumers picky");
    freeReplyObject (r);

    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal (system (cmd), 0);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&rs);
}

//  Redis restarted mid-stream: both sides reconnect and carry on; nothing is lost or doubled.
static void
test_redis_restart (void **state)
{
    s_flush ();
    gl_redis_t *rp = s_connect (), *rs = s_connect ();
    gl_pub_opts_t po;
    gl_pub_opts_default (&po);
    po.bind = "tcp://127.0.0.1:*";
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "test-8", &po, err, sizeof err);
    s_apply_t a = { .order_ok = true };
    gl_sub_t *sub = s_sub (rs, "eta", gl_pub_endpoint (pub), &a, 8);
    for (int i = 0; i < 300; i++) {
        assert_int_equal (s_send (pub, 1), 0);
        gl_sub_run_once (sub, 0);
    }
    gl_testredis_shutdown (s_redis);
    assert_int_equal (gl_testredis_restart (s_redis), 0);
    for (int i = 0; i < 300; i++) {
        assert_int_equal (s_send (pub, 1), 0);
        gl_sub_run_once (sub, 0);
    }
    s_run_until (sub, &a, 600);
    assert_true (a.order_ok);
    assert_int_equal (s_get_int (rs, "HGET test:applied %s", "test-8"), 600);
    assert_true (gl_redis_connects (rp) >= 2);
    gl_sub_destroy (&sub);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&rs);
}

//  In-memory state with manual checkpoints (reporting's mode): state and cursors are written in
//  one step; after a crash (no checkpoint of the last events) the replay gives the same totals.
typedef struct {
    long long total;
} s_memstate_t;

static int
s_apply_mem (void *arg, const gl_event_t *ev, gl_tx_t *tx)
{
    s_memstate_t *m = arg;
    m->total += gl_event_int (ev, "x", 0);
    return 0;
}

static void
test_manual_checkpoint (void **state)
{
    s_flush ();
    gl_redis_t *rp = s_connect (), *rs = s_connect ();
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "test-9", NULL, err, sizeof err);
    for (int i = 1; i <= 100; i++)
        assert_int_equal (s_send (pub, i), 0);
    gl_sub_opts_t o;
    gl_sub_opts_default (&o);
    o.manual_checkpoint = true;
    o.poll_ms = 50;
    s_memstate_t m = { 0 };
    gl_sub_t *sub = gl_sub_new (rs, "memo", &o, s_apply_mem, &m, err, sizeof err);
    while (gl_sub_cursor (sub, "test-9").seq < 100)
        gl_sub_run_once (sub, 20);
    assert_int_equal (m.total, 5050);
    gl_tx_t *snap = gl_tx_new ();
    gl_tx_cmdf (snap, "SET test:snapshot %lld", m.total);
    assert_int_equal (gl_sub_checkpoint (sub, snap), 0);
    //  More events are applied in memory, then the process "crashes" before checkpointing.
    for (int i = 101; i <= 150; i++)
        assert_int_equal (s_send (pub, i), 0);
    while (gl_sub_cursor (sub, "test-9").seq < 150)
        gl_sub_run_once (sub, 20);
    gl_sub_destroy (&sub);
    //  Restart from the snapshot: the 50 unsaved events are replayed, the first 100 are not.
    s_memstate_t again = { .total = s_get_int (rs, "GET %s", "test:snapshot") };
    sub = gl_sub_new (rs, "memo", &o, s_apply_mem, &again, err, sizeof err);
    while (gl_sub_cursor (sub, "test-9").seq < 150)
        gl_sub_run_once (sub, 20);
    long long expect = 0;
    for (int i = 1; i <= 150; i++)
        expect += i;
    assert_int_equal (again.total, expect);
    gl_tx_destroy (&snap);
    gl_sub_destroy (&sub);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
    gl_redis_destroy (&rs);
}

static long long
s_wait_calls (gl_redis_t *r)
{
    redisReply *rep = gl_redis_cmd (r, "INFO commandstats");
    long long calls = 0;
    const char *p = rep && rep->type == REDIS_REPLY_STRING ? strstr (rep->str, "cmdstat_wait:calls=") : NULL;
    if (p)
        calls = atoll (p + strlen ("cmdstat_wait:calls="));
    if (rep)
        freeReplyObject (rep);
    return calls;
}

//  Critical events wait for a replica's acknowledgement where a replica exists, and never stall
//  on a lone primary.
static void
test_critical_waits_for_replica (void **state)
{
    s_flush ();
    gl_redis_t *rp = s_connect ();
    char err[256];
    gl_pub_t *pub = gl_pub_new (rp, "crit-1", NULL, err, sizeof err);
    assert_non_null (pub);
    gl_event_t *ev = gl_event_new ("emergency.raised");
    assert_int_equal (gl_pub_send (pub, ev, GL_PUB_CRITICAL), 0);
    gl_event_destroy (&ev);
    assert_int_equal (s_wait_calls (rp), 0);
    char extra[64];
    snprintf (extra, sizeof extra, "--replicaof 127.0.0.1 %d", s_redis->port);
    gl_testredis_t *replica = gl_testredis_start (extra);
    assert_non_null (replica);
    gl_pub_destroy (&pub);      //  a new publisher looks at the replication state afresh
    pub = gl_pub_new (rp, "crit-1", NULL, err, sizeof err);
    while (true) {
        redisReply *r = gl_redis_cmd (rp, "INFO replication");
        bool online = r && strstr (r->str, "connected_slaves:1") && strstr (r->str, "state=online");
        freeReplyObject (r);
        if (online)
            break;
        gl_sleep_ms (50);
    }
    ev = gl_event_new ("emergency.raised");
    assert_int_equal (gl_pub_send (pub, ev, GL_PUB_CRITICAL), 0);
    gl_event_destroy (&ev);
    assert_int_equal (s_wait_calls (rp), 1);
    //  and the event is on the replica
    gl_redis_t *rr = gl_redis_new ("127.0.0.1", replica->port, NULL, 2000, 2000);
    assert_int_equal (s_get_int (rr, "XLEN %s", "gl:log:{crit-1}"), 2);
    gl_redis_destroy (&rr);
    gl_testredis_destroy (&replica);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&rp);
}

static int
s_setup (void **state)
{
    gl_log_init ("test_bus", GL_LOG_WARN, false);
    s_redis = gl_testredis_start (NULL);
    return s_redis ? 0 : -1;
}

static int
s_teardown (void **state)
{
    gl_testredis_destroy (&s_redis);
    zsys_shutdown ();
    return 0;
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_publish_and_apply),
        cmocka_unit_test (test_replay_from_log_and_restart),
        cmocka_unit_test (test_malformed_and_duplicate_frames),
        cmocka_unit_test (test_lease_and_fencing),
        cmocka_unit_test (test_standby_takeover),
        cmocka_unit_test (test_handler_retry),
        cmocka_unit_test (test_epoch_after_lost_writes),
        cmocka_unit_test (test_trim_behind_slowest),
        cmocka_unit_test (test_redis_restart),
        cmocka_unit_test (test_manual_checkpoint),
        cmocka_unit_test (test_critical_waits_for_replica),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
