/*  gl_metrics — see gl_metrics.h.

    Layout: a fixed table of series (gl_metric_t, allocated once each and never freed, so the
    pointers handed out stay valid for the life of the process) grouped into families by name.
    Registration and rendering hold s_lock; updates touch only the series' atomics. Rendering
    reads the atomics without a snapshot: a scrape racing an update may see a histogram's _sum a
    step ahead of its buckets, which Prometheus tolerates; _count is the sum of the buckets read,
    so it always equals the +Inf bucket.
*/
#include "gl/gl_metrics.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_SINK = 0, S_COUNTER, S_GAUGE, S_GAUGE_FN, S_HISTOGRAM } s_kind_t;

typedef struct _s_family_t s_family_t;

struct _gl_metric_t {
    s_kind_t kind;
    s_family_t *family;             //  NULL for the sink
    char *labels;                   //  "" when none
    gl_metric_t *next;              //  next series of the same family
    _Atomic uint64_t count;         //  counter
    _Atomic int64_t value;          //  gauge
    gl_metrics_gauge_fn_t *fn;      //  gauge callback; read and written under s_lock
    void *arg;
    _Atomic uint64_t buckets[GL_METRICS_BUCKETS + 1];   //  per bucket (not cumulative), +Inf last
    _Atomic uint64_t sum_us;
};

struct _s_family_t {
    char *name;
    char *help;
    const char *type;               //  "counter", "gauge" or "histogram"
    gl_metric_t *first;
    gl_metric_t *last;
};

//  Upper bounds in microseconds, and the same bounds as the "le" label (seconds) is spelled.
static const uint64_t s_bounds_us[GL_METRICS_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000
};
static const char *s_bounds_le[GL_METRICS_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1", "0.25", "0.5", "1", "2.5", "5", "10"
};

typedef enum { S_REFUSED_FULL = 0, S_REFUSED_INVALID, S_REFUSED_CONFLICT } s_refusal_t;
static const char *s_refusal_names[] = { "full", "invalid", "conflict" };

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t s_nseries;           //  series are reachable through their families
static s_family_t *s_families[GL_METRICS_MAX];
static size_t s_nfamilies;
static gl_metric_t s_sink = { .kind = S_SINK };
static _Atomic uint64_t s_refused[3];
static bool s_full_logged;          //  under s_lock

//  Copy a name for a log line: printable ASCII only, truncated. Names come from our code, so
//  this guards the log format rather than hiding anything.
static void
s_printable (char *out, size_t cap, const char *in)
{
    size_t n = 0;
    for (; in && *in && n + 1 < cap; in++)
        out[n++] = (*in > 0x20 && *in < 0x7f) ? *in : '?';
    out[n] = 0;
}

static bool
s_name_valid (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > GL_METRICS_MAX_NAME_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

//  Check `name="value"(,name="value")*` as the exposition format spells it: label names
//  [a-zA-Z_][a-zA-Z0-9_]*, not reserved (__*, and "le" on histograms), not repeated; values
//  with only \\, \" and \n escapes and no raw newline.
static bool
s_labels_valid (const char *labels, bool histogram)
{
    size_t len = strlen (labels);
    if (len > GL_METRICS_MAX_LABELS_LEN)
        return false;
    const char *names[GL_METRICS_MAX_LABELS];
    size_t name_lens[GL_METRICS_MAX_LABELS];
    size_t count = 0;
    const char *p = labels;
    while (*p) {
        if (count == GL_METRICS_MAX_LABELS)
            return false;
        const char *start = p;
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
            return false;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'
               || (*p >= '0' && *p <= '9'))
            p++;
        size_t nlen = (size_t) (p - start);
        if (nlen >= 2 && start[0] == '_' && start[1] == '_')
            return false;
        if (histogram && nlen == 2 && strncmp (start, "le", 2) == 0)
            return false;
        for (size_t i = 0; i < count; i++)
            if (name_lens[i] == nlen && strncmp (names[i], start, nlen) == 0)
                return false;
        names[count] = start;
        name_lens[count] = nlen;
        count++;
        if (p[0] != '=' || p[1] != '"')
            return false;
        p += 2;
        while (*p && *p != '"') {
            if (*p == '\n')
                return false;
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    return false;
                p++;
            }
            p++;
        }
        if (*p != '"')
            return false;
        p++;
        if (*p == ',' && p[1] != 0)
            p++;
        else if (*p != 0)
            return false;
    }
    return true;
}

