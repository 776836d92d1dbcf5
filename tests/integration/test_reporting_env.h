/*  What the reporting integration tests share: a private redis-server, the business clock file,
    a real publisher in this process as intake-1 (events go through gl_pub like intake's),
    gl-reporting as a child process, and a bus client for its requests.
*/
#ifndef TEST_REPORTING_ENV_H
#define TEST_REPORTING_ENV_H
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_pub.h"
#include "gl/gl_redis.h"
#include "gl/gl_req.h"
#include "gl_testenv.h"
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_DAY           INT64_C(1773100800000)     //  2026-03-10T00:00:00Z, a Tuesday
#define T_H(h, m, s)    (T_DAY + ((h) * 3600 + (m) * 60 + (s)) * INT64_C(1000))
#define T_TOKEN         "tok-reporting-test"

static gl_testredis_t *s_redis;
static gl_redis_t *s_rc;
static gl_pub_t *s_pub;
static gl_req_t *s_req;
static char s_clock_path[200];
static char s_router[64];
static const char *s_router_override;      //  another replica's ROUTER (t_spawn)
static char s_log_path[200];
static char s_archive[200];
static pid_t s_pid = -1;
static int64_t s_now;
static uint64_t s_published;

static __attribute__ ((unused)) void
t_clock_set (int64_t ms)
{
    char tmp[240];
    snprintf (tmp, sizeof tmp, "%s.tmp", s_clock_path);
    FILE *f = fopen (tmp, "w");
    assert_non_null (f);
    fprintf (f, "%" PRId64 "\n", ms);
    fclose (f);
    assert_int_equal (rename (tmp, s_clock_path), 0);
    s_now = ms;
}

static __attribute__ ((unused)) void
t_env_start (const char *name)
{
    snprintf (s_clock_path, sizeof s_clock_path, "/tmp/gl-test-%s-%d.clock", name, getpid ());
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-%s-%d.log", name, getpid ());
    snprintf (s_archive, sizeof s_archive, "/tmp/gl-test-%s-%d.archive", name, getpid ());
    unlink (s_log_path);
    t_clock_set (T_H (12, 0, 0));
    setenv ("GL_CLOCK_FILE", s_clock_path, 1);
    s_redis = gl_testredis_start (NULL);
    assert_non_null (s_redis);
    s_rc = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 5000);
    assert_non_null (s_rc);
    gl_pub_opts_t opts;
    gl_pub_opts_default (&opts);
    opts.bind = "tcp://127.0.0.1:*";
    char err[256];
    s_pub = gl_pub_new (s_rc, "intake-1", &opts, err, sizeof err);
    if (!s_pub)
        fprintf (stderr, "gl_pub_new: %s\n", err);
    assert_non_null (s_pub);
    snprintf (s_router, sizeof s_router, "tcp://127.0.0.1:%d", gl_test_free_port ());
    s_req = gl_req_new (s_router);
    assert_non_null (s_req);
    assert_int_equal (gl_req_set_auth (s_req, T_TOKEN), 0);
}

static __attribute__ ((unused)) void
t_env_stop (void)
{
    if (s_pid > 0)
        gl_test_stop (s_pid, 10000);
    s_pid = -1;
    gl_req_destroy (&s_req);
    gl_pub_destroy (&s_pub);
    gl_redis_destroy (&s_rc);
    gl_testredis_destroy (&s_redis);
    unlink (s_clock_path);
    char cmd[300];
    snprintf (cmd, sizeof cmd, "rm -rf %s", s_archive);
    if (system (cmd) != 0)
        fprintf (stderr, "could not remove %s\n", s_archive);
}

