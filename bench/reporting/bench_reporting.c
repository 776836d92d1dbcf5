/*  bench_reporting — reporting's figures (docs/performance.md).

        bench_reporting ingest [days]     in process: a year (365 days) of 10,000 calls a day
                                          (offered, answered or abandoned, ended, the contact,
                                          three agent transitions) applied to the aggregates:
                                          events/s; then the monthly, 31-day and 365-day
                                          reports over that history (ms each)
        bench_reporting publish DAYS      days of calls into intake-1's log (GL_REDIS_PORT)
        bench_reporting catchup ROUTER N [PID]  gl-reporting (process PID) started on that
                                          log: events/s applied through the bus until N are
                                          applied, of wall time and of its CPU time
        bench_reporting fresh ROUTER PUB  one event published as intake-1, the wallboard polled
                                          until it shows it: p50, p99, max
    bench/reporting/run.sh runs both with a private redis-server and redis-benchmark's XADD as
    the reference measured in the same run.
*/
#include "aggregates.h"
#include "metrics.h"
#include "gl/gl_clock.h"
#include "gl/gl_pub.h"
#include "gl/gl_req.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

//  CPU time of this thread, µs: the machine is shared, so wall time says little about the code.
static int64_t
s_cpu_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#define S_CALLS_PER_DAY 10000
#define S_DAY0          INT64_C(1735689600000)     //  2025-01-01T00:00:00Z

static json_t *
s_call_data (const char *id, int64_t at, int step)
{
    return json_pack ("{s:s, s:s, s:s, s:s, s:n, s:s, s:I, s:n, s:i}", "call_id", id, "line", "main",
                      "language", "ar", "priority", "normal", "ivr_option", "clock", "pbx", "at",
                      (json_int_t) at, "pbx_call_id", "step", step);
}

//  The events of call i of day d, appended to evs (n updated).
static void
s_make_call (gl_event_t **evs, size_t *n, int d, int i)
{
    char id[32], agent[16];
    snprintf (id, sizeof id, "d%dc%d", d, i);
    snprintf (agent, sizeof agent, "agent-%d", i % 40);
    int64_t offer = S_DAY0 + d * 86400000LL + 6 * 3600000LL + (int64_t) i * 4300;
    int wait = (i * 7919) % 180;
    gl_event_t *ev = gl_event_new ("call.offered");
    json_decref (ev->data);
    ev->data = s_call_data (id, offer, 1);
    json_object_set_new (ev->data, "position", json_integer (1));
    ev->ts = offer;
    evs[(*n)++] = ev;
    if (i % 10 == 0) {
        ev = gl_event_new ("call.abandoned");
        json_decref (ev->data);
        ev->data = s_call_data (id, offer + wait * 1000LL, 2);
        json_object_set_new (ev->data, "wait_ms", json_integer (wait * 1000));
        ev->ts = offer + wait * 1000LL;
        evs[(*n)++] = ev;
        return;
    }
    int64_t ans = offer + wait * 1000LL, end = ans + 240000;
    ev = gl_event_new ("call.answered");
    json_decref (ev->data);
    ev->data = s_call_data (id, ans, 2);
    json_object_set_new (ev->data, "wait_ms", json_integer (wait * 1000));
    json_object_set_new (ev->data, "agent_id", json_string (agent));
    ev->ts = ans;
    evs[(*n)++] = ev;
    const char *states[] = { "available", "on_call", "wrap_up", "available" };
    int64_t at[] = { ans, end, end + 30000 };
    for (int k = 0; k < 3; k++) {
        ev = gl_event_new ("agent.state_changed");
        json_decref (ev->data);
        ev->data = json_pack ("{s:s, s:s, s:s, s:I, s:s, s:I}", "agent_id", agent, "from", states[k],
                              "to", states[k + 1], "at", (json_int_t) at[k], "by", agent, "step",
                              (json_int_t) (((int64_t) d * S_CALLS_PER_DAY + i) * 3 + k + 1));
        ev->ts = at[k];
        evs[(*n)++] = ev;
    }
    ev = gl_event_new ("call.ended");
    json_decref (ev->data);
    ev->data = s_call_data (id, end, 3);
    json_object_set_new (ev->data, "wait_ms", json_integer (wait * 1000));
    json_object_set_new (ev->data, "talk_ms", json_integer (240000));
    json_object_set_new (ev->data, "agent_id", json_string (agent));
    ev->ts = end;
    evs[(*n)++] = ev;
    static const char *cats[] = { "health", "legal", "shelter", "food", "registration", "education",
                                  "cash", "protection.gbv" };
    ev = gl_event_new ("contact.created");
    char cid[32];
    snprintf (cid, sizeof cid, "d%dk%d", d, i);
    json_decref (ev->data);
    ev->data = json_pack ("{s:s, s:s, s:s, s:s, s:[s], s:s, s:b, s:b, s:b, s:s, s:s, s:{s:s, s:s, s:s, s:[], s:n}, s:b, s:n}",
        "contact_id", cid, "channel", "call", "direction", "inbound", "language", "ar",
        "categories", cats[i % 8], "outcome", "information_given", "frustration", i % 13 == 0,
        "anonymous", 0, "sensitive", i % 8 == 7, "call_id", id, "agent_id", agent, "agd",
        "sex", i % 2 ? "female" : "male", "age_group", i % 5 ? "18-59" : "60+", "nationality", "SYR",
        "specific_needs", "location", "repeat", 0, "repeat_of");
    ev->ts = end;
    evs[(*n)++] = ev;
}

