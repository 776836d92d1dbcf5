/*  bench_forward — intake's forwarded routes (services/intake/forward.c) under load: a real
    gl-intake against a private redis-server, a stand-in service (a gl_rep in a thread of this
    program) registered as notifier that answers at once, and another registered as referral
    that takes SLOW_MS per request, one at a time.

        GL_BUILD_DIR=build/rel bench_forward [--seconds S] [--clients N] [--slow-ms MS]

    Two rounds of S seconds, N client threads each sending GET /api/v1/notifications/{id} one
    after another (a connection per request, as the tests' client does):
      prompt    nothing else going on;
      beside    4 more clients asking the slow service (GET /api/v1/units) meanwhile.
    Prints "<round> <forwarded requests/s> <p50 ms> <p99 ms> <slow answers>" and a RESULT line.
    With the loop blocked by a slow service (before forward_call), "beside" fell to about
    1000 / SLOW_MS requests/s; now it should stay near "prompt".
*/
#include "gl/gl_clock.h"
#include "gl/gl_log.h"
#include "gl/gl_rep.h"
#include "gl_testintake.h"
#include "gl_testrep.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_CLIENTS   64
#define S_SLOW_CLIENTS  4
#define S_SAMPLES       200000

static gl_testintake_t *s_intake;
static char s_token[128];
static atomic_bool s_round_over;
static int s_slow_ms = 100;

//  Latencies of the prompt requests of one round, in µs.
static int64_t s_lat[S_SAMPLES];
static atomic_size_t s_nlat;
static atomic_long s_slow_answered;

static int
s_prompt_op (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    (void) arg;
    (void) req;
    (void) err;
    *reply = json_pack ("{s:b}", "ok", 1);
    return 200;
}

static int
s_slow_op (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    (void) arg;
    (void) req;
    (void) err;
    gl_sleep_ms (s_slow_ms);
    *reply = json_pack ("{s:b}", "ok", 1);
    return 200;
}


static void *
s_client (void *arg)
{
    (void) arg;
    while (!atomic_load (&s_round_over)) {
        int64_t t0 = gl_mono_us ();
        gl_test_resp_t r
            = gl_testintake_call (s_intake, "GET", "/api/v1/notifications/x", s_token, NULL, NULL);
        int64_t us = gl_mono_us () - t0;
        if (r.status == 200) {
            size_t i = atomic_fetch_add (&s_nlat, 1);
            if (i < S_SAMPLES)
                s_lat[i] = us;
        }
        gl_test_http_free (&r);
    }
    return NULL;
}

static void *
s_slow_client (void *arg)
{
    (void) arg;
    while (!atomic_load (&s_round_over)) {
        gl_test_resp_t r
            = gl_testintake_call (s_intake, "GET", "/api/v1/units", s_token, NULL, NULL);
        if (r.status == 200)
            atomic_fetch_add (&s_slow_answered, 1);
        gl_test_http_free (&r);
    }
    return NULL;
}

static int
s_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

//  One round; fills rate, p50, p99 (ms).
static void
s_round (const char *name, int clients, int slow, int seconds, double out[3])
{
    atomic_store (&s_nlat, 0);
    atomic_store (&s_slow_answered, 0);
    atomic_store (&s_round_over, false);
    pthread_t t[S_MAX_CLIENTS + S_SLOW_CLIENTS];
    int n = 0;
    for (int i = 0; i < slow; i++)
        pthread_create (&t[n++], NULL, s_slow_client, NULL);
    int64_t start = gl_mono_us ();
    for (int i = 0; i < clients; i++)
        pthread_create (&t[n++], NULL, s_client, NULL);
    gl_sleep_ms (seconds * 1000);
    atomic_store (&s_round_over, true);
    size_t count = atomic_load (&s_nlat);
    int64_t elapsed = gl_mono_us () - start;
    for (int i = 0; i < n; i++)
        pthread_join (t[i], NULL);
    size_t kept = count < S_SAMPLES ? count : S_SAMPLES;
    qsort (s_lat, kept, sizeof s_lat[0], s_cmp);
    out[0] = (double) count * 1e6 / (double) elapsed;
    out[1] = kept ? (double) s_lat[kept / 2] / 1000.0 : 0;
    out[2] = kept ? (double) s_lat[kept * 99 / 100] / 1000.0 : 0;
    printf ("%-8s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  slow answers %ld\n", name, out[0],
            out[1], out[2], atomic_load (&s_slow_answered));
}

