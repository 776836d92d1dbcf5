/*  gl_wq under fire: 4 worker processes share 20,000 items; the work (HINCRBY on a results hash)
    is done inside gl_wq_complete's atomic step; workers are SIGKILLed at random moments while
    they hold claimed items and restarted under new consumer names, and now and then stall past
    reclaim_idle_ms so that two workers complete the same item. At the end every item was done
    exactly once and nothing is pending.

    The workers are this same binary run as "test_wq_kill worker PORT CONSUMER SEED".
*/
/* ctest: timeout=300 labels=nosan */
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_redis.h"
#include "gl/gl_wq.h"
#include "gl_testenv.h"
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define S_QUEUE    "killtest"
#define S_RESULTS  "test:{killtest}:results"
#define S_ITEMS    20000
#define S_WORKERS  4
#define S_KILLS    5        //  kills that must hit a worker holding claimed items
#define S_BATCH    16

static const gl_wq_opts_t s_opts = {
    .max_deliveries = 50,   //  an item may be caught in several kills; none must die of it
    .reclaim_idle_ms = 1000,
    .max_len = 30000,
    .batch = S_BATCH,
};

//  xorshift64*: reproducible from the printed seed.
static uint64_t
s_rand (uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

//  --------------------------------------------------------------------------------------------
//  Worker process

static volatile sig_atomic_t s_stop;

static void
s_on_term (int sig)
{
    s_stop = 1;
}

static int
s_worker (int port, const char *consumer, uint64_t seed)
{
    signal (SIGTERM, s_on_term);
    gl_log_init (consumer, GL_LOG_WARN, false);
    uint64_t rng = seed ? seed : 1;
    gl_redis_t *r = gl_redis_new ("127.0.0.1", port, NULL, 5000, 10000);
    gl_wq_t *wq = r ? gl_wq_new (r, S_QUEUE, consumer, &s_opts) : NULL;
    if (!wq)
        return 2;
    long applied = 0, already = 0, gone = 0, errors = 0;
    while (!s_stop) {
        gl_wq_item_t *items[S_BATCH];
        int n = 0;
        if (gl_wq_claim (wq, S_BATCH, 200, items, &n) != 0) {
            gl_warn ("claim: %s", gl_wq_errstr (wq));
            gl_sleep_ms (50);
            continue;
        }
        for (int i = 0; i < n; i++) {
            //  The "work" takes a little while, so the worker is usually holding items when
            //  the test kills it.
            gl_sleep_ms ((int64_t) (s_rand (&rng) % 3));
            //  Now and then a worker stalls past reclaim_idle_ms: another one reclaims its
            //  items, and both complete them; the done marker must keep the effect single.
            if (s_rand (&rng) % 1000 == 0)
                gl_sleep_ms (s_opts.reclaim_idle_ms + 200);
            const char *incr[] = { "HINCRBY", S_RESULTS, gl_wq_item_key (items[i]), "1" };
            gl_wq_cmd_t cmd = { .argc = 4, .argv = incr };
            int rc = gl_wq_complete (wq, items[i], 1, &cmd);
            if (rc == 0)
                applied++;
            else if (rc == GL_WQ_ALREADY_DONE)
                already++;
            else if (rc == GL_WQ_GONE)
                gone++;
            else {
                errors++;
                gl_warn ("complete: %s", gl_wq_errstr (wq));
            }
            gl_wq_item_free (&items[i]);
        }
    }
    fprintf (stderr, "%s: applied %ld, already done %ld, gone %ld, errors %ld\n", consumer,
             applied, already, gone, errors);
    gl_wq_destroy (&wq);
    gl_redis_destroy (&r);
    return 0;
}

//  --------------------------------------------------------------------------------------------
//  The test

static char s_self[1024];
static gl_testredis_t *s_env;

static pid_t
s_spawn_worker (const char *consumer, uint64_t seed)
{
    char port[16], seedstr[32];
    snprintf (port, sizeof port, "%d", s_env->port);
    snprintf (seedstr, sizeof seedstr, "%llu", (unsigned long long) seed);
    char *argv[] = { s_self, "worker", port, (char *) consumer, seedstr, NULL };
    pid_t pid = gl_test_spawn (s_self, argv, NULL, NULL);
    assert_true (pid > 0);
    return pid;
}

//  True when consumer has entries in the group's pending list.
static bool
s_holds_items (gl_redis_t *r, const char *consumer)
{
    redisReply *p = gl_redis_cmd (r, "XPENDING gl:wq:{%s} gl-wq - + 1 %s", S_QUEUE, consumer);
    assert_non_null (p);
    assert_int_equal (p->type, REDIS_REPLY_ARRAY);
    bool holds = p->elements > 0;
    freeReplyObject (p);
    return holds;
}

static void
test_workers_killed_every_item_done_once (void **state)
{
    uint64_t seed = gl_test_seed ("test_wq_kill");
    uint64_t rng = seed ? seed : 1;
    gl_redis_t *r = gl_redis_new ("127.0.0.1", s_env->port, NULL, 5000, 5000);
    gl_wq_t *wq = gl_wq_new (r, S_QUEUE, NULL, &s_opts);
    assert_non_null (wq);
    for (int i = 0; i < S_ITEMS; i++) {
        char key[32], payload[64];
        snprintf (key, sizeof key, "item-%05d", i);
        int len = snprintf (payload, sizeof payload, "{\"n\":%d}", i);
        assert_int_equal (gl_wq_add (wq, key, payload, (size_t) len, NULL), 0);
    }

    pid_t pids[S_WORKERS];
    char names[S_WORKERS][32];
    int gen = 0;
    for (int w = 0; w < S_WORKERS; w++) {
        snprintf (names[w], sizeof names[w], "w%d-g%d", w, gen++);
        pids[w] = s_spawn_worker (names[w], seed + (uint64_t) gen);
    }

    //  Kill a random worker at random moments until S_KILLS kills have caught a worker holding
    //  claimed items (its pending list is not empty after its death); restart it each time.
    int kills = 0, kills_holding = 0;
    while (kills_holding < S_KILLS) {
        gl_sleep_ms (100 + (int64_t) (s_rand (&rng) % 400));
        gl_wq_stats_t st;
        assert_int_equal (gl_wq_stats (wq, &st), 0);
        if (st.depth == 0)
            break;
        int w = (int) (s_rand (&rng) % S_WORKERS);
        kill (pids[w], SIGKILL);
        int status = gl_test_wait (pids[w], 10000);
        assert_true (WIFSIGNALED (status));
        kills++;
        if (s_holds_items (r, names[w]))
            kills_holding++;
        snprintf (names[w], sizeof names[w], "w%d-g%d", w, gen++);
        pids[w] = s_spawn_worker (names[w], seed + (uint64_t) gen);
    }
    fprintf (stderr, "test_wq_kill: %d kills, %d while holding items\n", kills, kills_holding);
    assert_true (kills_holding >= S_KILLS);

    //  Adding the same items again while they are queued, pending or done creates nothing.
    for (int i = 0; i < S_ITEMS; i++) {
        char key[32];
        snprintf (key, sizeof key, "item-%05d", i);
        assert_int_equal (gl_wq_add (wq, key, "again", 5, NULL), GL_WQ_DUPLICATE);
    }

    //  Wait for the survivors (and the reclaim of the dead workers' items); ctest's timeout
    //  bounds this.
    gl_wq_stats_t st = { 0 };
    do {
        gl_sleep_ms (100);
        assert_int_equal (gl_wq_stats (wq, &st), 0);
    } while (st.depth > 0 || st.pending > 0);
    for (int w = 0; w < S_WORKERS; w++) {
        int status = gl_test_stop (pids[w], 10000);
        assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    }
    assert_int_equal (st.dead, 0);

    //  Every item's effect applied exactly once.
    redisReply *h = gl_redis_cmd (r, "HGETALL %s", S_RESULTS);
    assert_non_null (h);
    assert_int_equal (h->type, REDIS_REPLY_ARRAY);
    assert_int_equal (h->elements, 2 * S_ITEMS);
    char *seen = calloc (S_ITEMS, 1);
    assert_non_null (seen);
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        int n = -1;
        assert_int_equal (sscanf (h->element[i]->str, "item-%d", &n), 1);
        assert_true (n >= 0 && n < S_ITEMS);
        assert_int_equal (seen[n], 0);
        seen[n] = 1;
        assert_string_equal (h->element[i + 1]->str, "1");
    }
    free (seen);
    freeReplyObject (h);
    redisReply *x = gl_redis_cmd (r, "XLEN gl:wq:{%s}", S_QUEUE);
    assert_non_null (x);
    assert_int_equal (x->integer, 0);
    freeReplyObject (x);
    gl_wq_destroy (&wq);
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
main (int argc, char **argv)
{
    if (argc == 5 && strcmp (argv[1], "worker") == 0)
        return s_worker (atoi (argv[2]), argv[3], strtoull (argv[4], NULL, 10));
    ssize_t n = readlink ("/proc/self/exe", s_self, sizeof s_self - 1);
    if (n <= 0)
        return 1;
    s_self[n] = 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_workers_killed_every_item_done_once),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
