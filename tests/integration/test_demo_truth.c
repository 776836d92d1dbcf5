/*  The demo's simulated day against reporting's figures (issue 10, "a simulated day whose ground
    truth equals reporting's totals"): tools/gl-sim.py plays the PBX and the agents through a real
    gl-intake for a whole past day, with the PBX's timestamps, and writes what it did; a real
    gl-reporting follows intake's log; the day's report, read through intake's API, must say the
    same: calls offered, answered, abandoned, never reached by reason, the average speed of answer;
    and the contacts, referrals and emergencies logged (on intake's clock, a day later).
    ctest: timeout=400 labels=nosan */
#include "gl/gl_clock.h"
#include "gl_testintake.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define T_TOKEN "tok-demo-truth"
#define T_DAY   "2025-12-30"            //  two days before gl_testintake's clock (2026-01-01)

static gl_testredis_t *s_redis;
static gl_testintake_t *s_intake;
static pid_t s_reporting = -1;
static char s_log[256], s_truth_path[256];

static json_t *
s_report (const char *date)
{
    char path[128];
    snprintf (path, sizeof path, "/api/v1/reports/day?date=%s", date);
    gl_test_resp_t resp
        = gl_testintake_call (s_intake, "GET", path, s_intake->admin_token, NULL, NULL);
    json_t *json = resp.status == 200 ? gl_test_json (&resp) : NULL;
    if (resp.status != 200)
        fprintf (stderr, "report %s: %s\n", date, resp.raw);
    gl_test_http_free (&resp);
    return json;
}

static json_int_t
s_int (json_t *obj, const char *path)
{
    //  "a.b.c"
    char buf[128];
    snprintf (buf, sizeof buf, "%s", path);
    json_t *cur = obj;
    for (char *save = NULL, *part = strtok_r (buf, ".", &save); part;
         part = strtok_r (NULL, ".", &save))
        cur = json_object_get (cur, part);
    if (!json_is_integer (cur))
        fail_msg ("%s is not an integer in the answer", path);
    return json_integer_value (cur);
}

static void
test_simulated_day (void **state)
{
    (void) state;
    //  The simulator, as a newcomer's demo runs it, but for a whole past day.
    char url[64], admin[128], seed[16];
    snprintf (url, sizeof url, "http://127.0.0.1:%d", s_intake->http_port);
    snprintf (admin, sizeof admin, "GL_SIM_ADMIN=admin:%s", GL_TESTINTAKE_ADMIN_PASS);
    snprintf (seed, sizeof seed, "%d", 7);
    char script[300];
    snprintf (script, sizeof script, "%s/tools/gl-sim.py", getenv ("GL_SOURCE_DIR"));
    char *argv[] = { "python3", script,   "--url",   url,     "--replay-day", T_DAY,
                     "--calls", "240",    "--agents", "5",    "--seed",       seed,
                     "--truth", s_truth_path, NULL };
    char *env[] = { admin, NULL };
    pid_t sim = gl_test_spawn ("/usr/bin/python3", argv, env, s_log);
    assert_true (sim > 0);
    int status = gl_test_wait (sim, 300000);
    assert_true (status >= 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0);
    json_t *truth = json_load_file (s_truth_path, 0, NULL);
    assert_non_null (truth);
    fprintf (stderr, "simulated: %lld offered, %lld answered, %lld abandoned, %lld contacts\n",
             (long long) s_int (truth, "offered"), (long long) s_int (truth, "answered"),
             (long long) s_int (truth, "abandoned"), (long long) s_int (truth, "contacts"));
    assert_int_equal (s_int (truth, "api_errors"), 0);
    assert_true (s_int (truth, "offered") > 50);

    //  Reporting follows intake's log; wait until it has seen the day's last offer, then every
    //  figure must agree.
    json_t *report = NULL;
    for (int i = 0; i < 600; i++) {
        json_decref (report);
        report = s_report (T_DAY);
        if (report && s_int (report, "calls.offered") == s_int (truth, "offered")
            && s_int (report, "calls.answered") + s_int (report, "calls.abandoned")
                       + s_int (report, "calls.abandoned_short")
                   == s_int (truth, "offered"))
            break;
        gl_sleep_ms (100);
    }
    assert_non_null (report);
    assert_int_equal (s_int (report, "calls.offered"), s_int (truth, "offered"));
    assert_int_equal (s_int (report, "calls.answered"), s_int (truth, "answered"));
    assert_int_equal (s_int (report, "calls.abandoned") + s_int (report, "calls.abandoned_short"),
                      s_int (truth, "abandoned"));
    assert_int_equal (s_int (report, "calls.not_reached_by_reason.out_of_hours"),
                      s_int (truth, "not_reached.out_of_hours"));
    assert_int_equal (s_int (report, "calls.not_reached_by_reason.all_lines_busy"),
                      s_int (truth, "not_reached.all_lines_busy"));
    assert_int_equal (s_int (report, "calls.not_reached_by_reason.ivr_only"),
                      s_int (truth, "not_reached.ivr_only"));
    json_int_t asa = s_int (report, "calls.asa_ms"), want = s_int (truth, "asa_ms");
    assert_true (asa >= want - 1 && asa <= want + 1);       //  rounding of the division
    json_decref (report);

    //  Contacts, referrals and emergencies carry intake's time: the day of intake's clock.
    report = NULL;
    for (int i = 0; i < 300; i++) {
        json_decref (report);
        report = s_report ("2026-01-01");
        if (report && s_int (report, "contacts.total") == s_int (truth, "contacts"))
            break;
        gl_sleep_ms (100);
    }
    assert_non_null (report);
    assert_int_equal (s_int (report, "contacts.total"), s_int (truth, "contacts"));
    assert_int_equal (s_int (report, "referrals.requested"), s_int (truth, "referrals"));
    assert_int_equal (s_int (report, "emergencies.raised"), s_int (truth, "emergencies"));
    json_decref (report);
    json_decref (truth);
}

