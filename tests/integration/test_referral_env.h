/*  What the referral integration tests share: a private redis-server, gl-referral as a process
    with its business clock in a file, a configuration of the test's own, a publisher named
    "intake-1" that appends intake's events as intake would, a bus client for referral's
    requests in the forwarded shape (services/intake/forward.h), and a reader of referral's own
    logs. Included by tests/integration/test_referral*.c (each a program of its own). */
#ifndef TEST_REFERRAL_ENV_H
#define TEST_REFERRAL_ENV_H

#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_log.h"
#include "gl/gl_pub.h"
#include "gl/gl_redis.h"
#include "gl/gl_req.h"
#include "gl_testenv.h"
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define T_WAIT_MS   60000
#define T_TOKEN     "referral-test-token"
#define T_H         INT64_C(3600000)
#define T_M         INT64_C(60000)
//  Monday 2026-01-05 09:00 UTC (the test configuration's time zone is UTC).
#define T_MON9      (INT64_C(1767571200000) + 9 * T_H)

//  Users (intake's user ids) of the test configuration.
#define P1      "b1000000000000000000000000000001"     //  protection, on duty
#define P2      "b1000000000000000000000000000002"     //  protection, backup
#define F_PROT  "b1000000000000000000000000000003"     //  protection focal point
#define S_PROT  "b1000000000000000000000000000004"     //  protection supervisor
#define L1      "b2000000000000000000000000000001"     //  legal, on duty in business hours
#define F_LEGAL "b2000000000000000000000000000003"
#define S_LEGAL "b2000000000000000000000000000004"
#define G1      "b3000000000000000000000000000001"     //  gbv
#define F_GBV   "b3000000000000000000000000000003"
#define AGENT   "b4000000000000000000000000000001"     //  an agent
#define SUP     "b5000000000000000000000000000001"     //  a call-centre supervisor, no unit

static const char *s_conf =
    "timezone +00:00\n"
    "hours mon-fri 08:00-16:00\n"
    "unit protection 24x7 focal=" F_PROT " supervisor=" S_PROT "\n"
    "unit legal focal=" F_LEGAL " supervisor=" S_LEGAL "\n"
    "unit gbv sensitive focal=" F_GBV "\n"
    "member protection " P1 " " P2 "\n"
    "member legal " L1 "\n"
    "member gbv " G1 "\n"
    "roster protection daily 00:00-24:00 " P1 " " P2 "\n"
    "roster legal mon-fri 08:00-16:00 " L1 "\n"
    "roster gbv mon-fri 08:00-16:00 " G1 "\n"
    "partner nrc unit=legal email=referrals@nrc.example.org language=fr\n"
    "sensitive_categories gbv child_protection psea\n"
    "rule gbv * * * gbv\n"
    "rule legal.legal_aid * * * partner:nrc\n"
    "rule legal * * * legal\n"
    "default protection\n"
    "sla * * ack=4h resolve=3d\n"
    "sla legal high ack=1h resolve=1d\n"
    "escalation focal=1h supervisor=2h\n"
    "emergency protection ack=5m repeat=2m\n"
    "ack_link https://greenline.test/partner-ack ttl=1d\n"
    "signing_key test-signing-key-test-signing-key-0123\n";

static gl_testredis_t *s_redis;
static gl_redis_t *s_r;                 //  the test's own connection
static gl_pub_t *s_intake;              //  "intake-1"
static gl_req_t *s_client;
static pid_t s_referral = -1;
static int s_router_port, s_health_port;
static char s_dir[256], s_clock_path[300], s_conf_path[300], s_log_path[300];
static int64_t s_now = T_MON9;

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

static __attribute__ ((unused)) void
t_advance (int64_t ms)
{
    t_clock_set (s_now + ms);
}