static gl_metric_t *
s_refuse (s_refusal_t why, const char *name)
{
    atomic_fetch_add_explicit (&s_refused[why], 1, memory_order_relaxed);
    char shown[64];
    s_printable (shown, sizeof shown, name);
    if (why == S_REFUSED_FULL) {
        if (!s_full_logged)
            gl_error ("metrics: registry full (%d series), '%s' and later ones are discarded",
                      GL_METRICS_MAX, shown);
        s_full_logged = true;
    }
    else if (why == S_REFUSED_INVALID)
        gl_error ("metrics: invalid name, help or labels for '%s', discarded", shown);
    else
        gl_error ("metrics: '%s' already registered as another kind, discarded", shown);
    return &s_sink;
}

static const char *
s_type_of (s_kind_t kind)
{
    return kind == S_COUNTER ? "counter" : kind == S_HISTOGRAM ? "histogram" : "gauge";
}

static s_family_t *
s_family_find (const char *name)
{
    for (size_t i = 0; i < s_nfamilies; i++)
        if (strcmp (s_families[i]->name, name) == 0)
            return s_families[i];
    return NULL;
}

static s_family_t *
s_family_new (const char *name, const char *help, s_kind_t kind)
{
    s_family_t *family = calloc (1, sizeof *family);
    if (!family)
        return NULL;
    family->name = strdup (name);
    family->help = strdup (help);
    family->type = s_type_of (kind);
    if (!family->name || !family->help) {
        free (family->name);
        free (family->help);
        free (family);
        return NULL;
    }
    return family;
}

//  Find or create a series. Called with s_lock held.
static gl_metric_t *
s_register_locked (const char *name, const char *help, const char *labels, s_kind_t kind)
{
    if (!help)
        help = "";
    if (!labels)
        labels = "";
    //  The refusal counter is rendered by the registry itself; a second family would clash.
    if (!s_name_valid (name) || strcmp (name, "greenline_metrics_refused_total") == 0
        || strlen (help) > GL_METRICS_MAX_HELP_LEN
        || !s_labels_valid (labels, kind == S_HISTOGRAM))
        return s_refuse (S_REFUSED_INVALID, name);

    s_family_t *family = s_family_find (name);
    if (family) {
        if (strcmp (family->type, s_type_of (kind)) != 0)
            return s_refuse (S_REFUSED_CONFLICT, name);
        for (gl_metric_t *m = family->first; m; m = m->next)
            if (strcmp (m->labels, labels) == 0)
                //  A plain gauge and a callback gauge share a type but not an update API.
                return m->kind == kind ? m : s_refuse (S_REFUSED_CONFLICT, name);
    }
    if (s_nseries == GL_METRICS_MAX)
        return s_refuse (S_REFUSED_FULL, name);

    gl_metric_t *self = calloc (1, sizeof *self);
    char *labels_copy = strdup (labels);
    s_family_t *new_family = family ? NULL : s_family_new (name, help, kind);
    if (!self || !labels_copy || (!family && !new_family)) {
        free (self);
        free (labels_copy);
        if (new_family) {
            free (new_family->name);
            free (new_family->help);
            free (new_family);
        }
        gl_error ("metrics: out of memory registering a metric");
        return &s_sink;
    }
    if (new_family) {
        family = new_family;
        s_families[s_nfamilies++] = family;
    }
    self->kind = kind;
    self->family = family;
    self->labels = labels_copy;
    if (family->last)
        family->last->next = self;
    else
        family->first = self;
    family->last = self;
    s_nseries++;
    return self;
}

static gl_metric_t *
s_register (const char *name, const char *help, const char *labels, s_kind_t kind)
{
    assert (name);
    pthread_mutex_lock (&s_lock);
    gl_metric_t *self = s_register_locked (name, help, labels, kind);
    pthread_mutex_unlock (&s_lock);
    return self;
}

gl_metric_t *
gl_metrics_counter (const char *name, const char *help, const char *labels)
{
    return s_register (name, help, labels, S_COUNTER);
}

gl_metric_t *
gl_metrics_gauge (const char *name, const char *help, const char *labels)
{
    return s_register (name, help, labels, S_GAUGE);
}

gl_metric_t *
gl_metrics_histogram (const char *name, const char *help, const char *labels)
{
    return s_register (name, help, labels, S_HISTOGRAM);
}

