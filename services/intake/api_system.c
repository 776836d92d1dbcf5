/*  api_system — the service's own endpoints: liveness and readiness, the OpenAPI document,
    service information for administrators, console error counts, and the console's static
    files. /metrics is not here: it is on the health port (gl_health), off the public API.
*/
#include "intake.h"
#include "gl/gl_clock.h"
#include "gl/gl_metrics.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  GET /health: the process runs and its loop answers.
static int
s_health (intake_t *intake, http_req_t *req)
{
    json_int_t uptime = (json_int_t) ((gl_mono_ms () - intake->started_ms) / 1000);
    return http_reply_json (req, 200,
                            json_pack ("{s:s, s:s, s:s, s:I}", "status", "ok", "service",
                                       INTAKE_SERVICE, "instance", gl_pub_src (intake->pub),
                                       "uptime_s", uptime));
}

//  GET /ready: Redis answers and the publisher holds its source name (intake.c, s_check_ready).
//  The 503 carries the probe's fields and the API's error shape both.
static int
s_ready (intake_t *intake, http_req_t *req)
{
    if (intake->ready)
        return http_reply_json (req, 200, json_pack ("{s:s}", "status", "ready"));
    return http_reply_json (req, 503,
                            json_pack ("{s:s, s:s, s:{s:s, s:s, s:n}}", "status", "not ready",
                                       "reason", intake->not_ready, "error", "code", "not_ready",
                                       "message", intake->not_ready, "field"));
}

//  GET /api/v1/openapi.json: the document embedded from docs/api.md at build time.
json_t *
intake_openapi_doc (void)
{
    json_error_t err;
    json_t *blocks = json_loadb (intake_openapi_json, intake_openapi_json_len, 0, &err);
    json_t *doc = json_is_array (blocks) ? json_incref (json_array_get (blocks, 0)) : NULL;
    size_t i;
    json_t *fragment;
    json_array_foreach (blocks, i, fragment)
        if (i > 0 && doc)
            json_object_update_recursive (doc, fragment);
    json_decref (blocks);
    return doc;
}

static int
s_openapi (intake_t *intake, http_req_t *req)
{
    json_t *doc = intake_openapi_doc ();
    if (!doc)
        return http_reply_error (req, 500, "internal", "the embedded OpenAPI document is invalid",
                                 NULL);
    return http_reply_json (req, 200, doc);
}

//  GET /api/v1/system/info: what an administrator needs to tell replicas apart.
static int
s_info (intake_t *intake, http_req_t *req)
{
    gl_pub_stats_t bus = gl_pub_stats (intake->pub);
    json_int_t uptime = (json_int_t) ((gl_mono_ms () - intake->started_ms) / 1000);
    return http_reply_json (
        req, 200,
        json_pack ("{s:s, s:s, s:s, s:I, s:b, s:{s:I, s:I, s:I, s:I}, s:{s:i, s:i}}", "service",
                   INTAKE_SERVICE, "instance", gl_pub_src (intake->pub), "version",
                   intake->version, "uptime_s", uptime, "ready", intake->ready, "bus", "seq",
                   (json_int_t) gl_pub_seq (intake->pub), "epoch",
                   (json_int_t) gl_pub_epoch (intake->pub), "appended",
                   (json_int_t) bus.appended, "pub_dropped", (json_int_t) bus.pub_dropped, "ports",
                   "http", http_port (intake->http), "health", gl_health_port (intake->health)));
}

//  POST /api/v1/console/errors: the console counts its own failures here, so operators see a
//  broken console in the metrics. Codes only: an error message could quote personal data.
static const char *const s_error_kinds[] = { "script", "network", "api", NULL };
static const char *const s_error_views[]
    = { "status", "login", "agent", "supervisor", "protection", "admin", NULL };

static int
s_console_error (intake_t *intake, http_req_t *req)
{
    static const char *const fields[] = { "kind", "view", NULL };
    const char *kind = NULL, *view = NULL;
    if (http_body_only (req, fields) || http_body_enum (req, "kind", true, s_error_kinds, &kind)
        || http_body_enum (req, "view", true, s_error_views, &view))
        return -1;
    char labels[96];
    snprintf (labels, sizeof labels, "kind=\"%s\",view=\"%s\"", kind, view);
    gl_metric_inc (gl_metrics_counter ("greenline_intake_console_errors_total",
                                       "Failures the web console reported, by kind and view.",
                                       labels),
                   1);
    return http_reply_json (req, 202, json_object ());
}

