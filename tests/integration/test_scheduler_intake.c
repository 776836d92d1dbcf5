/*  End to end through intake's HTTP API: gl-intake and gl-scheduler as processes against one
    private redis-server and one driven business clock, talking over real ZeroMQ both ways
    (intake -> scheduler: scheduler.book and the forwarded routes; scheduler -> intake:
    intake.delivery_details for a no-show's phone number).

    An agent verifies a caller in a call and books through POST /api/v1/appointments (201 with
    scheduler's appointment and slip; the same Idempotency-Key answers the same booking), sees
    the place gone from GET /api/v1/slots, finds the appointment by case number in the body of a
    POST search, cancels it; a supervisor creates a campaign, loads last week's no-shows, and an
    agent takes the call with the phone number intake holds. Roles are enforced at both ends.
    The person export through intake includes scheduler's part (scheduler.person_export).

    ctest: timeout=240 */
#include "gl/gl_clock.h"
#include "gl/gl_id.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define T_TOKEN     "tok-scheduler-e2e"
#define T_ADMIN     "adminpass"
#define T_START_MS  INT64_C (1798948800000)     //  Sunday 2027-01-03 07:00 at +03:00
#define T_CASE      "QZE-44C00004"
#define T_DOB       "1985-03-09"
#define T_PHONE     "+962790444004"

static gl_testredis_t *s_redis;
static pid_t s_intake = -1, s_sched = -1;
static int s_http, s_intake_router, s_sched_router;
static char s_clock[300], s_conf[300], s_ilog[300], s_slog[300];
static char s_admin[128], s_agent[128], s_super[128], s_client[128];
static char s_call[GL_ID_LEN + 1], s_appt[GL_ID_LEN + 1];

static const char *s_conf_text =
    "[service renewal]\nname = Renewal\nname.fr = Renouvellement\nduration = 30m\ncapacity = 3\n"
    "lead = 24h\nhorizon = 30d\n"
    "[centre c1]\nname = Centre One\naddress = 1 Main Street\ntimezone = +03:00\n"
    "weekend = fri, sat\nhours = 08:00-15:00\nlanguages = ar, en, fr\nservices = renewal\n";

static void
t_clock_set (int64_t ms)
{
    char tmp[320];
    snprintf (tmp, sizeof tmp, "%s.tmp", s_clock);
    FILE *f = fopen (tmp, "w");
    assert_non_null (f);
    fprintf (f, "%" PRId64 "\n", ms);
    fclose (f);
    assert_int_equal (rename (tmp, s_clock), 0);
}

static gl_test_resp_t
t_http (const char *method, const char *path, const char *token, const char *extra,
        const char *body)
{
    size_t cap = 8192 + (body ? strlen (body) : 0);
    char *request = malloc (cap);
    int n = snprintf (request, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
                      method, path);
    if (token)
        n += snprintf (request + n, cap - (size_t) n, "Authorization: Bearer %s\r\n", token);
    if (extra)
        n += snprintf (request + n, cap - (size_t) n, "%s", extra);
    if (body)
        n += snprintf (request + n, cap - (size_t) n,
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen (body), body);
    else
        n += snprintf (request + n, cap - (size_t) n, "\r\n");
    gl_test_resp_t resp = gl_test_http_raw (s_http, request, (size_t) n);
    free (request);
    return resp;
}

//  The call must answer status; returns its JSON body (caller decrefs).
static json_t *
t_ok (const char *method, const char *path, const char *token, const char *extra,
      const char *body, int status)
{
    gl_test_resp_t resp = t_http (method, path, token, extra, body);
    if (resp.status != status)
        fprintf (stderr, "%s %s: expected %d, got: %s\n", method, path, status, resp.raw);
    assert_int_equal (resp.status, status);
    json_t *json = json_loadb (resp.body, resp.body_len, 0, NULL);
    assert_non_null (json);
    gl_test_http_free (&resp);
    return json;
}

static const char *
t_code (json_t *err)
{
    return json_string_value (json_object_get (json_object_get (err, "error"), "code"));
}