//  gl-reporting with the test's environment (and extra, NULL-terminated, may be NULL); argv1 for
//  --rebuild.
static __attribute__ ((unused)) pid_t
t_spawn (const char *argv1, const char *const *extra)
{
    static char env[32][256];
    char *envp[33];
    int n = 0;
    snprintf (env[n++], 256, "GL_REDIS_HOST=127.0.0.1");
    snprintf (env[n++], 256, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (env[n++], 256, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    snprintf (env[n++], 256, "GL_BUS_BIND_PUB=tcp://127.0.0.1:*");
    snprintf (env[n++], 256, "GL_BUS_BIND_ROUTER=%s", s_router_override ? s_router_override : s_router);
    snprintf (env[n++], 256, "GL_BUS_PUB_ENDPOINTS=%s", gl_pub_endpoint (s_pub));
    snprintf (env[n++], 256, "GL_BUS_TOKENS=" T_TOKEN);
    snprintf (env[n++], 256, "GL_CLOCK_FILE=%s", s_clock_path);
    snprintf (env[n++], 256, "GL_REPORTING_CHECKPOINT_MS=50");
    snprintf (env[n++], 256, "GL_ARCHIVE_DIR=%s", s_archive);
    snprintf (env[n++], 256, "GL_LOG_LEVEL=info");
    for (int i = 0; extra && extra[i] && n < 31; i++)
        snprintf (env[n++], 256, "%s", extra[i]);
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    char *argv[] = { "gl-reporting", (char *) argv1, NULL };
    pid_t pid = gl_test_spawn (gl_test_build_path ("services/reporting/gl-reporting"), argv, envp,
                               s_log_path);
    assert_true (pid > 0);
    return pid;
}

static __attribute__ ((unused)) void
t_publish (const char *type, int64_t ts, const char *corr, const char *fmt, ...)
{
    char json[2048];
    va_list ap;
    va_start (ap, fmt);
    vsnprintf (json, sizeof json, fmt, ap);
    va_end (ap);
    gl_event_t *ev = gl_event_new (type);
    assert_non_null (ev);
    json_error_t jerr;
    json_t *data = json_loads (json, 0, &jerr);
    if (!data)
        fprintf (stderr, "bad fixture %s: %s\n", json, jerr.text);
    assert_non_null (data);
    json_decref (ev->data);
    ev->data = data;
    ev->ts = ts;
    if (corr)
        gl_event_set_corr (ev, corr);
    assert_int_equal (gl_pub_send (s_pub, ev, 0), 0);
    gl_event_destroy (&ev);
    s_published++;
    gl_pub_tick (s_pub);
}

//  A request as a caller with roles (comma-separated) and user id; the reply's status.
static __attribute__ ((unused)) int
t_call (const char *op, const char *roles, const char *user, json_t *params, json_t *query,
        json_t **body)
{
    json_t *r = json_array ();
    char list[128];
    snprintf (list, sizeof list, "%s", roles);
    char *save = NULL;
    for (char *p = strtok_r (list, ",", &save); p; p = strtok_r (NULL, ",", &save))
        json_array_append_new (r, json_string (p));
    json_t *req = json_pack ("{s:{s:s, s:o, s:[]}, s:o, s:o, s:{}}", "caller", "user_id", user,
                             "roles", r, "units", "params", params ? params : json_object (),
                             "query", query ? query : json_object (), "body");
    gl_reply_t reply = { 0 };
    int status = 0;
    for (int attempt = 0; attempt < 100; attempt++) {
        gl_req_call (s_req, op, NULL, req, 5000, &reply);
        status = reply.status;
        if (status != 504 && status != 503)
            break;
        gl_sleep_ms (100);      //  not started yet
    }
    if (body)
        *body = json_incref (reply.body);
    if (status >= 400 && reply.error_code)
        fprintf (stderr, "%s: %d %s (%s)\n", op, status, reply.error_code,
                 reply.error_field ? reply.error_field : "");
    gl_reply_clear (&reply);
    json_decref (req);
    return status;
}

static __attribute__ ((unused)) json_t *
t_ok (const char *op, const char *roles, json_t *params, json_t *query)
{
    json_t *body = NULL;
    int status = t_call (op, roles, "0123456789abcdef0123456789abcdef", params, query, &body);
    assert_int_equal (status, 200);
    return body;
}

//  Wait until reporting has applied at least n events (its lifetime count).
static __attribute__ ((unused)) void
t_wait_applied (uint64_t n)
{
    while (true) {
        gl_pub_tick (s_pub);
        json_t *wb = t_ok ("reporting.wallboard", "supervisor", NULL, NULL);
        int64_t got = json_integer_value (json_object_get (wb, "events_applied"));
        json_decref (wb);
        if ((uint64_t) got >= n)
            return;
        gl_sleep_ms (20);
    }
}

static __attribute__ ((unused)) int64_t
t_path (json_t *obj, const char *path)
{
    char copy[256];
    snprintf (copy, sizeof copy, "%s", path);
    char *save = NULL;
    json_t *v = obj;
    for (char *k = strtok_r (copy, ".", &save); k; k = strtok_r (NULL, ".", &save))
        v = json_object_get (v, k);
    if (!json_is_integer (v))
        fprintf (stderr, "%s is not an integer\n", path);
    assert_true (json_is_integer (v));
    return json_integer_value (v);
}

static __attribute__ ((unused)) double
t_real (json_t *obj, const char *path)
{
    char copy[256];
    snprintf (copy, sizeof copy, "%s", path);
    char *save = NULL;
    json_t *v = obj;
    for (char *k = strtok_r (copy, ".", &save); k; k = strtok_r (NULL, ".", &save))
        v = json_object_get (v, k);
    assert_true (json_is_number (v));
    return json_number_value (v);
}

//  Call events as intake publishes them (docs/events.md).
#define T_CALL "\"call_id\":\"%s\",\"line\":\"main\",\"language\":\"%s\",\"priority\":\"normal\"," \
               "\"ivr_option\":null,\"clock\":\"pbx\",\"at\":%lld,\"pbx_call_id\":null,\"step\":%d"

static __attribute__ ((unused)) void
t_offered (const char *id, const char *lang, int64_t at)
{
    t_publish ("call.offered", at, id, "{" T_CALL ",\"position\":1}", id, lang, (long long) at, 1);
}

static __attribute__ ((unused)) void
t_answered (const char *id, const char *lang, int64_t offer, int wait_s, const char *agent)
{
    int64_t at = offer + wait_s * 1000LL;
    t_publish ("call.answered", at, id, "{" T_CALL ",\"agent_id\":\"%s\",\"wait_ms\":%d,\"via\":\"answer\",\"reported\":{}}",
               id, lang, (long long) at, 2, agent, wait_s * 1000);
}

static __attribute__ ((unused)) void
t_ended (const char *id, const char *lang, int64_t offer, int wait_s, int talk_s, const char *agent)
{
    int64_t at = offer + (wait_s + talk_s) * 1000LL;
    t_publish ("call.ended", at, id, "{" T_CALL ",\"agent_id\":\"%s\",\"wait_ms\":%d,\"talk_ms\":%d,\"ended_by\":null,\"transfers\":0,\"reported\":{}}",
               id, lang, (long long) at, 3, agent, wait_s * 1000, talk_s * 1000);
}

static __attribute__ ((unused)) void
t_abandoned (const char *id, const char *lang, int64_t offer, int wait_s)
{
    int64_t at = offer + wait_s * 1000LL;
    t_publish ("call.abandoned", at, id, "{" T_CALL ",\"wait_ms\":%d,\"position\":1,\"orig_position\":1,\"reported\":{}}",
               id, lang, (long long) at, 2, wait_s * 1000);
}

static __attribute__ ((unused)) void
t_state (const char *agent, const char *from, const char *to, int64_t at, int step)
{
    t_publish ("agent.state_changed", at, "", "{\"agent_id\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"at\":%lld,\"reason_code\":null,\"by\":\"%s\",\"call_id\":null,\"step\":%d}",
               agent, from, to, (long long) at, agent, step);
}

static __attribute__ ((unused)) void
t_call_cycle (const char *id, int64_t offer, int wait_s, int talk_s, int wrap_s, const char *agent, int *step)
{
    t_offered (id, "ar", offer);
    t_answered (id, "ar", offer, wait_s, agent);
    int64_t answered = offer + wait_s * 1000LL, ended = answered + talk_s * 1000LL;
    t_state (agent, "available", "on_call", answered, (*step)++);
    t_ended (id, "ar", offer, wait_s, talk_s, agent);
    t_state (agent, "on_call", "wrap_up", ended, (*step)++);
    t_state (agent, "wrap_up", "available", ended + wrap_s * 1000LL, (*step)++);
}

#endif