//  --------------------------------------------------------------------------------------------
//  Static files

static const char *
s_content_type (const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        { ".html", "text/html; charset=utf-8" },   { ".css", "text/css; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" }, { ".json", "application/json" },
        { ".svg", "image/svg+xml" },               { ".png", "image/png" },
        { ".ico", "image/x-icon" },                { ".woff2", "font/woff2" },
        { ".txt", "text/plain; charset=utf-8" },
    };
    const char *dot = strrchr (name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp (dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

//  True when an If-None-Match header names etag ("*" or a list that holds it; a weak W/ form of
//  it matches too, as a GET's comparison is weak).
static bool
s_etag_matches (const char *header, const char *etag)
{
    if (!header)
        return false;
    size_t n = strlen (etag);
    for (const char *p = header; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp (p, "W/", 2) == 0)
            p += 2;
        if (strncmp (p, etag, n) == 0 && (p[n] == 0 || p[n] == ',' || p[n] == ' '))
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

//  Serve rel (decoded segments joined by '/', none "." or ".." — the router refuses those)
//  from the console folder. Hidden names, backslashes, unknown types, anything that is not a
//  regular file, and anything that resolves outside the folder (a symlink) answer 404.
static int
s_static (intake_t *intake, http_req_t *req, const char *rel)
{
    const char *type = s_content_type (rel);
    bool hidden = rel[0] == '.' || strstr (rel, "/.") != NULL;
    if (!intake->console_dir || !type || hidden || strchr (rel, '\\'))
        return http_reply_error (req, 404, "not_found", "no such file", NULL);
    char path[4096];
    int n = snprintf (path, sizeof path, "%s/%s", intake->console_dir, rel);
    char *real = n > 0 && (size_t) n < sizeof path ? realpath (path, NULL) : NULL;
    size_t dir_len = strlen (intake->console_dir);
    bool inside = real && strncmp (real, intake->console_dir, dir_len) == 0 && real[dir_len] == '/';
    int fd = inside ? open (real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    free (real);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
        if (fd >= 0)
            close (fd);
        return http_reply_error (req, 404, "not_found", "no such file", NULL);
    }
    //  Revalidation costs a round trip, not the file: on a slow line the console's ~340 KB
    //  come once, and later loads get 304s. The validator changes with the file's size or
    //  modification time (a new deploy).
    char etag[64];
    snprintf (etag, sizeof etag, "\"%llx-%llx-%lx\"", (unsigned long long) st.st_size,
              (unsigned long long) st.st_mtim.tv_sec, (long) st.st_mtim.tv_nsec);
    http_set_header (req, "ETag", etag);
    if (s_etag_matches (http_header (req, "If-None-Match"), etag)) {
        close (fd);
        return http_reply_not_modified (req);
    }
    return http_reply_file (req, fd, (size_t) st.st_size, type);
}

//  GET /: the console's start page.
static int
s_index (intake_t *intake, http_req_t *req)
{
    return s_static (intake, req, "index.html");
}

//  GET /console/{path*}
static int
s_console_file (intake_t *intake, http_req_t *req)
{
    return s_static (intake, req, http_param (req, "path"));
}

void
api_system_routes (intake_t *intake)
{
    http_t *http = intake->http;
    http_route (http, "GET", "/health", GL_ROLE_PUBLIC, s_health);
    http_route (http, "GET", "/ready", GL_ROLE_PUBLIC, s_ready);
    http_route (http, "GET", "/api/v1/openapi.json", GL_ROLE_PUBLIC, s_openapi);
    http_route (http, "GET", "/api/v1/system/info", GL_ROLE_ADMIN, s_info);
    http_route (http, "POST", "/api/v1/console/errors", GL_ROLE_PUBLIC, s_console_error);
    http_route (http, "GET", "/", GL_ROLE_PUBLIC, s_index);
    http_route (http, "GET", "/console/{path*}", GL_ROLE_PUBLIC, s_console_file);
}
