/*  bench_bus — the durable bus end to end: gl_pub (append to the Redis log under the lease, then
    PUB) -> gl_sub (apply with a transaction and a compare-and-set commit of the cursor), against
    a redis-server the caller started (bench/run-bus.sh starts a private one).

        bench_bus throughput --port P [--pubs N] [--pub-batch K] [--sub-batch B] [--events E]
        bench_bus latency    --port P [--rate R] [--seconds S] [--sub-batch B] [--pubs N]
    (--stats on either: redis-server's INFO commandstats for the run, on stderr; --apply argv:
    the handler queues its command with gl_tx_cmd instead of gl_tx_cmdf, to price the formatting)

    Every publisher and the subscriber are threads of this process, each with its own Redis
    connection. The handler applies each event with one command (HINCRBY bench:applied <src> 1)
    queued in the subscriber's transaction, as a service would. Events carry a "pad" string so
    that the encoded envelope is about 200 bytes.

    throughput: N publishers each send E/N events with gl_pub_send_batch, K at a time, as fast as
    they can; one subscriber with batch B applies them. Time zero is the first send's start.
      appended_per_s  events appended / (last publisher done - time zero)
      applied_per_s   events applied  / (last commit done - time zero): the end-to-end rate
    and counters: frames received on the SUB socket, events fetched from the log instead, and
    the sum of the HINCRBY counters read back (must equal the events sent: exactly once), and
    the CPU time per event spent by redis-server (INFO cpu) and by this process (getrusage).

    latency: one publisher (or N, sharing the rate) calls gl_pub_send (one event per append) on a
    fixed schedule of R events/s for S seconds; each event carries its send start in monotonic
    µs. The subscriber records, for each event, the time its commit had finished minus that send
    start. An event's commit is known to have finished when gl_sub_stats counts it as applied,
    which is checked each time the handler is called and each time gl_sub_run_once returns: a
    figure can be late by the decoding of the next frame or the return from gl_sub_run_once,
    never early. Both ends read CLOCK_MONOTONIC of one process. Prints p50, p99, p99.9 and max in
    µs, and the rate actually achieved (the publisher sends late rather than skipping when an
    append takes longer than the interval; max_send_late_us says how late it got).

    The last line on stdout is "RESULT key=value ..." for bench/run-bus.sh to tabulate.
    Everything it writes in Redis is removed first (FLUSHALL): never point it at real data.
*/
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_pub.h"
#include "gl/gl_sub.h"
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#define BENCH_MAX_PUBS 16
#define BENCH_MAX_BATCH 1000    //  gl_pub_send_batch's limit
#define BENCH_PAD 80            //  payload padding: envelope of about 200 bytes
#define BENCH_TIMEOUT_S 120     //  a run that has not finished by then is reported as failed

typedef struct {
    const char *mode;
    int port;
    int pubs;
    int pub_batch;
    int sub_batch;
    long events;
    double rate;
    double seconds;
    bool stats;                 //  --stats: redis-server's INFO commandstats of the run to stderr
    bool apply_argv;            //  --apply argv: gl_tx_cmd instead of gl_tx_cmdf
} s_args_t;

