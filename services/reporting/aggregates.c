/*  rep_agg — events into counters (see aggregates.h and docs/metrics.md for what each counter
    means). Every handler validates its fields: a missing or impossible value is counted under
    "events.rejected|reason=<why>" in the lifetime bucket "t" and the event changes nothing else.
*/
#include "aggregates.h"
#include "gl/gl_log.h"
#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S_CALL_OFFERED      (1 << 0)
#define S_CALL_ANSWERED     (1 << 1)
#define S_CALL_DONE         (1 << 2)    //  abandoned, not reached, ended, transferred out
#define S_CALL_WAITING      (1 << 3)
#define S_CALL_ABANDONED    (1 << 4)
#define S_CALL_ENDED        (1 << 5)

#define S_CONTACT_ELIGIBLE  (1 << 0)
#define S_CONTACT_REPEATED  (1 << 1)    //  a repeat of it came within the window
#define S_CONTACT_REPEAT    (1 << 2)    //  it is itself a repeat

#define S_MAX_LIST          16          //  categories, needs taken from one contact

//  A live record. What each field holds depends on kind (first character of its key):
//    c call      t0 offer time, t1 last event time, n1 flags, n2 steps seen (bits), s line\nlang
//    a agent     t0 state since, n1 step, s state
//    k contact   t0 created, n1 version, n2 flags, s its fields as codes (s_contact_fields)
//    e emergency t0 raised, n1 event bits, s type
//    r referral  t0 requested, n1 event bits, s priority\nunit
//    p complaint t0 received, t1 due, n1 event bits, s category
//    b appointment t0 booked, n1 event bits
//    s shift plan  t0 = day, s "agent start end\n"... (start, end in minutes of the day)
typedef struct {
    int64_t t0, t1, touched, n1, n2;
    char *s;
} s_rec_t;

struct _rep_agg_t {
    rep_conf_t conf;
    rep_store_t *store;
    zhashx_t *recs;             //  key -> s_rec_t
    zhashx_t *dirty;            //  keys changed since the last checkpoint (value unused)
    zlistx_t *inflight_recs;    //  keys queued by the last checkpoint
    zlistx_t *inflight_periods;
    int64_t watermark;          //  latest event time seen (business clock of the sources)
    int64_t pruned_hour;        //  watermark hour of the last pruning
    uint64_t applied;
    int64_t cache_q;            //  period cache: quarter hour (all UTC offsets are multiples)
    char cache[4][48];
    rep_bucket_t *cache_b[4];   //  their buckets
    zhashx_t *waiting;          //  call records waiting in the queue (borrowed from recs)
    zhashx_t *agents;           //  agent records (borrowed)
    zhashx_t *open_complaints;  //  complaint records not closed (borrowed)
    bool fresh;                 //  the next checkpoint replaces an empty one (rep_agg_fresh)
};

//  ---------------------------------------------------------------------------------------------
//  Settings

static const char *s_daynames[] = { "sunday", "monday", "tuesday", "wednesday", "thursday",
                                    "friday", "saturday" };

static int
s_dayname (const char *s, size_t len)
{
    for (int d = 0; d < 7; d++)
        if (strlen (s_daynames[d]) == len && strncasecmp (s, s_daynames[d], len) == 0)
            return d;
    return -1;
}

//  "20,60" into out (ascending, each in [lo, hi]). Count, or -1.
static int
s_int_list (const char *s, int *out, int max, int lo, int hi)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *stop = NULL;
        long v = strtol (p, &stop, 10);
        if (stop == p || v < lo || v > hi || n == max || (n > 0 && v <= out[n - 1]))
            return -1;
        out[n++] = (int) v;
        p = stop;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return n > 0 ? n : -1;
}

void
rep_conf_default (rep_conf_t *conf)
{
    memset (conf, 0, sizeof *conf);
    snprintf (conf->tz, sizeof conf->tz, "UTC");
    conf->week_start = 1;
    conf->weekend_mask = (1u << 6) | (1u << 0);
    conf->short_abandon_ms = 5000;
    conf->sl_n = 2;
    conf->sl_s[0] = 20;
    conf->sl_s[1] = 60;
    int hist[] = { 10, 20, 30, 60, 120, 300, 600 };
    conf->hist_n = 7;
    memcpy (conf->hist_s, hist, sizeof hist);
    conf->fcr_window_ms = 7 * 86400000LL;
    conf->track_ms = 8 * 86400000LL;
    conf->complaint_due_ms = 14 * 86400000LL;
    conf->max_names = 50000;
    conf->small_cell = 5;
    conf->trend_weeks = 4;
    conf->trend_fdr = 0.05;
    conf->trend_min_count = 5;
    conf->report_hour = 6;
    snprintf (conf->report_channels, sizeof conf->report_channels, "email,console");
}