static int
s_ingest (int days)
{
    rep_conf_t conf;
    rep_conf_default (&conf);
    rep_agg_t *agg = rep_agg_new (&conf);
    //  No checkpoint runs here: forgotten records need not be remembered for one.
    rep_agg_fresh (agg);
    size_t cap = S_CALLS_PER_DAY * 8;
    gl_event_t **evs = malloc (cap * sizeof *evs);
    uint64_t total = 0;
    int64_t spent_us = 0, cpu_us = 0;
    for (int d = 0; d < days; d++) {
        size_t n = 0;
        for (int i = 0; i < S_CALLS_PER_DAY; i++)
            s_make_call (evs, &n, d, i);
        int64_t t0 = gl_mono_us (), c0 = s_cpu_us ();
        for (size_t k = 0; k < n; k++)
            rep_agg_apply (agg, evs[k]);
        spent_us += gl_mono_us () - t0;
        cpu_us += s_cpu_us () - c0;
        total += n;
        for (size_t k = 0; k < n; k++)
            gl_event_destroy (&evs[k]);
    }
    free (evs);
    size_t counters = 0, buckets = rep_store_size (rep_agg_store (agg), &counters);
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    printf ("ingest: %d days, %" PRIu64 " events (%d calls/day): %.0f events/s of CPU time "
            "(%.2f s), %.0f events/s of wall time (%.2f s) (%zu periods, %zu counters, max RSS %ld MB)\n",
            days, total, S_CALLS_PER_DAY, total / (cpu_us / 1e6), cpu_us / 1e6,
            total / (spent_us / 1e6), spent_us / 1e6, buckets, counters, ru.ru_maxrss / 1024);
    //  Reports over that history.
    const char *kinds[] = { "month", "range", "range", "week", "day" };
    const char *from[] = { NULL, "2025-01-01", "2025-01-01", NULL, NULL };
    const char *to[] = { NULL, "2025-01-31", "2025-12-31", NULL, NULL };
    const char *label[] = { "monthly report (2025-01)", "31-day range report", "365-day range report",
                            "weekly report", "daily report" };
    for (int k = 0; k < 5; k++) {
        json_t *q = from[k] ? json_pack ("{s:s, s:s}", "from", from[k], "to", to[k])
                            : json_pack ("{s:s}", "date", "2025-01-15");
        rep_span_t span;
        char field[32], msg[128];
        if (rep_span_parse (agg, kinds[k], q, S_DAY0 + 400 * 86400000LL, &span, field, sizeof field, msg, sizeof msg)) {
            fprintf (stderr, "span: %s\n", msg);
            return 1;
        }
        json_decref (q);
        int runs = 20;
        int64_t best = INT64_MAX, sum = 0, cpu = 0;
        int64_t offered = 0;
        for (int r = 0; r < runs; r++) {
            int64_t t0 = gl_mono_us (), c0 = s_cpu_us ();
            json_t *rep = rep_report (agg, &span, S_DAY0 + 400 * 86400000LL, NULL);
            int64_t us = gl_mono_us () - t0;
            cpu += s_cpu_us () - c0;
            offered = json_integer_value (json_object_get (json_object_get (rep, "calls"), "offered"));
            json_decref (rep);
            sum += us;
            best = us < best ? us : best;
        }
        printf ("%s: %" PRId64 " calls offered, mean %.2f ms (CPU %.2f ms), best %.2f ms (%d runs)\n",
                label[k], offered, sum / 1000.0 / runs, cpu / 1000.0 / runs, best / 1000.0, runs);
    }
    rep_agg_destroy (&agg);
    return 0;
}

