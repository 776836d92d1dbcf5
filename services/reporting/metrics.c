/*  Reports and the wallboard from the counters. Every figure is defined in docs/metrics.md;
    the names of the counters behind them are listed there too.
*/
#include "metrics.h"
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
s_date_text (int64_t day, char *out)
{
    int y, m, d;
    rep_civil_from_days (day, &y, &m, &d);
    snprintf (out, 11, "%04d-%02d-%02d", y, m, d);
}

static int64_t
s_today (int64_t now_ms)
{
    time_t t = (time_t) (now_ms / 1000);
    struct tm tm;
    localtime_r (&t, &tm);
    return rep_days_from_civil (tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static int
s_bad (char *field, size_t fieldlen, char *msg, size_t msglen, const char *f, const char *m)
{
    snprintf (field, fieldlen, "%s", f);
    snprintf (msg, msglen, "%s", m);
    return -1;
}

int
rep_span_parse (rep_agg_t *agg, const char *kind, const json_t *query, int64_t now_ms,
                rep_span_t *span, char *field, size_t fieldlen, char *msg, size_t msglen)
{
    memset (span, 0, sizeof *span);
    if (!kind || (strcmp (kind, "day") && strcmp (kind, "week") && strcmp (kind, "month")
                  && strcmp (kind, "range")))
        return s_bad (field, fieldlen, msg, msglen, "period", "period: day, week, month or range");
    json_t *jdate = json_object_get (query, "date");
    json_t *jfrom = json_object_get (query, "from");
    json_t *jto = json_object_get (query, "to");
    int y, m, d;
    if (jfrom || jto || !strcmp (kind, "range")) {
        if (jdate)
            return s_bad (field, fieldlen, msg, msglen, "date", "date: not with from and to");
        if (!json_is_string (jfrom) || rep_date_parse (json_string_value (jfrom), &y, &m, &d))
            return s_bad (field, fieldlen, msg, msglen, "from", "from: a date YYYY-MM-DD");
        int64_t first = rep_days_from_civil (y, m, d);
        if (!json_is_string (jto) || rep_date_parse (json_string_value (jto), &y, &m, &d))
            return s_bad (field, fieldlen, msg, msglen, "to", "to: a date YYYY-MM-DD");
        int64_t last = rep_days_from_civil (y, m, d);
        if (last < first)
            return s_bad (field, fieldlen, msg, msglen, "to", "to: not before from");
        if (last - first + 1 > REP_RANGE_MAX_DAYS)
            return s_bad (field, fieldlen, msg, msglen, "to", "to: at most 400 days after from");
        snprintf (span->kind, sizeof span->kind, "range");
        span->first_day = first, span->last_day = last;
    }
    else {
        int64_t day = s_today (now_ms);
        if (jdate) {
            if (!json_is_string (jdate) || rep_date_parse (json_string_value (jdate), &y, &m, &d))
                return s_bad (field, fieldlen, msg, msglen, "date", "date: a date YYYY-MM-DD");
            day = rep_days_from_civil (y, m, d);
        }
        snprintf (span->kind, sizeof span->kind, "%s", kind);
        if (!strcmp (kind, "day"))
            span->first_day = span->last_day = day;
        else if (!strcmp (kind, "week")) {
            int wd = (int) (((day % 7) + 11) % 7);
            int back = (wd - rep_agg_conf (agg)->week_start + 7) % 7;
            span->first_day = day - back;
            span->last_day = span->first_day + 6;
        }
        else {
            rep_civil_from_days (day, &y, &m, &d);
            span->first_day = rep_days_from_civil (y, m, 1);
            span->last_day = rep_days_from_civil (m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) - 1;
        }
    }
    s_date_text (span->first_day, span->from);
    s_date_text (span->last_day, span->to);
    return 0;
}

//  ---------------------------------------------------------------------------------------------
//  The counters of a span, merged into one bucket of a scratch store.

static void
s_merge_one (void *arg, const char *name, int64_t value)
{
    rep_store_add ((rep_store_t *) arg, "x", name, value);
}

static rep_store_t *
s_merged (rep_agg_t *agg, const rep_span_t *span)
{
    rep_store_t *store = rep_agg_store (agg);
    rep_store_t *out = rep_store_new (rep_agg_conf (agg)->max_names * 4);
    assert (out);
    rep_store_add (out, "x", "_days", 0);
    char key[48];
    if (!strcmp (span->kind, "range")) {
        //  Whole months inside the range from their month bucket, the other days one by one.
        for (int64_t day = span->first_day; day <= span->last_day;) {
            int y, m, d;
            rep_civil_from_days (day, &y, &m, &d);
            int64_t next_month = rep_days_from_civil (m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1);
            if (d == 1 && next_month - 1 <= span->last_day) {
                snprintf (key, sizeof key, "m%04d-%02d", y, m);
                rep_store_each (store, key, s_merge_one, out);
                day = next_month;
                continue;
            }
            key[0] = 'd';
            s_date_text (day, key + 1);
            rep_store_each (store, key, s_merge_one, out);
            day++;
        }
        return out;
    }
    if (!strcmp (span->kind, "day"))
        snprintf (key, sizeof key, "d%s", span->from);
    else if (!strcmp (span->kind, "week"))
        snprintf (key, sizeof key, "w%s", span->from);
    else
        snprintf (key, sizeof key, "m%.7s", span->from);
    rep_store_each (store, key, s_merge_one, out);
    return out;
}

static int64_t
s_get (rep_store_t *m, const char *name)
{
    return rep_store_get (m, "x", name);
}

static json_t *
s_ratio (int64_t num, int64_t den)
{
    if (den <= 0)
        return json_null ();
    return json_real (round (10000.0 * (double) num / (double) den) / 10000.0);
}

static json_t *
s_avg (int64_t sum, int64_t n)
{
    if (n <= 0)
        return json_null ();
    return json_integer ((json_int_t) llround ((double) sum / (double) n));
}

//  {value: count} of names "metric|dim=value" (exactly one dimension).
typedef struct {
    const char *prefix;
    size_t plen;
    json_t *out;
} s_by_t;

static void
s_by_one (void *arg, const char *name, int64_t value)
{
    s_by_t *by = arg;
    if (strncmp (name, by->prefix, by->plen) != 0 || strchr (name + by->plen, '|'))
        return;
    if (value != 0)
        json_object_set_new (by->out, name + by->plen, json_integer (value));
}

static json_t *
s_by (rep_store_t *m, const char *metric, const char *dim)
{
    char prefix[128];
    snprintf (prefix, sizeof prefix, "%s|%s=", metric, dim);
    s_by_t by = { prefix, strlen (prefix), json_object () };
    rep_store_each (m, "x", s_by_one, &by);
    return by.out;
}

//  ---------------------------------------------------------------------------------------------
//  Calls

//  The call figures for names with suffix sfx ("" for all, "|line=main" for one line).
static json_t *
s_call_figures (rep_agg_t *agg, rep_store_t *m, const char *sfx)
{
    const rep_conf_t *conf = rep_agg_conf (agg);
    char n[128];
#define S_GET(metric) (snprintf (n, sizeof n, "%s%s", metric, sfx), s_get (m, n))
    int64_t offered = S_GET ("calls.offered");
    int64_t answered = S_GET ("calls.answered");
    int64_t abandoned = S_GET ("calls.abandoned");
    int64_t short_ab = S_GET ("calls.abandoned_short");
    int64_t wait = S_GET ("calls.answer_wait_ms");
    int64_t base = offered - short_ab;
    json_t *sl = json_object ();
    for (int i = 0; i < conf->sl_n; i++) {
        char t[32], name[64];
        snprintf (t, sizeof t, "%d", conf->sl_s[i]);
        snprintf (name, sizeof name, "calls.answered_within_%ds", conf->sl_s[i]);
        json_object_set_new (sl, t, s_ratio (S_GET (name), base));
    }
    json_t *out = json_pack ("{s:I, s:I, s:I, s:I, s:o, s:o, s:o}",
                             "offered", (json_int_t) offered,
                             "answered", (json_int_t) answered,
                             "abandoned", (json_int_t) abandoned,
                             "abandoned_short", (json_int_t) short_ab,
                             "abandonment_rate", s_ratio (abandoned, base),
                             "asa_ms", s_avg (wait, answered),
                             "service_level", sl);
#undef S_GET
    return out;
}

//  Per value of dim: the call figures.
typedef struct {
    const char *prefix;
    size_t plen;
    zlistx_t *values;
} s_vals_t;

static void
s_vals_one (void *arg, const char *name, int64_t value)
{
    s_vals_t *v = arg;
    if (strncmp (name, v->prefix, v->plen) == 0 && !strchr (name + v->plen, '|'))
        zlistx_add_end (v->values, (void *) (name + v->plen));
}

static json_t *
s_calls_by (rep_agg_t *agg, rep_store_t *m, const char *dim)
{
    char prefix[64];
    snprintf (prefix, sizeof prefix, "calls.offered|%s=", dim);
    s_vals_t v = { prefix, strlen (prefix), zlistx_new () };
    zlistx_set_duplicator (v.values, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (v.values, (zlistx_destructor_fn *) zstr_free);
    rep_store_each (m, "x", s_vals_one, &v);
    json_t *out = json_object ();
    for (const char *val = zlistx_first (v.values); val; val = zlistx_next (v.values)) {
        char sfx[96];
        snprintf (sfx, sizeof sfx, "|%s=%s", dim, val);
        json_object_set_new (out, val, s_call_figures (agg, m, sfx));
    }
    zlistx_destroy (&v.values);
    return out;
}

static json_t *
s_hist (rep_agg_t *agg, rep_store_t *m, const char *metric)
{
    const rep_conf_t *conf = rep_agg_conf (agg);
    json_t *out = json_array ();
    char name[96];
    for (int i = 0; i <= conf->hist_n; i++) {
        if (i < conf->hist_n)
            snprintf (name, sizeof name, "%s|le=%d", metric, conf->hist_s[i]);
        else
            snprintf (name, sizeof name, "%s|le=inf", metric);
        json_array_append_new (out, json_pack ("{s:o, s:I}", "le_s",
                                               i < conf->hist_n ? json_integer (conf->hist_s[i])
                                                                : json_null (),
                                               "calls", (json_int_t) s_get (m, name)));
    }
    return out;
}

static json_t *
s_calls (rep_agg_t *agg, rep_store_t *m)
{
    json_t *calls = s_call_figures (agg, m, "");
    int64_t handled = s_get (m, "calls.handled");
    int64_t talk = s_get (m, "calls.talk_ms");
    int64_t wrap = s_get (m, "agent.time_ms|state=wrap_up");
    json_object_set_new (calls, "longest_wait_ms", json_integer (s_get (m, "calls.wait_max")));
    json_object_set_new (calls, "longest_answer_wait_ms",
                         json_integer (s_get (m, "calls.answer_wait_max")));
    json_object_set_new (calls, "handled", json_integer (handled));
    json_object_set_new (calls, "talk_ms", json_integer (talk));
    json_object_set_new (calls, "hold_ms", json_integer (s_get (m, "calls.hold_ms")));
    json_object_set_new (calls, "wrap_up_ms", json_integer (wrap));
    json_object_set_new (calls, "aht_ms", s_avg (talk + wrap, handled));
    json_object_set_new (calls, "reanswered", json_integer (s_get (m, "calls.reanswered")));
    json_object_set_new (calls, "not_reached", json_integer (s_get (m, "calls.not_reached")));
    json_object_set_new (calls, "not_reached_by_reason", s_by (m, "calls.not_reached", "reason"));
    json_object_set_new (calls, "transferred", s_by (m, "calls.transferred", "target"));
    json_object_set_new (calls, "by_line", s_calls_by (agg, m, "line"));
    json_object_set_new (calls, "by_language", s_calls_by (agg, m, "lang"));
    json_object_set_new (calls, "by_priority", s_calls_by (agg, m, "prio"));
    json_object_set_new (calls, "answer_wait_distribution", s_hist (agg, m, "calls.answer_wait_hist"));
    json_object_set_new (calls, "abandon_wait_distribution", s_hist (agg, m, "calls.abandon_wait_hist"));
    return calls;
}

//  ---------------------------------------------------------------------------------------------
//  Agents

typedef struct {
    json_t *agents;     //  id -> object
    const char *only;
} s_agents_t;

static json_t *
s_agent (s_agents_t *a, const char *id)
{
    json_t *obj = json_object_get (a->agents, id);
    if (!obj) {
        obj = json_pack ("{s:s, s:I, s:I, s:I, s:I, s:I, s:{}}", "agent_id", id, "answered",
                         (json_int_t) 0, "handled", (json_int_t) 0, "talk_ms", (json_int_t) 0,
                         "qa_reviews", (json_int_t) 0, "qa_score_sum", (json_int_t) 0, "time_ms");
        json_object_set_new (a->agents, id, obj);
    }
    return obj;
}

static void
s_agents_one (void *arg, const char *name, int64_t value)
{
    s_agents_t *a = arg;
    const char *p = strstr (name, "|agent=");
    if (!p)
        return;
    char metric[64], id[64], state[64];
    size_t mlen = (size_t) (p - name);
    if (mlen >= sizeof metric)
        return;
    memcpy (metric, name, mlen);
    metric[mlen] = 0;
    const char *rest = p + 7;
    const char *bar = strchr (rest, '|');
    size_t ilen = bar ? (size_t) (bar - rest) : strlen (rest);
    if (ilen >= sizeof id)
        return;
    memcpy (id, rest, ilen);
    id[ilen] = 0;
    if (a->only && strcmp (a->only, id) != 0)
        return;
    json_t *obj = NULL;
    if (!strcmp (metric, "agent.time_ms") && bar && !strncmp (bar, "|state=", 7)) {
        snprintf (state, sizeof state, "%s", bar + 7);
        json_object_set_new (json_object_get (s_agent (a, id), "time_ms"), state, json_integer (value));
        return;
    }
    if (bar)
        return;
    const char *key = !strcmp (metric, "calls.answered") ? "answered"
                      : !strcmp (metric, "agent.handled") ? "handled"
                      : !strcmp (metric, "agent.talk_ms") ? "talk_ms"
                      : !strcmp (metric, "qa.reviews") ? "qa_reviews"
                      : !strcmp (metric, "qa.score_sum") ? "qa_score_sum"
                      : !strcmp (metric, "contacts") ? "contacts" : NULL;
    if (!key)
        return;
    obj = s_agent (a, id);
    json_object_set_new (obj, key, json_integer (value));
}

static json_t *
s_agents (rep_store_t *m, const char *only)
{
    s_agents_t a = { json_object (), only };
    rep_store_each (m, "x", s_agents_one, &a);
    json_t *list = json_array ();
    const char *id;
    json_t *obj;
    void *tmp;
    json_object_foreach_safe (a.agents, tmp, id, obj) {
        json_t *t = json_object_get (obj, "time_ms");
        int64_t avail = json_integer_value (json_object_get (t, "available"));
        int64_t on = json_integer_value (json_object_get (t, "on_call"));
        int64_t wrap = json_integer_value (json_object_get (t, "wrap_up"));
        int64_t handled = json_integer_value (json_object_get (obj, "handled"));
        int64_t talk = json_integer_value (json_object_get (obj, "talk_ms"));
        json_object_set_new (obj, "occupancy", s_ratio (on + wrap, avail + on + wrap));
        json_object_set_new (obj, "aht_ms", s_avg (talk + wrap, handled));
        int64_t n = json_integer_value (json_object_get (obj, "qa_reviews"));
        int64_t sum = json_integer_value (json_object_get (obj, "qa_score_sum"));
        json_object_set_new (obj, "qa_avg_score", n ? json_real (round (100.0 * (double) sum / (double) n) / 100.0) : json_null ());
        json_object_del (obj, "qa_score_sum");
        json_array_append (list, obj);
    }
    json_decref (a.agents);
    return list;
}

//  ---------------------------------------------------------------------------------------------
//  The report

static json_t *
s_series_day (rep_agg_t *agg, int64_t day)
{
    const rep_conf_t *conf = rep_agg_conf (agg);
    rep_store_t *store = rep_agg_store (agg);
    char key[24], date[11];
    s_date_text (day, date);
    snprintf (key, sizeof key, "d%s", date);
    int64_t offered = rep_store_get (store, key, "calls.offered");
    int64_t short_ab = rep_store_get (store, key, "calls.abandoned_short");
    char name[64];
    snprintf (name, sizeof name, "calls.answered_within_%ds", conf->sl_s[0]);
    int wd = (int) (((day % 7) + 11) % 7);
    return json_pack ("{s:s, s:b, s:I, s:I, s:I, s:o, s:I}", "date", date,
                      "weekend", (conf->weekend_mask >> wd) & 1,
                      "offered", (json_int_t) offered,
                      "answered", (json_int_t) rep_store_get (store, key, "calls.answered"),
                      "abandoned", (json_int_t) rep_store_get (store, key, "calls.abandoned"),
                      "service_level", s_ratio (rep_store_get (store, key, name), offered - short_ab),
                      "contacts", (json_int_t) rep_store_get (store, key, "contacts"));
}

static json_t *
s_series (rep_agg_t *agg, const rep_span_t *span, json_t **weekparts)
{
    json_t *days = json_array ();
    int64_t wk[2][2] = { { 0 } };
    for (int64_t day = span->first_day; day <= span->last_day; day++) {
        json_t *d = s_series_day (agg, day);
        int we = json_is_true (json_object_get (d, "weekend"));
        wk[we][0] += json_integer_value (json_object_get (d, "offered"));
        wk[we][1] += json_integer_value (json_object_get (d, "contacts"));
        json_array_append_new (days, d);
    }
    *weekparts = json_pack ("{s:{s:I, s:I}, s:{s:I, s:I}}",
                            "weekdays", "calls_offered", (json_int_t) wk[0][0], "contacts", (json_int_t) wk[0][1],
                            "weekend", "calls_offered", (json_int_t) wk[1][0], "contacts", (json_int_t) wk[1][1]);
    return days;
}

static json_t *
s_hours (rep_agg_t *agg, const rep_span_t *span)
{
    rep_store_t *store = rep_agg_store (agg);
    json_t *hours = json_array ();
    for (int h = 0; h < 24; h++) {
        char key[24];
        snprintf (key, sizeof key, "h%sT%02d", span->from, h);
        json_array_append_new (hours, json_pack ("{s:i, s:I, s:I, s:I, s:I}", "hour", h,
                               "offered", (json_int_t) rep_store_get (store, key, "calls.offered"),
                               "answered", (json_int_t) rep_store_get (store, key, "calls.answered"),
                               "abandoned", (json_int_t) rep_store_get (store, key, "calls.abandoned"),
                               "contacts", (json_int_t) rep_store_get (store, key, "contacts")));
    }
    return hours;
}

static json_t *
s_contacts (rep_store_t *m)
{
    json_t *agd = json_pack ("{s:o, s:o, s:o, s:o, s:o}",
                             "sex", s_by (m, "contacts", "sex"),
                             "age_group", s_by (m, "contacts", "age"),
                             "nationality", s_by (m, "contacts", "nat"),
                             "specific_needs", s_by (m, "contacts", "need"),
                             "location", s_by (m, "contacts", "loc"));
    //  age x sex: names contacts|age=A|sex=S
    json_t *age_sex = json_object ();
    json_t *ages = json_object_get (agd, "age_group");
    const char *age;
    json_t *unused;
    json_object_foreach (ages, age, unused) {
        char metric[96];
        snprintf (metric, sizeof metric, "contacts|age=%s", age);
        json_object_set_new (age_sex, age, s_by (m, metric, "sex"));
    }
    json_object_set_new (agd, "age_sex", age_sex);
    return json_pack ("{s:I, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:I, s:I, s:I, s:o}",
                      "total", (json_int_t) s_get (m, "contacts"),
                      "by_channel", s_by (m, "contacts", "channel"),
                      "by_direction", s_by (m, "contacts", "direction"),
                      "by_category", s_by (m, "contacts", "cat"),
                      "by_language", s_by (m, "contacts", "lang"),
                      "by_outcome", s_by (m, "contacts", "outcome"),
                      "frustrated", (json_int_t) s_get (m, "contacts.frustrated"),
                      "frustrated_by_category", s_by (m, "contacts.frustrated", "cat"),
                      "sensitive", (json_int_t) s_get (m, "contacts.sensitive"),
                      "anonymous", (json_int_t) s_get (m, "contacts.anonymous"),
                      "repeat", (json_int_t) s_get (m, "contacts.repeat"),
                      "agd", agd);
}

//  referrals.<what>|prio=P|unit=U as [{unit, priority, count}]
typedef struct {
    const char *prefix;
    size_t plen;
    json_t *out;
} s_pu_t;

static void
s_pu_one (void *arg, const char *name, int64_t value)
{
    s_pu_t *pu = arg;
    if (strncmp (name, pu->prefix, pu->plen) != 0)
        return;
    char prio[64], unit[64];
    if (sscanf (name + pu->plen, "%63[^|]|unit=%63s", prio, unit) != 2)
        return;
    json_array_append_new (pu->out, json_pack ("{s:s, s:s, s:I}", "unit", unit, "priority", prio,
                                               "count", (json_int_t) value));
}

static json_t *
s_by_unit_prio (rep_store_t *m, const char *metric)
{
    char prefix[96];
    snprintf (prefix, sizeof prefix, "%s|prio=", metric);
    s_pu_t pu = { prefix, strlen (prefix), json_array () };
    rep_store_each (m, "x", s_pu_one, &pu);
    return pu.out;
}

static json_t *
s_referrals (rep_store_t *m)
{
    int64_t met = s_get (m, "referrals.acknowledged_sla_met") + s_get (m, "referrals.closed_sla_met");
    int64_t missed = s_get (m, "referrals.acknowledged_sla_missed") + s_get (m, "referrals.closed_sla_missed");
    return json_pack ("{s:I, s:o, s:o, s:I, s:o, s:I, s:o, s:I, s:I, s:{s:I, s:I, s:o}}",
                      "requested", (json_int_t) s_get (m, "referrals.requested"),
                      "by_priority", s_by (m, "referrals.requested", "prio"),
                      "by_category", s_by (m, "referrals.requested", "cat"),
                      "routed", (json_int_t) s_get (m, "referrals.routed"),
                      "routed_by_unit_priority", s_by_unit_prio (m, "referrals.routed"),
                      "acknowledged", (json_int_t) s_get (m, "referrals.acknowledged"),
                      "acknowledged_by_unit_priority", s_by_unit_prio (m, "referrals.acknowledged"),
                      "closed", (json_int_t) s_get (m, "referrals.closed"),
                      "escalated", (json_int_t) s_get (m, "referrals.escalated"),
                      "sla", "met", (json_int_t) met, "missed", (json_int_t) missed,
                      "met_rate", s_ratio (met, met + missed));
}

json_t *
rep_report (rep_agg_t *agg, const rep_span_t *span, int64_t now_ms, const char *agent_only)
{
    const rep_conf_t *conf = rep_agg_conf (agg);
    rep_store_t *m = s_merged (agg, span);
    json_t *period = json_pack ("{s:s, s:s, s:s, s:s}", "kind", span->kind, "from", span->from,
                                "to", span->to, "time_zone", conf->tz);
    json_t *report = json_pack ("{s:o}", "period", period);
    if (agent_only) {
        json_object_set_new (report, "agents", s_agents (m, agent_only));
        rep_store_destroy (&m);
        return report;
    }
    json_object_set_new (report, "calls", s_calls (agg, m));
    json_object_set_new (report, "agents", s_agents (m, NULL));
    json_object_set_new (report, "contacts", s_contacts (m));
    //  First-contact resolution: provisional while the window after the span's last day is open.
    int64_t eligible = s_get (m, "fcr.eligible"), repeated = s_get (m, "fcr.repeated");
    int y, mo, d;
    rep_civil_from_days (span->last_day + 1, &y, &mo, &d);
    struct tm tm = { 0 };
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_isdst = -1;
    int64_t end_ms = (int64_t) mktime (&tm) * 1000;
    bool provisional = now_ms < end_ms + conf->fcr_window_ms;
    json_object_set_new (report, "fcr", json_pack ("{s:I, s:I, s:o, s:b, s:I}",
                         "eligible", (json_int_t) eligible, "repeated", (json_int_t) repeated,
                         "rate", s_ratio (eligible - repeated, eligible),
                         "provisional", provisional,
                         "window_days", (json_int_t) (conf->fcr_window_ms / 86400000)));
    json_object_set_new (report, "referrals", s_referrals (m));
    int64_t ack = s_get (m, "emergencies.ack_timed");
    int64_t e_met = s_get (m, "emergencies.ack_sla_met"), e_missed = s_get (m, "emergencies.ack_sla_missed");
    json_object_set_new (report, "emergencies", json_pack ("{s:I, s:o, s:I, s:o, s:I, s:o}",
                         "raised", (json_int_t) s_get (m, "emergencies"),
                         "by_type", s_by (m, "emergencies", "type"),
                         "acknowledged", (json_int_t) s_get (m, "emergencies.acknowledged"),
                         "time_to_ack_avg_ms", s_avg (s_get (m, "emergencies.ack_ms"), ack),
                         "time_to_ack_max_ms", (json_int_t) s_get (m, "emergencies.ack_max"),
                         "ack_within_sla_rate", s_ratio (e_met, e_met + e_missed)));
    int64_t booked = s_get (m, "appointments.booked"), attended = s_get (m, "appointments.attended");
    int64_t missed = s_get (m, "appointments.no_show");
    json_object_set_new (report, "appointments", json_pack ("{s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
                         "booked", (json_int_t) booked, "attended", (json_int_t) attended,
                         "missed", (json_int_t) missed,
                         "cancelled", (json_int_t) s_get (m, "appointments.cancelled"),
                         "moved", (json_int_t) s_get (m, "appointments.moved"),
                         "attendance_rate", s_ratio (attended, attended + missed),
                         "booked_by_centre", s_by (m, "appointments.booked", "centre")));
    rep_civil_from_days (span->first_day, &y, &mo, &d);
    struct tm tf = { 0 };
    tf.tm_year = y - 1900, tf.tm_mon = mo - 1, tf.tm_mday = d, tf.tm_isdst = -1;
    int64_t from_ms = (int64_t) mktime (&tf) * 1000;
    json_object_set_new (report, "complaints", json_pack ("{s:I, s:o, s:I, s:I, s:I}",
                         "received", (json_int_t) s_get (m, "complaints.received"),
                         "received_by_type", s_by (m, "complaints.received", "type"),
                         "closed", (json_int_t) s_get (m, "complaints.closed"),
                         "closed_late", (json_int_t) s_get (m, "complaints.closed_late"),
                         "overdue_now", (json_int_t) rep_agg_overdue (agg, from_ms, end_ms, now_ms)));
    int64_t attempts = s_get (m, "outbound.attempts");
    int64_t reached = s_get (m, "outbound.reached");
    json_object_set_new (report, "outbound", json_pack ("{s:I, s:I, s:o, s:o}",
                         "attempts", (json_int_t) attempts, "reached", (json_int_t) reached,
                         "reach_rate", s_ratio (reached, attempts),
                         "by_outcome", s_by (m, "outbound.attempts", "outcome")));
    //  QA by criterion: averages.
    json_t *sums = s_by (m, "qa.criterion_sum", "crit");
    json_t *ns = s_by (m, "qa.criterion_n", "crit");
    json_t *crit = json_object ();
    const char *key;
    json_t *val;
    json_object_foreach (sums, key, val) {
        int64_t n = json_integer_value (json_object_get (ns, key));
        json_object_set_new (crit, key, n ? json_real (round (100.0 * (double) json_integer_value (val) / (double) n) / 100.0) : json_null ());
    }
    json_decref (sums);
    json_decref (ns);
    int64_t reviews = s_get (m, "qa.reviews");
    json_object_set_new (report, "qa", json_pack ("{s:I, s:I, s:o, s:o}", "reviews", (json_int_t) reviews,
                         "passed", (json_int_t) s_get (m, "qa.passed"),
                         "avg_score", reviews ? json_real (round (100.0 * (double) s_get (m, "qa.score_sum") / (double) reviews) / 100.0) : json_null (),
                         "by_criterion", crit));
    json_t *parts = NULL;
    json_object_set_new (report, "days", s_series (agg, span, &parts));
    json_object_set_new (report, "weekdays_weekend", parts);
    if (!strcmp (span->kind, "day"))
        json_object_set_new (report, "hours", s_hours (agg, span));
    rep_store_destroy (&m);
    return report;
}

static void
s_events_one (void *arg, const char *name, int64_t value)
{
    if (!strncmp (name, "events|type=", 12))
        *(int64_t *) arg += value;
}

json_t *
rep_wallboard (rep_agg_t *agg, int64_t now_ms)
{
    json_t *wb = rep_agg_live (agg, now_ms);
    rep_span_t span;
    char field[32], msg[64];
    json_t *q = json_object ();
    rep_span_parse (agg, "day", q, now_ms, &span, field, sizeof field, msg, sizeof msg);
    json_decref (q);
    rep_store_t *m = s_merged (agg, &span);
    json_t *today = s_call_figures (agg, m, "");
    json_object_set_new (today, "contacts", json_integer (s_get (m, "contacts")));
    json_object_set_new (today, "longest_wait_ms", json_integer (s_get (m, "calls.wait_max")));
    json_object_set_new (today, "emergencies", json_integer (s_get (m, "emergencies")));
    json_object_set_new (wb, "today", today);
    json_object_set_new (wb, "date", json_string (span.from));
    json_object_set_new (wb, "as_of", json_integer (now_ms));
    int64_t events = 0;
    rep_store_each (rep_agg_store (agg), "t", s_events_one, &events);
    json_object_set_new (wb, "events_applied", json_integer (events));
    rep_store_destroy (&m);
    return wb;
}
