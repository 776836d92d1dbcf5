/*  The requests reporting answers (docs/api/reporting.md), forwarded by intake with the body
    {caller:{user_id, roles, units}, params, query, body}. Supervisors and admins see
    everything; an agent sees the wallboard and their own figures; protection staff may take the
    statistical export (aggregated, small cells suppressed).
*/
#include "reporting.h"
#include "gl/gl_clock.h"
#include <stdio.h>
#include <string.h>

#define S_ROLE_AGENT        (1u << 0)
#define S_ROLE_SUPERVISOR   (1u << 1)
#define S_ROLE_ADMIN        (1u << 2)
#define S_ROLE_PROTECTION   (1u << 3)

static unsigned
s_roles (const json_t *body, const char **user_id)
{
    json_t *caller = json_object_get (body, "caller");
    json_t *roles = json_object_get (caller, "roles");
    *user_id = json_string_value (json_object_get (caller, "user_id"));
    unsigned out = 0;
    size_t i;
    json_t *r;
    json_array_foreach (roles, i, r) {
        const char *s = json_string_value (r);
        if (!s)
            continue;
        out |= !strcmp (s, "agent") ? S_ROLE_AGENT : !strcmp (s, "supervisor") ? S_ROLE_SUPERVISOR
               : !strcmp (s, "admin") ? S_ROLE_ADMIN : !strcmp (s, "protection") ? S_ROLE_PROTECTION : 0;
    }
    return out;
}

//  Every query key must be one of allowed (comma-separated) and a string.
static int
s_check_query (const json_t *query, const char *allowed, gl_rep_error_t *err)
{
    if (query && !json_is_object (query))
        return gl_rep_error (err, 400, "bad_request", "query", "query: an object");
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *) query, key, v) {
        char list[128];
        snprintf (list, sizeof list, ",%s,", allowed);
        char probe[80];
        snprintf (probe, sizeof probe, ",%.64s,", key);
        if (!strstr (list, probe))
            return gl_rep_error (err, 400, "bad_request", key, "%.64s: not a parameter here", key);
        if (!json_is_string (v))
            return gl_rep_error (err, 400, "bad_request", key, "%.64s: a string", key);
    }
    return 0;
}

static int
s_span (reporting_t *self, const char *kind, const json_t *query, rep_span_t *span,
        gl_rep_error_t *err)
{
    char field[64], msg[128];
    if (rep_span_parse (reporting_agg (self), kind, query, gl_now_ms (), span, field, sizeof field,
                        msg, sizeof msg) != 0)
        return gl_rep_error (err, 400, "bad_request", field, "%s", msg);
    return 0;
}

static int
s_report (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    reporting_t *self = arg;
    const char *user_id = NULL;
    unsigned roles = s_roles (req->body, &user_id);
    if (!(roles & (S_ROLE_SUPERVISOR | S_ROLE_ADMIN | S_ROLE_AGENT)))
        return gl_rep_error (err, 403, "forbidden", "", "reports are for supervisors, admins and agents (their own figures)");
    json_t *query = json_object_get (req->body, "query");
    int rc = s_check_query (query, "date,from,to,agent", err);
    if (rc)
        return rc;
    const char *kind = json_string_value (json_object_get (json_object_get (req->body, "params"), "period"));
    json_t *q = json_deep_copy (query ? query : json_object ());
    json_object_del (q, "agent");
    rep_span_t span;
    rc = s_span (self, kind, q, &span, err);
    json_decref (q);
    if (rc)
        return rc;
    const char *only = NULL;
    const char *agent = json_string_value (json_object_get (query, "agent"));
    if (!(roles & (S_ROLE_SUPERVISOR | S_ROLE_ADMIN))) {
        if (agent && (!user_id || strcmp (agent, user_id) != 0))
            return gl_rep_error (err, 403, "forbidden", "agent", "an agent sees their own figures only");
        only = user_id ? user_id : "";
    }
    else if (agent)
        only = agent;
    *reply = rep_report (reporting_agg (self), &span, gl_now_ms (), only);
    return 200;
}

static int
s_wallboard (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    reporting_t *self = arg;
    const char *user_id = NULL;
    if (!(s_roles (req->body, &user_id) & (S_ROLE_SUPERVISOR | S_ROLE_ADMIN | S_ROLE_AGENT)))
        return gl_rep_error (err, 403, "forbidden", "", "the wallboard is for supervisors, admins and agents");
    int rc = s_check_query (json_object_get (req->body, "query"), "", err);
    if (rc)
        return rc;
    *reply = rep_wallboard (reporting_agg (self), gl_now_ms ());
    return 200;
}