static int64_t
s_wallboard (gl_req_t *req, const char *key)
{
    json_t *body = json_pack ("{s:{s:s, s:[s], s:[]}, s:{}, s:{}, s:{}}", "caller", "user_id",
                              "bench", "roles", "supervisor", "units", "params", "query", "body");
    gl_reply_t reply = { 0 };
    int64_t v = -1;
    if (gl_req_call (req, "reporting.wallboard", NULL, body, 5000, &reply) == 0 && reply.status == 200)
        v = json_integer_value (json_object_get (reply.body, key));
    gl_reply_clear (&reply);
    json_decref (body);
    return v;
}

static int
s_cmp64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static gl_pub_t *
s_publisher (gl_redis_t **redis, const char *bind)
{
    const char *port = getenv ("GL_REDIS_PORT");
    *redis = gl_redis_new ("127.0.0.1", port ? atoi (port) : 6379, NULL, 5000, 5000);
    gl_pub_opts_t opts;
    gl_pub_opts_default (&opts);
    opts.bind = bind;
    opts.wait_ms = 15000;
    char err[256];
    gl_pub_t *pub = gl_pub_new (*redis, "intake-1", &opts, err, sizeof err);
    if (!pub)
        fprintf (stderr, "bench: %s\n", err);
    return pub;
}

static gl_req_t *
s_client (const char *router)
{
    gl_req_t *req = gl_req_new (router);
    gl_req_set_auth (req, getenv ("GL_BUS_TOKENS") ? getenv ("GL_BUS_TOKENS") : "bench");
    return req;
}

//  publish DAYS: days of calls into intake-1's log (batches of 100), while gl-reporting is down.
static int
s_publish (int days)
{
    gl_redis_t *redis;
    gl_pub_t *pub = s_publisher (&redis, NULL);
    if (!pub)
        return 1;
    gl_event_t **evs = malloc (S_CALLS_PER_DAY * 8 * sizeof *evs);
    uint64_t sent = 0;
    int64_t t0 = gl_mono_us ();
    for (int d = 0; d < days; d++) {
        size_t n = 0;
        for (int i = 0; i < S_CALLS_PER_DAY; i++)
            s_make_call (evs, &n, 1000 + d, i);
        for (size_t k = 0; k < n; k += 100) {
            size_t m = n - k < 100 ? n - k : 100;
            if (gl_pub_send_batch (pub, evs + k, m, 0) != 0) {
                fprintf (stderr, "bench: send failed\n");
                return 1;
            }
        }
        for (size_t k = 0; k < n; k++)
            gl_event_destroy (&evs[k]);
        sent += n;
    }
    printf ("published: %" PRIu64 " events into intake-1's log in %.2f s\n", sent,
            (gl_mono_us () - t0) / 1e6);
    free (evs);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&redis);
    return 0;
}