static void
s_sleep_until_us (int64_t when)
{
    struct timespec ts = { (time_t) (when / 1000000), (long) (when % 1000000) * 1000 };
    while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static gl_redis_t *
s_connect (int port)
{
    return gl_redis_new ("127.0.0.1", port, NULL, 10000, 5000);
}

static gl_event_t *
s_event (int64_t t_us)
{
    static const char pad[BENCH_PAD + 1] =
        "................................................................................";
    gl_event_t *ev = gl_event_new ("bench.tick");
    json_object_set_new (ev->data, "t", json_integer (t_us));
    json_object_set_new (ev->data, "pad", json_string (pad));
    return ev;
}

//  ---------------------------------------------------------------------------------------------
//  Subscriber side

typedef struct {
    gl_sub_t *sub;
    bool use_argv;              //  queue the command with gl_tx_cmd rather than gl_tx_cmdf
    uint64_t handled;           //  handler calls that returned 0
    uint64_t committed;         //  of those, how many we know are committed
    int64_t *pending;           //  FIFO of send times, handled but not known committed
    size_t pend_cap, pend_head, pend_tail;
    int64_t *lat;               //  latencies, µs (latency mode only)
    size_t nlat, lat_cap;
} s_apply_t;

//  Every event the subscriber says is applied has had its commit finish: record its latency.
static void
s_settle (s_apply_t *a)
{
    uint64_t applied = gl_sub_stats (a->sub).applied;
    if (applied <= a->committed)
        return;
    int64_t now = gl_mono_us ();
    while (a->committed < applied && a->pend_head != a->pend_tail) {
        int64_t sent = a->pending[a->pend_head++ % a->pend_cap];
        if (a->lat && a->nlat < a->lat_cap)
            a->lat[a->nlat++] = now - sent;
        a->committed++;
    }
}

static int
s_apply (void *arg, const gl_event_t *ev, gl_tx_t *tx)
{
    s_apply_t *a = arg;
    s_settle (a);
    if (a->pend_tail - a->pend_head == a->pend_cap)
        return -1;      //  cannot happen with batch <= pend_cap; retried later if it does
    if (a->use_argv) {
        const char *argv[] = { "HINCRBY", "bench:applied", ev->src, "1" };
        if (gl_tx_cmd (tx, 4, argv, NULL) != 0)
            return -1;
    }
    else if (gl_tx_cmdf (tx, "HINCRBY bench:applied %s 1", ev->src) != 0)
        return -1;
    a->pending[a->pend_tail++ % a->pend_cap] = gl_event_int (ev, "t", 0);
    a->handled++;
    return 0;
}

typedef struct {
    gl_sub_t *sub;
    s_apply_t *apply;
    _Atomic uint64_t want;      //  set once the publishers are done
    atomic_bool stop;
    _Atomic int64_t done_us;    //  when the want-th event was known committed; 0 if never
} s_subrun_t;

static void *
s_sub_thread (void *arg)
{
    s_subrun_t *run = arg;
    prctl (PR_SET_NAME, "bench-sub");      //  so that perf report --comm can tell the threads
    while (!atomic_load (&run->stop)) {
        gl_sub_run_once (run->sub, 5);
        s_settle (run->apply);
        if (run->apply->committed >= atomic_load (&run->want)) {
            atomic_store (&run->done_us, gl_mono_us ());
            break;
        }
    }
    return NULL;
}

static gl_sub_t *
s_sub_new (gl_redis_t *redis, const char *endpoints, int batch, s_apply_t *apply)
{
    gl_sub_opts_t o;
    gl_sub_opts_default (&o);
    o.endpoints = endpoints;
    o.batch = batch;
    char err[256];
    gl_sub_t *sub = gl_sub_new (redis, "bench", &o, s_apply, apply, err, sizeof err);
    if (!sub) {
        fprintf (stderr, "bench_bus: subscriber: %s\n", err);
        return NULL;
    }
    //  Win the lease and connect, then give the SUB socket time to join (slow joiner: frames
    //  sent before would come from the log instead, which is correct but not what we measure).
    int64_t deadline = gl_mono_ms () + 5000;
    while (!gl_sub_active (sub) && gl_mono_ms () < deadline)
        gl_sub_run_once (sub, 10);
    if (!gl_sub_active (sub)) {
        fprintf (stderr, "bench_bus: subscriber never became active\n");
        gl_sub_destroy (&sub);
        return NULL;
    }
    int64_t settle = gl_mono_ms () + 300;
    while (gl_mono_ms () < settle)
        gl_sub_run_once (sub, 10);
    return sub;
}

//  ---------------------------------------------------------------------------------------------
//  Publisher side

typedef struct {
    gl_pub_t *pub;
    long events;                //  at most this many
    int64_t duration_us;        //  and for at most this long (0: no limit)
    int batch;
    double rate;                //  latency mode: events/s (0: as fast as possible)
    long sent;
    pthread_barrier_t *go;
    int64_t start_us, end_us;
    int64_t max_behind_us;      //  latency mode: how late the worst send started
    int rc;
} s_pubrun_t;

static void *
s_pub_thread (void *arg)
{
    s_pubrun_t *p = arg;
    gl_event_t *evs[BENCH_MAX_BATCH];
    prctl (PR_SET_NAME, "bench-pub");
    pthread_barrier_wait (p->go);
    p->start_us = gl_mono_us ();
    while (p->sent < p->events && p->rc == 0) {
        long sent = p->sent;
        int n = (int) (p->events - sent < p->batch ? p->events - sent : p->batch);
        int64_t t = gl_mono_us ();
        if (p->duration_us && t - p->start_us >= p->duration_us)
            break;
        if (p->rate > 0) {
            int64_t due = p->start_us + (int64_t) ((double) sent * 1e6 / p->rate);
            if (due > t)
                s_sleep_until_us (due), t = gl_mono_us ();
            if (t - due > p->max_behind_us)
                p->max_behind_us = t - due;
        }
        for (int i = 0; i < n; i++)
            evs[i] = s_event (t);
        p->rc = gl_pub_send_batch (p->pub, evs, (size_t) n, 0);
        for (int i = 0; i < n; i++)
            gl_event_destroy (&evs[i]);
        gl_pub_tick (p->pub);
        if (p->rc == 0)
            p->sent += n;
    }
    p->end_us = gl_mono_us ();
    return NULL;
}

//  Sum of the values of a hash (the handler's counters), -1 on failure.
static long long
s_hash_sum (gl_redis_t *redis, const char *key)
{
    redisReply *r = gl_redis_cmd (redis, "HGETALL %s", key);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_ARRAY) {
        v = 0;
        for (size_t i = 1; i < r->elements; i += 2) {
            long long x = 0;
            gl_redis_reply_int (r->element[i], &x);
            v += x;
        }
    }
    if (r)
        freeReplyObject (r);
    return v;
}

