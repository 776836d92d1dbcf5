/*  gl_metrics: registry, kinds, exposition format, histogram estimates, threads, bounds.
    The registry is process-wide, so every test uses names of its own and the overflow test
    runs last. */
/* ctest: timeout=120 */
#include "gl/gl_metrics.h"
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

//  Number of non-overlapping occurrences of needle in text.
static int
s_count (const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr (text, needle); p; p = strstr (p + strlen (needle), needle))
        n++;
    return n;
}

//  Does the rendered text hold this exact line?
static bool
s_has_line (const char *text, const char *line)
{
    size_t len = strlen (line);
    for (const char *p = strstr (text, line); p; p = strstr (p + 1, line))
        if ((p == text || p[-1] == '\n') && p[len] == '\n')
            return true;
    return false;
}

//  Read one refusal counter out of the rendered text.
static uint64_t
s_refused (const char *reason)
{
    char *text = gl_metrics_render ();
    assert_non_null (text);
    char prefix[96];
    snprintf (prefix, sizeof prefix, "\ngreenline_metrics_refused_total{reason=\"%s\"} ", reason);
    char *p = strstr (text, prefix);
    assert_non_null (p);
    uint64_t n = strtoull (p + strlen (prefix), NULL, 10);
    free (text);
    return n;
}

//  Every line is a HELP, a TYPE or a sample `name[{labels}] value`, and every sample's family
//  was announced by exactly one TYPE line before it.
static void
s_assert_well_formed (const char *text)
{
    assert_true (strlen (text) > 0);
    assert_int_equal (text[strlen (text) - 1], '\n');
    char *copy = strdup (text);
    char family[160] = "";
    for (char *save = NULL, *line = strtok_r (copy, "\n", &save); line;
         line = strtok_r (NULL, "\n", &save)) {
        if (strncmp (line, "# HELP ", 7) == 0)
            continue;
        if (strncmp (line, "# TYPE ", 7) == 0) {
            assert_int_equal (sscanf (line + 7, "%159s", family), 1);
            char type_line[200];
            snprintf (type_line, sizeof type_line, "# TYPE %s ", family);
            assert_int_equal (s_count (text, type_line), 1);
            continue;
        }
        assert_true (strlen (family) > 0);
        assert_int_equal (strncmp (line, family, strlen (family)), 0);
        char *space = strrchr (line, ' ');
        assert_non_null (space);
        char *end = NULL;
        strtod (space + 1, &end);
        assert_true (end != space + 1 && *end == 0);
    }
    free (copy);
}

static void
test_counter_same_name_same_metric (void **state)
{
    gl_metric_t *a = gl_metrics_counter ("greenline_test_frames_total", "Frames seen.",
                                         "reason=\"msgpack\"");
    gl_metric_t *b = gl_metrics_counter ("greenline_test_frames_total", "Other help, ignored.",
                                         "reason=\"msgpack\"");
    gl_metric_t *c = gl_metrics_counter ("greenline_test_frames_total", NULL,
                                         "reason=\"version\"");
    gl_metric_t *d = gl_metrics_counter ("greenline_test_plain_total", "No labels.", NULL);
    assert_ptr_equal (a, b);
    assert_ptr_not_equal (a, c);
    gl_metric_inc (a, 2);
    gl_metric_inc (b, 1);
    gl_metric_inc (c, 5);
    gl_metric_inc (d, 1);
    assert_int_equal (gl_metric_value (a), 3);
    assert_int_equal (gl_metric_value (c), 5);

    char *text = gl_metrics_render ();
    assert_non_null (text);
    s_assert_well_formed (text);
    assert_true (s_has_line (text, "# HELP greenline_test_frames_total Frames seen."));
    assert_true (s_has_line (text, "# TYPE greenline_test_frames_total counter"));
    assert_int_equal (s_count (text, "# HELP greenline_test_frames_total "), 1);
    assert_true (s_has_line (text, "greenline_test_frames_total{reason=\"msgpack\"} 3"));
    assert_true (s_has_line (text, "greenline_test_frames_total{reason=\"version\"} 5"));
    assert_true (s_has_line (text, "greenline_test_plain_total 1"));
    //  Series of one family follow its TYPE line, before the next family.
    char *type = strstr (text, "# TYPE greenline_test_frames_total");
    char *next = strstr (text, "# TYPE greenline_test_plain_total");
    char *version = strstr (text, "greenline_test_frames_total{reason=\"version\"}");
    assert_true (type < version && version < next);
    free (text);
}