//  catchup ROUTER N: gl-reporting just started on a log of N events: how fast it applies them
//  (from its first answer to the last event applied, checkpoints included).
//  CPU seconds (user + system) a process has used so far, from /proc; -1 when unknown.
static double
s_proc_cpu (const char *pid)
{
    char path[64], buf[1024];
    snprintf (path, sizeof path, "/proc/%s/stat", pid ? pid : "0");
    FILE *f = fopen (path, "r");
    if (!f)
        return -1;
    size_t len = fread (buf, 1, sizeof buf - 1, f);
    fclose (f);
    buf[len] = 0;
    char *p = strrchr (buf, ')');
    unsigned long utime = 0, stime = 0;
    if (!p || sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

static int
s_catchup (const char *router, int64_t n, const char *pid)
{
    gl_req_t *req = s_client (router);
    int64_t first;
    while ((first = s_wallboard (req, "events_applied")) < 0)
        gl_sleep_ms (10);
    int64_t t0 = gl_mono_us ();
    double c0 = s_proc_cpu (pid);
    int64_t got = first;
    while ((got = s_wallboard (req, "events_applied")) < n)
        gl_sleep_ms (20);
    double s = (gl_mono_us () - t0) / 1e6;
    double cpu = s_proc_cpu (pid) - c0;
    printf ("catch-up through the bus (log reads, decode, apply, checkpoints): %" PRId64
            " events in %.2f s: %.0f events/s of wall time", got - first, s, (got - first) / s);
    if (pid && c0 >= 0 && cpu > 0)
        printf (", gl-reporting used %.1f CPU s: %.0f events/s of its CPU time", cpu, (got - first) / cpu);
    printf ("\n");
    gl_req_destroy (&req);
    return 0;
}

//  fresh ROUTER PUB-BIND: one call offered, then the wallboard polled until it shows it.
static int
s_fresh (const char *router, const char *bind)
{
    gl_redis_t *redis;
    gl_pub_t *pub = s_publisher (&redis, bind);
    if (!pub)
        return 1;
    gl_req_t *req = s_client (router);
    while (s_wallboard (req, "calls_waiting") < 0)
        gl_sleep_ms (10);
    gl_sleep_ms (1500);     //  the subscriber connects to this publisher
    int samples = 200;
    int64_t *lat = malloc (samples * sizeof *lat);
    for (int s = 0; s < samples; s++) {
        int64_t before = s_wallboard (req, "calls_waiting");
        char id[32];
        snprintf (id, sizeof id, "fresh%d", s);
        gl_event_t *ev = gl_event_new ("call.offered");
        json_decref (ev->data);
        ev->data = s_call_data (id, gl_now_ms (), 1);
        int64_t p0 = gl_mono_us ();
        gl_pub_send (pub, ev, 0);
        while (s_wallboard (req, "calls_waiting") <= before)
            ;
        lat[s] = gl_mono_us () - p0;
        gl_event_destroy (&ev);
        gl_pub_tick (pub);
    }
    qsort (lat, samples, sizeof *lat, s_cmp64);
    printf ("wallboard freshness (publish -> visible in the wallboard request), %d samples: "
            "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", samples, lat[samples / 2] / 1000.0,
            lat[samples * 99 / 100] / 1000.0, lat[samples - 1] / 1000.0);
    free (lat);
    gl_req_destroy (&req);
    gl_pub_destroy (&pub);
    gl_redis_destroy (&redis);
    return 0;
}

int
main (int argc, char *argv[])
{
    if (argc >= 2 && !strcmp (argv[1], "ingest"))
        return s_ingest (argc >= 3 ? atoi (argv[2]) : 365);
    if (argc == 3 && !strcmp (argv[1], "publish"))
        return s_publish (atoi (argv[2]));
    if ((argc == 4 || argc == 5) && !strcmp (argv[1], "catchup"))
        return s_catchup (argv[2], atoll (argv[3]), argc == 5 ? argv[4] : NULL);
    if (argc == 4 && !strcmp (argv[1], "fresh"))
        return s_fresh (argv[2], argv[3]);
    fprintf (stderr, "usage: bench_reporting ingest [days] | publish DAYS | catchup ROUTER N | "
                     "fresh ROUTER PUB-BIND\n");
    return 2;
}