//  CPU seconds (user + system) redis-server has used so far, from INFO cpu; -1 on failure.
static double
s_redis_cpu (gl_redis_t *redis)
{
    redisReply *r = gl_redis_cmd (redis, "INFO cpu");
    double cpu = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *u = strstr (r->str, "used_cpu_user:");
        const char *y = strstr (r->str, "used_cpu_sys:");
        if (u && y)
            cpu = atof (u + 14) + atof (y + 13);
    }
    if (r)
        freeReplyObject (r);
    return cpu;
}

//  CPU seconds this process (every thread) has used so far.
static double
s_self_cpu (void)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6
           + (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

//  Per-command figures of redis-server since the last CONFIG RESETSTAT, to stderr.
static void
s_print_commandstats (gl_redis_t *redis)
{
    redisReply *r = gl_redis_cmd (redis, "INFO commandstats");
    if (r && r->type == REDIS_REPLY_STRING)
        fprintf (stderr, "%s", r->str);
    if (r)
        freeReplyObject (r);
}

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static int64_t
s_pct (const int64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t) (p / 100.0 * (double) n);
    return sorted[i < n ? i : n - 1];
}

//  One run: create publishers and the subscriber, go, wait, report.
static int
s_run (const s_args_t *args)
{
    bool latency = strcmp (args->mode, "latency") == 0;
    int npubs = args->pubs;
    long per_pub = latency ? (long) (args->rate * args->seconds / npubs) + 1 : args->events / npubs;
    uint64_t most = (uint64_t) per_pub * (uint64_t) npubs;

    gl_redis_t *admin = s_connect (args->port);
    redisReply *r = gl_redis_cmd (admin, "FLUSHALL");
    if (!r) {
        fprintf (stderr, "bench_bus: redis on port %d: %s\n", args->port, gl_redis_errstr (admin));
        gl_redis_destroy (&admin);
        return 1;
    }
    freeReplyObject (r);
    r = gl_redis_cmd (admin, "CONFIG GET appendfsync");
    char fsync[32] = "?";
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        snprintf (fsync, sizeof fsync, "%s", r->element[1]->str);
    if (r)
        freeReplyObject (r);

    gl_redis_t *pub_redis[BENCH_MAX_PUBS] = { 0 };
    s_pubrun_t runs[BENCH_MAX_PUBS];
    memset (runs, 0, sizeof runs);
    pthread_barrier_t go;
    pthread_barrier_init (&go, NULL, (unsigned) npubs + 1);
    char endpoints[BENCH_MAX_PUBS * 64] = "";
    gl_pub_opts_t po;
    gl_pub_opts_default (&po);
    po.bind = "tcp://127.0.0.1:*";
    for (int i = 0; i < npubs; i++) {
        char name[32], err[256];
        snprintf (name, sizeof name, "bench-%d", i + 1);
        pub_redis[i] = s_connect (args->port);
        runs[i].pub = gl_pub_new (pub_redis[i], name, &po, err, sizeof err);
        if (!runs[i].pub) {
            fprintf (stderr, "bench_bus: publisher %s: %s\n", name, err);
            return 1;
        }
        runs[i].events = per_pub;
        runs[i].duration_us = latency ? (int64_t) (args->seconds * 1e6) : 0;
        runs[i].batch = latency ? 1 : args->pub_batch;
        runs[i].rate = latency ? args->rate / npubs : 0;
        runs[i].go = &go;
        if (i)
            strcat (endpoints, ",");
        strcat (endpoints, gl_pub_endpoint (runs[i].pub));
    }

    s_apply_t apply = { .use_argv = args->apply_argv };
    apply.pend_cap = 8192;
    apply.pending = calloc (apply.pend_cap, sizeof (int64_t));
    if (latency) {
        apply.lat_cap = most;
        apply.lat = calloc (most, sizeof (int64_t));
    }
    gl_redis_t *sub_redis = s_connect (args->port);
    gl_sub_t *sub = s_sub_new (sub_redis, endpoints, args->sub_batch, &apply);
    if (!sub)
        return 1;
    apply.sub = sub;
    s_settle (&apply);
    s_subrun_t subrun = { .sub = sub, .apply = &apply, .want = UINT64_MAX };

    //  Encoded size of one event, for the table.
    gl_event_t *probe = s_event (gl_mono_us ());
    snprintf (probe->src, sizeof probe->src, "bench-1");
    probe->seq = most;
    char *buf = NULL;
    size_t evsize = 0;
    gl_event_encode (probe, &buf, &evsize);
    free (buf);
    gl_event_destroy (&probe);

    if (args->stats) {
        r = gl_redis_cmd (admin, "CONFIG RESETSTAT");
        if (r)
            freeReplyObject (r);
    }
    double redis_cpu0 = s_redis_cpu (admin);
    double self_cpu0 = s_self_cpu ();
    pthread_t sub_tid, pub_tid[BENCH_MAX_PUBS];
    pthread_create (&sub_tid, NULL, s_sub_thread, &subrun);
    for (int i = 0; i < npubs; i++)
        pthread_create (&pub_tid[i], NULL, s_pub_thread, &runs[i]);
    pthread_barrier_wait (&go);
    int64_t t0 = gl_mono_us ();
    int64_t pubs_done = 0;
    uint64_t total = 0;
    int rc = 0;
    for (int i = 0; i < npubs; i++) {
        pthread_join (pub_tid[i], NULL);
        if (runs[i].start_us < t0)
            t0 = runs[i].start_us;
        if (runs[i].end_us > pubs_done)
            pubs_done = runs[i].end_us;
        total += (uint64_t) runs[i].sent;
        if (runs[i].rc != 0) {
            fprintf (stderr, "bench_bus: publisher %d failed: %d\n", i + 1, runs[i].rc);
            rc = 1;
        }
    }
    atomic_store (&subrun.want, total);
    //  Bound the wait for the subscriber; a run that never completes is a failure, not a hang.
    while (atomic_load (&subrun.done_us) == 0
           && gl_mono_us () - pubs_done < (int64_t) BENCH_TIMEOUT_S * 1000000)
        gl_sleep_ms (10);
    atomic_store (&subrun.stop, true);
    pthread_join (sub_tid, NULL);
    if (atomic_load (&subrun.done_us) == 0) {
        fprintf (stderr, "bench_bus: subscriber applied %" PRIu64 " of %" PRIu64 " in time\n",
                 apply.committed, total);
        rc = 1;
    }

    double redis_cpu = s_redis_cpu (admin) - redis_cpu0;
    double self_cpu = s_self_cpu () - self_cpu0;
    if (args->stats)
        s_print_commandstats (admin);
    uint64_t appended = 0, dropped = 0;
    for (int i = 0; i < npubs; i++) {
        gl_pub_stats_t ps = gl_pub_stats (runs[i].pub);
        appended += ps.appended;
        dropped += ps.pub_dropped;
    }
    gl_sub_stats_t ss = gl_sub_stats (sub);
    long long counted = s_hash_sum (admin, "bench:applied");
    if (counted != (long long) total) {
        fprintf (stderr, "bench_bus: Redis counted %lld applications of %" PRIu64 " events\n",
                 counted, total);
        rc = 1;
    }
    double pub_s = (double) (pubs_done - t0) / 1e6;
    int64_t done_us = atomic_load (&subrun.done_us);
    double e2e_s = done_us ? (double) (done_us - t0) / 1e6 : 0;
    double n = total ? (double) total : 1;
    printf ("RESULT kind=%s fsync=%s pubs=%d", args->mode, fsync, npubs);
    if (!latency)
        printf (" pub_batch=%d sub_batch=%d events=%" PRIu64 " size=%zu appended_per_s=%.0f"
                " applied_per_s=%.0f e2e_s=%.2f",
                args->pub_batch, args->sub_batch, total, evsize, (double) appended / pub_s,
                e2e_s > 0 ? (double) ss.applied / e2e_s : 0.0, e2e_s);
    else {
        int64_t max_late = 0;
        for (int i = 0; i < npubs; i++)
            if (runs[i].max_behind_us > max_late)
                max_late = runs[i].max_behind_us;
        qsort (apply.lat, apply.nlat, sizeof (int64_t), s_cmp_i64);
        printf (" rate=%.0f achieved=%.0f seconds=%.1f sub_batch=%d events=%" PRIu64 " size=%zu"
                " p50_us=%" PRId64 " p99_us=%" PRId64 " p999_us=%" PRId64 " max_us=%" PRId64
                " max_send_late_us=%" PRId64,
                args->rate, n / pub_s, pub_s, args->sub_batch, total, evsize,
                s_pct (apply.lat, apply.nlat, 50), s_pct (apply.lat, apply.nlat, 99),
                s_pct (apply.lat, apply.nlat, 99.9), apply.nlat ? apply.lat[apply.nlat - 1] : 0,
                max_late);
    }
    printf (" appended=%" PRIu64 " published=%" PRIu64 " received=%" PRIu64 " fetched=%" PRIu64
            " gaps=%" PRIu64 " dups=%" PRIu64 " applied=%" PRIu64 " conflicts=%" PRIu64
            " redis_cpu_us=%.1f client_cpu_us=%.1f exactly_once=%s\n",
            appended, appended - dropped, ss.received, ss.fetched, ss.gaps, ss.duplicates,
            ss.applied, ss.conflicts, redis_cpu * 1e6 / n, self_cpu * 1e6 / n,
            counted == (long long) total ? "yes" : "NO");

    gl_sub_destroy (&sub);
    gl_redis_destroy (&sub_redis);
    for (int i = 0; i < npubs; i++) {
        gl_pub_destroy (&runs[i].pub);
        gl_redis_destroy (&pub_redis[i]);
    }
    gl_redis_destroy (&admin);
    pthread_barrier_destroy (&go);
    free (apply.pending);
    free (apply.lat);
    return rc;
}

