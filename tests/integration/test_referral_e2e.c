/*  referral end to end through intake's HTTP API: gl-intake and gl-referral as processes on one
    private redis-server. An agent logs a contact and requests a referral and raises an
    emergency at intake (202); referral takes both from intake's log; the unit's officer sees
    the referral in the inbox, acknowledges and closes it through intake's forwarded routes
    (and a user of another unit cannot see a sensitive one); the emergency appears on the
    supervisor's board with its alarm requested for the on-duty officer, who acknowledges it;
    the public partner-ack route refuses a forged token; roles are enforced by intake; the route
    preview names the unit a referral with the same inputs is then routed to.

    ctest: timeout=240 */
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define T_WAIT_MS   60000
#define T_TOKEN     "tok-referral-e2e"
#define T_ADMIN     "adminpass"
#define T_PASS      "password-e2e-1"
//  Monday 2026-01-05 09:00 UTC.
#define T_NOW       (INT64_C(1767571200000) + 9 * INT64_C(3600000))

enum { U_ADMIN, U_AGENT, U_LEGAL, U_GBV, U_DUTY, U_SUP, U_COUNT };

static struct {
    const char *name, *roles, *units;
    char id[GL_ID_LEN + 1];
    char token[200];
} s_users[U_COUNT] = {
    { "admin", NULL, NULL, "", "" },
    { "agent1", "[\"agent\"]", "[]", "", "" },
    { "legal1", "[\"protection\"]", "[\"legal\"]", "", "" },
    { "gbv1", "[\"protection\"]", "[\"gbv\"]", "", "" },
    { "duty1", "[\"protection\"]", "[\"protection\"]", "", "" },
    { "super1", "[\"supervisor\"]", "[]", "", "" },
};

static gl_testredis_t *s_redis;
static gl_redis_t *s_r;
static pid_t s_intake = -1, s_referral = -1, s_notifier = -1;
static int s_http_port, s_pub_port, s_router_port, s_intake_router_port, s_ref_pub_port;
static char s_log_path[200], s_clock_path[300], s_conf_path[300];

static gl_test_resp_t
t_call (int user, const char *method, const char *path, const char *body)
{
    char request[8192];
    int n = snprintf (request, sizeof request, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
                      method, path);
    if (user >= 0)
        n += snprintf (request + n, sizeof request - (size_t) n, "Authorization: Bearer %s\r\n",
                       s_users[user].token);
    if (body)
        n += snprintf (request + n, sizeof request - (size_t) n,
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen (body), body);
    else
        n += snprintf (request + n, sizeof request - (size_t) n, "\r\n");
    return gl_test_http_raw (s_http_port, request, (size_t) n);
}

//  The request must answer status; returns the JSON body.
static json_t *
t_ok (int user, const char *method, const char *path, const char *body, int status)
{
    gl_test_resp_t resp = t_call (user, method, path, body);
    if (resp.status != status)
        fprintf (stderr, "%s %s: expected %d, got %s\n", method, path, status, resp.raw);
    assert_int_equal (resp.status, status);
    json_t *json = json_loadb (resp.body, resp.body_len, 0, NULL);
    assert_non_null (json);
    gl_test_http_free (&resp);
    return json;
}

static const char *
t_err_code (const json_t *json)
{
    return json_string_value (json_object_get (json_object_get (json, "error"), "code"));
}

static int
t_login (int user)
{
    char body[256];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", s_users[user].name,
              user == U_ADMIN ? T_ADMIN : T_PASS);
    gl_test_resp_t resp = t_call (-1, "POST", "/api/v1/auth/login", body);
    int status = resp.status;
    if (status == 200) {
        json_t *json = json_loadb (resp.body, resp.body_len, 0, NULL);
        snprintf (s_users[user].token, sizeof s_users[user].token, "%s",
                  json_string_value (json_object_get (json, "token")));
        snprintf (s_users[user].id, sizeof s_users[user].id, "%s",
                  json_string_value (json_object_get (json_object_get (json, "user"), "id")));
        json_decref (json);
    }
    gl_test_http_free (&resp);
    return status;
}