static int
s_setup (void **state)
{
    (void) state;
    snprintf (s_log, sizeof s_log, "/tmp/gl-test-demo-truth-%d.log", (int) getpid ());
    snprintf (s_truth_path, sizeof s_truth_path, "/tmp/gl-test-demo-truth-%d.json",
              (int) getpid ());
    unlink (s_log);
    s_redis = gl_testredis_start (NULL);
    if (!s_redis)
        return -1;
    int router = gl_test_free_port ();
    char endpoint[64];
    snprintf (endpoint, sizeof endpoint, "GL_ENDPOINT_REPORTING=tcp://127.0.0.1:%d", router);
    const char *extra[] = { endpoint, "GL_BUS_TOKENS=" T_TOKEN, "GL_LOG_LEVEL=info",
                            "GL_INTAKE_REPORTING_TIMEOUT_MS=5000", NULL };
    s_intake = gl_testintake_start (s_redis, extra);
    if (!s_intake)
        return -1;
    char env[10][400];
    int n = 0;
    snprintf (env[n++], 400, "GL_REDIS_HOST=127.0.0.1");
    snprintf (env[n++], 400, "GL_REDIS_PORT=%d", s_redis->port);
    snprintf (env[n++], 400, "GL_HEALTH_PORT=%d", gl_test_free_port ());
    snprintf (env[n++], 400, "GL_BUS_BIND_PUB=tcp://127.0.0.1:%d", gl_test_free_port ());
    snprintf (env[n++], 400, "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:%d", router);
    snprintf (env[n++], 400, "GL_BUS_PUB_ENDPOINTS=tcp://127.0.0.1:%d", s_intake->pub_port);
    snprintf (env[n++], 400, "GL_BUS_TOKENS=" T_TOKEN);
    snprintf (env[n++], 400, "GL_CLOCK_FILE=%s", s_intake->clock_path);
    snprintf (env[n++], 400, "GL_REPORTING_TZ=UTC");
    char *envp[11];
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    char *argv[] = { "gl-reporting", NULL };
    s_reporting = gl_test_spawn (gl_test_build_path ("services/reporting/gl-reporting"), argv,
                                 envp, s_log);
    return s_reporting > 0 ? 0 : -1;
}

static int
s_teardown (void **state)
{
    (void) state;
    if (s_reporting > 0)
        gl_test_stop (s_reporting, 10000);
    gl_testintake_destroy (&s_intake);
    gl_testredis_destroy (&s_redis);
    unlink (s_truth_path);
    unlink (s_log);
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test (test_simulated_day) };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
