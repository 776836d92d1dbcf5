/*  intake's QA reviews over real HTTP: gl-intake as a process against a private redis-server,
    its business clock driven through GL_CLOCK_FILE, contacts made through the contacts API.

    The scorecards (the configured file, and a bad file stopping the start with file:line); a
    sample drawn from one agent's contacts within a period (only that agent's, only that
    period, no repeats, at most the size asked); a contact scored on a scorecard with a comment
    (every criterion required, each within its maximum; unknown scorecards, criteria, contacts
    and contacts outside the sample refused, naming the field); the total, percentage and the
    pass rule of a critical criterion; the agent seeing its own feedback only and acknowledging
    it; the scores by criterion; the events, without the comments.

    ctest: timeout=180 */
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_redis.h"
#include "gl_testenv.h"
#include "gl_testhttp.h"
#include "gl_testintake.h"
#include <errno.h>
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

#define T_HOUR_MS       INT64_C(3600000)
#define T_DAY_MS        INT64_C(86400000)

enum { U_ADMIN, U_AGENT1, U_AGENT2, U_SUPER, U_COUNT };
static gl_testintake_account_t s_users[U_COUNT] = {
    { "admin", NULL, NULL, "", "" },
    { "agent1", "[\"agent\"]", "[\"unit-a\"]", "", "" },
    { "agent2", "[\"agent\"]", "[\"unit-a\"]", "", "" },
    { "super1", "[\"supervisor\"]", "[\"unit-a\"]", "", "" },
};

#define GL_TESTINTAKE_HARNESS
#include "gl_testintake.h"

static char s_card_path[200];

static int
t_setup (void **state)
{
    snprintf (s_card_path, sizeof s_card_path, "/tmp/gl-test-intake-qa-%d.conf", (int) getpid ());
    FILE *f = fopen (s_card_path, "w");
    if (!f)
        return -1;
    fprintf (f, "# test scorecards\n"
                "scorecard standard\n"
                "  greeting          5\n"
                "  identification   10\n"
                "  accuracy         25\n"
                "  empathy          15\n"
                "  correct_referral 20\n"
                "  data_protection  15  critical\n"
                "  closing          10\n"
                "\n"
                "scorecard short   # a quick check\n"
                "  greeting 2\n"
                "  closing  2\n");
    fclose (f);
    char setting[260];
    snprintf (setting, sizeof setting, "GL_INTAKE_QA_SCORECARDS=%s", s_card_path);
    const char *extra[] = { setting, NULL };
    return t_setup_common (extra);
}

static int
t_teardown_qa (void **state)
{
    unlink (s_card_path);
    return t_teardown (state);
}

static void
t_contact (int user, char *id)
{
    json_t *rec = t_call_json (user, "POST", "/api/v1/contacts",
                               "{\"channel\":\"call\",\"anonymous\":true,\"language\":\"ar\","
                               "\"categories\":[\"information_request\"],"
                               "\"outcome\":\"information_given\"}",
                               201);
    snprintf (id, GL_ID_LEN + 1, "%s", t_str (rec, "id"));
    json_decref (rec);
}

static bool
t_in (const json_t *array, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach (array, i, v)
        if (strcmp (json_string_value (v), id) == 0)
            return true;
    return false;
}

//  --------------------------------------------------------------------------------------------