static int
s_usage (void)
{
    fprintf (stderr,
             "usage: bench_bus throughput --port P [--pubs N] [--pub-batch K] [--sub-batch B]"
             " [--events E] [--apply fmt|argv] [--stats]\n"
             "       bench_bus latency --port P [--rate R] [--seconds S] [--sub-batch B] [--pubs N]"
             " [--stats]\n");
    return 2;
}

int
main (int argc, char **argv)
{
    s_args_t a = { .pubs = 1, .pub_batch = 1, .sub_batch = 1, .events = 100000, .rate = 5000,
                   .seconds = 10 };
    if (argc < 2)
        return s_usage ();
    a.mode = argv[1];
    if (strcmp (a.mode, "throughput") != 0 && strcmp (a.mode, "latency") != 0)
        return s_usage ();
    int i = 2;
    for (; i < argc; i += 2) {
        const char *k = argv[i];
        if (strcmp (k, "--stats") == 0) {
            a.stats = true;
            i--;
            continue;
        }
        if (i + 1 >= argc)
            return s_usage ();
        const char *v = argv[i + 1];
        if (strcmp (k, "--port") == 0)
            a.port = atoi (v);
        else if (strcmp (k, "--pubs") == 0)
            a.pubs = atoi (v);
        else if (strcmp (k, "--pub-batch") == 0)
            a.pub_batch = atoi (v);
        else if (strcmp (k, "--sub-batch") == 0)
            a.sub_batch = atoi (v);
        else if (strcmp (k, "--events") == 0)
            a.events = atol (v);
        else if (strcmp (k, "--rate") == 0)
            a.rate = atof (v);
        else if (strcmp (k, "--seconds") == 0)
            a.seconds = atof (v);
        else if (strcmp (k, "--apply") == 0 && (strcmp (v, "fmt") == 0 || strcmp (v, "argv") == 0))
            a.apply_argv = strcmp (v, "argv") == 0;
        else
            return s_usage ();
    }
    if (a.port <= 0 || a.port > 65535 || a.pubs < 1 || a.pubs > BENCH_MAX_PUBS
        || a.pub_batch < 1 || a.pub_batch > BENCH_MAX_BATCH || a.sub_batch < 1
        || a.sub_batch > 4096 || a.events < a.pubs || a.events > 10000000 || a.rate <= 0
        || a.rate > 1e6 || a.seconds <= 0 || a.seconds > 600 || a.rate * a.seconds > 10000000)
        return s_usage ();
    gl_log_init ("bench_bus", GL_LOG_WARN, false);
    return s_run (&a);
}
