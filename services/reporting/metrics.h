/*  Reports, trends and exports from reporting's counters (definitions: docs/metrics.md).

    A span is the stretch of time a report covers: a day, a week (from the configured first day
    of the week), a month, or a range of whole days (at most 400). It is read from the counters
    of the matching bucket (one bucket for a day, week or month; the sum of day buckets for a
    range), so a monthly report costs the same whatever the volume behind it.
*/
#ifndef REP_METRICS_H
#define REP_METRICS_H
#include "aggregates.h"
#include <jansson.h>

#define REP_RANGE_MAX_DAYS 400

typedef struct {
    char kind[8];               //  "day", "week", "month", "range"
    int64_t first_day;          //  day numbers (rep_days_from_civil), inclusive
    int64_t last_day;
    char from[11], to[11];      //  the same as dates
} rep_span_t;

//  Span of kind (day|week|month|range) from the query: date=YYYY-MM-DD (day, week: the week
//  holding it, month: the month holding it; default today at now_ms), or from= and to= (range,
//  and for any kind given both). 0, or -1 with the field at fault in field and a message.
int rep_span_parse (rep_agg_t *agg, const char *kind, const json_t *query, int64_t now_ms,
                    rep_span_t *span, char *field, size_t fieldlen, char *msg, size_t msglen);

//  The report for span as a new JSON object (docs/api/reporting.md). agent_only (NULL: all)
//  restricts it to one agent's own figures. now_ms decides what is provisional.
json_t *rep_report (rep_agg_t *agg, const rep_span_t *span, int64_t now_ms,
                    const char *agent_only);

//  The live wallboard: rep_agg_live plus today's totals and service levels.
json_t *rep_wallboard (rep_agg_t *agg, int64_t now_ms);

//  Trends (trends.c): categories and frustrations rising in the week holding date (or the last
//  complete week) against the previous weeks, with the test's numbers. A new object.
json_t *rep_trends (rep_agg_t *agg, const rep_span_t *week, int64_t now_ms);

//  One-sided Poisson upper tail P(X >= x) for mean lambda > 0 (trends.c).
double rep_poisson_upper (int64_t x, double lambda);

//  Benjamini-Hochberg adjusted p-values (q[i] for p[i]), n values (trends.c).
void rep_bh_adjust (const double *p, double *q, size_t n);

//  A report flattened to CSV: "section,metric,dimension,value" rows (export.c). Caller frees.
char *rep_report_csv (const json_t *report);

//  The report as a self-contained HTML page with SVG charts (html.c), in lang "en", "fr" or "ar"
//  (anything else: en). Caller frees.
char *rep_report_html (const json_t *report, const char *lang);

//  The statistical export (export.c): counts per period (granularity 'd', 'w' or 'm') within
//  span, by each disaggregation, with cells below the configured small-cell threshold
//  suppressed (and one more in a group where a single suppressed cell could be worked out from
//  the total). A new JSON object; csv (when not NULL) receives the CSV form (caller frees).
json_t *rep_stats_export (rep_agg_t *agg, const rep_span_t *span, char granularity, char **csv);

#endif