static __attribute__ ((unused)) pid_t
t_spawn_referral_at (int router_port, int health_port)
{
    char env[16][320];
    int n = 0;
    snprintf (env[n++], 320, "GL_REDIS_HOST=127.0.0.1");
    snprintf (env[n++], 320, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (env[n++], 320, "GL_REFERRAL_CONFIG=%s", s_conf_path);
    snprintf (env[n++], 320, "GL_CLOCK_FILE=%s", s_clock_path);
    snprintf (env[n++], 320, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", router_port);
    snprintf (env[n++], 320, "GL_BUS_BIND_PUB=tcp://127.0.0.1:*");
    snprintf (env[n++], 320, "GL_BUS_PUB_ENDPOINTS=%s", gl_pub_endpoint (s_intake));
    snprintf (env[n++], 320, "GL_BUS_TOKENS=" T_TOKEN);
    snprintf (env[n++], 320, "GL_HEALTH_PORT=%d", health_port);
    snprintf (env[n++], 320, "GL_REFERRAL_TICK_MS=50");
    snprintf (env[n++], 320, "GL_LOG_LEVEL=info");
    char *envp[17];
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    char *argv[] = { "gl-referral", NULL };
    return gl_test_spawn (gl_test_build_path ("services/referral/gl-referral"), argv, envp,
                          s_log_path);
}

static __attribute__ ((unused)) pid_t
t_spawn_referral (void)
{
    return t_spawn_referral_at (s_router_port, s_health_port);
}

//  A request in the forwarded shape. caller_units: JSON array text ("[\"legal\"]"); roles
//  likewise. body: JSON text or NULL ({}). Returns the status; *out the reply body (new ref).
static __attribute__ ((unused)) int
t_req (const char *op, const char *user, const char *roles, const char *units, const char *id,
       const char *query, const char *body, const char *key, json_t **out)
{
    json_error_t e;
    json_t *q = query ? json_loads (query, 0, &e) : json_object ();
    json_t *b = body ? json_loads (body, 0, &e) : json_object ();
    assert_non_null (q);
    assert_non_null (b);
    json_t *req = json_pack ("{s:{s:s, s:o, s:o}, s:o, s:o, s:o}", "caller", "user_id", user,
                             "roles", json_loads (roles, 0, &e), "units",
                             json_loads (units, 0, &e), "params",
                             id ? json_pack ("{s:s}", "id", id) : json_object (), "query", q,
                             "body", b);
    assert_non_null (req);
    gl_reply_t reply = { 0 };
    int rc = gl_req_call (s_client, op, key, req, 10000, &reply);
    json_decref (req);
    if (rc != 0)
        fprintf (stderr, "%s: no answer (%d %s)\n", op, reply.status,
                 reply.error_code ? reply.error_code : "");
    int status = reply.status;
    if (status >= 400 && out)
        *out = json_pack ("{s:s, s:s, s:s}", "code", reply.error_code ? reply.error_code : "",
                          "field", reply.error_field ? reply.error_field : "", "message",
                          reply.error_message ? reply.error_message : "");
    else if (out)
        *out = json_incref (reply.body);
    gl_reply_clear (&reply);
    return status;
}

//  Expect status and (for errors) code and field; returns the reply (caller's).
static __attribute__ ((unused)) json_t *
t_expect (int want, const char *code, const char *field, const char *op, const char *user,
          const char *roles, const char *units, const char *id, const char *query,
          const char *body, const char *key)
{
    json_t *out = NULL;
    int status = t_req (op, user, roles, units, id, query, body, key, &out);
    if (status != want || (code && strcmp (json_string_value (json_object_get (out, "code")), code) != 0)) {
        char *dump = json_dumps (out, JSON_COMPACT);
        fprintf (stderr, "%s: expected %d %s, got %d %s\n", op, want, code ? code : "", status, dump);
        free (dump);
    }
    assert_int_equal (status, want);
    if (code)
        assert_string_equal (json_string_value (json_object_get (out, "code")), code);
    if (field)
        assert_string_equal (json_string_value (json_object_get (out, "field")), field);
    return out;
}

//  Append an intake event (the test plays intake-1).
static __attribute__ ((unused)) void
t_intake_event (const char *type, const char *corr, json_t *data)
{
    gl_event_t *ev = gl_event_new (type);
    assert_non_null (ev);
    gl_event_set_corr (ev, corr);
    json_object_update (ev->data, data);
    json_decref (data);
    assert_int_equal (gl_pub_send (s_intake, ev, 0), 0);
    gl_event_destroy (&ev);
}

static __attribute__ ((unused)) void
t_request_referral (const char *id, const char *category, const char *priority, bool consent)
{
    t_intake_event ("referral.requested", id,
                    json_pack ("{s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "contact_id",
                               "c0000000000000000000000000000001", "category", category,
                               "priority", priority, "consent", consent, "agent_id", AGENT,
                               "language", "ar", "referral_id", id));
}

static __attribute__ ((unused)) void
t_raise_emergency (const char *id)
{
    t_intake_event ("emergency.raised", id,
                    json_pack ("{s:s, s:s, s:n, s:s, s:b, s:s, s:s, s:s}", "type",
                               "threat_to_life", "contact_id", "c0000000000000000000000000000002",
                               "call_id", "location", "zaatari", "callback_possible", true,
                               "agent_id", AGENT, "language", "ar", "emergency_id", id));
}

//  Every event in referral's logs (every referral-N source), in order per source, as an array
//  of {type, corr, data}; optionally only type (NULL: all) about corr (NULL: any).
static __attribute__ ((unused)) json_t *
t_events (const char *type, const char *corr)
{
    json_t *out = json_array ();
    for (int n = 1; n <= 9; n++) {
        redisReply *r = gl_redis_cmd (s_r, "XRANGE gl:log:{referral-%d} - +", n);
        assert_non_null (r);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *fields = r->element[i]->element[1];
            gl_event_err_t why;
            gl_event_t *ev = gl_event_decode (fields->element[1]->str, fields->element[1]->len,
                                              &why, NULL, 0);
            assert_non_null (ev);
            if ((!type || strcmp (ev->type, type) == 0) && (!corr || strcmp (ev->corr, corr) == 0))
                json_array_append_new (out, json_pack ("{s:s, s:s, s:s, s:I, s:O}", "type",
                                                       ev->type, "corr", ev->corr, "id", ev->id,
                                                       "ts", (json_int_t) ev->ts, "data", ev->data));
            gl_event_destroy (&ev);
        }
        freeReplyObject (r);
    }
    return out;
}

//  Notifications requested about corr with template (NULL: any).
static __attribute__ ((unused)) json_t *
t_notices (const char *corr, const char *template_)
{
    json_t *all = t_events ("notification.requested", corr), *out = json_array ();
    size_t i;
    json_t *e;
    json_array_foreach (all, i, e) {
        const char *t = json_string_value (json_object_get (json_object_get (e, "data"), "template"));
        if (!template_ || strcmp (t, template_) == 0)
            json_array_append (out, json_object_get (e, "data"));
    }
    json_decref (all);
    return out;
}

//  Wait until at least n events of type about corr are in referral's logs; returns them.
static __attribute__ ((unused)) json_t *
t_wait_events (const char *type, const char *corr, size_t n)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (true) {
        json_t *evs = t_events (type, corr);
        if (json_array_size (evs) >= n)
            return evs;
        json_decref (evs);
        if (gl_mono_ms () > deadline) {
            fprintf (stderr, "timed out waiting for %zu %s about %s\n", n, type, corr ? corr : "*");
            fail ();
        }
        gl_sleep_ms (20);
    }
}

