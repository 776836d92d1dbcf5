/*  What the scheduler integration tests share: a private redis-server, the business clock file,
    gl-scheduler as a child process started with the configuration text s_conf (the test defines
    it after including this header; T_SCHEDULER_CONF is the usual one), asked over real ZeroMQ
    (gl_req) with intake's token: the forwarded envelope {caller, params, query, body},
    scheduler.book, and scheduler-1's log read back as events. The teardown fails when a case
    number stands in scheduler's log lines.

    Before including, a test may define T_SCHEDULER_LOG_LEVEL (default "debug"), T_SCHEDULER_ENV
    (more settings, a list of "KEY=VALUE" strings separated by commas) and T_SCHEDULER_LOG_SECRETS
    (the strings that must not stand in scheduler's log lines, separated by commas; default:
    "QZ", the start of the test's case numbers).
*/
#ifndef TEST_SCHEDULER_ENV_H
#define TEST_SCHEDULER_ENV_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                     //  memmem
#endif
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl/gl_req.h"
#include "gl_testenv.h"
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef T_SCHEDULER_LOG_LEVEL
#define T_SCHEDULER_LOG_LEVEL "debug"
#endif
#ifndef T_SCHEDULER_ENV
#define T_SCHEDULER_ENV NULL
#endif
#ifndef T_SCHEDULER_LOG_SECRETS
#define T_SCHEDULER_LOG_SECRETS "QZ"
#endif

#define T_TOKEN     "tok-scheduler-test"
#define T_START_MS  INT64_C (1798948800000)     //  Sunday 2027-01-03 07:00 at +03:00
#define T_CASE_A    "QZA-11C00001"
#define T_CASE_B    "QZB-22C00002"

static gl_testredis_t *s_redis;
static gl_redis_t *s_r;
static pid_t s_pid = -1;
static int s_router;
static char s_dir[256], s_clock_path[300], s_conf_path[300], s_log_path[300];
static int64_t s_now;
static char s_agent[GL_ID_LEN + 1], s_call[GL_ID_LEN + 1];
static int s_health;                    //  scheduler's health port (t_start)
static const char *s_conf;              //  defined by the test (tentative definition)

//  Two services and one centre with a holiday, reminders and callbacks.
#define T_SCHEDULER_CONF                                                                         \
    "[reminders]\nbefore = 48h, 2h\nchannels = sms\n"                                              \
    "[callbacks]\nenabled = yes\nhours = 08:00-20:00\ntimezone = +03:00\n"                         \
    "[service renewal]\nname = Renewal\nname.fr = Renouvellement\nduration = 30m\ncapacity = 3\n"  \
    "lead = 24h\nhorizon = 30d\n"                                                                  \
    "[service single]\nname = Interview\nduration = 60m\ncapacity = 1\nlead = 1h\n"                \
    "horizon = 90d\n"                                                                              \
    "[centre c1]\nname = Centre One\nname.fr = Centre Un\naddress = 1 Main Street\n"               \
    "timezone = +03:00\nweekend = fri, sat\nhours = 08:00-15:00\nholiday = 2027-01-05 test\n"      \
    "languages = ar, en, fr\nservices = renewal, single\n"

//  --------------------------------------------------------------------------------------------
//  Harness

static __attribute__ ((unused)) int64_t
t_local (int y, int m, int d, int hh, int mm)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned) (y - era * 400);
    unsigned doy = (unsigned) ((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + (int) doe - 719468;
    return (days * 1440 + hh * 60 + mm - 180) * 60000;
}

static __attribute__ ((unused)) void
t_clock_set (int64_t ms)
{
    char tmp[320];
    snprintf (tmp, sizeof tmp, "%s.tmp", s_clock_path);
    FILE *f = fopen (tmp, "w");
    assert_non_null (f);
    fprintf (f, "%" PRId64 "\n", ms);
    fclose (f);
    assert_int_equal (rename (tmp, s_clock_path), 0);
    s_now = ms;
}

//  One call; a fresh client per call keeps threads apart. Returns the status; *body (may be
//  NULL) gets the reply body or {"code","field"} for an error.
static __attribute__ ((unused)) int
t_req (const char *op, const char *key, json_t *body, json_t **out)
{
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_router);
    gl_req_t *req = gl_req_new (endpoint);
    assert_non_null (req);
    gl_req_set_auth (req, T_TOKEN);
    gl_reply_t reply = { 0 };
    gl_req_call (req, op, key, body, 5000, &reply);
    int status = reply.status;
    if (out) {
        if (status < 400)
            *out = json_incref (reply.body);
        else
            *out = json_pack ("{s:s, s:s, s:s}", "code",
                              reply.error_code ? reply.error_code : "", "field",
                              reply.error_field ? reply.error_field : "", "message",
                              reply.error_message ? reply.error_message : "");
    }
    gl_reply_clear (&reply);
    gl_req_destroy (&req);
    return status;
}

