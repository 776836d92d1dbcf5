/*  Exports: a report as CSV, and the statistical export for the protection database (counts per
    period and disaggregation with small cells suppressed; layout in docs/api/reporting.md).
*/
#include "metrics.h"
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *buf;
    size_t len, cap;
} s_text_t;

static void
s_text_put (s_text_t *t, const char *s)
{
    size_t n = strlen (s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->cap + n + 1) * 2;
        t->buf = realloc (t->buf, t->cap);
        assert (t->buf);
    }
    memcpy (t->buf + t->len, s, n + 1);
    t->len += n;
}

//  One CSV field: quoted when it holds a comma, quote or line break; a leading = + - @ is
//  prefixed with ' so a spreadsheet does not run it as a formula.
static void
s_field (s_text_t *t, const char *s, bool last)
{
    bool quote = strpbrk (s, ",\"\r\n") != NULL;
    if (quote)
        s_text_put (t, "\"");
    if (strchr ("=+-@", s[0]) && s[0] && !(s[0] == '-' && s[1] >= '0' && s[1] <= '9'))
        s_text_put (t, "'");
    for (const char *p = s; *p; p++) {
        char c[3] = { *p, 0, 0 };
        if (*p == '"')
            c[1] = '"';
        s_text_put (t, c);
    }
    if (quote)
        s_text_put (t, "\"");
    s_text_put (t, last ? "\r\n" : ",");
}

static void
s_value_text (const json_t *v, char *out, size_t len)
{
    if (json_is_integer (v))
        snprintf (out, len, "%" JSON_INTEGER_FORMAT, json_integer_value (v));
    else if (json_is_real (v))
        snprintf (out, len, "%.4f", json_real_value (v));
    else if (json_is_true (v))
        snprintf (out, len, "true");
    else if (json_is_false (v))
        snprintf (out, len, "false");
    else if (json_is_string (v))
        snprintf (out, len, "%s", json_string_value (v));
    else
        out[0] = 0;
}

static void
s_flatten (s_text_t *t, const char *section, const char *metric, const char *dim, const json_t *v)
{
    if (json_is_object (v)) {
        const char *key;
        json_t *child;
        json_object_foreach ((json_t *) v, key, child) {
            char d[512];
            if (!metric)
                s_flatten (t, section, key, "", child);
            else {
                snprintf (d, sizeof d, "%s%s%s", dim, *dim ? "/" : "", key);
                s_flatten (t, section, metric, d, child);
            }
        }
        return;
    }
    if (json_is_array (v)) {
        size_t i;
        json_t *child;
        json_array_foreach ((json_t *) v, i, child) {
            //  Rows of a series are named by their date, hour, agent or category.
            char label[128];
            const char *names[] = { "date", "hour", "agent_id", "category", "le_s", "unit", NULL };
            label[0] = 0;
            for (int k = 0; names[k] && !label[0]; k++) {
                json_t *id = json_object_get (child, names[k]);
                if (id)
                    s_value_text (id, label, sizeof label);
            }
            if (!label[0])
                snprintf (label, sizeof label, "%zu", i);
            char d[512];
            snprintf (d, sizeof d, "%s%s%s", dim, *dim ? "/" : "", label);
            s_flatten (t, section, metric ? metric : label, metric ? d : "", child);
        }
        return;
    }
    char value[128];
    s_value_text (v, value, sizeof value);
    s_field (t, section, false);
    s_field (t, metric ? metric : "", false);
    s_field (t, dim, false);
    s_field (t, value, true);
}

char *
rep_report_csv (const json_t *report)
{
    s_text_t t = { 0 };
    s_text_put (&t, "section,metric,dimension,value\r\n");
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *) report, key, v)
        s_flatten (&t, key, NULL, "", v);
    return t.buf;
}

//  ---------------------------------------------------------------------------------------------
//  Statistical export

typedef struct {
    const char *measure;    //  counter
    const char *dim;        //  dimension in the counter name
    const char *label;      //  dimension in the export
} s_cut_t;

static const s_cut_t s_cuts[] = {
    { "contacts", "cat", "category" },
    { "contacts", "sex", "sex" },
    { "contacts", "age", "age_group" },
    { "contacts", "nat", "nationality" },
    { "contacts", "loc", "location" },
    { "contacts", "need", "specific_needs" },
    { "contacts", "channel", "channel" },
    { "contacts", "lang", "language" },
    { "contacts", "outcome", "outcome" },
    { "referrals.requested", "cat", "category" },
    { "emergencies", "type", "type" },
};

typedef struct {
    const char *prefix;
    size_t plen;
    json_t *cells;          //  value -> count
    bool pairs;             //  take "age=A|sex=S" names (as "A/S") instead of single ones
} s_cells_t;

static void
s_cells_one (void *arg, const char *name, int64_t value)
{
    s_cells_t *c = arg;
    if (strncmp (name, c->prefix, c->plen) != 0 || value <= 0)
        return;
    const char *rest = name + c->plen;
    char v[128];
    //  age x sex: contacts|age=A|sex=S
    const char *bar = strchr (rest, '|');
    if (bar || c->pairs) {
        if (!bar || !c->pairs || strncmp (bar, "|sex=", 5) != 0)
            return;
        snprintf (v, sizeof v, "%.*s/%s", (int) (bar - rest), rest, bar + 5);
    }
    else
        snprintf (v, sizeof v, "%s", rest);
    json_object_set_new (c->cells, v, json_integer (value));
}