static int
t_wait_ready (void)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    while (gl_mono_ms () < deadline) {
        gl_test_resp_t resp = t_call (-1, "GET", "/ready", NULL);
        int status = resp.status;
        gl_test_http_free (&resp);
        if (status == 200)
            return 0;
        gl_sleep_ms (100);
    }
    return -1;
}

static pid_t
t_spawn (const char *binary, char env[][400], int n)
{
    char *envp[24];
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    char *argv[] = { (char *) binary, NULL };
    char rel[128];
    snprintf (rel, sizeof rel, "services/%s/gl-%s", binary, binary);
    return gl_test_spawn (gl_test_build_path (rel), argv, envp, s_log_path);
}

static int
t_setup (void **state)
{
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    s_r = gl_redis_new ("127.0.0.1", s_redis->port, NULL, 5000, 5000);
    s_http_port = gl_test_free_port ();
    s_pub_port = gl_test_free_port ();
    s_router_port = gl_test_free_port ();
    s_intake_router_port = gl_test_free_port ();
    s_ref_pub_port = gl_test_free_port ();
    snprintf (s_log_path, sizeof s_log_path, "/tmp/gl-test-referral-e2e-%d.log", (int) getpid ());
    snprintf (s_clock_path, sizeof s_clock_path, "%s/clock", s_redis->dir);
    snprintf (s_conf_path, sizeof s_conf_path, "%s/referral.conf", s_redis->dir);
    unlink (s_log_path);
    FILE *f = fopen (s_clock_path, "w");
    fprintf (f, "%" PRId64 "\n", T_NOW);
    fclose (f);
    char env[24][400];
    int n = 0;
    snprintf (env[n++], 400, "GL_REDIS_HOST=127.0.0.1");
    snprintf (env[n++], 400, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (env[n++], 400, "GL_BUS_TOKENS=" T_TOKEN);
    snprintf (env[n++], 400, "GL_CLOCK_FILE=%s", s_clock_path);
    snprintf (env[n++], 400, "GL_ENDPOINT_REFERRAL=tcp://127.0.0.1:%d", s_router_port);
    int common = n;
    snprintf (env[n++], 400, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", s_pub_port);
    snprintf (env[n++], 400, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", s_intake_router_port);
    snprintf (env[n++], 400, "GL_SOURCE=intake-1");
    snprintf (env[n++], 400, "GL_HTTP_PORT=%d", s_http_port);
    snprintf (env[n++], 400, "GL_INTAKE_BOOTSTRAP_ADMIN=admin:" T_ADMIN);
    snprintf (env[n++], 400, "GL_INTAKE_ARGON2_OPSLIMIT=1");
    snprintf (env[n++], 400, "GL_INTAKE_ARGON2_MEMLIMIT=8192");
    snprintf (env[n++], 400, "GL_INTAKE_INDEX_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    s_intake = t_spawn ("intake", env, n);
    if (s_intake < 0 || t_wait_ready () != 0 || t_login (U_ADMIN) != 200) {
        fprintf (stderr, "gl-intake did not start; its log is %s\n", s_log_path);
        return -1;
    }
    for (int u = U_AGENT; u < U_COUNT; u++) {
        char body[512];
        snprintf (body, sizeof body,
                  "{\"username\":\"%s\",\"password\":\"%s\",\"roles\":%s,\"units\":%s,"
                  "\"languages\":[\"ar\",\"en\"],\"display_name\":\"E2E %s\"}",
                  s_users[u].name, T_PASS, s_users[u].roles, s_users[u].units, s_users[u].name);
        json_decref (t_ok (U_ADMIN, "POST", "/api/v1/users", body, 201));
        if (t_login (u) != 200)
            return -1;
    }
    //  referral's configuration names intake's users by their ids.
    f = fopen (s_conf_path, "w");
    fprintf (f,
             "unit protection 24x7 focal=%s\nunit legal focal=%s\nunit gbv sensitive\n"
             "member legal %s\nmember gbv %s\nmember protection %s\n"
             "roster protection daily 00:00-24:00 %s\nroster legal daily 00:00-24:00 %s\n"
             "roster gbv daily 00:00-24:00 %s\n"
             "rule gbv * * * gbv\nrule legal * * * legal\ndefault protection\n"
             "sla * * ack=4h resolve=3d\nescalation focal=1h supervisor=2h\n"
             "emergency protection ack=5m repeat=2m\n",
             s_users[U_DUTY].id, s_users[U_LEGAL].id, s_users[U_LEGAL].id, s_users[U_GBV].id,
             s_users[U_DUTY].id, s_users[U_DUTY].id, s_users[U_LEGAL].id, s_users[U_GBV].id);
    fclose (f);
    n = common;
    snprintf (env[n++], 400, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", s_ref_pub_port);
    snprintf (env[n++], 400, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", s_router_port);
    snprintf (env[n++], 400, "GL_BUS_PUB_ENDPOINTS=tcp://127.0.0.1:%d", s_pub_port);
    snprintf (env[n++], 400, "GL_REFERRAL_CONFIG=%s", s_conf_path);
    snprintf (env[n++], 400, "GL_REFERRAL_TICK_MS=50");
    snprintf (env[n++], 400, "GL_HEALTH_PORT=0");
    s_referral = t_spawn ("referral", env, n);
    n = common;
    snprintf (env[n++], 400, "GL_BUS_BIND_PUB=tcp://127.0.0.1:*");
    snprintf (env[n++], 400, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:*");
    snprintf (env[n++], 400, "GL_BUS_PUB_ENDPOINTS=tcp://127.0.0.1:%d", s_ref_pub_port);
    snprintf (env[n++], 400, "GL_ENDPOINT_INTAKE=tcp://127.0.0.1:%d", s_intake_router_port);
    snprintf (env[n++], 400, "GL_HEALTH_PORT=0");
    s_notifier = t_spawn ("notifier", env, n);
    return s_referral > 0 && s_notifier > 0 ? 0 : -1;
}

static int
t_teardown (void **state)
{
    if (s_notifier > 0)
        gl_test_stop (s_notifier, 10000);
    if (s_referral > 0)
        gl_test_stop (s_referral, 10000);
    if (s_intake > 0)
        gl_test_stop (s_intake, 10000);
    gl_redis_destroy (&s_r);
    gl_testredis_destroy (&s_redis);
    return 0;
}

//  GET path as user until it answers 200 (referral may not have taken the event yet).
static json_t *
t_poll (int user, const char *path)
{
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    for (;;) {
        gl_test_resp_t resp = t_call (user, "GET", path, NULL);
        if (resp.status == 200) {
            json_t *json = json_loadb (resp.body, resp.body_len, 0, NULL);
            gl_test_http_free (&resp);
            return json;
        }
        if (gl_mono_ms () > deadline)
            fail_msg ("GET %s never answered 200: %s (logs: %s)", path, resp.raw, s_log_path);
        gl_test_http_free (&resp);
        gl_sleep_ms (50);
    }
}

//  A new contact by the agent; its id into out.
static void
t_contact (const char *category, char out[GL_ID_LEN + 1])
{
    char body[512];
    snprintf (body, sizeof body,
              "{\"channel\":\"call\",\"direction\":\"inbound\",\"language\":\"ar\",\"anonymous\":true,"
              "\"categories\":[\"%s\"],\"outcome\":\"referral_made\"}", category);
    json_t *c = t_ok (U_AGENT, "POST", "/api/v1/contacts", body, 201);
    snprintf (out, GL_ID_LEN + 1, "%s", json_string_value (json_object_get (c, "id")));
    json_decref (c);
}

static void
test_referral_through_intake (void **state)
{
    char contact[GL_ID_LEN + 1], path[256], body[512];
    t_contact ("legal.residency", contact);
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"category\":\"legal.residency\",\"priority\":\"normal\","
              "\"consent\":true,\"notes\":\"SECRET-NOTE-e2e\"}", contact);
    json_t *a = t_ok (U_AGENT, "POST", "/api/v1/referrals", body, 202);
    char id[GL_ID_LEN + 1];
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (a, "referral_id")));
    json_decref (a);
    //  The legal officer finds it in the unit's inbox once referral has routed it.
    snprintf (path, sizeof path, "/api/v1/referrals/%s/lifecycle", id);
    json_t *life = t_poll (U_LEGAL, path);
    json_t *rec = json_object_get (life, "referral");
    assert_string_equal (json_string_value (json_object_get (rec, "unit")), "legal");
    assert_string_equal (json_string_value (json_object_get (rec, "assignee")), s_users[U_LEGAL].id);
    json_decref (life);
    json_t *inbox = t_ok (U_LEGAL, "GET", "/api/v1/referrals?unit=legal", NULL, 200);
    assert_int_equal (json_array_size (json_object_get (inbox, "referrals")), 1);
    json_decref (inbox);
    //  Roles are intake's: an agent cannot acknowledge (403 from intake).
    snprintf (path, sizeof path, "/api/v1/referrals/%s/ack", id);
    json_decref (t_ok (U_AGENT, "POST", path, "{}", 403));
    json_t *ack = t_ok (U_LEGAL, "POST", path, "{}", 200);
    assert_string_equal (json_string_value (json_object_get (json_object_get (ack, "referral"), "status")),
                         "acknowledged");
    json_decref (ack);
    json_t *again = t_ok (U_LEGAL, "POST", path, "{}", 409);
    assert_string_equal (t_err_code (again), "invalid_transition");
    json_decref (again);
    snprintf (path, sizeof path, "/api/v1/referrals/%s/close", id);
    json_t *bad = t_ok (U_LEGAL, "POST", path, "{\"outcome\":\"whatever\"}", 400);
    assert_string_equal (t_err_code (bad), "invalid_field");
    json_decref (bad);
    json_decref (t_ok (U_LEGAL, "POST", path, "{\"outcome\":\"resolved\"}", 200));

    //  A sensitive one: only the gbv unit sees it.
    t_contact ("gbv.disclosure", contact);
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"category\":\"gbv.disclosure\",\"priority\":\"high\","
              "\"consent\":true}", contact);
    a = t_ok (U_AGENT, "POST", "/api/v1/referrals", body, 202);
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (a, "referral_id")));
    json_decref (a);
    snprintf (path, sizeof path, "/api/v1/referrals/%s/lifecycle", id);
    json_decref (t_poll (U_GBV, path));
    json_t *hidden = t_ok (U_LEGAL, "GET", path, NULL, 404);
    assert_string_equal (t_err_code (hidden), "not_found");
    json_decref (hidden);
    json_decref (t_ok (U_SUP, "GET", path, NULL, 404));
    json_t *units = t_ok (U_AGENT, "GET", "/api/v1/units", NULL, 200);
    assert_int_equal (json_array_size (json_object_get (units, "units")), 3);
    json_decref (units);
    //  A forged partner token, on the public route.
    json_t *forged = t_ok (-1, "POST", "/api/v1/partner-ack", "{\"token\":\"x.y.1.00\"}", 400);
    assert_string_equal (t_err_code (forged), "invalid_field");
    json_decref (forged);
}

//  The route preview through intake's forwarded route (a literal segment, not raise.c's
//  /api/v1/referrals/{id}): it names the unit the referral is then routed to, with the same
//  deadlines on the unmoved business clock; a bad query is referral's 400 naming the field.
static void
test_route_preview_through_intake (void **state)
{
    static const char *const categories[] = { "legal.civil_documentation", "education.enrolment" };
    for (size_t i = 0; i < 2; i++) {
        char path[256], body[512], contact[GL_ID_LEN + 1], id[GL_ID_LEN + 1];
        snprintf (path, sizeof path,
                  "/api/v1/referrals/route-preview?category=%s&priority=normal&consent=true"
                  "&language=ar",
                  categories[i]);
        json_t *p = t_ok (U_AGENT, "GET", path, NULL, 200);
        const char *unit = json_string_value (json_object_get (json_object_get (p, "unit"), "code"));
        assert_string_equal (unit, i == 0 ? "legal" : "protection");
        assert_int_equal (json_is_true (json_object_get (json_object_get (p, "rule"), "default")),
                          i == 1);
        t_contact (categories[i], contact);
        snprintf (body, sizeof body,
                  "{\"contact_id\":\"%s\",\"category\":\"%s\",\"priority\":\"normal\","
                  "\"consent\":true}",
                  contact, categories[i]);
        json_t *a = t_ok (U_AGENT, "POST", "/api/v1/referrals", body, 202);
        snprintf (id, sizeof id, "%s", json_string_value (json_object_get (a, "referral_id")));
        json_decref (a);
        snprintf (path, sizeof path, "/api/v1/referrals/%s/lifecycle", id);
        json_t *life = t_poll (U_AGENT, path);
        json_t *rec = json_object_get (life, "referral");
        assert_string_equal (json_string_value (json_object_get (rec, "unit")), unit);
        assert_int_equal (json_integer_value (json_object_get (rec, "ack_due")),
                          json_integer_value (json_object_get (json_object_get (p, "sla"), "ack_due")));
        json_decref (life);
        json_decref (p);
    }
    json_t *bad = t_ok (U_AGENT, "GET",
                        "/api/v1/referrals/route-preview?category=legal&priority=urgent&consent=true",
                        NULL, 400);
    assert_string_equal (t_err_code (bad), "invalid_field");
    assert_string_equal (json_string_value (json_object_get (json_object_get (bad, "error"), "field")),
                         "priority");
    json_decref (bad);
    json_decref (t_ok (-1, "GET",
                       "/api/v1/referrals/route-preview?category=legal&priority=normal&consent=true",
                       NULL, 401));
}

static void
test_emergency_through_intake (void **state)
{
    char contact[GL_ID_LEN + 1], body[512], path[256];
    t_contact ("protection_concern.threat", contact);
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"type\":\"threat_to_life\",\"location\":\"AMM-02\","
              "\"callback_possible\":true,\"notes\":\"SECRET-NOTE-emergency\"}", contact);
    json_t *a = t_ok (U_AGENT, "POST", "/api/v1/emergencies", body, 202);
    char id[GL_ID_LEN + 1];
    snprintf (id, sizeof id, "%s", json_string_value (json_object_get (a, "emergency_id")));
    json_decref (a);
    //  On the supervisor's board, unacknowledged, first.
    int64_t deadline = gl_mono_ms () + T_WAIT_MS;
    for (;;) {
        json_t *board = t_ok (U_SUP, "GET", "/api/v1/emergencies", NULL, 200);
        json_t *first = json_array_get (json_object_get (board, "emergencies"), 0);
        bool there = first && strcmp (json_string_value (json_object_get (first, "emergency_id")), id) == 0;
        if (there) {
            assert_string_equal (json_string_value (json_object_get (first, "status")), "alarm");
            assert_string_equal (json_string_value (json_object_get (first, "on_duty")),
                                 s_users[U_DUTY].id);
        }
        json_decref (board);
        if (there)
            break;
        assert_true (gl_mono_ms () < deadline);
        gl_sleep_ms (50);
    }
    //  The alarm is requested for the on-duty officer, in referral's log, with no notes.
    redisReply *r = gl_redis_cmd (s_r, "XRANGE gl:log:{referral-1} - +");
    assert_non_null (r);
    int alarms = 0;
    char nid[GL_ID_LEN + 1] = "";
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *v = r->element[i]->element[1]->element[1];
        for (size_t k = 0; k + 11 <= v->len; k++)
            assert_true (memcmp (v->str + k, "SECRET-NOTE", 11) != 0);
        gl_event_err_t why;
        gl_event_t *ev = gl_event_decode (v->str, v->len, &why, NULL, 0);
        assert_non_null (ev);
        if (strcmp (ev->type, "notification.requested") == 0 && strcmp (ev->corr, id) == 0
            && strcmp (gl_event_str (ev, "template", ""), "emergency.alarm") == 0
            && strcmp (gl_event_str (ev, "priority", ""), "emergency") == 0) {
            alarms++;
            json_t *to = json_object_get (ev->data, "recipient");
            if (strcmp (json_string_value (json_object_get (to, "kind")), "user") == 0)
                snprintf (nid, sizeof nid, "%s", gl_event_str (ev, "notification_id", ""));
        }
        gl_event_destroy (&ev);
    }
    freeReplyObject (r);
    assert_int_equal (alarms, 2);
    assert_true (gl_id_valid (nid));
    //  Into notifier's work queue: one item per channel of the officer's alarm. An item is seen
    //  by its marker (queued or done) or, once dead-lettered (the officer has no phone here:
    //  sms and voice die at once, and their markers go), by its dead letter.
    deadline = gl_mono_ms () + T_WAIT_MS;
    for (;;) {
        redisReply *k = gl_redis_cmd (s_r, "KEYS gl:wq:{notifier}:k:%s:*", nid);
        assert_non_null (k);
        bool sms = false, voice = false, console = false;
        for (size_t i = 0; i < k->elements; i++) {
            sms |= strstr (k->element[i]->str, ":sms:") != NULL;
            voice |= strstr (k->element[i]->str, ":voice:") != NULL;
            console |= strstr (k->element[i]->str, ":console:") != NULL;
        }
        freeReplyObject (k);
        redisReply *dead = gl_redis_cmd (s_r, "XRANGE gl:wq:{notifier}:dead - +");
        assert_non_null (dead);
        for (size_t i = 0; dead->type == REDIS_REPLY_ARRAY && i < dead->elements; i++) {
            redisReply *f = dead->element[i]->element[1];
            for (size_t j = 0; j + 1 < f->elements; j += 2) {
                const char *value = f->element[j + 1]->str;
                if (strcmp (f->element[j]->str, "k") != 0 || strncmp (value, nid, strlen (nid)) != 0)
                    continue;
                sms |= strstr (value, ":sms:") != NULL;
                voice |= strstr (value, ":voice:") != NULL;
                console |= strstr (value, ":console:") != NULL;
            }
        }
        freeReplyObject (dead);
        if (sms && voice && console)
            break;
        if (gl_mono_ms () > deadline)
            fail_msg ("the alarm never reached notifier's queue (logs: %s)", s_log_path);
        gl_sleep_ms (50);
    }
    //  notifier reports the console alert sent; the board counts it.
    deadline = gl_mono_ms () + T_WAIT_MS;
    for (;;) {
        json_t *board = t_ok (U_SUP, "GET", "/api/v1/emergencies", NULL, 200);
        json_t *first = json_array_get (json_object_get (board, "emergencies"), 0);
        bool delivered = json_integer_value (json_object_get (first, "delivered")) >= 1;
        if (delivered)
            assert_false (json_is_true (json_object_get (first, "undelivered")));
        json_decref (board);
        if (delivered)
            break;
        if (gl_mono_ms () > deadline)
            fail_msg ("no delivery report reached the board (logs: %s)", s_log_path);
        gl_sleep_ms (100);
    }
    //  The on-duty officer acknowledges through intake.
    snprintf (path, sizeof path, "/api/v1/emergencies/%s/ack", id);
    json_decref (t_ok (U_AGENT, "POST", path, "{}", 403));
    json_t *ack = t_ok (U_DUTY, "POST", path, "{}", 200);
    assert_string_equal (json_string_value (json_object_get (json_object_get (ack, "emergency"), "acked_by")),
                         s_users[U_DUTY].id);
    json_decref (ack);
    json_decref (t_ok (U_SUP, "POST", path, "{}", 200));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_referral_through_intake),
        cmocka_unit_test (test_route_preview_through_intake),
        cmocka_unit_test (test_emergency_through_intake),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