int
rep_conf_load (rep_conf_t *conf, gl_config_t *config, char *err, size_t errlen)
{
    rep_conf_default (conf);
    const char *tz = gl_config_str (config, "GL_REPORTING_TZ", "UTC");
    if (!*tz || strlen (tz) >= sizeof conf->tz || strstr (tz, "..") || tz[0] == '/') {
        snprintf (err, errlen, "GL_REPORTING_TZ: not a time zone name");
        return -1;
    }
    char path[160];
    snprintf (path, sizeof path, "/usr/share/zoneinfo/%s", tz);
    if (strcmp (tz, "UTC") != 0 && access (path, R_OK) != 0) {
        snprintf (err, errlen, "GL_REPORTING_TZ: unknown time zone %s", tz);
        return -1;
    }
    snprintf (conf->tz, sizeof conf->tz, "%s", tz);
    const char *ws = gl_config_str (config, "GL_REPORTING_WEEK_START", "monday");
    conf->week_start = s_dayname (ws, strlen (ws));
    if (conf->week_start < 0) {
        snprintf (err, errlen, "GL_REPORTING_WEEK_START: a day name (monday ...)");
        return -1;
    }
    const char *we = gl_config_str (config, "GL_REPORTING_WEEKEND", "saturday,sunday");
    conf->weekend_mask = 0;
    for (const char *p = we; *p;) {
        const char *comma = strchr (p, ',');
        size_t len = comma ? (size_t) (comma - p) : strlen (p);
        int d = s_dayname (p, len);
        if (d < 0) {
            snprintf (err, errlen, "GL_REPORTING_WEEKEND: comma-separated day names");
            return -1;
        }
        conf->weekend_mask |= 1u << d;
        p += len + (comma ? 1 : 0);
    }
    conf->short_abandon_ms = 1000 * gl_config_int (config, "GL_REPORTING_SHORT_ABANDON_S", 5, 0, 600);
    conf->sl_n = s_int_list (gl_config_str (config, "GL_REPORTING_SL_THRESHOLDS_S", "20,60"),
                             conf->sl_s, REP_SL_MAX, 1, 3600);
    if (conf->sl_n < 0) {
        snprintf (err, errlen, "GL_REPORTING_SL_THRESHOLDS_S: 1 to %d ascending seconds", REP_SL_MAX);
        return -1;
    }
    conf->hist_n = s_int_list (gl_config_str (config, "GL_REPORTING_WAIT_BUCKETS_S",
                                              "10,20,30,60,120,300,600"),
                               conf->hist_s, REP_HIST_MAX, 1, 86400);
    if (conf->hist_n < 0) {
        snprintf (err, errlen, "GL_REPORTING_WAIT_BUCKETS_S: 1 to %d ascending seconds",
                  REP_HIST_MAX);
        return -1;
    }
    conf->fcr_window_ms = 86400000LL * gl_config_int (config, "GL_REPORTING_FCR_DAYS", 7, 1, 60);
    conf->track_ms = 86400000LL * gl_config_int (config, "GL_REPORTING_TRACK_DAYS", 8, 2, 120);
    if (conf->track_ms <= conf->fcr_window_ms) {
        snprintf (err, errlen, "GL_REPORTING_TRACK_DAYS: must be more than GL_REPORTING_FCR_DAYS");
        return -1;
    }
    conf->complaint_due_ms = 86400000LL * gl_config_int (config, "GL_REPORTING_COMPLAINT_DUE_DAYS",
                                                         14, 1, 365);
    conf->max_names = (size_t) gl_config_int (config, "GL_REPORTING_MAX_NAMES", 50000, 100, 1000000);
    conf->small_cell = (int) gl_config_int (config, "GL_REPORTING_SMALL_CELL", 5, 1, 1000);
    conf->trend_weeks = (int) gl_config_int (config, "GL_REPORTING_TREND_WEEKS", 4, 1, 52);
    conf->trend_min_count = (int) gl_config_int (config, "GL_REPORTING_TREND_MIN_COUNT", 5, 1, 1000);
    const char *fdr = gl_config_str (config, "GL_REPORTING_TREND_FDR", "0.05");
    char *stop = NULL;
    conf->trend_fdr = strtod (fdr, &stop);
    if (*stop || !(conf->trend_fdr > 0 && conf->trend_fdr < 0.5)) {
        snprintf (err, errlen, "GL_REPORTING_TREND_FDR: a number between 0 and 0.5");
        return -1;
    }
    conf->report_hour = (int) gl_config_int (config, "GL_REPORTING_REPORT_HOUR", 6, 0, 23);
    const char *ch = gl_config_str (config, "GL_REPORTING_REPORT_CHANNELS", "email,console");
    if (!*ch || strlen (ch) >= sizeof conf->report_channels || strspn (ch, "abcdefghijklmnopqrstuvwxyz,") != strlen (ch)) {
        snprintf (err, errlen, "GL_REPORTING_REPORT_CHANNELS: comma-separated channel codes");
        return -1;
    }
    snprintf (conf->report_channels, sizeof conf->report_channels, "%s", ch);
    const char *bad = gl_config_error (config);
    if (bad) {
        snprintf (err, errlen, "%s", bad);
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------------
//  Dates

int64_t
rep_days_from_civil (int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void
rep_civil_from_days (int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = (int) (yoe + era * 400 + (*m <= 2));
}

int
rep_date_parse (const char *s, int *y, int *m, int *d)
{
    if (!s || strlen (s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    *y = atoi (s), *m = atoi (s + 5), *d = atoi (s + 8);
    if (*y < 1970 || *y > 9999 || *m < 1 || *m > 12 || *d < 1)
        return -1;
    int ny, nm, nd;
    rep_civil_from_days (rep_days_from_civil (*y, *m, *d), &ny, &nm, &nd);
    return nd == *d && nm == *m ? 0 : -1;
}

int
rep_date_weekday (const char *date)
{
    int y, m, d;
    if (rep_date_parse (date, &y, &m, &d) != 0)
        return -1;
    int64_t z = rep_days_from_civil (y, m, d);
    return (int) (((z % 7) + 11) % 7);      //  1970-01-01 was a Thursday (4)
}

static void
s_periods (rep_agg_t *self, int64_t ms)
{
    int64_t q = ms >= 0 ? ms / 900000 : (ms - 899999) / 900000;
    if (q == self->cache_q && self->cache[0][0])
        return;
    self->cache_q = q;
    time_t t = (time_t) (ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    localtime_r (&t, &tm);
    int y = tm.tm_year + 1900, mo = tm.tm_mon + 1, d = tm.tm_mday;
    snprintf (self->cache[0], sizeof self->cache[0], "h%04d-%02d-%02dT%02d", y, mo, d, tm.tm_hour);
    snprintf (self->cache[1], sizeof self->cache[1], "d%04d-%02d-%02d", y, mo, d);
    int back = (tm.tm_wday - self->conf.week_start + 7) % 7;
    int wy, wm, wd;
    rep_civil_from_days (rep_days_from_civil (y, mo, d) - back, &wy, &wm, &wd);
    snprintf (self->cache[2], sizeof self->cache[2], "w%04d-%02d-%02d", wy, wm, wd);
    snprintf (self->cache[3], sizeof self->cache[3], "m%04d-%02d", y, mo);
    for (int i = 0; i < 4; i++)
        self->cache_b[i] = rep_store_bucket (self->store, self->cache[i]);
}

void
rep_agg_period (rep_agg_t *self, int64_t ms, char kind, char *out)
{
    s_periods (self, ms);
    int i = kind == 'h' ? 0 : kind == 'd' ? 1 : kind == 'w' ? 2 : 3;
    snprintf (out, 24, "%.23s", self->cache[i]);
}

static int64_t
s_local_midnight (int y, int m, int d)
{
    struct tm tm = { 0 };
    tm.tm_year = y - 1900, tm.tm_mon = m - 1, tm.tm_mday = d, tm.tm_isdst = -1;
    return (int64_t) mktime (&tm) * 1000;
}

int64_t
rep_agg_day_start (rep_agg_t *self, int64_t ms)
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    localtime_r (&t, &tm);
    return s_local_midnight (tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

int64_t
rep_agg_day_next (rep_agg_t *self, int64_t day_start_ms)
{
    time_t t = (time_t) (day_start_ms / 1000) + 43200;
    struct tm tm;
    localtime_r (&t, &tm);
    int y, m, d;
    rep_civil_from_days (rep_days_from_civil (tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) + 1,
                         &y, &m, &d);
    return s_local_midnight (y, m, d);
}

//  ---------------------------------------------------------------------------------------------
//  Records

static void
s_rec_free (void **item)
{
    s_rec_t *rec = (s_rec_t *) *item;
    if (rec) {
        free (rec->s);
        free (rec);
    }
    *item = NULL;
}

static s_rec_t *
s_rec (rep_agg_t *self, char kind, const char *id, bool create)
{
    char key[96];
    snprintf (key, sizeof key, "%c:%s", kind, id);
    s_rec_t *rec = (s_rec_t *) zhashx_lookup (self->recs, key);
    if (!rec && create) {
        rec = calloc (1, sizeof *rec);
        assert (rec);
        rec->s = strdup ("");
        zhashx_insert (self->recs, key, rec);
    }
    if (rec)
        zhashx_update (self->dirty, key, (void *) 1);
    return rec;
}

//  The record without marking it changed (NULL when absent).
static s_rec_t *
s_peek (rep_agg_t *self, char kind, const char *id)
{
    char key[96];
    snprintf (key, sizeof key, "%c:%s", kind, id);
    return (s_rec_t *) zhashx_lookup (self->recs, key);
}

static void
s_rec_set_s (s_rec_t *rec, const char *s)
{
    free (rec->s);
    rec->s = strdup (s);
    assert (rec->s);
}

//  Keep the borrowed indexes in step with a record's state.
static void
s_index (rep_agg_t *self, const char *key, s_rec_t *rec)
{
    if (key[0] == 'c') {
        if (rec && (rec->n1 & S_CALL_WAITING))
            zhashx_update (self->waiting, key, rec);
        else
            zhashx_delete (self->waiting, key);
    }
    else if (key[0] == 'a' && rec)
        zhashx_update (self->agents, key, rec);
    else if (key[0] == 'p') {
        if (rec && (rec->n1 & 1) && !(rec->n1 & 2))
            zhashx_update (self->open_complaints, key, rec);
        else
            zhashx_delete (self->open_complaints, key);
    }
}

static void
s_index_id (rep_agg_t *self, char kind, const char *id, s_rec_t *rec)
{
    char key[96];
    snprintf (key, sizeof key, "%c:%s", kind, id);
    s_index (self, key, rec);
}

static void
s_rec_drop (rep_agg_t *self, const char *key)
{
    s_index (self, key, NULL);
    zhashx_delete (self->recs, key);
    if (self->fresh)
        zhashx_delete (self->dirty, key);       //  nothing stored to delete
    else
        zhashx_update (self->dirty, key, (void *) 1);
}

//  ---------------------------------------------------------------------------------------------
//  Counting helpers

//  A code from an event as a dimension value: 1..48 of [A-Za-z0-9_.:/+-], else "invalid";
//  absent (NULL or JSON null) is "none".
static const char *
s_code (const char *in, char *out)
{
    if (!in)
        return "none";
    size_t len = strlen (in);
    if (len == 0 || len > REP_CODE_MAX)
        return "invalid";
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || strchr ("_.:/+-", c)))
            return "invalid";
    }
    memcpy (out, in, len + 1);
    return out;
}

static const char *
s_field_code (const gl_event_t *ev, const char *key, char *out)
{
    json_t *v = json_object_get (ev->data, key);
    return s_code (json_is_string (v) ? json_string_value (v) : NULL, out);
}

//  An integer field: true with *out set when present and an integer.
static bool
s_field_int (const json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get (obj, key);
    if (!json_is_integer (v))
        return false;
    *out = json_integer_value (v);
    return true;
}

static void
s_lifetime (rep_agg_t *self, const char *name, const char *dim, const char *value)
{
    char buf[160];
    if (dim)
        snprintf (buf, sizeof buf, "%s|%s=%s", name, dim, value);
    rep_store_add (self->store, "t", dim ? buf : name, 1);
}

static int
s_reject (rep_agg_t *self, const char *reason)
{
    s_lifetime (self, "events.rejected", "reason", reason);
    return 0;
}

//  Add delta to name in the hour (undimensioned names only), day, week and month of ms.
static void
s_count (rep_agg_t *self, int64_t ms, const char *name, int64_t delta)
{
    s_periods (self, ms);
    bool dims = strchr (name, '|') != NULL;
    for (int i = dims ? 1 : 0; i < 4; i++)
        rep_store_bucket_add (self->store, self->cache_b[i], name, delta);
}

//  name|dim=value
static void
s_count_dim (rep_agg_t *self, int64_t ms, const char *name, const char *dim, const char *value,
             int64_t delta)
{
    //  Hot path: concatenated by hand (snprintf is a tenth of the ingest time).
    char buf[192];
    size_t a = strlen (name), b = strlen (dim), c = strlen (value);
    if (a + b + c + 3 > sizeof buf)
        return;
    memcpy (buf, name, a);
    buf[a] = '|';
    memcpy (buf + a + 1, dim, b);
    buf[a + 1 + b] = '=';
    memcpy (buf + a + 2 + b, value, c + 1);
    s_count (self, ms, buf, delta);
}

//  Rejects values that cannot be right (negative, or more than a week).
static bool
s_duration_ok (int64_t ms)
{
    return ms >= 0 && ms <= 7 * 86400000LL;
}

//  ---------------------------------------------------------------------------------------------
//  Calls

typedef struct {
    const char *call_id;
    char line[REP_CODE_MAX + 1], lang[REP_CODE_MAX + 1], prio[REP_CODE_MAX + 1];
    const char *line_v, *lang_v, *prio_v;
    int64_t at;
    int64_t step;
} s_call_t;

static int
s_call_common (rep_agg_t *self, const gl_event_t *ev, s_call_t *c)
{
    c->call_id = gl_event_str (ev, "call_id", NULL);
    if (!c->call_id || !*c->call_id || strlen (c->call_id) > 63)
        return s_reject (self, "missing_call_id"), -1;
    if (!s_field_int (ev->data, "at", &c->at) || c->at <= 0)
        return s_reject (self, "missing_at"), -1;
    c->line_v = s_field_code (ev, "line", c->line);
    c->lang_v = s_field_code (ev, "language", c->lang);
    c->prio_v = s_field_code (ev, "priority", c->prio);
    if (!s_field_int (ev->data, "step", &c->step))
        c->step = 0;
    return 0;
}

//  The call's record; false (and counted) when this step was already applied.
static s_rec_t *
s_call_rec (rep_agg_t *self, const s_call_t *c, bool *dup)
{
    s_rec_t *rec = s_rec (self, 'c', c->call_id, true);
    *dup = false;
    if (c->step >= 1 && c->step <= 62) {
        if (rec->n2 & (INT64_C (1) << c->step)) {
            *dup = true;
            s_lifetime (self, "events.duplicate", "type", "call");
            return rec;
        }
        rec->n2 |= INT64_C (1) << c->step;
    }
    if (!*rec->s) {
        char s[2 * REP_CODE_MAX + 4];
        snprintf (s, sizeof s, "%s\n%s", c->line_v, c->lang_v);
        s_rec_set_s (rec, s);
    }
    rec->touched = c->at > rec->touched ? c->at : rec->touched;
    return rec;
}

static void
s_count_call (rep_agg_t *self, int64_t ms, const char *name, const s_call_t *c)
{
    s_count (self, ms, name, 1);
    s_count_dim (self, ms, name, "line", c->line_v, 1);
    s_count_dim (self, ms, name, "lang", c->lang_v, 1);
    s_count_dim (self, ms, name, "prio", c->prio_v, 1);
}

static void
s_wait_hist (rep_agg_t *self, int64_t ms, const char *name, int64_t wait_ms)
{
    int i = 0;
    while (i < self->conf.hist_n && wait_ms > self->conf.hist_s[i] * 1000LL)
        i++;
    char le[24];
    if (i < self->conf.hist_n)
        snprintf (le, sizeof le, "%d", self->conf.hist_s[i]);
    else
        snprintf (le, sizeof le, "inf");
    s_count_dim (self, ms, name, "le", le, 1);
}

static int
s_on_offered (rep_agg_t *self, const gl_event_t *ev)
{
    s_call_t c;
    if (s_call_common (self, ev, &c))
        return 0;
    bool dup;
    s_rec_t *rec = s_call_rec (self, &c, &dup);
    if (dup)
        return 0;
    if (rec->n1 & S_CALL_OFFERED)
        return s_reject (self, "offered_twice");
    rec->n1 |= S_CALL_OFFERED;
    rec->t0 = c.at;
    if (!(rec->n1 & (S_CALL_ANSWERED | S_CALL_DONE)))
        rec->n1 |= S_CALL_WAITING;
    s_index_id (self, 'c', c.call_id, rec);
    s_count_call (self, c.at, "calls.offered", &c);
    return 0;
}

static int
s_on_answered (rep_agg_t *self, const gl_event_t *ev)
{
    s_call_t c;
    if (s_call_common (self, ev, &c))
        return 0;
    int64_t wait;
    if (!s_field_int (ev->data, "wait_ms", &wait))
        return s_reject (self, "missing_wait_ms");
    if (!s_duration_ok (wait))
        return s_reject (self, "impossible_wait_ms");
    s_rec_t *peek = s_peek (self, 'c', c.call_id);
    if (peek && (peek->n1 & S_CALL_OFFERED) && c.at < peek->t0)
        return s_reject (self, "answer_before_offer");
    if (peek && (peek->n1 & S_CALL_ABANDONED))
        return s_reject (self, "answer_after_abandon");
    bool dup;
    s_rec_t *rec = s_call_rec (self, &c, &dup);
    if (dup)
        return 0;
    char agent[REP_CODE_MAX + 1];
    const char *agent_v = s_field_code (ev, "agent_id", agent);
    rec->n1 &= ~S_CALL_WAITING;
    s_index_id (self, 'c', c.call_id, rec);
    if (rec->n1 & S_CALL_ANSWERED) {
        //  Answered again after a transfer back to the queue: the call counts once.
        s_count (self, c.at, "calls.reanswered", 1);
        return 0;
    }
    rec->n1 |= S_CALL_ANSWERED;
    int64_t offer = c.at - wait;
    s_count_call (self, offer, "calls.answered", &c);
    s_count_dim (self, offer, "calls.answered", "agent", agent_v, 1);
    s_count (self, offer, "calls.answer_wait_ms", wait);
    s_count_dim (self, offer, "calls.answer_wait_ms", "line", c.line_v, wait);
    s_count_dim (self, offer, "calls.answer_wait_ms", "lang", c.lang_v, wait);
    s_count (self, offer, "calls.wait_max", wait);
    s_count (self, offer, "calls.answer_wait_max", wait);
    for (int i = 0; i < self->conf.sl_n; i++)
        if (wait <= self->conf.sl_s[i] * 1000LL) {
            char name[64];
            snprintf (name, sizeof name, "calls.answered_within_%ds", self->conf.sl_s[i]);
            s_count (self, offer, name, 1);
            s_count_dim (self, offer, name, "line", c.line_v, 1);
            s_count_dim (self, offer, name, "lang", c.lang_v, 1);
        }
    s_wait_hist (self, offer, "calls.answer_wait_hist", wait);
    return 0;
}

static int
s_on_abandoned (rep_agg_t *self, const gl_event_t *ev)
{
    s_call_t c;
    if (s_call_common (self, ev, &c))
        return 0;
    int64_t wait;
    if (!s_field_int (ev->data, "wait_ms", &wait))
        return s_reject (self, "missing_wait_ms");
    if (!s_duration_ok (wait))
        return s_reject (self, "impossible_wait_ms");
    s_rec_t *peek = s_peek (self, 'c', c.call_id);
    if (peek && (peek->n1 & S_CALL_ANSWERED))
        return s_reject (self, "abandon_after_answer");
    bool dup;
    s_rec_t *rec = s_call_rec (self, &c, &dup);
    if (dup)
        return 0;
    rec->n1 = (rec->n1 & ~S_CALL_WAITING) | S_CALL_DONE | S_CALL_ABANDONED;
    s_index_id (self, 'c', c.call_id, rec);
    int64_t offer = c.at - wait;
    bool is_short = wait < self->conf.short_abandon_ms;
    s_count_call (self, offer, is_short ? "calls.abandoned_short" : "calls.abandoned", &c);
    s_count (self, offer, "calls.abandon_wait_ms", wait);
    s_count (self, offer, "calls.wait_max", wait);
    s_count (self, offer, "calls.abandon_wait_max", wait);
    s_wait_hist (self, offer, "calls.abandon_wait_hist", wait);
    return 0;
}

static int
s_on_not_reached (rep_agg_t *self, const gl_event_t *ev)
{
    s_call_t c;
    if (s_call_common (self, ev, &c))
        return 0;
    const char *reason = gl_event_str (ev, "reason", NULL);
    static const char *known[] = { "out_of_hours", "all_lines_busy", "ivr_only",
                                   "callback_requested", NULL };
    int k = 0;
    while (known[k] && (!reason || strcmp (known[k], reason) != 0))
        k++;
    const char *r = known[k] ? known[k] : "other";
    int64_t wait = 0;
    if (s_field_int (ev->data, "wait_ms", &wait) && !s_duration_ok (wait))
        return s_reject (self, "impossible_wait_ms");
    bool dup;
    s_rec_t *rec = s_call_rec (self, &c, &dup);
    if (dup)
        return 0;
    rec->n1 = (rec->n1 & ~S_CALL_WAITING) | S_CALL_DONE;
    s_index_id (self, 'c', c.call_id, rec);
    int64_t when = c.at - wait;
    s_count (self, when, "calls.not_reached", 1);
    s_count_dim (self, when, "calls.not_reached", "reason", r, 1);
    s_count_dim (self, when, "calls.not_reached", "line", c.line_v, 1);
    s_count_dim (self, when, "calls.not_reached", "lang", c.lang_v, 1);
    return 0;
}

//  Talk (and hold, which the PBX counts inside talk) of a handled call, in the period it ended.
static void
s_handled (rep_agg_t *self, const gl_event_t *ev, const s_call_t *c, const char *agent_v,
           int64_t talk)
{
    s_count_call (self, c->at, "calls.handled", c);
    s_count (self, c->at, "calls.talk_ms", talk);
    s_count_dim (self, c->at, "agent.handled", "agent", agent_v, 1);
    s_count_dim (self, c->at, "agent.talk_ms", "agent", agent_v, talk);
    int64_t hold;
    json_t *reported = json_object_get (ev->data, "reported");
    if (json_is_object (reported) && s_field_int (reported, "hold_ms", &hold) && hold >= 0
        && hold <= talk)
        s_count (self, c->at, "calls.hold_ms", hold);
}

static int
s_on_ended (rep_agg_t *self, const gl_event_t *ev)
{
    s_call_t c;
    if (s_call_common (self, ev, &c))
        return 0;
    int64_t talk;
    if (!s_field_int (ev->data, "talk_ms", &talk))
        return s_reject (self, "missing_talk_ms");
    if (!s_duration_ok (talk))
        return s_reject (self, "impossible_talk_ms");
    s_rec_t *peek = s_peek (self, 'c', c.call_id);
    if (peek && (peek->n1 & S_CALL_ABANDONED))
        return s_reject (self, "ended_after_abandon");
    bool dup;
    s_rec_t *rec = s_call_rec (self, &c, &dup);
    if (dup)
        return 0;
    rec->n1 = (rec->n1 & ~S_CALL_WAITING) | S_CALL_DONE | S_CALL_ENDED;
    s_index_id (self, 'c', c.call_id, rec);
    char agent[REP_CODE_MAX + 1];
    s_handled (self, ev, &c, s_field_code (ev, "agent_id", agent), talk);
    return 0;
}

static int
s_on_transferred (rep_agg_t *self, const gl_event_t *ev)
{
    s_call_t c;
    if (s_call_common (self, ev, &c))
        return 0;
    const char *target = gl_event_str (ev, "target", "");
    if (strcmp (target, "agent") && strcmp (target, "queue") && strcmp (target, "external"))
        return s_reject (self, "bad_target");
    int64_t talk = -1;
    if (!strcmp (target, "external") && s_field_int (ev->data, "talk_ms", &talk)
        && !s_duration_ok (talk))
        return s_reject (self, "impossible_talk_ms");
    bool dup;
    s_rec_t *rec = s_call_rec (self, &c, &dup);
    if (dup)
        return 0;
    s_count_dim (self, c.at, "calls.transferred", "target", target, 1);
    if (!strcmp (target, "queue"))
        rec->n1 |= S_CALL_WAITING, rec->t1 = c.at;
    else if (!strcmp (target, "external"))
        rec->n1 = (rec->n1 & ~S_CALL_WAITING) | S_CALL_DONE;
    s_index_id (self, 'c', c.call_id, rec);
    if (!strcmp (target, "external")) {
        if (talk >= 0) {
            char agent[REP_CODE_MAX + 1];
            s_handled (self, ev, &c, s_field_code (ev, "from_agent_id", agent), talk);
        }
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------------
//  Agents

static bool
s_state_ok (const char *s)
{
    return s && (!strcmp (s, "available") || !strcmp (s, "on_call") || !strcmp (s, "wrap_up")
                 || !strcmp (s, "break") || !strcmp (s, "offline"));
}

static int
s_on_agent_state (rep_agg_t *self, const gl_event_t *ev)
{
    const char *agent_id = gl_event_str (ev, "agent_id", NULL);
    const char *to = gl_event_str (ev, "to", NULL);
    int64_t at, step = 0;
    char agent[REP_CODE_MAX + 1];
    if (!agent_id || s_code (agent_id, agent) != agent)
        return s_reject (self, "missing_agent_id");
    if (!s_state_ok (to))
        return s_reject (self, "bad_state");
    if (!s_field_int (ev->data, "at", &at) || at <= 0)
        return s_reject (self, "missing_at");
    s_field_int (ev->data, "step", &step);
    s_rec_t *rec = s_rec (self, 'a', agent_id, true);
    if (step > 0 && step <= rec->n1) {
        //  Delivered late by intake's outbox sweep (or twice): its successor is applied already.
        s_lifetime (self, "events.late", "type", "agent.state_changed");
        return 0;
    }
    if (rec->t0 > 0 && at < rec->t0)
        return s_reject (self, "time_backwards");
    if (rec->t0 > 0 && *rec->s) {
        int64_t dur = at - rec->t0;
        char name[160];
        snprintf (name, sizeof name, "agent.time_ms|state=%s", rec->s);
        s_count (self, at, name, dur);
        snprintf (name, sizeof name, "agent.time_ms|agent=%s|state=%s", agent, rec->s);
        s_count (self, at, name, dur);
    }
    s_rec_set_s (rec, to);
    rec->t0 = at;
    rec->n1 = step > 0 ? step : rec->n1 + 1;
    rec->touched = at;
    s_index_id (self, 'a', agent_id, rec);
    return 0;
}

//  "HH:MM" (00:00 .. 24:00) into minutes; -1 when malformed.
static int
s_hhmm (const char *s)
{
    if (!s || strlen (s) != 5 || s[2] != ':')
        return -1;
    if (!strchr ("012", s[0]) || s[1] < '0' || s[1] > '9' || s[3] < '0' || s[3] > '5'
        || s[4] < '0' || s[4] > '9')
        return -1;
    int m = ((s[0] - '0') * 10 + s[1] - '0') * 60 + (s[3] - '0') * 10 + s[4] - '0';
    return m <= 1440 ? m : -1;
}

static int
s_on_shift_planned (rep_agg_t *self, const gl_event_t *ev)
{
    const char *date = gl_event_str (ev, "date", NULL);
    int y, m, d;
    json_t *shifts = json_object_get (ev->data, "shifts");
    if (rep_date_parse (date, &y, &m, &d) != 0)
        return s_reject (self, "bad_date");
    if (!json_is_array (shifts) || json_array_size (shifts) > 2000)
        return s_reject (self, "bad_shifts");
    size_t cap = 64 + json_array_size (shifts) * 80, len = 0;
    char *text = malloc (cap);
    assert (text);
    text[0] = 0;
    size_t i;
    json_t *shift;
    json_array_foreach (shifts, i, shift) {
        char agent[REP_CODE_MAX + 1];
        const char *a = s_code (json_string_value (json_object_get (shift, "agent_id")), agent);
        int start = s_hhmm (json_string_value (json_object_get (shift, "start")));
        int end = s_hhmm (json_string_value (json_object_get (shift, "end")));
        if (a != agent || start < 0 || end <= start) {
            free (text);
            return s_reject (self, "bad_shifts");
        }
        len += (size_t) snprintf (text + len, cap - len, "%s %d %d\n", agent, start, end);
    }
    s_rec_t *rec = s_rec (self, 's', date, true);
    s_rec_set_s (rec, text);
    free (text);
    rec->t0 = rep_days_from_civil (y, m, d);
    //  A plan is kept for the tracking window after its day.
    rec->touched = s_local_midnight (y, m, d);
    rep_store_add (self->store, "t", "shifts.planned", 1);
    return 0;
}

//  ---------------------------------------------------------------------------------------------
//  Contacts

typedef struct {
    char *buf;
    size_t len, cap;
} s_names_t;

static void
s_names_add (s_names_t *n, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_names_add (s_names_t *n, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start (ap, fmt);
    int len = vsnprintf (line, sizeof line, fmt, ap);
    va_end (ap);
    if (len < 0 || (size_t) len >= sizeof line)
        return;
    if (n->len + (size_t) len + 2 > n->cap) {
        n->cap = (n->cap + (size_t) len + 2) * 2;
        n->buf = realloc (n->buf, n->cap);
        assert (n->buf);
    }
    memcpy (n->buf + n->len, line, (size_t) len);
    n->len += (size_t) len;
    n->buf[n->len++] = '\n';
    n->buf[n->len] = 0;
}

static bool
s_no_issue (const char *outcome)
{
    return !strcmp (outcome, "silent") || !strcmp (outcome, "wrong_number")
           || !strcmp (outcome, "prank_or_abusive");
}

//  Add (+1) or take back (-1) every counter a contact contributed.
static void
s_apply_names (rep_agg_t *self, int64_t ms, const char *names, int64_t delta)
{
    const char *p = names;
    char name[256];
    while (*p) {
        const char *nl = strchr (p, '\n');
        size_t len = nl ? (size_t) (nl - p) : strlen (p);
        if (len > 0 && len < sizeof name) {
            memcpy (name, p, len);
            name[len] = 0;
            s_count (self, ms, name, delta);
        }
        p += len + (nl ? 1 : 0);
    }
}

//  The counter names of a contact's current fields.
static char *
s_contact_names (const gl_event_t *ev, bool repeat)
{
    s_names_t n = { malloc (1024), 0, 1024 };
    assert (n.buf);
    char v[REP_CODE_MAX + 1], w[REP_CODE_MAX + 1];
    char outcome[REP_CODE_MAX + 1];
    const char *out_v = s_field_code (ev, "outcome", outcome);
    s_names_add (&n, "contacts");
    s_names_add (&n, "contacts|channel=%s", s_field_code (ev, "channel", v));
    s_names_add (&n, "contacts|direction=%s", s_field_code (ev, "direction", v));
    s_names_add (&n, "contacts|lang=%s", s_field_code (ev, "language", v));
    s_names_add (&n, "contacts|outcome=%s", out_v);
    s_names_add (&n, "contacts|agent=%s", s_field_code (ev, "agent_id", v));
    bool frustrated = json_is_true (json_object_get (ev->data, "frustration"));
    if (frustrated)
        s_names_add (&n, "contacts.frustrated");
    if (json_is_true (json_object_get (ev->data, "sensitive")))
        s_names_add (&n, "contacts.sensitive");
    if (json_is_true (json_object_get (ev->data, "anonymous")))
        s_names_add (&n, "contacts.anonymous");
    if (repeat)
        s_names_add (&n, "contacts.repeat");
    else if (!s_no_issue (out_v))
        s_names_add (&n, "fcr.eligible");
    json_t *cats = json_object_get (ev->data, "categories");
    size_t i;
    json_t *cat;
    char seen[S_MAX_LIST][REP_CODE_MAX + 1];
    size_t nseen = 0;
    if (json_is_array (cats))
        json_array_foreach (cats, i, cat) {
            if (nseen == S_MAX_LIST)
                break;
            const char *code = s_code (json_string_value (cat), v);
            bool again = false;
            for (size_t k = 0; k < nseen; k++)
                again = again || !strcmp (seen[k], code);
            if (again)
                continue;
            snprintf (seen[nseen++], REP_CODE_MAX + 1, "%s", code);
            s_names_add (&n, "contacts|cat=%s", code);
            if (frustrated)
                s_names_add (&n, "contacts.frustrated|cat=%s", code);
        }
    json_t *agd = json_object_get (ev->data, "agd");
    if (json_is_object (agd)) {
        const char *sex = s_code (json_string_value (json_object_get (agd, "sex")), v);
        const char *age = s_code (json_string_value (json_object_get (agd, "age_group")), w);
        s_names_add (&n, "contacts|sex=%s", sex);
        s_names_add (&n, "contacts|age=%s", age);
        s_names_add (&n, "contacts|age=%s|sex=%s", age, sex);
        s_names_add (&n, "contacts|nat=%s",
                     s_code (json_string_value (json_object_get (agd, "nationality")), v));
        s_names_add (&n, "contacts|loc=%s",
                     s_code (json_string_value (json_object_get (agd, "location")), v));
        json_t *needs = json_object_get (agd, "specific_needs");
        json_t *need;
        if (json_is_array (needs))
            json_array_foreach (needs, i, need) {
                if (i == S_MAX_LIST)
                    break;
                s_names_add (&n, "contacts|need=%s", s_code (json_string_value (need), v));
            }
    }
    return n.buf;
}

//  What a contact's record keeps of it: its fields as codes (sanitised and bounded, compact
//  JSON), from which s_contact_names gives the same names again when a correction comes.
static char *
s_contact_fields (const gl_event_t *ev)
{
    char v[REP_CODE_MAX + 1];
    json_t *f = json_object ();
    static const char *codes[] = { "channel", "direction", "language", "outcome", "agent_id", NULL };
    for (int i = 0; codes[i]; i++)
        json_object_set_new (f, codes[i], json_string (s_field_code (ev, codes[i], v)));
    static const char *flags[] = { "frustration", "sensitive", "anonymous", NULL };
    for (int i = 0; flags[i]; i++)
        json_object_set_new (f, flags[i], json_boolean (json_is_true (json_object_get (ev->data, flags[i]))));
    json_t *list = json_array (), *item;
    size_t i;
    //  The distinct codes s_contact_names counts: the first S_MAX_LIST.
    json_array_foreach (json_object_get (ev->data, "categories"), i, item) {
        if (json_array_size (list) == S_MAX_LIST)
            break;
        const char *code = s_code (json_string_value (item), v);
        bool again = false;
        size_t k;
        json_t *seen;
        json_array_foreach (list, k, seen)
            again = again || !strcmp (json_string_value (seen), code);
        if (!again)
            json_array_append_new (list, json_string (code));
    }
    json_object_set_new (f, "categories", list);
    json_t *agd = json_object_get (ev->data, "agd");
    if (json_is_object (agd)) {
        json_t *a = json_object ();
        static const char *keys[] = { "sex", "age_group", "nationality", "location", NULL };
        for (int k = 0; keys[k]; k++) {
            json_t *val = json_object_get (agd, keys[k]);
            if (json_is_string (val))
                json_object_set_new (a, keys[k], json_string (s_code (json_string_value (val), v)));
        }
        json_t *needs = json_array ();
        json_array_foreach (json_object_get (agd, "specific_needs"), i, item) {
            if (i == S_MAX_LIST)
                break;
            json_array_append_new (needs, json_string (s_code (json_string_value (item), v)));
        }
        json_object_set_new (a, "specific_needs", needs);
        json_object_set_new (f, "agd", a);
    }
    char *text = json_dumps (f, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (f);
    assert (text);
    return text;
}

//  The counter names a contact's record stands for (NULL when the record cannot be read).
static char *
s_record_names (const s_rec_t *rec, bool repeat)
{
    json_t *fields = json_loads (rec->s, 0, NULL);
    if (!json_is_object (fields)) {
        json_decref (fields);
        return NULL;
    }
    gl_event_t *ev = gl_event_new ("contact.created");
    assert (ev);
    json_decref (ev->data);
    ev->data = fields;
    char *names = s_contact_names (ev, repeat);
    gl_event_destroy (&ev);
    return names;
}

static int
s_on_contact (rep_agg_t *self, const gl_event_t *ev, bool created)
{
    const char *id = gl_event_str (ev, "contact_id", NULL);
    if (!id || !*id || strlen (id) > 63)
        return s_reject (self, "missing_contact_id");
    if (!json_is_string (json_object_get (ev->data, "outcome")))
        return s_reject (self, "missing_outcome");
    int64_t version = created ? 1 : gl_event_int (ev, "version", 0);
    if (version < 1)
        return s_reject (self, "missing_version");
    s_rec_t *rec = s_rec (self, 'k', id, false);
    if (!created && !rec) {
        //  Older than the tracking window, or its creation was never seen.
        s_lifetime (self, "events.untracked", "type", ev->type);
        return 0;
    }
    if (rec && version <= rec->n1) {
        s_lifetime (self, "events.duplicate", "type", ev->type);
        return 0;
    }
    bool repeat = json_is_true (json_object_get (ev->data, "repeat"));
    if (created) {
        rec = s_rec (self, 'k', id, true);
        rec->t0 = ev->ts;
    }
    else {
        char *old = s_record_names (rec, (rec->n2 & S_CONTACT_REPEAT) != 0);
        if (!old) {
            s_lifetime (self, "events.untracked", "type", ev->type);
            return 0;
        }
        s_apply_names (self, rec->t0, old, -1);
        free (old);
    }
    char *names = s_contact_names (ev, created ? repeat : (rec->n2 & S_CONTACT_REPEAT) != 0);
    s_apply_names (self, rec->t0, names, 1);
    bool has = strstr (names, "fcr.eligible\n") != NULL;
    free (names);
    //  A correction that makes a repeated contact eligible or not moves its repeat along.
    bool had = (rec->n2 & S_CONTACT_ELIGIBLE) != 0;
    if (!created && (rec->n2 & S_CONTACT_REPEATED) && had != has)
        s_count (self, rec->t0, "fcr.repeated", has ? 1 : -1);
    rec->n2 = has ? rec->n2 | S_CONTACT_ELIGIBLE : rec->n2 & ~S_CONTACT_ELIGIBLE;
    free (rec->s);
    rec->s = s_contact_fields (ev);
    rec->n1 = version;
    rec->touched = ev->ts > rec->touched ? ev->ts : rec->touched;
    if (!created)
        return 0;
    if (repeat)
        rec->n2 |= S_CONTACT_REPEAT;
    //  A repeat within the window means the earlier contact was not resolved at first contact.
    const char *of = gl_event_str (ev, "repeat_of", NULL);
    if (repeat && of && strlen (of) <= 63) {
        s_rec_t *first = s_rec (self, 'k', of, false);
        if (first && !(first->n2 & S_CONTACT_REPEATED) && (first->n2 & S_CONTACT_ELIGIBLE)
            && ev->ts - first->t0 <= self->conf.fcr_window_ms && ev->ts >= first->t0) {
            first->n2 |= S_CONTACT_REPEATED;
            s_count (self, first->t0, "fcr.repeated", 1);
        }
    }
    return 0;
}

//  ---------------------------------------------------------------------------------------------
//  Lifecycles owned by other services (referral, scheduler, intake part two, notifier).
//  Each record remembers which event types it has seen (bits), so an event delivered twice is
//  counted once.

static bool
s_once (rep_agg_t *self, s_rec_t *rec, int bit, const char *type)
{
    if (rec->n1 & (INT64_C (1) << bit)) {
        s_lifetime (self, "events.duplicate", "type", type);
        return false;
    }
    rec->n1 |= INT64_C (1) << bit;
    return true;
}

//  A duration field owned by the publishing service: the first of keys that is present.
static bool
s_duration_field (const gl_event_t *ev, const char *const *keys, int64_t *out)
{
    for (int i = 0; keys[i]; i++)
        if (s_field_int (ev->data, keys[i], out))
            return true;
    return false;
}

static const char *
s_id (const gl_event_t *ev, const char *key)
{
    const char *id = gl_event_str (ev, key, NULL);
    if (!id || !*id)
        id = ev->corr;
    return id && *id && strlen (id) <= 63 ? id : NULL;
}

static int
s_on_emergency (rep_agg_t *self, const gl_event_t *ev, const char *what)
{
    const char *id = s_id (ev, "emergency_id");
    if (!id)
        return s_reject (self, "missing_emergency_id");
    char v[REP_CODE_MAX + 1];
    s_rec_t *rec = s_rec (self, 'e', id, true);
    rec->touched = ev->ts;
    if (!strcmp (what, "raised")) {
        if (!s_once (self, rec, 0, ev->type))
            return 0;
        rec->t0 = ev->ts;
        s_count (self, ev->ts, "emergencies", 1);
        s_count_dim (self, ev->ts, "emergencies", "type", s_field_code (ev, "type", v), 1);
        return 0;
    }
    if (!strcmp (what, "acknowledged")) {
        if (!s_once (self, rec, 1, ev->type))
            return 0;
        static const char *keys[] = { "delay_ms", "time_to_ack_ms", NULL };
        int64_t ms;
        int64_t when = ev->ts;
        s_count (self, when, "emergencies.acknowledged", 1);
        if (s_duration_field (ev, keys, &ms)) {
            if (!s_duration_ok (ms))
                return s_reject (self, "impossible_ack_ms");
            s_count (self, when, "emergencies.ack_ms", ms);
            s_count (self, when, "emergencies.ack_timed", 1);
            s_count (self, when, "emergencies.ack_max", ms);
        }
        json_t *in_time = json_object_get (ev->data, "within_sla");
        if (json_is_boolean (in_time))
            s_count (self, when, json_is_true (in_time) ? "emergencies.ack_sla_met"
                                                        : "emergencies.ack_sla_missed", 1);
        return 0;
    }
    if (!strcmp (what, "closed") && !s_once (self, rec, 2, ev->type))
        return 0;
    char name[96];
    snprintf (name, sizeof name, "emergencies.%s", what);
    s_count (self, ev->ts, name, 1);
    return 0;
}

static int
s_on_referral (rep_agg_t *self, const gl_event_t *ev, const char *what)
{
    const char *id = s_id (ev, "referral_id");
    if (!id)
        return s_reject (self, "missing_referral_id");
    char prio[REP_CODE_MAX + 1], unit[REP_CODE_MAX + 1], cat[REP_CODE_MAX + 1];
    s_rec_t *rec = s_rec (self, 'r', id, true);
    rec->touched = ev->ts;
    //  The record's priority and unit, as first learnt.
    char known_prio[REP_CODE_MAX + 1] = "none", known_unit[REP_CODE_MAX + 1] = "none";
    sscanf (rec->s, "%48s %48s", known_prio, known_unit);
    const char *p = s_field_code (ev, "priority", prio);
    const char *u = s_field_code (ev, "unit", unit);
    if (!strcmp (p, "none"))
        p = known_prio;
    if (!strcmp (u, "none"))
        u = known_unit;
    char s[2 * REP_CODE_MAX + 4];
    snprintf (s, sizeof s, "%s %s", p, u);
    s_rec_set_s (rec, s);
    int64_t when = ev->ts;
    if (!strcmp (what, "requested")) {
        if (!s_once (self, rec, 0, ev->type))
            return 0;
        rec->t0 = ev->ts;
        s_count (self, ev->ts, "referrals.requested", 1);
        s_count_dim (self, ev->ts, "referrals.requested", "prio", p, 1);
        s_count_dim (self, ev->ts, "referrals.requested", "cat", s_field_code (ev, "category", cat), 1);
        return 0;
    }
    int bit = !strcmp (what, "routed") ? 1 : !strcmp (what, "acknowledged") ? 2
              : !strcmp (what, "closed") ? 3 : !strcmp (what, "accepted") ? 4
              : !strcmp (what, "declined") ? 5 : !strcmp (what, "escalated") ? -1 : 6;
    if (bit >= 0 && !s_once (self, rec, bit, ev->type))
        return 0;
    char name[96], dims[160];
    snprintf (name, sizeof name, "referrals.%s", what);
    s_count (self, when, name, 1);
    snprintf (dims, sizeof dims, "%s|prio=%s|unit=%s", name, p, u);
    s_count (self, when, dims, 1);
    //  SLA: referral's own verdict (within_sla), or its acknowledgement time against its due
    //  time, both on referral's clock.
    json_t *met = json_object_get (ev->data, "within_sla");
    int64_t at, due;
    int verdict = json_is_boolean (met) ? json_is_true (met) : -1;
    if (verdict < 0 && s_field_int (ev->data, "at", &at) && s_field_int (ev->data, "ack_due", &due)
        && due > 0 && !strcmp (what, "acknowledged"))
        verdict = at <= due;
    if (verdict >= 0) {
        snprintf (name, sizeof name, "referrals.%s_sla_%s", what, verdict ? "met" : "missed");
        s_count (self, when, name, 1);
        snprintf (dims, sizeof dims, "%s|prio=%s|unit=%s", name, p, u);
        s_count (self, when, dims, 1);
    }
    return 0;
}

static int
s_on_appointment (rep_agg_t *self, const gl_event_t *ev, const char *what)
{
    const char *id = s_id (ev, "appointment_id");
    if (!id)
        return s_reject (self, "missing_appointment_id");
    s_rec_t *rec = s_rec (self, 'b', id, true);
    rec->touched = ev->ts;
    int bit = !strcmp (what, "booked") ? 0 : !strcmp (what, "attended") ? 1
              : !strcmp (what, "no_show") ? 2 : !strcmp (what, "cancelled") ? 3 : -1;
    if (bit >= 0 && !s_once (self, rec, bit, ev->type))
        return 0;
    if (bit == 0)
        rec->t0 = ev->ts;
    char name[96], v[REP_CODE_MAX + 1];
    snprintf (name, sizeof name, "appointments.%s", what);
    s_count (self, ev->ts, name, 1);
    s_count_dim (self, ev->ts, name, "centre", s_field_code (ev, "centre", v), 1);
    s_count_dim (self, ev->ts, name, "service", s_field_code (ev, "service", v), 1);
    return 0;
}

static int
s_on_complaint (rep_agg_t *self, const gl_event_t *ev, const char *what)
{
    const char *id = s_id (ev, "complaint_id");
    if (!id)
        return s_reject (self, "missing_complaint_id");
    s_rec_t *rec = s_rec (self, 'p', id, true);
    rec->touched = ev->ts;
    char v[REP_CODE_MAX + 1];
    bool received = !strcmp (what, "received") || !strcmp (what, "created")
                    || !strcmp (what, "logged");
    if (received) {
        if (!s_once (self, rec, 0, ev->type))
            return 0;
        rec->t0 = ev->ts;
        int64_t due;
        rec->t1 = (s_field_int (ev->data, "respond_due", &due) || s_field_int (ev->data, "due_at", &due))
                  && due > 0 ? due : ev->ts + self->conf.complaint_due_ms;
        s_rec_set_s (rec, s_field_code (ev, "category", v));
        s_index_id (self, 'p', id, rec);
        s_count (self, ev->ts, "complaints.received", 1);
        s_count_dim (self, ev->ts, "complaints.received", "cat", rec->s, 1);
        s_count_dim (self, ev->ts, "complaints.received", "type", s_field_code (ev, "type", v), 1);
        s_count_dim (self, ev->ts, "complaints.received", "channel", s_field_code (ev, "channel", v), 1);
        return 0;
    }
    if (!strcmp (what, "closed") || !strcmp (what, "resolved")) {
        if (!s_once (self, rec, 1, ev->type))
            return 0;
        s_index_id (self, 'p', id, rec);
        s_count (self, ev->ts, "complaints.closed", 1);
        if (rec->t1 > 0 && ev->ts > rec->t1)
            s_count (self, ev->ts, "complaints.closed_late", 1);
        return 0;
    }
    char name[96];
    snprintf (name, sizeof name, "complaints.%s", what);
    s_count (self, ev->ts, name, 1);
    return 0;
}

static int
s_on_outbound (rep_agg_t *self, const gl_event_t *ev, const char *what)
{
    char v[REP_CODE_MAX + 1], name[96];
    snprintf (name, sizeof name, "outbound.%s", what);
    s_count (self, ev->ts, name, 1);
    if (strcmp (what, "outcome") != 0)
        return 0;
    //  One attempt finished: reached when a person answered (docs/metrics.md).
    const char *outcome = s_field_code (ev, "outcome", v);
    s_count (self, ev->ts, "outbound.attempts", 1);
    s_count_dim (self, ev->ts, "outbound.attempts", "outcome", outcome, 1);
    if (!strcmp (outcome, "reached") || !strcmp (outcome, "completed")
        || !strcmp (outcome, "callback") || !strcmp (outcome, "refused"))
        s_count (self, ev->ts, "outbound.reached", 1);
    return 0;
}

static int
s_on_qa (rep_agg_t *self, const gl_event_t *ev)
{
    char agent[REP_CODE_MAX + 1], crit[REP_CODE_MAX + 1], name[192];
    const char *a = s_field_code (ev, "agent_id", agent);
    int64_t score;
    if ((!s_field_int (ev->data, "percent", &score) && !s_field_int (ev->data, "score", &score))
        || score < 0 || score > 100)
        return s_reject (self, "bad_score");
    s_count (self, ev->ts, "qa.reviews", 1);
    s_count (self, ev->ts, "qa.score_sum", score);
    s_count_dim (self, ev->ts, "qa.reviews", "agent", a, 1);
    s_count_dim (self, ev->ts, "qa.score_sum", "agent", a, score);
    if (json_is_true (json_object_get (ev->data, "passed")))
        s_count (self, ev->ts, "qa.passed", 1);
    json_t *scores = json_object_get (ev->data, "scores");
    if (!scores)
        scores = json_object_get (ev->data, "criteria");
    const char *key;
    json_t *value;
    size_t n = 0;
    if (json_is_object (scores))
        json_object_foreach (scores, key, value) {
            if (++n > 32)
                break;
            if (!json_is_integer (value))
                continue;
            int64_t s = json_integer_value (value);
            if (s < 0 || s > 1000)
                continue;
            const char *c = s_code (key, crit);
            snprintf (name, sizeof name, "qa.criterion_sum|crit=%s", c);
            s_count (self, ev->ts, name, s);
            snprintf (name, sizeof name, "qa.criterion_n|crit=%s", c);
            s_count (self, ev->ts, name, 1);
        }
    return 0;
}

//  ---------------------------------------------------------------------------------------------
//  Dispatch

//  type starts with prefix, and the rest is one plain step name (it becomes part of a counter
//  name: no dot, and never a "_max" that would change how the counter merges).
static bool
s_prefix (const char *type, const char *prefix, const char **rest)
{
    size_t len = strlen (prefix);
    if (strncmp (type, prefix, len) != 0)
        return false;
    *rest = type + len;
    size_t n = strlen (*rest);
    return n > 0 && !strchr (*rest, '.') && !(n >= 4 && !strcmp (*rest + n - 4, "_max"));
}

//  Forget records no event has touched within the tracking window (by event time, so a rebuild
//  forgets exactly what the incremental run forgot).
static void
s_prune (rep_agg_t *self)
{
    //  Once per day of event time: the window is counted in days.
    int64_t hour = self->watermark / 86400000 * 24;
    if (hour <= self->pruned_hour)
        return;
    self->pruned_hour = hour;
    int64_t horizon = self->watermark - self->conf.track_ms;
    zlistx_t *drop = zlistx_new ();
    for (s_rec_t *rec = zhashx_first (self->recs); rec; rec = zhashx_next (self->recs)) {
        const char *key = zhashx_cursor (self->recs);
        //  Agents are kept: their state and since matter whenever they next change.
        bool open_complaint = key[0] == 'p' && !(rec->n1 & 2);
        if (key[0] != 'a' && !open_complaint && rec->touched < horizon)
            zlistx_add_end (drop, (void *) key);
    }
    for (const char *key = zlistx_first (drop); key; key = zlistx_next (drop)) {
        char copy[96];
        snprintf (copy, sizeof copy, "%s", key);
        s_rec_drop (self, copy);
    }
    zlistx_destroy (&drop);
}

int
rep_agg_apply (rep_agg_t *self, const gl_event_t *ev)
{
    assert (self && ev);
    self->applied++;
    const char *t = ev->type, *rest = NULL;
    if (ev->ts > self->watermark)
        self->watermark = ev->ts;
    s_lifetime (self, "events", "type", t);
    int rc = 0;
    if (!strcmp (t, "call.offered"))
        rc = s_on_offered (self, ev);
    else if (!strcmp (t, "call.answered"))
        rc = s_on_answered (self, ev);
    else if (!strcmp (t, "call.abandoned"))
        rc = s_on_abandoned (self, ev);
    else if (!strcmp (t, "call.not_reached"))
        rc = s_on_not_reached (self, ev);
    else if (!strcmp (t, "call.ended"))
        rc = s_on_ended (self, ev);
    else if (!strcmp (t, "call.transferred"))
        rc = s_on_transferred (self, ev);
    else if (!strcmp (t, "agent.state_changed"))
        rc = s_on_agent_state (self, ev);
    else if (!strcmp (t, "shift.planned"))
        rc = s_on_shift_planned (self, ev);
    else if (!strcmp (t, "contact.created"))
        rc = s_on_contact (self, ev, true);
    else if (!strcmp (t, "contact.updated"))
        rc = s_on_contact (self, ev, false);
    else if (s_prefix (t, "emergency.", &rest))
        rc = s_on_emergency (self, ev, rest);
    else if (s_prefix (t, "referral.", &rest))
        rc = s_on_referral (self, ev, rest);
    else if (s_prefix (t, "appointment.", &rest))
        rc = s_on_appointment (self, ev, rest);
    else if (s_prefix (t, "complaint.", &rest))
        rc = s_on_complaint (self, ev, rest);
    else if (s_prefix (t, "outbound.", &rest))
        rc = s_on_outbound (self, ev, rest);
    else if (!strcmp (t, "qa.review_completed"))
        rc = s_on_qa (self, ev);
    else if (s_prefix (t, "notification.", &rest) || s_prefix (t, "person.", &rest)
             || s_prefix (t, "user.", &rest) || s_prefix (t, "client.", &rest)
             || s_prefix (t, "service.", &rest) || s_prefix (t, "kb.", &rest)
             || s_prefix (t, "report.", &rest) || s_prefix (t, "qa.", &rest))
        rc = 0;     //  known, not counted beyond "events|type"
    else
        s_lifetime (self, "events.unknown", "type", t);
    s_prune (self);
    return rc;
}

//  ---------------------------------------------------------------------------------------------
//  Live figures

json_t *
rep_agg_live (rep_agg_t *self, int64_t now_ms)
{
    int64_t waiting = 0, oldest = 0;
    json_t *by_lang = json_object ();
    int64_t states[5] = { 0 };
    static const char *names[] = { "available", "on_call", "wrap_up", "break", "offline" };
    for (s_rec_t *rec = zhashx_first (self->waiting); rec; rec = zhashx_next (self->waiting)) {
        waiting++;
        int64_t since = rec->t1 > rec->t0 ? rec->t1 : rec->t0;
        if (!oldest || since < oldest)
            oldest = since;
        const char *nl = strchr (rec->s, '\n');
        const char *lang = nl ? nl + 1 : "none";
        json_t *n = json_object_get (by_lang, lang);
        json_object_set_new (by_lang, lang, json_integer (n ? json_integer_value (n) + 1 : 1));
    }
    for (s_rec_t *rec = zhashx_first (self->agents); rec; rec = zhashx_next (self->agents))
        for (int i = 0; i < 5; i++)
            if (!strcmp (rec->s, names[i]))
                states[i]++;
    //  Agents planned now: shifts of today's local date covering this minute.
    time_t t = (time_t) (now_ms / 1000);
    struct tm tm;
    localtime_r (&t, &tm);
    char date[48];
    snprintf (date, sizeof date, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    int minute = tm.tm_hour * 60 + tm.tm_min;
    int64_t planned = 0;
    s_rec_t *plan = s_peek (self, 's', date);
    if (plan) {
        zhashx_t *agents = zhashx_new ();
        const char *p = plan->s;
        char agent[REP_CODE_MAX + 1];
        int start, end, used;
        while (sscanf (p, "%48s %d %d\n%n", agent, &start, &end, &used) == 3) {
            if (start <= minute && minute < end)
                zhashx_update (agents, agent, (void *) 1);
            p += used;
        }
        planned = (int64_t) zhashx_size (agents);
        zhashx_destroy (&agents);
    }
    json_t *live = json_pack ("{s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "calls_waiting", (json_int_t) waiting,
                              "longest_current_wait_ms",
                              (json_int_t) (oldest && now_ms > oldest ? now_ms - oldest : 0),
                              "waiting_by_language", by_lang,
                              "agents_planned", (json_int_t) planned,
                              "agents_present", (json_int_t) (states[0] + states[1] + states[2] + states[3]),
                              "agents_available", (json_int_t) states[0],
                              "agents_on_call", (json_int_t) states[1],
                              "agents_wrap_up", (json_int_t) states[2],
                              "agents_break", (json_int_t) states[3]);
    return live;
}

//  ---------------------------------------------------------------------------------------------
//  Lifecycle, checkpoints

rep_agg_t *
rep_agg_new (const rep_conf_t *conf)
{
    rep_agg_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->conf = *conf;
    setenv ("TZ", conf->tz, 1);
    tzset ();
    self->store = rep_store_new (conf->max_names);
    self->recs = zhashx_new ();
    zhashx_set_destructor (self->recs, s_rec_free);
    self->dirty = zhashx_new ();
    self->waiting = zhashx_new ();
    self->agents = zhashx_new ();
    self->open_complaints = zhashx_new ();
    self->inflight_recs = zlistx_new ();
    zlistx_set_destructor (self->inflight_recs, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_duplicator (self->inflight_recs, (zlistx_duplicator_fn *) strdup);
    self->inflight_periods = zlistx_new ();
    zlistx_set_destructor (self->inflight_periods, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_duplicator (self->inflight_periods, (zlistx_duplicator_fn *) strdup);
    self->cache_q = INT64_MIN;
    return self;
}

void
rep_agg_destroy (rep_agg_t **self_p)
{
    assert (self_p);
    rep_agg_t *self = *self_p;
    if (!self)
        return;
    rep_store_destroy (&self->store);
    zhashx_destroy (&self->waiting);
    zhashx_destroy (&self->agents);
    zhashx_destroy (&self->open_complaints);
    zhashx_destroy (&self->recs);
    zhashx_destroy (&self->dirty);
    zlistx_destroy (&self->inflight_recs);
    zlistx_destroy (&self->inflight_periods);
    free (self);
    *self_p = NULL;
}

void
rep_agg_fresh (rep_agg_t *self)
{
    self->fresh = true;
}

rep_store_t *
rep_agg_store (rep_agg_t *self)
{
    return self->store;
}

const rep_conf_t *
rep_agg_conf (rep_agg_t *self)
{
    return &self->conf;
}

uint64_t
rep_agg_applied (rep_agg_t *self)
{
    return self->applied;
}

void
rep_agg_reset (rep_agg_t *self)
{
    self->cache_q = INT64_MIN;
    zhashx_purge (self->waiting);
    zhashx_purge (self->agents);
    zhashx_purge (self->open_complaints);
    rep_store_clear (self->store);
    zhashx_purge (self->recs);
    zhashx_purge (self->dirty);
    zlistx_purge (self->inflight_recs);
    zlistx_purge (self->inflight_periods);
    self->watermark = 0;
    self->pruned_hour = 0;
}

#define S_KEY_AGG   "reporting:{reporting}:agg"
#define S_KEY_REC   "reporting:{reporting}:rec"
#define S_KEY_META  "reporting:{reporting}:meta"
#define S_CHUNK     256     //  fields per HSET/HDEL (Lua's unpack has a stack limit)

static char *
s_rec_encode (const s_rec_t *rec)
{
    size_t cap = strlen (rec->s) + 128;
    char *out = malloc (cap);
    assert (out);
    snprintf (out, cap, "%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %s",
              rec->t0, rec->t1, rec->touched, rec->n1, rec->n2, rec->s);
    return out;
}

static int
s_rec_decode (const char *text, s_rec_t *rec)
{
    int64_t v[5];
    const char *p = text;
    for (int i = 0; i < 5; i++) {
        char *stop = NULL;
        v[i] = strtoll (p, &stop, 10);
        if (stop == p || *stop != ' ')
            return -1;
        p = stop + 1;
    }
    rec->t0 = v[0], rec->t1 = v[1], rec->touched = v[2], rec->n1 = v[3], rec->n2 = v[4];
    rec->s = strdup (p);
    assert (rec->s);
    return 0;
}

//  One HSET/HDEL with up to S_CHUNK fields, flushed when full.
typedef struct {
    rep_sink_fn *sink;
    void *arg;
    const char *cmd;
    const char *key;
    const char *argv[2 + 2 * S_CHUNK];
    size_t lens[2 + 2 * S_CHUNK];
    char *owned[2 * S_CHUNK];
    int argc, nowned;
    size_t queued;
} s_batch_t;

static void
s_batch_flush (s_batch_t *b)
{
    if (b->argc > 2) {
        b->sink (b->arg, b->argc, b->argv, b->lens);
        b->queued++;
    }
    for (int i = 0; i < b->nowned; i++)
        free (b->owned[i]);
    b->nowned = 0;
    b->argc = 2;
    b->argv[0] = b->cmd, b->lens[0] = strlen (b->cmd);
    b->argv[1] = b->key, b->lens[1] = strlen (b->key);
}

//  field (copied) and value (taken; NULL for HDEL).
static void
s_batch_add (s_batch_t *b, const char *field, char *value)
{
    char *f = strdup (field);
    assert (f);
    b->owned[b->nowned++] = f;
    b->argv[b->argc] = f, b->lens[b->argc++] = strlen (f);
    if (value) {
        b->owned[b->nowned++] = value;
        b->argv[b->argc] = value, b->lens[b->argc++] = strlen (value);
    }
    if (b->argc >= 2 + 2 * S_CHUNK - 1)
        s_batch_flush (b);
}

static void
s_batch_init (s_batch_t *b, rep_sink_fn *sink, void *arg, const char *cmd, const char *key)
{
    memset (b, 0, sizeof *b);
    b->sink = sink, b->arg = arg, b->cmd = cmd, b->key = key;
    s_batch_flush (b);
}

typedef struct {
    rep_agg_t *self;
    s_batch_t *batch;
} s_ckpt_t;

static void
s_ckpt_period (void *arg, const char *period)
{
    s_ckpt_t *c = arg;
    s_batch_add (c->batch, period, rep_store_encode (c->self->store, period));
    zlistx_add_end (c->self->inflight_periods, (void *) period);
    rep_store_set_dirty (c->self->store, period, false);
}

size_t
rep_agg_checkpoint (rep_agg_t *self, rep_sink_fn *sink, void *arg)
{
    zlistx_purge (self->inflight_recs);
    zlistx_purge (self->inflight_periods);
    s_batch_t *set = malloc (sizeof *set), *del = malloc (sizeof *del);
    assert (set && del);
    s_batch_init (set, sink, arg, "HSET", S_KEY_AGG);
    s_ckpt_t c = { self, set };
    rep_store_periods (self->store, true, s_ckpt_period, &c);
    s_batch_flush (set);
    size_t queued = set->queued;
    s_batch_init (set, sink, arg, "HSET", S_KEY_REC);
    s_batch_init (del, sink, arg, "HDEL", S_KEY_REC);
    zlistx_t *keys = zhashx_keys (self->dirty);
    for (const char *key = zlistx_first (keys); key; key = zlistx_next (keys)) {
        s_rec_t *rec = zhashx_lookup (self->recs, key);
        if (rec)
            s_batch_add (set, key, s_rec_encode (rec));
        else
            s_batch_add (del, key, NULL);
        zlistx_add_end (self->inflight_recs, (void *) key);
    }
    zlistx_destroy (&keys);
    zhashx_purge (self->dirty);
    s_batch_flush (set);
    s_batch_flush (del);
    queued += set->queued + del->queued;
    if (queued > 0) {
        char wm[32], ph[32];
        snprintf (wm, sizeof wm, "%" PRId64, self->watermark);
        snprintf (ph, sizeof ph, "%" PRId64, self->pruned_hour);
        const char *argv[] = { "HSET", S_KEY_META, "version", "1", "watermark", wm,
                               "pruned_hour", ph };
        sink (arg, 8, argv, NULL);
        queued++;
    }
    free (set);
    free (del);
    return queued;
}

void
rep_agg_checkpoint_failed (rep_agg_t *self)
{
    for (const char *p = zlistx_first (self->inflight_periods); p;
         p = zlistx_next (self->inflight_periods))
        rep_store_set_dirty (self->store, p, true);
    for (const char *k = zlistx_first (self->inflight_recs); k; k = zlistx_next (self->inflight_recs))
        zhashx_update (self->dirty, k, (void *) 1);
    zlistx_purge (self->inflight_recs);
    zlistx_purge (self->inflight_periods);
}

void
rep_agg_wipe (rep_sink_fn *sink, void *arg)
{
    const char *argv[] = { "DEL", S_KEY_AGG, S_KEY_REC, S_KEY_META };
    sink (arg, 4, argv, NULL);
}

int
rep_sink_tx (void *arg, int argc, const char **argv, const size_t *lens)
{
    return gl_tx_cmd ((gl_tx_t *) arg, argc, argv, lens);
}

//  HSCAN a hash, calling fn for each field/value. 0 or -1.
typedef int (s_scan_fn) (rep_agg_t *self, const char *field, const char *value, size_t len);

static int
s_scan (rep_agg_t *self, gl_redis_t *redis, const char *key, s_scan_fn *fn, char *err,
        size_t errlen)
{
    char cursor[32] = "0";
    do {
        redisReply *r = gl_redis_cmd (redis, "HSCAN %s %s COUNT 1000", key, cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            snprintf (err, errlen, "reading %s: %s", key, r ? "unexpected reply" : gl_redis_errstr (redis));
            if (r)
                freeReplyObject (r);
            return -1;
        }
        snprintf (cursor, sizeof cursor, "%s", r->element[0]->str);
        redisReply *kv = r->element[1];
        for (size_t i = 0; i + 1 < kv->elements; i += 2)
            if (fn (self, kv->element[i]->str, kv->element[i + 1]->str, kv->element[i + 1]->len)) {
                snprintf (err, errlen, "%s: malformed entry", key);
                freeReplyObject (r);
                return -1;
            }
        freeReplyObject (r);
    } while (strcmp (cursor, "0") != 0);
    return 0;
}

static int
s_load_bucket (rep_agg_t *self, const char *field, const char *value, size_t len)
{
    return rep_store_decode (self->store, field, value, len);
}

static int
s_load_rec (rep_agg_t *self, const char *field, const char *value, size_t len)
{
    if (strlen (field) < 3 || strlen (field) > 90 || field[1] != ':')
        return -1;
    s_rec_t *rec = calloc (1, sizeof *rec);
    assert (rec);
    if (s_rec_decode (value, rec)) {
        free (rec);
        return -1;
    }
    zhashx_update (self->recs, field, rec);
    s_index (self, field, rec);
    return 0;
}

int
rep_agg_load (rep_agg_t *self, gl_redis_t *redis, char *err, size_t errlen)
{
    rep_agg_reset (self);
    if (s_scan (self, redis, S_KEY_AGG, s_load_bucket, err, errlen)
        || s_scan (self, redis, S_KEY_REC, s_load_rec, err, errlen))
        return -1;
    redisReply *r = gl_redis_cmd (redis, "HMGET %s watermark pruned_hour", S_KEY_META);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        snprintf (err, errlen, "reading %s", S_KEY_META);
        if (r)
            freeReplyObject (r);
        return -1;
    }
    if (r->element[0]->type == REDIS_REPLY_STRING)
        self->watermark = strtoll (r->element[0]->str, NULL, 10);
    if (r->element[1]->type == REDIS_REPLY_STRING)
        self->pruned_hour = strtoll (r->element[1]->str, NULL, 10);
    freeReplyObject (r);
    zhashx_purge (self->dirty);
    return 0;
}

char *
rep_agg_dump (rep_agg_t *self)
{
    char *counters = rep_store_dump (self->store);
    zlistx_t *keys = zhashx_keys (self->recs);
    zlistx_set_comparator (keys, (zlistx_comparator_fn *) strcmp);
    zlistx_sort (keys);
    size_t cap = strlen (counters) + 1024, len = strlen (counters);
    char *out = malloc (cap);
    assert (out);
    memcpy (out, counters, len + 1);
    free (counters);
    for (const char *k = zlistx_first (keys); k; k = zlistx_next (keys)) {
        char *enc = s_rec_encode (zhashx_lookup (self->recs, k));
        size_t need = strlen (k) + strlen (enc) + 8;
        if (len + need >= cap) {
            cap = (cap + need) * 2;
            out = realloc (out, cap);
            assert (out);
        }
        len += (size_t) snprintf (out + len, cap - len, "%s=%s\n", k, enc);
        free (enc);
    }
    zlistx_destroy (&keys);
    return out;
}

int64_t
rep_agg_overdue (rep_agg_t *self, int64_t from_ms, int64_t to_ms, int64_t now_ms)
{
    int64_t n = 0;
    for (s_rec_t *rec = zhashx_first (self->open_complaints); rec;
         rec = zhashx_next (self->open_complaints)) {
        if ((rec->n1 & 1) && !(rec->n1 & 2) && rec->t0 >= from_ms
            && rec->t0 < to_ms && rec->t1 > 0 && rec->t1 < now_ms)
            n++;
    }
    return n;
}