//  Rows of one group, suppressed where needed, appended to rows.
static void
s_group (json_t *rows, const char *period, const char *measure, const char *label, json_t *cells,
         int k, int64_t *suppressed_total)
{
    size_t n = json_object_size (cells);
    const char *key;
    json_t *v;
    //  Primary suppression: 0 < count < k.
    json_t *hide = json_object ();
    json_object_foreach (cells, key, v)
        if (json_integer_value (v) < k)
            json_object_set_new (hide, key, json_true ());
    //  Secondary: one hidden cell alone could be worked out from the published total.
    if (json_object_size (hide) == 1 && n > 1) {
        const char *smallest = NULL;
        int64_t min = INT64_MAX;
        json_object_foreach (cells, key, v)
            if (!json_object_get (hide, key) && json_integer_value (v) < min)
                min = json_integer_value (v), smallest = key;
        if (smallest)
            json_object_set_new (hide, smallest, json_true ());
    }
    json_object_foreach (cells, key, v) {
        bool hidden = json_object_get (hide, key) != NULL;
        *suppressed_total += hidden;
        json_array_append_new (rows, json_pack ("{s:s, s:s, s:s, s:s, s:o, s:b}", "period", period,
                               "measure", measure, "dimension", label, "value", key,
                               "count", hidden ? json_null () : json_integer (json_integer_value (v)),
                               "suppressed", hidden));
    }
    json_decref (hide);
}

json_t *
rep_stats_export (rep_agg_t *agg, const rep_span_t *span, char granularity, char **csv)
{
    const rep_conf_t *conf = rep_agg_conf (agg);
    rep_store_t *store = rep_agg_store (agg);
    json_t *rows = json_array ();
    int64_t suppressed = 0;
    char last_key[48] = "";
    for (int64_t day = span->first_day; day <= span->last_day; day++) {
        int y, m, d;
        rep_civil_from_days (day, &y, &m, &d);
        char key[48], period[48];
        int wd = (int) (((day % 7) + 11) % 7);
        if (granularity == 'm')
            snprintf (key, sizeof key, "m%04d-%02d", y, m);
        else if (granularity == 'w') {
            int wy, wm, wdd;
            rep_civil_from_days (day - (wd - conf->week_start + 7) % 7, &wy, &wm, &wdd);
            snprintf (key, sizeof key, "w%04d-%02d-%02d", wy, wm, wdd);
        }
        else
            snprintf (key, sizeof key, "d%04d-%02d-%02d", y, m, d);
        if (!strcmp (key, last_key))
            continue;
        snprintf (last_key, sizeof last_key, "%s", key);
        snprintf (period, sizeof period, "%s", key + 1);
        //  Totals are published as they are: they single no one out by themselves.
        const char *totals[] = { "contacts", "calls.offered", "calls.answered", "referrals.requested",
                                 "emergencies", NULL };
        for (int i = 0; totals[i]; i++) {
            int64_t v = rep_store_get (store, key, totals[i]);
            json_array_append_new (rows, json_pack ("{s:s, s:s, s:s, s:s, s:I, s:b}", "period", period,
                                   "measure", totals[i], "dimension", "total", "value", "",
                                   "count", (json_int_t) v, "suppressed", 0));
        }
        for (size_t c = 0; c < sizeof s_cuts / sizeof s_cuts[0]; c++) {
            char prefix[96];
            snprintf (prefix, sizeof prefix, "%s|%s=", s_cuts[c].measure, s_cuts[c].dim);
            s_cells_t cells = { prefix, strlen (prefix), json_object (), false };
            rep_store_each (store, key, s_cells_one, &cells);
            s_group (rows, period, s_cuts[c].measure, s_cuts[c].label, cells.cells,
                     conf->small_cell, &suppressed);
            json_decref (cells.cells);
        }
        //  Age x sex.
        s_cells_t ages = { "contacts|age=", 13, json_object (), true };
        rep_store_each (store, key, s_cells_one, &ages);
        s_group (rows, period, "contacts", "age_sex", ages.cells, conf->small_cell, &suppressed);
        json_decref (ages.cells);
    }
    json_t *out = json_pack ("{s:s, s:s, s:s, s:i, s:I, s:o}", "from", span->from, "to", span->to,
                             "granularity", granularity == 'm' ? "month" : granularity == 'w' ? "week" : "day",
                             "small_cell_threshold", conf->small_cell,
                             "suppressed_cells", (json_int_t) suppressed, "rows", rows);
    if (csv) {
        s_text_t t = { 0 };
        s_text_put (&t, "period,measure,dimension,value,count,suppressed\r\n");
        size_t i;
        json_t *row;
        json_array_foreach (rows, i, row) {
            char count[32];
            s_value_text (json_object_get (row, "count"), count, sizeof count);
            s_field (&t, json_string_value (json_object_get (row, "period")), false);
            s_field (&t, json_string_value (json_object_get (row, "measure")), false);
            s_field (&t, json_string_value (json_object_get (row, "dimension")), false);
            s_field (&t, json_string_value (json_object_get (row, "value")), false);
            s_field (&t, count, false);
            s_field (&t, json_is_true (json_object_get (row, "suppressed")) ? "1" : "0", true);
        }
        *csv = t.buf;
    }
    return out;
}
