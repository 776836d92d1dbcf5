/*  gl_metrics — the process-wide registry of Prometheus metrics.

    A service registers its metrics once (at start, or lazily on first use) and keeps the returned
    gl_metric_t pointers; updating one is a relaxed atomic operation, no lock, safe from any thread.
    Only registration and rendering take the registry mutex. Metrics live as long as the process:
    there is no unregister (a gauge callback can be cleared, see gl_metrics_gauge_fn_clear).

    Kinds:
      - counter: monotonically increasing uint64 (gl_metric_inc). Name it ..._total.
      - gauge: int64 that goes up and down (gl_metric_set, gl_metric_add, gl_metric_inc).
      - gauge callback: an int64 read at scrape time by calling fn(arg) (queue depths).
      - histogram: latencies in microseconds (gl_metric_observe_us), rendered in seconds with the
        fixed buckets 0.1 ms, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1 s, 2.5, 5, 10 s
        and +Inf; gl_metric_quantile_us estimates p50/p99/p99.9 from them.

    Names follow greenline_<area>_<what>_<unit> (docs/operations.md, "Metrics"). Labels are given
    as one string in exposition syntax, e.g. "reason=\"msgpack\"" or "source=\"intake\",kind=\"call\""
    (NULL or "" for none), at most GL_METRICS_MAX_LABELS pairs and GL_METRICS_MAX_LABELS_LEN bytes.
    Label values must be from a small fixed set chosen in code: never an id, never personal data.
    The same name with the same labels string returns the same metric, so the string must be
    spelled identically (same order, same quoting) at every call site.

    Registration never fails from the caller's point of view: when the registry is full (more
    than GL_METRICS_MAX series), the name or labels are malformed, or the name is already
    registered with another kind, it logs the reason and returns a shared sink that accepts and
    discards every update. Refusals are counted in greenline_metrics_refused_total{reason=...}.
*/
#ifndef GL_METRICS_H
#define GL_METRICS_H
#include <stddef.h>
#include <stdint.h>

#define GL_METRICS_MAX 1024            //  series (name + labels) in one process
#define GL_METRICS_MAX_NAME_LEN 127
#define GL_METRICS_MAX_HELP_LEN 255
#define GL_METRICS_MAX_LABELS 8
#define GL_METRICS_MAX_LABELS_LEN 255
#define GL_METRICS_BUCKETS 16          //  finite histogram buckets, plus +Inf

typedef struct _gl_metric_t gl_metric_t;

//  Value read at scrape time. Called from the scraping thread (the gl_health thread) with the
//  registry mutex held: it must be thread-safe with respect to whatever it reads, must be quick,
//  and must not call any gl_metrics function.
typedef int64_t (gl_metrics_gauge_fn_t) (void *arg);

//  Register (or find) a counter. help may be NULL; the first registration's help is the one shown.
//  labels may be NULL. Never returns NULL (see the sink above).
gl_metric_t *gl_metrics_counter (const char *name, const char *help, const char *labels);

//  Register (or find) a gauge. Same rules as gl_metrics_counter.
gl_metric_t *gl_metrics_gauge (const char *name, const char *help, const char *labels);

//  Register (or find) a gauge whose value is fn(arg) at scrape time. Registering the same name
//  and labels again replaces fn and arg (a restarted actor re-registers). The caller keeps arg
//  alive until it calls gl_metrics_gauge_fn_clear on the returned metric.
gl_metric_t *gl_metrics_gauge_fn (const char *name, const char *help, const char *labels,
                                  gl_metrics_gauge_fn_t *fn, void *arg);

//  Stop calling the gauge callback (the series is left out of the output until registered
//  again). When this returns, no call to the old fn is in progress, so arg may be freed.
void gl_metrics_gauge_fn_clear (gl_metric_t *self);

//  Register (or find) a latency histogram. Its name should end in _seconds. The label name "le"
//  is reserved.
gl_metric_t *gl_metrics_histogram (const char *name, const char *help, const char *labels);

//  Add n to a counter or a gauge.
void gl_metric_inc (gl_metric_t *self, uint64_t n);

//  Add delta (may be negative) to a gauge.
void gl_metric_add (gl_metric_t *self, int64_t delta);

//  Set a gauge.
void gl_metric_set (gl_metric_t *self, int64_t value);

//  Record one observation of a histogram, in microseconds.
void gl_metric_observe_us (gl_metric_t *self, uint64_t microseconds);

//  Current value: a counter's count, a gauge's value, a gauge callback's fn(arg) (0 when
//  cleared), a histogram's observation count. 0 for the sink.
int64_t gl_metric_value (gl_metric_t *self);

//  Estimate the q-quantile (0 < q <= 1; 0.5, 0.99, 0.999) of a histogram in microseconds, by
//  linear interpolation inside the bucket that holds it (as Prometheus' histogram_quantile does).
//  Observations above 10 s report 10 s. 0 when there are no observations, or for the sink.
uint64_t gl_metric_quantile_us (gl_metric_t *self, double q);

//  Render every metric in the Prometheus text exposition format 0.0.4: families in registration
//  order, HELP and TYPE once per name, then its series. The caller frees the string; NULL when
//  out of memory.
char *gl_metrics_render (void);

//  Number of series registered so far (the sink not included).
size_t gl_metrics_size (void);

#endif