//  A forwarded request as intake sends it (forward.h). Takes the references to params, query,
//  body (NULL: {}).
static __attribute__ ((unused)) int
t_fwd (const char *op, const char *roles, json_t *params, json_t *query, json_t *body,
       json_t **out)
{
    json_t *r = json_array ();
    char copy[128];
    snprintf (copy, sizeof copy, "%s", roles);
    char *save = NULL;
    for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
        json_array_append_new (r, json_string (t));
    json_t *env = json_pack ("{s:{s:s, s:o, s:[]}, s:o, s:o, s:o}", "caller", "user_id", s_agent,
                             "roles", r, "units", "params", params ? params : json_object (),
                             "query", query ? query : json_object (), "body",
                             body ? body : json_object ());
    char key[40];
    char id[GL_ID_LEN + 1];
    gl_id_new (id);
    snprintf (key, sizeof key, "n-%s", id);
    int status = t_req (op, key, env, out);
    json_decref (env);
    return status;
}

static __attribute__ ((unused)) void
t_expect_error (int status, json_t **outp, int want, const char *code, const char *field)
{
    //  out by address: it is read after the call that fills it (argument evaluation order is
    //  unspecified).
    json_t *out = *outp;
    if (status != want || strcmp (json_string_value (json_object_get (out, "code")), code) != 0) {
        char *s = json_dumps (out, 0);
        fprintf (stderr, "expected %d %s, got %d %s\n", want, code, status, s);
        free (s);
    }
    assert_int_equal (status, want);
    assert_string_equal (json_string_value (json_object_get (out, "code")), code);
    if (field)
        assert_string_equal (json_string_value (json_object_get (out, "field")), field);
}

static __attribute__ ((unused)) json_t *
t_book_body (const char *case_no, const char *service, const char *slot_id, int64_t start)
{
    json_t *b = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s}", "case_no", case_no, "service",
                           service, "centre", "c1", "language", "fr", "call_id", s_call,
                           "agent_id", s_agent);
    if (slot_id)
        json_object_set_new (b, "slot_id", json_string (slot_id));
    else
        json_object_set_new (b, "start", json_integer (start));
    return b;
}

//  Book; returns the status and the appointment id in id (when 200).
static __attribute__ ((unused)) int
t_book (const char *case_no, const char *service, const char *slot_id, char *id, json_t **out)
{
    json_t *b = t_book_body (case_no, service, slot_id, 0);
    char key[40], k[GL_ID_LEN + 1];
    gl_id_new (k);
    snprintf (key, sizeof key, "n-%s", k);
    json_t *o = NULL;
    int status = t_req ("scheduler.book", key, b, &o);
    json_decref (b);
    if (status == 200 && id)
        snprintf (id, GL_ID_LEN + 1, "%s", json_string_value (json_object_get (o, "appointment_id")));
    if (out)
        *out = o;
    else
        json_decref (o);
    return status;
}

//  Events of scheduler-1's log.
typedef struct {
    json_t *list;
    bool raw_has_case;
} t_events_t;

static __attribute__ ((unused)) int
t_event_entry (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    (void) seq;
    t_events_t *e = arg;
    if (memmem (bytes, len, "QZ", 2))
        e->raw_has_case = true;
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    assert_non_null (ev);
    json_array_append_new (e->list, json_pack ("{s:s, s:s, s:O}", "type", ev->type, "corr",
                                               ev->corr, "data", ev->data));
    gl_event_destroy (&ev);
    return 0;
}

static __attribute__ ((unused)) json_t *
t_events (bool *has_case)
{
    t_events_t e = { .list = json_array () };
    int64_t n = gl_log_read (s_r, "scheduler-1", 1, 0, 100000, t_event_entry, &e, NULL);
    assert_true (n >= 0);
    if (has_case)
        *has_case = e.raw_has_case;
    return e.list;
}