gl_metric_t *
gl_metrics_gauge_fn (const char *name, const char *help, const char *labels,
                     gl_metrics_gauge_fn_t *fn, void *arg)
{
    assert (name && fn);
    pthread_mutex_lock (&s_lock);
    gl_metric_t *self = s_register_locked (name, help, labels, S_GAUGE_FN);
    if (self->kind == S_GAUGE_FN) {
        self->fn = fn;
        self->arg = arg;
    }
    pthread_mutex_unlock (&s_lock);
    return self;
}

void
gl_metrics_gauge_fn_clear (gl_metric_t *self)
{
    assert (self);
    if (self->kind == S_SINK)
        return;
    assert (self->kind == S_GAUGE_FN);
    //  Rendering calls fn under s_lock, so once we hold it no call is in flight.
    pthread_mutex_lock (&s_lock);
    self->fn = NULL;
    self->arg = NULL;
    pthread_mutex_unlock (&s_lock);
}

void
gl_metric_inc (gl_metric_t *self, uint64_t n)
{
    assert (self);
    if (self->kind == S_COUNTER)
        atomic_fetch_add_explicit (&self->count, n, memory_order_relaxed);
    else if (self->kind == S_GAUGE)
        atomic_fetch_add_explicit (&self->value, (int64_t) n, memory_order_relaxed);
    else
        assert (self->kind == S_SINK);
}

void
gl_metric_add (gl_metric_t *self, int64_t delta)
{
    assert (self);
    if (self->kind == S_GAUGE)
        atomic_fetch_add_explicit (&self->value, delta, memory_order_relaxed);
    else
        assert (self->kind == S_SINK);
}

void
gl_metric_set (gl_metric_t *self, int64_t value)
{
    assert (self);
    if (self->kind == S_GAUGE)
        atomic_store_explicit (&self->value, value, memory_order_relaxed);
    else
        assert (self->kind == S_SINK);
}

void
gl_metric_observe_us (gl_metric_t *self, uint64_t microseconds)
{
    assert (self);
    if (self->kind != S_HISTOGRAM) {
        assert (self->kind == S_SINK);
        return;
    }
    size_t i = 0;
    while (i < GL_METRICS_BUCKETS && microseconds > s_bounds_us[i])
        i++;
    atomic_fetch_add_explicit (&self->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&self->sum_us, microseconds, memory_order_relaxed);
}

//  Copy a histogram's buckets; returns the total.
static uint64_t
s_buckets_read (gl_metric_t *self, uint64_t *out)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= GL_METRICS_BUCKETS; i++) {
        out[i] = atomic_load_explicit (&self->buckets[i], memory_order_relaxed);
        total += out[i];
    }
    return total;
}

int64_t
gl_metric_value (gl_metric_t *self)
{
    assert (self);
    uint64_t buckets[GL_METRICS_BUCKETS + 1];
    int64_t value = 0;
    switch (self->kind) {
        case S_COUNTER:
            return (int64_t) atomic_load_explicit (&self->count, memory_order_relaxed);
        case S_GAUGE:
            return atomic_load_explicit (&self->value, memory_order_relaxed);
        case S_HISTOGRAM:
            return (int64_t) s_buckets_read (self, buckets);
        case S_GAUGE_FN:
            pthread_mutex_lock (&s_lock);
            if (self->fn)
                value = self->fn (self->arg);
            pthread_mutex_unlock (&s_lock);
            return value;
        case S_SINK:
            break;
    }
    return 0;
}

uint64_t
gl_metric_quantile_us (gl_metric_t *self, double q)
{
    assert (self);
    if (self->kind == S_SINK)
        return 0;
    assert (self->kind == S_HISTOGRAM);
    assert (q > 0 && q <= 1);
    uint64_t buckets[GL_METRICS_BUCKETS + 1];
    uint64_t total = s_buckets_read (self, buckets);
    if (total == 0)
        return 0;
    double rank = q * (double) total;
    uint64_t below = 0;
    for (size_t i = 0; i < GL_METRICS_BUCKETS; i++) {
        if ((double) (below + buckets[i]) >= rank && buckets[i] > 0) {
            double lower = i == 0 ? 0 : (double) s_bounds_us[i - 1];
            double upper = (double) s_bounds_us[i];
            double within = (rank - (double) below) / (double) buckets[i];
            return (uint64_t) (lower + (upper - lower) * within + 0.5);
        }
        below += buckets[i];
    }
    //  The quantile lies in +Inf: all we know is "above the last bound".
    return s_bounds_us[GL_METRICS_BUCKETS - 1];
}