static void
test_scorecards (void **state)
{
    json_t *res = t_call_json (U_AGENT1, "GET", "/api/v1/qa/scorecards", NULL, 200);
    json_t *items = json_object_get (res, "items");
    assert_int_equal (json_array_size (items), 2);
    json_t *standard = json_array_get (items, 0);
    assert_string_equal (t_str (standard, "code"), "standard");
    assert_int_equal (t_int (standard, "max"), 100);
    json_t *criteria = json_object_get (standard, "criteria");
    assert_int_equal (json_array_size (criteria), 7);
    assert_string_equal (t_str (json_array_get (criteria, 0), "code"), "greeting");
    assert_true (json_is_true (json_object_get (json_array_get (criteria, 5), "critical")));
    json_decref (res);

    //  A bad scorecard file stops the start, naming the file and line.
    char bad[220], log[220], setting[260], port[64];
    snprintf (bad, sizeof bad, "%s.bad", s_card_path);
    snprintf (log, sizeof log, "%s.log", s_card_path);
    FILE *f = fopen (bad, "w");
    assert_non_null (f);
    fprintf (f, "scorecard standard\n  greeting 5\n  empathy lots\n");
    fclose (f);
    snprintf (setting, sizeof setting, "GL_INTAKE_QA_SCORECARDS=%s", bad);
    snprintf (port, sizeof port, "GL_HTTP_PORT=%d", gl_test_free_port ());
    char *env[GL_TESTINTAKE_ENV_MAX + 8];
    int n = 0;
    //  intake's settings but for its ports (the running one holds them), scorecards and source.
    for (int i = 0; i < s_in->envc; i++)
        if (strncmp (s_in->env[i], "GL_INTAKE_QA_SCORECARDS=", 24) != 0
            && strncmp (s_in->env[i], "GL_SOURCE=", 10) != 0
            && strncmp (s_in->env[i], "GL_HTTP_PORT=", 13) != 0
            && strncmp (s_in->env[i], "GL_HEALTH_PORT=", 15) != 0
            && strncmp (s_in->env[i], "GL_BUS_BIND_", 12) != 0)
            env[n++] = s_in->env[i];
    env[n++] = "GL_BUS_BIND_PUB=tcp://127.0.0.1:*";
    env[n++] = "GL_BUS_BIND_ROUTER=tcp://127.0.0.1:*";
    env[n++] = setting;
    env[n++] = port;
    env[n++] = "GL_SOURCE=intake-9";
    env[n] = NULL;
    char *argv[] = { "gl-intake", NULL };
    unlink (log);
    pid_t pid = gl_test_spawn (gl_test_build_path ("services/intake/gl-intake"), argv, env, log);
    assert_true (pid > 0);
    int status = gl_test_wait (pid, 30000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) != 0);
    FILE *lf = fopen (log, "r");
    assert_non_null (lf);
    char text[8192];
    size_t len = fread (text, 1, sizeof text - 1, lf);
    text[len] = 0;
    fclose (lf);
    char want[260];
    snprintf (want, sizeof want, "%s:3: MAX must be a whole number", bad);
    if (!strstr (text, want))
        fprintf (stderr, "log: %s\n", text);
    assert_non_null (strstr (text, want));
    unlink (bad);
    unlink (log);
}

