/*  Trends: which categories (and which categories' frustrations) are rising this week compared
    with the weeks before. Method (docs/metrics.md, "Trends"): for each category, the count x in
    the week tested against a Poisson distribution whose mean is the average count of the same
    category over the previous GL_REPORTING_TREND_WEEKS weeks (floored at 0.5 so a category new
    this week can be tested); the one-sided p-value P(X >= x); Benjamini-Hochberg adjustment over
    all categories tested at once, so the expected share of false alarms among the categories
    flagged stays at GL_REPORTING_TREND_FDR; only categories with x >= GL_REPORTING_TREND_MIN_COUNT
    are tested.
*/
#include "metrics.h"
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Regularised lower incomplete gamma P(a, x) (series, or continued fraction for x > a + 1).
static double
s_gamma_p (double a, double x)
{
    if (x <= 0)
        return 0;
    double gln = lgamma (a);
    if (x < a + 1) {
        double ap = a, sum = 1.0 / a, del = sum;
        for (int n = 0; n < 100000; n++) {
            ap += 1;
            del *= x / ap;
            sum += del;
            if (fabs (del) < fabs (sum) * 1e-15)
                break;
        }
        return sum * exp (-x + a * log (x) - gln);
    }
    double b = x + 1 - a, c = 1.0 / 1e-300, d = 1.0 / b, h = d;
    for (int i = 1; i < 100000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabs (d) < 1e-300)
            d = 1e-300;
        c = b + an / c;
        if (fabs (c) < 1e-300)
            c = 1e-300;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs (del - 1) < 1e-15)
            break;
    }
    return 1.0 - exp (-x + a * log (x) - gln) * h;
}

double
rep_poisson_upper (int64_t x, double lambda)
{
    if (x <= 0)
        return 1.0;
    //  P(X >= x) = P(x, lambda), the regularised lower incomplete gamma function.
    double p = s_gamma_p ((double) x, lambda);
    return p < 0 ? 0 : p > 1 ? 1 : p;
}

typedef struct {
    double p;
    size_t i;
} s_pi_t;

static int
s_cmp_p (const void *a, const void *b)
{
    const s_pi_t *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p ? 1 : (x->i < y->i ? -1 : 1);
}

void
rep_bh_adjust (const double *p, double *q, size_t n)
{
    if (n == 0)
        return;
    s_pi_t *v = malloc (n * sizeof *v);
    assert (v);
    for (size_t i = 0; i < n; i++)
        v[i].p = p[i], v[i].i = i;
    qsort (v, n, sizeof *v, s_cmp_p);
    double min = 1.0;
    for (size_t k = n; k-- > 0;) {
        double adj = v[k].p * (double) n / (double) (k + 1);
        if (adj < min)
            min = adj;
        q[v[k].i] = min;
    }
    free (v);
}

typedef struct {
    const char *prefix;
    size_t plen;
    json_t *out;
} s_cats_t;

static void
s_cats_one (void *arg, const char *name, int64_t value)
{
    s_cats_t *c = arg;
    if (strncmp (name, c->prefix, c->plen) == 0 && !strchr (name + c->plen, '|'))
        json_object_set_new (c->out, name + c->plen, json_true ());
}

static double
s_round (double v, double scale)
{
    return round (v * scale) / scale;
}

//  Test every category of metric ("contacts" or "contacts.frustrated") in week w.
static json_t *
s_test (rep_agg_t *agg, const char *metric, int64_t week_first_day)
{
    const rep_conf_t *conf = rep_agg_conf (agg);
    rep_store_t *store = rep_agg_store (agg);
    int k = conf->trend_weeks;
    char prefix[96];
    snprintf (prefix, sizeof prefix, "%s|cat=", metric);
    s_cats_t cats = { prefix, strlen (prefix), json_object () };
    char keys[53][24];
    for (int i = 0; i <= k; i++) {
        int y, m, d;
        rep_civil_from_days (week_first_day - 7 * i, &y, &m, &d);
        snprintf (keys[i], sizeof keys[i], "w%04d-%02d-%02d", y, m, d);
        rep_store_each (store, keys[i], s_cats_one, &cats);
    }
    size_t n = json_object_size (cats.out), t = 0;
    double *p = calloc (n + 1, sizeof (double)), *q = calloc (n + 1, sizeof (double));
    json_t *rows = json_array ();
    const char *cat;
    json_t *unused;
    json_object_foreach (cats.out, cat, unused) {
        char name[160];
        snprintf (name, sizeof name, "%s%s", prefix, cat);
        int64_t x = rep_store_get (store, keys[0], name), sum = 0;
        json_t *hist = json_array ();
        for (int i = 1; i <= k; i++) {
            int64_t v = rep_store_get (store, keys[i], name);
            sum += v;
            json_array_append_new (hist, json_integer (v));
        }
        double expected = (double) sum / k;
        double lambda = expected < 0.5 ? 0.5 : expected;
        json_t *row = json_pack ("{s:s, s:I, s:f, s:o}", "category", cat, "observed", (json_int_t) x,
                                 "expected", s_round (expected, 100), "previous_weeks", hist);
        if (x >= conf->trend_min_count) {
            p[t] = rep_poisson_upper (x, lambda);
            json_object_set_new (row, "p_value", json_real (p[t]));
            json_object_set_new (row, "z_score", json_real (s_round ((x - lambda) / sqrt (lambda), 100)));
            t++;
        }
        else
            json_object_set_new (row, "p_value", json_null ());
        json_array_append_new (rows, row);
    }
    rep_bh_adjust (p, q, t);
    size_t j = 0, i;
    json_t *row;
    json_t *rising = json_array ();
    json_array_foreach (rows, i, row) {
        if (json_is_null (json_object_get (row, "p_value"))) {
            json_object_set_new (row, "q_value", json_null ());
            json_object_set_new (row, "rising", json_false ());
            continue;
        }
        bool up = q[j] <= conf->trend_fdr
                  && (double) json_integer_value (json_object_get (row, "observed"))
                         > json_real_value (json_object_get (row, "expected"));
        json_object_set_new (row, "q_value", json_real (q[j]));
        json_object_set_new (row, "rising", json_boolean (up));
        if (up)
            json_array_append (rising, row);
        j++;
    }
    free (p);
    free (q);
    json_decref (cats.out);
    return json_pack ("{s:I, s:o, s:o}", "tested", (json_int_t) t, "rising", rising, "all", rows);
}

json_t *
rep_trends (rep_agg_t *agg, const rep_span_t *week, int64_t now_ms)
{
    const rep_conf_t *conf = rep_agg_conf (agg);
    json_t *out = json_pack ("{s:s, s:s, s:{s:s, s:i, s:f, s:i}}", "week_from", week->from,
                             "week_to", week->to, "method",
                             "test", "one-sided exact Poisson test against the mean of the previous weeks; Benjamini-Hochberg false discovery rate over the categories tested",
                             "baseline_weeks", conf->trend_weeks, "fdr", conf->trend_fdr,
                             "min_count", conf->trend_min_count);
    json_object_set_new (out, "categories", s_test (agg, "contacts", week->first_day));
    json_object_set_new (out, "frustration", s_test (agg, "contacts.frustrated", week->first_day));
    //  A week not over yet is compared with whole weeks: say so.
    time_t t = (time_t) (now_ms / 1000);
    struct tm tm;
    localtime_r (&t, &tm);
    int64_t today = rep_days_from_civil (tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    json_object_set_new (out, "partial_week", json_boolean (today <= week->last_day));
    return out;
}