static void
test_gauge_set_add (void **state)
{
    gl_metric_t *g = gl_metrics_gauge ("greenline_test_inflight", "In flight.",
                                       "queue=\"a\",kind=\"b\"");
    gl_metric_set (g, 10);
    gl_metric_add (g, -13);
    gl_metric_inc (g, 1);
    assert_int_equal (gl_metric_value (g), -2);
    char *text = gl_metrics_render ();
    assert_true (s_has_line (text, "# TYPE greenline_test_inflight gauge"));
    assert_true (s_has_line (text, "greenline_test_inflight{queue=\"a\",kind=\"b\"} -2"));
    free (text);
}

static int64_t
s_depth (void *arg)
{
    return *(int64_t *) arg;
}

static int64_t
s_other_depth (void *arg)
{
    return 1000 + *(int64_t *) arg;
}

static void
test_gauge_fn_read_at_scrape (void **state)
{
    int64_t depth = 7;
    gl_metric_t *g = gl_metrics_gauge_fn ("greenline_test_queue_depth", "Queue depth.", NULL,
                                          s_depth, &depth);
    char *text = gl_metrics_render ();
    assert_true (s_has_line (text, "greenline_test_queue_depth 7"));
    free (text);
    depth = 42;
    assert_int_equal (gl_metric_value (g), 42);
    text = gl_metrics_render ();
    assert_true (s_has_line (text, "greenline_test_queue_depth 42"));
    free (text);

    //  Re-registering replaces the callback; clearing leaves the series out.
    assert_ptr_equal (gl_metrics_gauge_fn ("greenline_test_queue_depth", NULL, NULL,
                                           s_other_depth, &depth), g);
    assert_int_equal (gl_metric_value (g), 1042);
    gl_metrics_gauge_fn_clear (g);
    assert_int_equal (gl_metric_value (g), 0);
    text = gl_metrics_render ();
    assert_true (s_has_line (text, "# TYPE greenline_test_queue_depth gauge"));
    assert_null (strstr (text, "\ngreenline_test_queue_depth "));
    free (text);

    //  A plain gauge of the same name and labels is a different kind: refused.
    uint64_t before = s_refused ("conflict");
    gl_metric_t *plain = gl_metrics_gauge ("greenline_test_queue_depth", NULL, NULL);
    assert_ptr_not_equal (plain, g);
    assert_int_equal (s_refused ("conflict"), before + 1);
}