//  How many events of type (and template, for notifications) are about corr / appointment id.
static __attribute__ ((unused)) int
t_count (const char *type, const char *template_, const char *about)
{
    json_t *list = t_events (NULL);
    int n = 0;
    size_t i;
    json_t *ev;
    json_array_foreach (list, i, ev) {
        if (strcmp (json_string_value (json_object_get (ev, "type")), type) != 0)
            continue;
        json_t *d = json_object_get (ev, "data");
        const char *tpl = json_string_value (json_object_get (d, "template"));
        if (template_ && (!tpl || strcmp (tpl, template_) != 0))
            continue;
        const char *corr = json_string_value (json_object_get (ev, "corr"));
        const char *aid = json_string_value (json_object_get (d, "appointment_id"));
        if (!about || strcmp (corr, about) == 0 || (aid && strcmp (aid, about) == 0))
            n++;
    }
    json_decref (list);
    return n;
}

static __attribute__ ((unused)) int
t_wait_count (const char *type, const char *template_, const char *about, int want)
{
    int n = 0;
    for (int i = 0; i < 200 && (n = t_count (type, template_, about)) < want; i++)
        gl_sleep_ms (50);
    return n;
}

static __attribute__ ((unused)) void
t_start (void)
{
    char env[20][320];
    int n = 0;
    snprintf (env[n++], 320, "GL_REDIS_HOST=127.0.0.1");
    snprintf (env[n++], 320, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (env[n++], 320, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", s_router);
    snprintf (env[n++], 320, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (env[n++], 320, "GL_BUS_PUB_ENDPOINTS=");
    snprintf (env[n++], 320, "GL_BUS_TOKENS=" T_TOKEN);
    snprintf (env[n++], 320, "GL_SOURCE=scheduler-1");
    snprintf (env[n++], 320, "GL_CLOCK_FILE=%s", s_clock_path);
    snprintf (env[n++], 320, "GL_SCHEDULER_CONFIG=%s", s_conf_path);
    snprintf (env[n++], 320, "GL_SCHEDULER_TICK_MS=50");
    const char *more[] = { T_SCHEDULER_ENV, NULL };
    for (int i = 0; more[i] && n < 17; i++)
        snprintf (env[n++], 320, "%s", more[i]);
    snprintf (env[n++], 320, "GL_LOG_LEVEL=" T_SCHEDULER_LOG_LEVEL);
    s_health = gl_test_free_port ();
    snprintf (env[n++], 320, "GL_HEALTH_PORT=%d", s_health);
    char *envp[21];
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    const char *bin = gl_test_build_path ("services/scheduler/gl-scheduler");
    char *argv[] = { (char *) bin, NULL };
    s_pid = gl_test_spawn (bin, argv, envp, s_log_path);
    assert_true (s_pid > 0);
    for (int i = 0; i < 200; i++) {
        json_t *out = NULL;
        int status = t_fwd ("scheduler.centres", "agent", NULL, NULL, NULL, &out);
        json_decref (out);
        if (status == 200)
            return;
        gl_sleep_ms (100);
    }
    fail_msg ("scheduler did not start; see %s", s_log_path);
}

static __attribute__ ((unused)) int
t_setup (void **state)
{
    (void) state;
    s_redis = gl_testredis_start (NULL);
    assert_non_null (s_redis);
    s_r = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 2000, 2000);
    snprintf (s_dir, sizeof s_dir, "%s", s_redis->dir);
    snprintf (s_clock_path, sizeof s_clock_path, "%s/clock", s_dir);
    snprintf (s_conf_path, sizeof s_conf_path, "%s/scheduler.conf", s_dir);
    snprintf (s_log_path, sizeof s_log_path, "%s/scheduler.log", s_dir);
    FILE *f = fopen (s_conf_path, "w");
    assert_non_null (f);
    fputs (s_conf, f);
    fclose (f);
    t_clock_set (T_START_MS);
    gl_id_new (s_agent);
    gl_id_new (s_call);
    s_router = gl_test_free_port ();
    t_start ();
    return 0;
}

static __attribute__ ((unused)) int
t_teardown (void **state)
{
    (void) state;
    if (s_pid > 0)
        assert_int_equal (gl_test_stop (s_pid, 5000), 0);
    //  No case number (nor any other of the secrets) in scheduler's log lines.
    const char *secrets[] = { T_SCHEDULER_LOG_SECRETS, NULL };
    FILE *f = fopen (s_log_path, "r");
    char line[4096];
    while (f && fgets (line, sizeof line, f))
        for (int i = 0; secrets[i]; i++)
            if (strstr (line, secrets[i])) {
                fprintf (stderr, "case or phone number in the log: %s", line);
                fail ();
            }
    if (f)
        fclose (f);
    gl_redis_destroy (&s_r);
    gl_testredis_destroy (&s_redis);
    return 0;
}


#endif