static void
test_sample_review_ack (void **state)
{
    t_secret ("SECRET-qa-comment-well-done");
    t_secret ("SECRET-agent-reply");
    //  agent1: four contacts today, one tomorrow; agent2: two today.
    int64_t day0 = s_now;
    char a1[4][GL_ID_LEN + 1], a1_late[GL_ID_LEN + 1], a2[2][GL_ID_LEN + 1];
    for (int i = 0; i < 4; i++)
        t_contact (U_AGENT1, a1[i]);
    for (int i = 0; i < 2; i++)
        t_contact (U_AGENT2, a2[i]);
    t_clock_advance (T_DAY_MS);
    t_contact (U_AGENT1, a1_late);

    //  A sample of three of agent1's contacts on day 0.
    char body[512];
    snprintf (body, sizeof body,
              "{\"agent_id\":\"%s\",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"size\":3}",
              s_users[U_AGENT1].id, day0, day0 + T_DAY_MS);
    json_t *sample = t_call_json (U_SUPER, "POST", "/api/v1/qa/samples", body, 201);
    json_t *ids = json_object_get (sample, "contact_ids");
    assert_int_equal (json_array_size (ids), 3);
    assert_int_equal (t_int (sample, "population"), 4);
    for (size_t i = 0; i < 3; i++) {
        const char *c = json_string_value (json_array_get (ids, i));
        bool mine = false;
        for (int k = 0; k < 4; k++)
            mine = mine || strcmp (c, a1[k]) == 0;
        assert_true (mine);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal (c, json_string_value (json_array_get (ids, k)));
    }
    char sample_id[GL_ID_LEN + 1], contact[GL_ID_LEN + 1];
    snprintf (sample_id, sizeof sample_id, "%s", t_str (sample, "id"));
    snprintf (contact, sizeof contact, "%s", json_string_value (json_array_get (ids, 0)));
    json_decref (sample);
    char path[200];
    snprintf (path, sizeof path, "/api/v1/qa/samples/%s", sample_id);
    sample = t_call_json (U_SUPER, "GET", path, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (sample, "contact_ids")), 3);
    json_decref (sample);
    assert_int_equal (t_call_status (U_AGENT1, "GET", path, NULL), 403);
    //  A sample larger than the population holds it all.
    snprintf (body, sizeof body,
              "{\"agent_id\":\"%s\",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"size\":50}",
              s_users[U_AGENT1].id, day0, day0 + 2 * T_DAY_MS);
    sample = t_call_json (U_SUPER, "POST", "/api/v1/qa/samples", body, 201);
    ids = json_object_get (sample, "contact_ids");
    assert_int_equal (json_array_size (ids), 5);
    assert_true (t_in (ids, a1_late));
    assert_false (t_in (ids, a2[0]));
    json_decref (sample);
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\",\"from\":5,\"to\":1}",
              s_users[U_AGENT1].id);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/samples", body, 400, "invalid_field", "from");
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\",\"from\":1,\"to\":5}",
              s_users[U_SUPER].id);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/samples", body, 422, "unknown_agent",
                  "agent_id");
    snprintf (body, sizeof body, "{\"agent_id\":\"%s\",\"from\":1,\"to\":5,\"size\":51}",
              s_users[U_AGENT1].id);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/samples", body, 400, "invalid_field", "size");

    //  Scoring: every criterion, within its maximum, on a known scorecard.
    const char *scores = "{\"greeting\":5,\"identification\":8,\"accuracy\":20,\"empathy\":12,"
                         "\"correct_referral\":20,\"data_protection\":15,\"closing\":7}";
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"sample_id\":\"%s\",\"scorecard\":\"nope\","
              "\"scores\":%s}",
              contact, sample_id, scores);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 422, "unknown_scorecard",
                  "scorecard");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"scorecard\":\"standard\",\"scores\":{\"greeting\":5}}",
              contact);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 400, "missing_field",
                  "scores.identification");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"scorecard\":\"short\",\"scores\":{\"greeting\":3,"
              "\"closing\":1}}",
              contact);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 400, "invalid_field",
                  "scores.greeting");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"scorecard\":\"short\",\"scores\":{\"greeting\":1,"
              "\"closing\":1,\"humour\":2}}",
              contact);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 400, "invalid_field",
                  "scores.humour");
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"sample_id\":\"%s\",\"scorecard\":\"short\","
              "\"scores\":{\"greeting\":1,\"closing\":1}}",
              a2[0], sample_id);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 422, "not_in_sample",
                  "sample_id");
    char missing[GL_ID_LEN + 1];
    gl_id_new (missing);
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"scorecard\":\"short\",\"scores\":{\"greeting\":1,"
              "\"closing\":1}}",
              missing);
    t_call_error (U_SUPER, "POST", "/api/v1/qa/reviews", body, 422, "unknown_contact",
                  "contact_id");
    assert_int_equal (t_call_status (U_AGENT1, "POST", "/api/v1/qa/reviews", body), 403);

    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"sample_id\":\"%s\",\"scorecard\":\"standard\","
              "\"scores\":%s,\"comment\":\"SECRET-qa-comment-well-done\"}",
              contact, sample_id, scores);
    json_t *review = t_call_json (U_SUPER, "POST", "/api/v1/qa/reviews", body, 201);
    assert_int_equal (t_int (review, "total"), 87);
    assert_int_equal (t_int (review, "percent"), 87);
    assert_true (json_is_true (json_object_get (review, "passed")));
    assert_string_equal (t_str (review, "agent_id"), s_users[U_AGENT1].id);
    assert_string_equal (t_str (review, "status"), "completed");
    char review_id[GL_ID_LEN + 1];
    snprintf (review_id, sizeof review_id, "%s", t_str (review, "id"));
    json_decref (review);
    //  A second review, on the second contact: a zero on data protection fails it.
    snprintf (body, sizeof body,
              "{\"contact_id\":\"%s\",\"scorecard\":\"standard\",\"scores\":{\"greeting\":3,"
              "\"identification\":10,\"accuracy\":25,\"empathy\":15,\"correct_referral\":20,"
              "\"data_protection\":0,\"closing\":10}}",
              a1[1]);
    review = t_call_json (U_SUPER, "POST", "/api/v1/qa/reviews", body, 201);
    assert_int_equal (t_int (review, "total"), 83);
    assert_false (json_is_true (json_object_get (review, "passed")));
    json_decref (review);

    //  The agent sees its feedback, another agent does not.
    snprintf (path, sizeof path, "/api/v1/qa/reviews/%s", review_id);
    review = t_call_json (U_AGENT1, "GET", path, NULL, 200);
    assert_string_equal (t_str (review, "comment"), "SECRET-qa-comment-well-done");
    json_decref (review);
    t_call_error (U_AGENT2, "GET", path, NULL, 404, "not_found", NULL);
    json_t *page = t_call_json (U_AGENT1, "GET", "/api/v1/qa/reviews?unacknowledged=true", NULL,
                                200);
    assert_int_equal (json_array_size (json_object_get (page, "items")), 2);
    assert_true (t_has_id (page, review_id));
    json_decref (page);
    page = t_call_json (U_AGENT2, "GET", "/api/v1/qa/reviews", NULL, 200);
    assert_int_equal (json_array_size (json_object_get (page, "items")), 0);
    json_decref (page);
    snprintf (path, sizeof path, "/api/v1/qa/reviews?agent_id=%s", s_users[U_AGENT1].id);
    t_call_error (U_AGENT2, "GET", path, NULL, 403, "forbidden", "agent_id");

    //  The agent acknowledges (with a reply); once.
    snprintf (path, sizeof path, "/api/v1/qa/reviews/%s/acknowledge", review_id);
    t_call_error (U_AGENT2, "POST", path, "{}", 404, "not_found", NULL);
    json_t *ack = t_call_json (U_AGENT1, "POST", path, "{\"comment\":\"SECRET-agent-reply\"}",
                               200);
    assert_string_equal (t_str (ack, "status"), "acknowledged");
    assert_int_equal (t_int (ack, "acknowledged_at"), s_now);
    assert_false (json_is_true (json_object_get (ack, "already")));
    json_decref (ack);
    ack = t_call_json (U_AGENT1, "POST", path, "{}", 200);
    assert_true (json_is_true (json_object_get (ack, "already")));
    assert_string_equal (t_str (ack, "agent_comment"), "SECRET-agent-reply");
    json_decref (ack);
    assert_int_equal (t_call_status (U_SUPER, "POST", path, "{}"), 403);
    page = t_call_json (U_AGENT1, "GET", "/api/v1/qa/reviews?unacknowledged=true", NULL, 200);
    assert_int_equal (json_array_size (json_object_get (page, "items")), 1);
    json_decref (page);

    //  Scores by criterion, for the agent.
    snprintf (path, sizeof path, "/api/v1/qa/scores?agent_id=%s", s_users[U_AGENT1].id);
    json_t *figures = t_call_json (U_SUPER, "GET", path, NULL, 200);
    json_t *card = json_array_get (json_object_get (figures, "scorecards"), 0);
    assert_string_equal (t_str (card, "scorecard"), "standard");
    assert_int_equal (t_int (card, "reviews"), 2);
    assert_int_equal (t_int (card, "passed"), 1);
    assert_true (json_real_value (json_object_get (card, "average_total")) == 85.0);
    json_t *criteria = json_object_get (card, "criteria");
    assert_int_equal (json_array_size (criteria), 7);
    assert_string_equal (t_str (json_array_get (criteria, 0), "code"), "greeting");
    assert_true (json_real_value (json_object_get (json_array_get (criteria, 0), "average"))
                 == 4.0);
    assert_true (json_real_value (json_object_get (json_array_get (criteria, 5), "average"))
                 == 7.5);
    assert_true (json_real_value (json_object_get (json_array_get (criteria, 5), "percent"))
                 == 50.0);
    json_decref (figures);
    figures = t_call_json (U_AGENT1, "GET", "/api/v1/qa/scores", NULL, 200);
    assert_string_equal (t_str (figures, "agent_id"), s_users[U_AGENT1].id);
    assert_int_equal (json_array_size (json_object_get (figures, "scorecards")), 1);
    json_decref (figures);
    figures = t_call_json (U_AGENT2, "GET", "/api/v1/qa/scores", NULL, 200);
    assert_int_equal (json_array_size (json_object_get (figures, "scorecards")), 0);
    json_decref (figures);
    snprintf (path, sizeof path, "/api/v1/qa/scores?agent_id=%s&from=%" PRId64,
              s_users[U_AGENT1].id, s_now + 1);
    figures = t_call_json (U_SUPER, "GET", path, NULL, 200);
    assert_int_equal (json_array_size (json_object_get (figures, "scorecards")), 0);
    json_decref (figures);

    //  The events: scores and totals, no comment.
    json_t *evs = t_wait_events ("qa.review_completed", review_id, 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_str (data, "agent_id"), s_users[U_AGENT1].id);
    assert_string_equal (t_str (data, "scorecard"), "standard");
    assert_int_equal (t_int (data, "total"), 87);
    assert_int_equal (t_int (json_object_get (data, "scores"), "accuracy"), 20);
    json_decref (evs);
    evs = t_wait_events ("qa.feedback_acknowledged", review_id, 1);
    data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_str (data, "agent_id"), s_users[U_AGENT1].id);
    assert_true (json_is_true (json_object_get (data, "commented")));
    json_decref (evs);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_scorecards),
        cmocka_unit_test (test_sample_review_ack),
    };
    return cmocka_run_group_tests_name ("intake QA reviews", tests, t_setup, t_teardown_qa);
}