static void
t_login (const char *user, const char *password, char *token)
{
    char body[256];
    snprintf (body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", user, password);
    json_t *j = t_ok ("POST", "/api/v1/auth/login", NULL, NULL, body, 200);
    snprintf (token, 128, "%s", json_string_value (json_object_get (j, "token")));
    json_decref (j);
}

static void
t_user (const char *user, const char *roles, char *token)
{
    char body[512], password[64];
    snprintf (password, sizeof password, "%s-password-1", user);
    snprintf (body, sizeof body,
              "{\"username\":\"%s\",\"password\":\"%s\",\"roles\":%s,\"units\":[\"unit-a\"],"
              "\"languages\":[\"ar\",\"en\"],\"display_name\":\"Test\"}",
              user, password, roles);
    json_decref (t_ok ("POST", "/api/v1/users", s_admin, NULL, body, 201));
    t_login (user, password, token);
}

static pid_t
t_spawn (const char *bin, char env[][320], int n, const char *log)
{
    char *envp[32];
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    const char *path = gl_test_build_path (bin);
    char *argv[] = { (char *) path, NULL };
    return gl_test_spawn (path, argv, envp, log);
}

static int
t_setup (void **state)
{
    (void) state;
    s_redis = gl_testredis_start (NULL);
    assert_non_null (s_redis);
    snprintf (s_clock, sizeof s_clock, "%s/clock", s_redis->dir);
    snprintf (s_conf, sizeof s_conf, "%s/scheduler.conf", s_redis->dir);
    snprintf (s_ilog, sizeof s_ilog, "%s/intake.log", s_redis->dir);
    snprintf (s_slog, sizeof s_slog, "%s/scheduler.log", s_redis->dir);
    FILE *f = fopen (s_conf, "w");
    assert_non_null (f);
    fputs (s_conf_text, f);
    fclose (f);
    t_clock_set (T_START_MS);
    s_http = gl_test_free_port ();
    s_intake_router = gl_test_free_port ();
    s_sched_router = gl_test_free_port ();

    char env[32][320];
    int n = 0;
    snprintf (env[n++], 320, "GL_REDIS_HOST=127.0.0.1");
    snprintf (env[n++], 320, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (env[n++], 320, "GL_BUS_TOKENS=" T_TOKEN);
    snprintf (env[n++], 320, "GL_CLOCK_FILE=%s", s_clock);
    snprintf (env[n++], 320, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    snprintf (env[n++], 320, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (env[n++], 320, "GL_BUS_PUB_ENDPOINTS=");
    int common = n;
    snprintf (env[n++], 320, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", s_sched_router);
    snprintf (env[n++], 320, "GL_ENDPOINT_INTAKE=tcp://127.0.0.1:%d", s_intake_router);
    snprintf (env[n++], 320, "GL_SOURCE=scheduler-1");
    snprintf (env[n++], 320, "GL_SCHEDULER_CONFIG=%s", s_conf);
    snprintf (env[n++], 320, "GL_SCHEDULER_TICK_MS=100");
    s_sched = t_spawn ("services/scheduler/gl-scheduler", env, n, s_slog);
    assert_true (s_sched > 0);
    n = common;
    snprintf (env[n - 3], 320, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    snprintf (env[n - 2], 320, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (env[n++], 320, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", s_intake_router);
    snprintf (env[n++], 320, "GL_ENDPOINT_SCHEDULER=tcp://127.0.0.1:%d", s_sched_router);
    snprintf (env[n++], 320, "GL_SOURCE=intake-1");
    snprintf (env[n++], 320, "GL_HTTP_PORT=%d", s_http);
    snprintf (env[n++], 320, "GL_INTAKE_SCHEDULER_TIMEOUT_MS=5000");
    snprintf (env[n++], 320, "GL_INTAKE_BOOTSTRAP_ADMIN=admin:" T_ADMIN);
    snprintf (env[n++], 320, "GL_INTAKE_ARGON2_OPSLIMIT=1");
    snprintf (env[n++], 320, "GL_INTAKE_ARGON2_MEMLIMIT=8192");
    snprintf (env[n++], 320, "GL_INTAKE_SESSION_IDLE_S=86400");
    snprintf (env[n++], 320, "GL_INTAKE_SESSION_MAX_S=2592000");
    snprintf (env[n++], 320, "GL_INTAKE_VERIFY_GRANT_S=86400");
    s_intake = t_spawn ("services/intake/gl-intake", env, n, s_ilog);
    assert_true (s_intake > 0);
    for (int i = 0; i < 300; i++) {
        gl_test_resp_t r = t_http ("GET", "/ready", NULL, NULL, NULL);
        int status = r.status;
        gl_test_http_free (&r);
        if (status == 200)
            break;
        gl_sleep_ms (100);
    }
    t_login ("admin", T_ADMIN, s_admin);
    t_user ("qzagent", "[\"agent\"]", s_agent);
    t_user ("qzsuper", "[\"supervisor\"]", s_super);
    json_t *c = t_ok ("POST", "/api/v1/clients", s_admin, NULL,
                      "{\"name\":\"registration system\",\"roles\":[\"api_client\"]}", 201);
    snprintf (s_client, sizeof s_client, "%s", json_string_value (json_object_get (c, "token")));
    json_decref (c);
    gl_id_new (s_call);
    return 0;
}

static int
t_teardown (void **state)
{
    (void) state;
    int a = s_intake > 0 ? gl_test_stop (s_intake, 10000) : 0;
    int b = s_sched > 0 ? gl_test_stop (s_sched, 10000) : 0;
    //  No case or phone number in either log.
    const char *logs[] = { s_ilog, s_slog };
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen (logs[i], "r");
        char line[4096];
        while (f && fgets (line, sizeof line, f))
            if (strstr (line, T_CASE) || strstr (line, T_PHONE)) {
                fprintf (stderr, "personal data in %s: %s", logs[i], line);
                fail ();
            }
        if (f)
            fclose (f);
    }
    assert_true (WIFEXITED (a) && WEXITSTATUS (a) == 0);
    assert_true (WIFEXITED (b) && WEXITSTATUS (b) == 0);
    gl_testredis_destroy (&s_redis);
    return 0;
}

static void
test_book_through_intake (void **state)
{
    (void) state;
    //  The case extract and the caller's verification in the call
    json_t *imp = json_pack ("{s:s}", "csv",
                             "case_no,as_of,dob,family_size,phones,language\n" T_CASE
                             ",2026-12-01," T_DOB ",4," T_PHONE ",fr\n");
    char *body = json_dumps (imp, JSON_COMPACT);
    json_decref (t_ok ("POST", "/api/v1/cases/import", s_client, NULL, body, 200));
    free (body);
    json_decref (imp);
    char path[256], text[1024];
    snprintf (path, sizeof path, "/api/v1/cases/%s/verify", T_CASE);
    snprintf (text, sizeof text,
              "{\"call_id\":\"%s\",\"answers\":{\"dob\":\"" T_DOB "\",\"family_size\":4}}", s_call);
    json_decref (t_ok ("POST", path, s_agent, NULL, text, 200));

    //  Book, and book again with the same key
    snprintf (text, sizeof text,
              "{\"case_no\":\"" T_CASE "\",\"call_id\":\"%s\",\"service\":\"renewal\","
              "\"centre\":\"c1\",\"slot_id\":\"20270104T0900\"}",
              s_call);
    const char *key = "Idempotency-Key: e2e-booking-1\r\n";
    json_t *a = t_ok ("POST", "/api/v1/appointments", s_agent, key, text, 201);
    json_t *b = t_ok ("POST", "/api/v1/appointments", s_agent, key, text, 201);
    const char *id = json_string_value (json_object_get (a, "appointment_id"));
    assert_true (gl_id_valid (id));
    assert_string_equal (json_string_value (json_object_get (b, "appointment_id")), id);
    json_t *slip = json_object_get (a, "slip");
    assert_string_equal (json_string_value (json_object_get (slip, "language")), "fr");
    assert_non_null (strstr (json_string_value (json_object_get (slip, "text")),
                             "Renouvellement"));
    char appt[GL_ID_LEN + 1];
    snprintf (appt, sizeof appt, "%s", id);
    snprintf (s_appt, sizeof s_appt, "%s", id);
    json_decref (a);
    json_decref (b);
    //  A refusal passes through with scheduler's code and field
    snprintf (text, sizeof text,
              "{\"case_no\":\"" T_CASE "\",\"call_id\":\"%s\",\"service\":\"renewal\","
              "\"centre\":\"c1\",\"slot_id\":\"20270108T0900\"}",
              s_call);
    json_t *e = t_ok ("POST", "/api/v1/appointments", s_agent, NULL, text, 422);
    assert_string_equal (t_code (e), "centre_closed");
    json_decref (e);

    //  The place is gone from the free slots
    snprintf (path, sizeof path, "/api/v1/slots?service=renewal&centre=c1&from=%" PRId64
                                 "&to=%" PRId64,
              (int64_t) (T_START_MS + 26 * 3600000LL), (int64_t) (T_START_MS + 26 * 3600000LL + 60000));
    json_t *s = t_ok ("GET", path, s_agent, NULL, NULL, 200);
    json_t *slot = json_array_get (json_object_get (s, "slots"), 0);
    assert_string_equal (json_string_value (json_object_get (slot, "slot_id")), "20270104T0900");
    assert_int_equal (json_integer_value (json_object_get (slot, "free")), 2);
    json_decref (s);
    json_decref (t_ok ("GET", "/api/v1/slots?service=renewal", "bogus-token", NULL, NULL, 401));
    json_t *bad = t_ok ("GET", "/api/v1/slots?service=renewal&colour=red", s_agent, NULL, NULL, 400);
    assert_string_equal (t_code (bad), "unknown_parameter");
    json_decref (bad);
    json_decref (t_ok ("GET", "/api/v1/centres", s_agent, NULL, NULL, 200));

    //  Found by case number in a POST body
    json_t *found = t_ok ("POST", "/api/v1/appointments/search", s_agent, NULL,
                          "{\"case_no\":\"" T_CASE "\"}", 200);
    assert_int_equal (json_array_size (json_object_get (found, "items")), 1);
    json_decref (found);
    json_decref (t_ok ("POST", "/api/v1/appointments/search", s_client, NULL,
                       "{\"case_no\":\"" T_CASE "\"}", 403));

    //  The person does not come: a no-show, recorded by the reception system after the end
    t_clock_set (T_START_MS + 28 * 3600000LL);         //  Monday 11:00
    //  A day later: the staff sign in again (sessions idle out after 24 h).
    t_login ("qzagent", "qzagent-password-1", s_agent);
    t_login ("qzsuper", "qzsuper-password-1", s_super);
    snprintf (path, sizeof path, "/api/v1/appointments/%s/no-show", appt);
    json_t *ns = t_ok ("POST", path, s_client, NULL, NULL, 200);
    assert_string_equal (json_string_value (json_object_get (ns, "status")), "no_show");
    json_decref (ns);
    snprintf (path, sizeof path, "/api/v1/appointments/%s/cancel", appt);
    e = t_ok ("POST", path, s_agent, NULL, "{}", 409);
    assert_string_equal (t_code (e), "not_booked");
    json_decref (e);

    //  A campaign to reschedule last week's no-shows; the agent gets the phone from intake.
    json_t *camp = t_ok ("POST", "/api/v1/campaigns", s_super, NULL,
                         "{\"name\":\"Reschedule\",\"kind\":\"schedule_appointments\","
                         "\"script\":\"You missed your appointment\"}",
                         201);
    char cid[GL_ID_LEN + 1];
    snprintf (cid, sizeof cid, "%s", json_string_value (json_object_get (camp, "campaign_id")));
    json_decref (camp);
    json_decref (t_ok ("POST", "/api/v1/campaigns", s_agent, NULL,
                       "{\"name\":\"x\",\"kind\":\"information\",\"script\":\"x\"}", 403));
    snprintf (path, sizeof path, "/api/v1/campaigns/%s/targets", cid);
    json_t *rep = t_ok ("POST", path, s_super, NULL, "{\"query\":\"no_shows_last_week\"}", 200);
    assert_int_equal (json_integer_value (json_object_get (rep, "imported")), 1);
    json_decref (rep);
    //  The phone number is asked from intake in the background.
    snprintf (path, sizeof path, "/api/v1/campaigns/%s/progress", cid);
    int64_t pending = 1;
    gl_sleep_ms (300);          //  let the first lookup go out before asking through intake
    for (int i = 0; i < 100 && pending; i++) {
        json_t *p = t_ok ("GET", path, s_super, NULL, NULL, 200);
        pending = json_integer_value (json_object_get (p, "phones_pending"));
        json_decref (p);
        if (pending)
            gl_sleep_ms (100);
    }
    assert_int_equal (pending, 0);
    snprintf (path, sizeof path, "/api/v1/campaigns/%s/next", cid);
    json_t *next = t_ok ("POST", path, s_agent, NULL, "{\"languages\":[\"fr\"]}", 200);
    if (!json_is_string (json_object_get (next, "phone"))) {
        char *dump = json_dumps (next, 0);
        fprintf (stderr, "next: %s\n", dump);
        free (dump);
    }
    assert_true (json_is_string (json_object_get (next, "phone")));
    assert_string_equal (json_string_value (json_object_get (next, "phone")), T_PHONE);
    assert_string_equal (json_string_value (json_object_get (next, "phone_status")),
                         "from_intake");
    snprintf (path, sizeof path, "/api/v1/outbound/%s/outcome",
              json_string_value (json_object_get (next, "attempt_id")));
    json_t *out = t_ok ("POST", path, s_agent, NULL, "{\"outcome\":\"reached\"}", 200);
    assert_string_equal (json_string_value (json_object_get (out, "status")), "done");
    json_decref (out);
    json_decref (next);
    snprintf (path, sizeof path, "/api/v1/campaigns/%s/progress", cid);
    json_t *prog = t_ok ("GET", path, s_super, NULL, NULL, 200);
    assert_int_equal (json_integer_value (json_object_get (prog, "done")), 1);
    json_decref (prog);
}

//  The person export through intake (POST /api/v1/persons/export): intake asks scheduler
//  (scheduler.person_export) and adds its answer; referral, without an endpoint here, is listed
//  as not asked. Exactly this person's appointment (the no-show) and campaign target (the phone
//  intake gave), by case number and by phone; other roles refused at intake.
static void
test_person_export (void **state)
{
    (void) state;
    char prot[128];
    t_login ("admin", T_ADMIN, s_admin);
    t_user ("qzprot", "[\"protection\"]", prot);
    json_decref (t_ok ("POST", "/api/v1/persons/export", s_agent, NULL,
                       "{\"case_number\":\"" T_CASE "\"}", 403));
    json_decref (t_ok ("POST", "/api/v1/persons/export", s_super, NULL,
                       "{\"case_number\":\"" T_CASE "\"}", 403));
    json_t *j = t_ok ("POST", "/api/v1/persons/export", prot, NULL,
                      "{\"case_number\":\"" T_CASE "\"}", 200);
    json_t *na = json_object_get (j, "not_asked");
    assert_int_equal (json_array_size (na), 1);
    assert_string_equal (json_string_value (json_array_get (na, 0)), "referral");
    json_t *sched = json_object_get (j, "scheduler");
    assert_true (json_is_true (json_object_get (sched, "complete")));
    assert_true (json_is_true (json_object_get (j, "complete")));
    json_t *rec = json_object_get (sched, "records");
    json_t *appts = json_object_get (rec, "appointments");
    assert_int_equal (json_array_size (appts), 1);
    json_t *a = json_array_get (appts, 0);
    assert_string_equal (json_string_value (json_object_get (a, "id")), s_appt);
    assert_string_equal (json_string_value (json_object_get (a, "status")), "no_show");
    json_t *targets = json_object_get (rec, "campaign_targets");
    assert_int_equal (json_array_size (targets), 1);
    json_t *t = json_array_get (targets, 0);
    assert_string_equal (json_string_value (json_object_get (t, "phone")), T_PHONE);
    assert_string_equal (json_string_value (json_object_get (t, "outcome")), "reached");
    json_decref (j);
    //  By phone (intake normalises it): the target, no appointment (they hold no phone).
    j = t_ok ("POST", "/api/v1/persons/export", s_admin, NULL,
              "{\"phone\":\"00962 790 444 004\"}", 200);
    rec = json_object_get (json_object_get (j, "scheduler"), "records");
    assert_int_equal (json_array_size (json_object_get (rec, "appointments")), 0);
    assert_int_equal (json_array_size (json_object_get (rec, "campaign_targets")), 1);
    json_decref (j);
    //  Somebody else: nothing.
    j = t_ok ("POST", "/api/v1/persons/export", prot, NULL, "{\"case_number\":\"QZE-1\"}",
              200);
    rec = json_object_get (json_object_get (j, "scheduler"), "records");
    assert_int_equal (json_array_size (json_object_get (rec, "appointments")), 0);
    assert_int_equal (json_array_size (json_object_get (rec, "campaign_targets")), 0);
    json_decref (j);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_book_through_intake),
        cmocka_unit_test (test_person_export),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