static __attribute__ ((unused)) const char *
t_s (const json_t *obj, const char *path1, const char *path2)
{
    const json_t *v = json_object_get (obj, path1);
    if (path2)
        v = json_object_get (v, path2);
    return json_string_value (v);
}

static __attribute__ ((unused)) int64_t
t_i (const json_t *obj, const char *path1, const char *path2)
{
    const json_t *v = json_object_get (obj, path1);
    if (path2)
        v = json_object_get (v, path2);
    return json_integer_value (v);
}

static __attribute__ ((unused)) int
t_env_setup (void)
{
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    snprintf (s_dir, sizeof s_dir, "%s", s_redis->dir);
    snprintf (s_clock_path, sizeof s_clock_path, "%s/clock", s_dir);
    snprintf (s_conf_path, sizeof s_conf_path, "%s/referral.conf", s_dir);
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-referral-%d.log", (int) getpid ());
    unlink (s_log_path);
    FILE *f = fopen (s_conf_path, "w");
    if (!f)
        return -1;
    fputs (s_conf, f);
    fclose (f);
    t_clock_set (s_now);
    setenv ("GL_CLOCK_FILE", s_clock_path, 1);
    gl_log_init ("test", GL_LOG_WARN, false);
    s_r = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 5000, 10000);
    char err[256];
    gl_pub_opts_t po;
    gl_pub_opts_default (&po);
    po.bind = "tcp://127.0.0.1:*";
    s_intake = gl_pub_new (s_r, "intake-1", &po, err, sizeof err);
    if (!s_intake) {
        fprintf (stderr, "publisher: %s\n", err);
        return -1;
    }
    s_router_port = gl_test_free_port ();
    s_health_port = gl_test_free_port ();
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", s_router_port);
    s_client = gl_req_new (endpoint);
    gl_req_set_auth (s_client, T_TOKEN);
    return 0;
}

//  Wait until referral answers a request.
static __attribute__ ((unused)) void
t_wait_up (void)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (gl_mono_ms () < deadline) {
        json_t *out = NULL;
        int status = t_req ("referral.units", SUP, "[\"supervisor\"]", "[]", NULL, NULL, NULL,
                            NULL, &out);
        json_decref (out);
        if (status == 200)
            return;
        gl_sleep_ms (50);
    }
    fail_msg ("referral did not come up (log: %s)", s_log_path);
}

static __attribute__ ((unused)) void
t_env_teardown (void)
{
    if (s_referral > 0)
        gl_test_stop (s_referral, 10000);
    s_referral = -1;
    gl_req_destroy (&s_client);
    gl_pub_destroy (&s_intake);
    gl_redis_destroy (&s_r);
    gl_testredis_destroy (&s_redis);
}

//  The log of the service must never hold a personal detail the test gave it.
static __attribute__ ((unused)) void
t_log_clean (const char *const *needles)
{
    FILE *f = fopen (s_log_path, "r");
    assert_non_null (f);
    char line[4096];
    while (fgets (line, sizeof line, f))
        for (size_t i = 0; needles[i]; i++)
            if (strstr (line, needles[i])) {
                fprintf (stderr, "log line holds %s: %s", needles[i], line);
                fail ();
            }
    fclose (f);
}

//  A clean stop: exit status 0, and nothing in the service's log from the sanitizers. Last in a
//  test file: the service is gone afterwards.
static __attribute__ ((unused)) void
test_clean_stop (void **state)
{
    (void) state;
    int status = gl_test_stop (s_referral, 20000);
    s_referral = -1;
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    static const char *const reports[] = { "Sanitizer", "runtime error", NULL };
    t_log_clean (reports);
}

#endif