//  HELP text escapes backslash and newline.
static void
s_write_help (FILE *out, const char *help)
{
    for (; *help; help++) {
        if (*help == '\\')
            fputs ("\\\\", out);
        else if (*help == '\n')
            fputs ("\\n", out);
        else
            fputc (*help, out);
    }
}

//  `{labels}` or nothing; `extra` (such as le="0.1") goes last.
static void
s_write_labels (FILE *out, const char *labels, const char *extra)
{
    if (!*labels && !extra)
        return;
    fputc ('{', out);
    fputs (labels, out);
    if (extra) {
        if (*labels)
            fputc (',', out);
        fputs (extra, out);
    }
    fputc ('}', out);
}

static void
s_write_series (FILE *out, const char *name, gl_metric_t *m)
{
    if (m->kind == S_COUNTER) {
        fputs (name, out);
        s_write_labels (out, m->labels, NULL);
        fprintf (out, " %" PRIu64 "\n", atomic_load_explicit (&m->count, memory_order_relaxed));
    }
    else if (m->kind == S_GAUGE || (m->kind == S_GAUGE_FN && m->fn)) {
        int64_t v = m->kind == S_GAUGE
                        ? atomic_load_explicit (&m->value, memory_order_relaxed)
                        : m->fn (m->arg);
        fputs (name, out);
        s_write_labels (out, m->labels, NULL);
        fprintf (out, " %" PRId64 "\n", v);
    }
    else if (m->kind == S_HISTOGRAM) {
        uint64_t buckets[GL_METRICS_BUCKETS + 1];
        uint64_t total = s_buckets_read (m, buckets);
        uint64_t sum_us = atomic_load_explicit (&m->sum_us, memory_order_relaxed);
        uint64_t cumulative = 0;
        char le[32];
        for (size_t i = 0; i <= GL_METRICS_BUCKETS; i++) {
            cumulative += buckets[i];
            snprintf (le, sizeof le, "le=\"%s\"",
                      i < GL_METRICS_BUCKETS ? s_bounds_le[i] : "+Inf");
            fprintf (out, "%s_bucket", name);
            s_write_labels (out, m->labels, le);
            fprintf (out, " %" PRIu64 "\n", cumulative);
        }
        //  Seconds with six decimals, from integer microseconds: exact, no float rounding.
        fprintf (out, "%s_sum", name);
        s_write_labels (out, m->labels, NULL);
        fprintf (out, " %" PRIu64 ".%06" PRIu64 "\n", sum_us / 1000000, sum_us % 1000000);
        fprintf (out, "%s_count", name);
        s_write_labels (out, m->labels, NULL);
        fprintf (out, " %" PRIu64 "\n", total);
    }
}

char *
gl_metrics_render (void)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    pthread_mutex_lock (&s_lock);
    for (size_t f = 0; f < s_nfamilies; f++) {
        s_family_t *family = s_families[f];
        fprintf (out, "# HELP %s ", family->name);
        s_write_help (out, family->help);
        fprintf (out, "\n# TYPE %s %s\n", family->name, family->type);
        for (gl_metric_t *m = family->first; m; m = m->next)
            s_write_series (out, family->name, m);
    }
    pthread_mutex_unlock (&s_lock);
    fputs ("# HELP greenline_metrics_refused_total Metric registrations refused: registry full, "
           "invalid name or labels, or a name registered as another kind.\n"
           "# TYPE greenline_metrics_refused_total counter\n", out);
    for (size_t i = 0; i < 3; i++)
        fprintf (out, "greenline_metrics_refused_total{reason=\"%s\"} %" PRIu64 "\n",
                 s_refusal_names[i], atomic_load_explicit (&s_refused[i], memory_order_relaxed));
    //  open_memstream reports a failed allocation through ferror; the text is then incomplete.
    bool failed = ferror (out) != 0;
    if (fclose (out) != 0 || failed) {
        free (text);
        return NULL;
    }
    return text;
}

size_t
gl_metrics_size (void)
{
    pthread_mutex_lock (&s_lock);
    size_t n = s_nseries;
    pthread_mutex_unlock (&s_lock);
    return n;
}