static int
s_trends (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    reporting_t *self = arg;
    const char *user_id = NULL;
    if (!(s_roles (req->body, &user_id) & (S_ROLE_SUPERVISOR | S_ROLE_ADMIN)))
        return gl_rep_error (err, 403, "forbidden", "", "trends are for supervisors and admins");
    json_t *query = json_object_get (req->body, "query");
    int rc = s_check_query (query, "date", err);
    if (rc)
        return rc;
    json_t *q = json_deep_copy (query ? query : json_object ());
    rep_span_t span;
    if (!json_object_get (q, "date")) {
        //  The last complete week.
        rc = s_span (self, "week", q, &span, err);
        if (rc == 0) {
            char date[11];
            int y, m, d;
            rep_civil_from_days (span.first_day - 7, &y, &m, &d);
            snprintf (date, sizeof date, "%04d-%02d-%02d", y, m, d);
            json_object_set_new (q, "date", json_string (date));
        }
    }
    if (rc == 0)
        rc = s_span (self, "week", q, &span, err);
    json_decref (q);
    if (rc)
        return rc;
    *reply = rep_trends (reporting_agg (self), &span, gl_now_ms ());
    return 200;
}

static json_t *
s_file (const char *name, const char *type, char *data)
{
    json_t *out = json_pack ("{s:s, s:s, s:s}", "filename", name, "content_type", type,
                             "data", data ? data : "");
    free (data);
    return out;
}

static int
s_export_report (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    reporting_t *self = arg;
    const char *user_id = NULL;
    if (!(s_roles (req->body, &user_id) & (S_ROLE_SUPERVISOR | S_ROLE_ADMIN)))
        return gl_rep_error (err, 403, "forbidden", "", "exports are for supervisors and admins");
    json_t *query = json_object_get (req->body, "query");
    int rc = s_check_query (query, "date,from,to,format,lang", err);
    if (rc)
        return rc;
    const char *format = json_string_value (json_object_get (query, "format"));
    const char *lang = json_string_value (json_object_get (query, "lang"));
    if (format && strcmp (format, "csv") && strcmp (format, "html"))
        return gl_rep_error (err, 400, "bad_request", "format", "format: csv or html");
    if (lang && strcmp (lang, "en") && strcmp (lang, "fr") && strcmp (lang, "ar"))
        return gl_rep_error (err, 400, "bad_request", "lang", "lang: en, fr or ar");
    const char *kind = json_string_value (json_object_get (json_object_get (req->body, "params"), "period"));
    rep_span_t span;
    json_t *q = json_deep_copy (query ? query : json_object ());
    json_object_del (q, "format");
    json_object_del (q, "lang");
    rc = s_span (self, kind, q, &span, err);
    json_decref (q);
    if (rc)
        return rc;
    json_t *report = rep_report (reporting_agg (self), &span, gl_now_ms (), NULL);
    char name[96];
    bool html = format && !strcmp (format, "html");
    snprintf (name, sizeof name, "greenline-report-%s-%s-%s%s%s.%s", span.kind, span.from, span.to,
              html ? "-" : "", html ? (lang ? lang : "en") : "", html ? "html" : "csv");
    *reply = html ? s_file (name, "text/html", rep_report_html (report, lang))
                  : s_file (name, "text/csv", rep_report_csv (report));
    json_decref (report);
    return 200;
}

static int
s_export_stats (void *arg, const gl_rep_request_t *req, json_t **reply, gl_rep_error_t *err)
{
    reporting_t *self = arg;
    const char *user_id = NULL;
    if (!(s_roles (req->body, &user_id) & (S_ROLE_SUPERVISOR | S_ROLE_ADMIN | S_ROLE_PROTECTION)))
        return gl_rep_error (err, 403, "forbidden", "", "the statistical export is for supervisors, admins and protection staff");
    json_t *query = json_object_get (req->body, "query");
    int rc = s_check_query (query, "from,to,granularity,format", err);
    if (rc)
        return rc;
    const char *gran = json_string_value (json_object_get (query, "granularity"));
    const char *format = json_string_value (json_object_get (query, "format"));
    char g = !gran || !strcmp (gran, "month") ? 'm' : !strcmp (gran, "week") ? 'w' : !strcmp (gran, "day") ? 'd' : 0;
    if (!g)
        return gl_rep_error (err, 400, "bad_request", "granularity", "granularity: day, week or month");
    if (format && strcmp (format, "json") && strcmp (format, "csv"))
        return gl_rep_error (err, 400, "bad_request", "format", "format: json or csv");
    json_t *q = json_pack ("{s:O?, s:O?}", "from", json_object_get (query, "from"), "to",
                           json_object_get (query, "to"));
    rep_span_t span;
    rc = s_span (self, "range", q, &span, err);
    json_decref (q);
    if (rc)
        return rc;
    bool csv = format && !strcmp (format, "csv");
    char *text = NULL;
    json_t *stats = rep_stats_export (reporting_agg (self), &span, g, csv ? &text : NULL);
    if (!csv) {
        *reply = stats;
        return 200;
    }
    json_decref (stats);
    char name[96];
    snprintf (name, sizeof name, "greenline-stats-%s-%s.csv", span.from, span.to);
    *reply = s_file (name, "text/csv", text);
    return 200;
}

int
reporting_requests (reporting_t *self, gl_service_t *svc)
{
    return gl_service_on (svc, "reporting.report", s_report, self)
           || gl_service_on (svc, "reporting.wallboard", s_wallboard, self)
           || gl_service_on (svc, "reporting.trends", s_trends, self)
           || gl_service_on (svc, "reporting.export_report", s_export_report, self)
           || gl_service_on (svc, "reporting.export_stats", s_export_stats, self) ? -1 : 0;
}