static void
test_histogram_buckets_and_text (void **state)
{
    gl_metric_t *h = gl_metrics_histogram ("greenline_test_handle_seconds", "Handling time.",
                                           "stage=\"route\"");
    gl_metric_observe_us (h, 100);       //  on a bound: counts in le="0.0001"
    gl_metric_observe_us (h, 101);       //  just above: le="0.00025"
    gl_metric_observe_us (h, 1500000);   //  1.5 s: le="2.5"
    gl_metric_observe_us (h, 60000000);  //  a minute: +Inf only
    assert_int_equal (gl_metric_value (h), 4);
    char *text = gl_metrics_render ();
    s_assert_well_formed (text);
    assert_true (s_has_line (text, "# HELP greenline_test_handle_seconds Handling time."));
    assert_true (s_has_line (text, "# TYPE greenline_test_handle_seconds histogram"));
    const char *expect[] = {
        "greenline_test_handle_seconds_bucket{stage=\"route\",le=\"0.0001\"} 1",
        "greenline_test_handle_seconds_bucket{stage=\"route\",le=\"0.00025\"} 2",
        "greenline_test_handle_seconds_bucket{stage=\"route\",le=\"1\"} 2",
        "greenline_test_handle_seconds_bucket{stage=\"route\",le=\"2.5\"} 3",
        "greenline_test_handle_seconds_bucket{stage=\"route\",le=\"10\"} 3",
        "greenline_test_handle_seconds_bucket{stage=\"route\",le=\"+Inf\"} 4",
        "greenline_test_handle_seconds_sum{stage=\"route\"} 61.500201",
        "greenline_test_handle_seconds_count{stage=\"route\"} 4",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        assert_true (s_has_line (text, expect[i]));
    assert_int_equal (s_count (text, "greenline_test_handle_seconds_bucket{"), GL_METRICS_BUCKETS + 1);
    free (text);

    gl_metric_t *bare = gl_metrics_histogram ("greenline_test_bare_seconds", NULL, NULL);
    gl_metric_observe_us (bare, 0);
    text = gl_metrics_render ();
    assert_true (s_has_line (text, "greenline_test_bare_seconds_bucket{le=\"0.0001\"} 1"));
    assert_true (s_has_line (text, "greenline_test_bare_seconds_sum 0.000000"));
    assert_true (s_has_line (text, "greenline_test_bare_seconds_count 1"));
    free (text);
}

static void
test_histogram_quantiles (void **state)
{
    gl_metric_t *h = gl_metrics_histogram ("greenline_test_quantile_seconds", NULL, NULL);
    assert_int_equal (gl_metric_quantile_us (h, 0.5), 0);
    for (int i = 0; i < 900; i++)
        gl_metric_observe_us (h, 300);          //  (250 us, 500 us]
    for (int i = 0; i < 90; i++)
        gl_metric_observe_us (h, 20000);        //  (10 ms, 25 ms]
    for (int i = 0; i < 10; i++)
        gl_metric_observe_us (h, 20000000);     //  20 s: +Inf
    //  p50: rank 500 of 900 inside (250, 500] -> 250 + 250 * 500/900.
    assert_int_equal (gl_metric_quantile_us (h, 0.5), 389);
    //  p99: rank 990 is the last of the (10 ms, 25 ms] bucket -> its upper bound.
    assert_int_equal (gl_metric_quantile_us (h, 0.99), 25000);
    //  p99.9 lies in +Inf: reported as the last finite bound.
    assert_int_equal (gl_metric_quantile_us (h, 0.999), 10000000);
    //  p10: rank 100 of 900 -> 250 + 250 * 100/900.
    assert_int_equal (gl_metric_quantile_us (h, 0.1), 278);
}

static void
test_help_escaped (void **state)
{
    gl_metrics_counter ("greenline_test_escaped_total", "Line one\\two\nline two.", NULL);
    char *text = gl_metrics_render ();
    assert_true (s_has_line (text, "# HELP greenline_test_escaped_total Line one\\\\two\\nline two."));
    s_assert_well_formed (text);
    free (text);
}

static void
test_invalid_refused_to_sink (void **state)
{
    uint64_t before = s_refused ("invalid");
    size_t size = gl_metrics_size ();
    char long_name[GL_METRICS_MAX_NAME_LEN + 2];
    memset (long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    char long_help[GL_METRICS_MAX_HELP_LEN + 2];
    memset (long_help, 'h', sizeof long_help - 1);
    long_help[sizeof long_help - 1] = 0;

    gl_metric_t *sink = gl_metrics_counter ("9starts_with_digit", NULL, NULL);
    gl_metric_t *bad[] = {
        gl_metrics_counter ("has-dash_total", NULL, NULL),
        gl_metrics_counter ("", NULL, NULL),
        gl_metrics_counter (long_name, NULL, NULL),
        gl_metrics_counter ("greenline_test_ok_total", long_help, NULL),
        gl_metrics_counter ("greenline_metrics_refused_total", NULL, NULL),
        gl_metrics_counter ("greenline_test_ok_total", NULL, "reason=msgpack"),
        gl_metrics_counter ("greenline_test_ok_total", NULL, "reason=\"msgpack\","),
        gl_metrics_counter ("greenline_test_ok_total", NULL, "reason=\"a\",reason=\"b\""),
        gl_metrics_counter ("greenline_test_ok_total", NULL, "__name__=\"x\""),
        gl_metrics_counter ("greenline_test_ok_total", NULL, "reason=\"a\nb\""),
        gl_metrics_counter ("greenline_test_ok_total", NULL, "reason=\"a\\tb\""),
        gl_metrics_counter ("greenline_test_ok_total", NULL, "reason=\"unterminated"),
        gl_metrics_counter ("greenline_test_ok_total", NULL, "1x=\"a\""),
        gl_metrics_counter ("greenline_test_ok_total", NULL,
                            "a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\",i=\"9\""),
        gl_metrics_histogram ("greenline_test_ok_seconds", NULL, "le=\"1\""),
    };
    size_t nbad = sizeof bad / sizeof bad[0];
    for (size_t i = 0; i < nbad; i++)
        assert_ptr_equal (bad[i], sink);
    assert_int_equal (s_refused ("invalid"), before + 1 + nbad);
    assert_int_equal (gl_metrics_size (), size);

    //  The sink takes every kind of update and keeps nothing.
    gl_metric_inc (sink, 5);
    gl_metric_set (sink, 5);
    gl_metric_add (sink, 5);
    gl_metric_observe_us (sink, 5);
    assert_int_equal (gl_metric_value (sink), 0);
    assert_int_equal (gl_metric_quantile_us (sink, 0.5), 0);

    //  Escaped quotes and backslashes in a value are fine, and so is "le" outside histograms.
    gl_metric_t *ok = gl_metrics_counter ("greenline_test_ok_total", NULL,
                                          "reason=\"a\\\"b\\\\c\\n\",le=\"x\"");
    assert_ptr_not_equal (ok, sink);
    gl_metric_inc (ok, 1);
    char *text = gl_metrics_render ();
    assert_true (s_has_line (text, "greenline_test_ok_total{reason=\"a\\\"b\\\\c\\n\",le=\"x\"} 1"));
    s_assert_well_formed (text);
    free (text);
}

static void
test_type_conflict_refused (void **state)
{
    uint64_t before = s_refused ("conflict");
    gl_metric_t *c = gl_metrics_counter ("greenline_test_conflict", NULL, NULL);
    gl_metric_t *g = gl_metrics_gauge ("greenline_test_conflict", NULL, "other=\"labels\"");
    gl_metric_t *h = gl_metrics_histogram ("greenline_test_conflict", NULL, NULL);
    assert_ptr_not_equal (c, g);
    assert_ptr_equal (g, h);
    assert_int_equal (s_refused ("conflict"), before + 2);
    gl_metric_inc (c, 1);
    char *text = gl_metrics_render ();
    assert_true (s_has_line (text, "# TYPE greenline_test_conflict counter"));
    assert_null (strstr (text, "other=\"labels\""));
    free (text);
}

#define S_THREADS 8
#define S_PER_THREAD 125000

typedef struct {
    int index;
    gl_metric_t *counter;
    gl_metric_t *histogram;
} s_worker_t;

static void *
s_worker (void *arg)
{
    s_worker_t *w = arg;
    //  Every thread registers too: all must get the same series.
    gl_metric_t *mine = gl_metrics_counter ("greenline_test_threads_total", "Concurrent.", NULL);
    if (mine != w->counter)
        return (void *) 1;
    for (int i = 0; i < S_PER_THREAD; i++) {
        gl_metric_inc (mine, 1);
        if (i % 10 == 0)
            gl_metric_observe_us (w->histogram, (uint64_t) (i % 20000));
    }
    return NULL;
}

static void *
s_scraper (void *arg)
{
    volatile int *stop = arg;
    while (!*stop) {
        char *text = gl_metrics_render ();
        if (!text)
            return (void *) 1;
        free (text);
    }
    return NULL;
}

static void
test_concurrent_updates_exact (void **state)
{
    gl_metric_t *counter = gl_metrics_counter ("greenline_test_threads_total", "Concurrent.", NULL);
    gl_metric_t *histogram = gl_metrics_histogram ("greenline_test_threads_seconds", NULL, NULL);
    pthread_t threads[S_THREADS], scraper;
    s_worker_t workers[S_THREADS];
    volatile int stop = 0;
    assert_int_equal (pthread_create (&scraper, NULL, s_scraper, (void *) &stop), 0);
    for (int i = 0; i < S_THREADS; i++) {
        workers[i] = (s_worker_t) { i, counter, histogram };
        assert_int_equal (pthread_create (&threads[i], NULL, s_worker, &workers[i]), 0);
    }
    for (int i = 0; i < S_THREADS; i++) {
        void *rc = NULL;
        pthread_join (threads[i], &rc);
        assert_null (rc);
    }
    stop = 1;
    void *rc = NULL;
    pthread_join (scraper, &rc);
    assert_null (rc);
    assert_int_equal (gl_metric_value (counter), S_THREADS * S_PER_THREAD);
    assert_int_equal (gl_metric_value (histogram), S_THREADS * (S_PER_THREAD / 10));
    char *text = gl_metrics_render ();
    assert_true (s_has_line (text, "greenline_test_threads_total 1000000"));
    assert_true (s_has_line (text, "greenline_test_threads_seconds_count 100000"));
    assert_true (s_has_line (text, "greenline_test_threads_seconds_bucket{le=\"+Inf\"} 100000"));
    free (text);
}

//  Fill the registry. Runs last: afterwards no new series can be registered in this process.
static void
test_overflow_returns_sink_logs_once (void **state)
{
    gl_metric_t *existing = gl_metrics_counter ("greenline_test_frames_total", NULL,
                                                "reason=\"msgpack\"");
    uint64_t before = s_refused ("full");
    size_t size = gl_metrics_size ();
    assert_true (size < GL_METRICS_MAX);
    for (size_t i = size; i < GL_METRICS_MAX; i++) {
        char labels[32];
        snprintf (labels, sizeof labels, "n=\"%zu\"", i);
        gl_metric_t *m = gl_metrics_gauge ("greenline_test_filler", "Filler.", labels);
        gl_metric_set (m, (int64_t) i);
        assert_int_equal (gl_metric_value (m), (int64_t) i);
    }
    assert_int_equal (gl_metrics_size (), GL_METRICS_MAX);

    //  Capture stderr to count the log lines about it.
    char path[] = "/tmp/gl-metrics-log-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    int saved = dup (STDERR_FILENO);
    dup2 (fd, STDERR_FILENO);
    gl_metric_t *a = gl_metrics_counter ("greenline_test_late_total", NULL, NULL);
    gl_metric_t *b = gl_metrics_histogram ("greenline_test_late_seconds", NULL, NULL);
    gl_metric_t *c = gl_metrics_gauge ("greenline_test_filler", NULL, "n=\"late\"");
    //  Known series are still found when the registry is full.
    gl_metric_t *found = gl_metrics_counter ("greenline_test_frames_total", NULL,
                                             "reason=\"msgpack\"");
    dup2 (saved, STDERR_FILENO);
    close (saved);
    assert_ptr_equal (a, b);
    assert_ptr_equal (a, c);
    assert_ptr_equal (found, existing);
    gl_metric_inc (a, 1);
    assert_int_equal (gl_metric_value (a), 0);
    assert_int_equal (s_refused ("full"), before + 3);
    assert_int_equal (gl_metrics_size (), GL_METRICS_MAX);

    char log[4096] = "";
    lseek (fd, 0, SEEK_SET);
    ssize_t n = read (fd, log, sizeof log - 1);
    assert_true (n > 0);
    log[n] = 0;
    close (fd);
    unlink (path);
    assert_int_equal (s_count (log, "registry full"), 1);

    char *text = gl_metrics_render ();
    s_assert_well_formed (text);
    assert_int_equal (s_count (text, "# TYPE greenline_test_filler gauge"), 1);
    assert_true (s_has_line (text, "greenline_test_filler{n=\"1023\"} 1023"));
    assert_null (strstr (text, "greenline_test_late"));
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_counter_same_name_same_metric),
        cmocka_unit_test (test_gauge_set_add),
        cmocka_unit_test (test_gauge_fn_read_at_scrape),
        cmocka_unit_test (test_histogram_buckets_and_text),
        cmocka_unit_test (test_histogram_quantiles),
        cmocka_unit_test (test_help_escaped),
        cmocka_unit_test (test_invalid_refused_to_sink),
        cmocka_unit_test (test_type_conflict_refused),
        cmocka_unit_test (test_concurrent_updates_exact),
        cmocka_unit_test (test_overflow_returns_sink_logs_once),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