int
main (int argc, char **argv)
{
    int seconds = 5, clients = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp (argv[i], "--seconds") == 0)
            seconds = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--clients") == 0)
            clients = atoi (argv[i + 1]);
        else if (strcmp (argv[i], "--slow-ms") == 0)
            s_slow_ms = atoi (argv[i + 1]);
    }
    if (argc % 2 == 0 || seconds < 1 || seconds > 600 || clients < 1 || clients > S_MAX_CLIENTS
        || s_slow_ms < 1 || s_slow_ms > 2000) {
        fprintf (stderr, "usage: bench_forward [--seconds 1..600] [--clients 1..%d] "
                         "[--slow-ms 1..2000]\n",
                 S_MAX_CLIENTS);
        return 2;
    }
    gl_log_init ("bench_forward", GL_LOG_WARN, false);
    gl_testredis_t *redis = gl_testredis_start (NULL);
    gl_rep_t *prompt = gl_rep_new ("tcp://127.0.0.1:*");
    gl_rep_t *slow = gl_rep_new ("tcp://127.0.0.1:*");
    if (!redis || !prompt || !slow) {
        fprintf (stderr, "bench_forward: cannot start redis or the stand-in services\n");
        return 1;
    }
    gl_rep_set_tokens (prompt, "tok-bench");
    gl_rep_set_tokens (slow, "tok-bench");
    gl_rep_on (prompt, "notifier.status", s_prompt_op, NULL);
    gl_rep_on (slow, "referral.units", s_slow_op, NULL);
    gl_testrep_t *tp = gl_testrep_start (prompt), *ts = gl_testrep_start (slow);
    if (!tp || !ts) {
        fprintf (stderr, "bench_forward: cannot start the stand-in services\n");
        return 1;
    }
    char notifier[300], referral[300];
    snprintf (notifier, sizeof notifier, "GL_ENDPOINT_NOTIFIER=%s", gl_rep_endpoint (prompt));
    snprintf (referral, sizeof referral, "GL_ENDPOINT_REFERRAL=%s", gl_rep_endpoint (slow));
    const char *extra[] = { notifier, referral, "GL_BUS_TOKENS=tok-bench",
                            "GL_INTAKE_REFERRAL_TIMEOUT_MS=10000", "GL_LOG_LEVEL=warn", NULL };
    s_intake = gl_testintake_start (redis, extra);
    char id[GL_ID_LEN + 1];
    if (!s_intake
        || gl_testintake_user (s_intake, "bench", "[\"supervisor\"]", NULL, s_token, id) != 0) {
        fprintf (stderr, "bench_forward: intake did not start\n");
        return 1;
    }
    double a[3], b[3];
    s_round ("prompt", clients, 0, seconds, a);
    s_round ("beside", clients, S_SLOW_CLIENTS, seconds, b);
    printf ("RESULT forwarded_rps=%.0f p99_ms=%.2f beside_slow_rps=%.0f beside_slow_p99_ms=%.2f "
            "clients=%d slow_ms=%d\n",
            a[0], a[2], b[0], b[2], clients, s_slow_ms);
    gl_testintake_destroy (&s_intake);
    gl_testrep_stop (&tp);
    gl_testrep_stop (&ts);
    gl_rep_destroy (&prompt);
    gl_rep_destroy (&slow);
    gl_testredis_destroy (&redis);
    return 0;
}
