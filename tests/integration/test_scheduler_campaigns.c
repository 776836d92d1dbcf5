/*  gl-scheduler's outbound call lists as a process against a private redis-server, its business
    clock driven through GL_CLOCK_FILE, asked over real ZeroMQ with intake's forwarded envelope.

    Campaigns: creation and its refusals (roles, kinds, questionnaire); targets from CSV (every
    bad row reported by line, the good rows imported or, with all_or_nothing, none; duplicates;
    broken files refused naming the row); the next call (calling hours and time zone, language,
    priority), outcomes and the retry rules on the driven clock (spacing, maximum attempts,
    callback at a time), answers validated against the questionnaire, progress, the CSV export
    (quoting, no phone numbers); a lease that runs out puts the target back; abandoned calls
    published by a real intake-1 publisher feed the callback list (short abandons skipped);
    targets from queries (today's abandoned calls, last week's no-shows). No case number or phone
    number in any event.

    ctest: timeout=240 */
#define _GNU_SOURCE
#include "gl/gl_buslog.h"
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include "gl/gl_id.h"
#include "gl/gl_pub.h"
#include "gl/gl_redis.h"
#include "gl/gl_req.h"
#include "gl_testenv.h"
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define T_SCHEDULER_ENV       "GL_SCHEDULER_LEASE_MS=60000"
#include "test_scheduler_env.h"

static const char *s_conf = T_SCHEDULER_CONF;

//  --------------------------------------------------------------------------------------------
//  Campaigns

static char s_cid[GL_ID_LEN + 1];

static int
t_camp (const char *op, const char *roles, const char *cid, json_t *query, json_t *body,
        json_t **out)
{
    return t_fwd (op, roles, json_pack ("{s:s}", "id", cid), query, body, out);
}

static json_t *
t_error_lines (json_t *report)
{
    json_t *lines = json_array ();
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get (report, "errors"), i, e)
        json_array_append (lines, json_object_get (e, "line"));
    return lines;
}

static void
test_create (void **state)
{
    (void) state;
    t_clock_set (T_START_MS);
    json_t *out = NULL;
    json_t *q = json_loads ("[{\"field\":\"household_size\",\"type\":\"int\",\"required\":true,"
                            "\"min\":1,\"max\":30},{\"field\":\"has_phone\",\"type\":\"bool\"},"
                            "{\"field\":\"needs\",\"type\":\"choice\",\"required\":true,"
                            "\"options\":[\"food\",\"shelter\",\"health\"]},"
                            "{\"field\":\"note\",\"type\":\"string\",\"max\":40}]",
                            0, NULL);
    json_t *body = json_pack ("{s:s, s:s, s:s, s:O, s:s, s:[s,s,s,s,s], s:i, s:i}", "name",
                              "Winter needs survey", "kind", "collect_information", "script",
                              "Hello, this is the helpline ...", "questionnaire", q,
                              "calling_hours", "09:00-17:00", "calling_days", "sun", "mon", "tue",
                              "wed", "thu", "max_attempts", 2, "spacing_ms", 1800000);
    t_expect_error (t_fwd ("scheduler.campaign_create", "agent", NULL, NULL, json_deep_copy (body),
                           &out),
                    &out, 403, "forbidden", NULL);
    json_decref (out);
    json_t *bad = json_deep_copy (body);
    json_object_set_new (bad, "kind", json_string ("party"));
    t_expect_error (t_fwd ("scheduler.campaign_create", "supervisor", NULL, NULL, bad, &out), &out,
                    400, "invalid_field", "kind");
    json_decref (out);
    bad = json_deep_copy (body);
    json_object_del (bad, "questionnaire");
    t_expect_error (t_fwd ("scheduler.campaign_create", "supervisor", NULL, NULL, bad, &out), &out,
                    400, "missing_field", "questionnaire");
    json_decref (out);
    bad = json_deep_copy (body);
    json_object_set_new (bad, "questionnaire",
                         json_loads ("[{\"field\":\"x\",\"type\":\"colour\"}]", 0, NULL));
    t_expect_error (t_fwd ("scheduler.campaign_create", "supervisor", NULL, NULL, bad, &out), &out,
                    400, "invalid_field", "questionnaire");
    json_decref (out);
    bad = json_deep_copy (body);
    json_object_set_new (bad, "calling_hours", json_string ("9-5"));
    t_expect_error (t_fwd ("scheduler.campaign_create", "supervisor", NULL, NULL, bad, &out), &out,
                    400, "invalid_field", "calling_hours");
    json_decref (out);
    assert_int_equal (t_fwd ("scheduler.campaign_create", "supervisor", NULL, NULL, body, &out),
                      200);
    snprintf (s_cid, sizeof s_cid, "%s",
              json_string_value (json_object_get (out, "campaign_id")));
    assert_true (gl_id_valid (s_cid));
    assert_string_equal (json_string_value (json_object_get (out, "timezone")), "+03:00");
    assert_int_equal (json_array_size (json_object_get (out, "questionnaire")), 4);
    json_decref (out);
    json_decref (q);
    assert_int_equal (t_fwd ("scheduler.campaigns", "agent", NULL, NULL, NULL, &out), 200);
    json_t *items = json_object_get (out, "items");
    assert_int_equal (json_array_size (items), 2);     //  the callback list and this one
    assert_string_equal (json_string_value (json_object_get (json_array_get (items, 0),
                                                             "campaign_id")),
                         "callbacks");
    json_decref (out);
    assert_int_equal (t_wait_count ("campaign.created", NULL, s_cid, 1), 1);
}

static void
test_targets_csv (void **state)
{
    (void) state;
    json_t *out = NULL;
    const char *csv = "case_no,phone,language,priority\r\n"
                      "QZT-1,+962 79 000 0001,ar,high\r\n"
                      "QZT-2,07900000X2,ar,\r\n"
                      "QZT-3,+962790000003,english,normal\r\n"
                      ",,ar,\r\n"
                      "qzt-1,+962790000001,ar,\r\n"
                      "QZT-4,+962790000004,fr,low\r\n"
                      "QZT-6,+962790000006,ar,urgent\r\n";
    //  all or nothing: nothing
    assert_int_equal (t_camp ("scheduler.campaign_targets", "supervisor", s_cid, NULL,
                              json_pack ("{s:s, s:b}", "csv", csv, "all_or_nothing", 1), &out),
                      200);
    assert_false (json_is_true (json_object_get (out, "committed")));
    assert_int_equal (json_integer_value (json_object_get (out, "imported")), 0);
    json_decref (out);
    //  the good rows
    assert_int_equal (t_camp ("scheduler.campaign_targets", "supervisor", s_cid, NULL,
                              json_pack ("{s:s}", "csv", csv), &out),
                      200);
    assert_true (json_is_true (json_object_get (out, "committed")));
    assert_int_equal (json_integer_value (json_object_get (out, "imported")), 2);
    assert_int_equal (json_integer_value (json_object_get (out, "rejected")), 4);
    assert_int_equal (json_integer_value (json_object_get (out, "duplicates")), 1);
    json_t *lines = t_error_lines (out);
    json_t *want = json_pack ("[i,i,i,i,i]", 3, 4, 5, 6, 8);
    if (!json_equal (lines, want)) {
        char *s = json_dumps (out, 0);
        fprintf (stderr, "%s\n", s);
        free (s);
    }
    assert_true (json_equal (lines, want));
    json_decref (lines);
    json_decref (want);
    json_t *e = json_array_get (json_object_get (out, "errors"), 0);
    assert_string_equal (json_string_value (json_object_get (e, "field")), "phone");
    assert_string_equal (json_string_value (json_object_get (e, "code")), "invalid_phone");
    //  Error messages never quote the file.
    char *dump = json_dumps (out, 0);
    assert_null (strstr (dump, "07900000X2"));
    assert_null (strstr (dump, "english"));
    free (dump);
    json_decref (out);
    //  Loading the same people again: duplicates
    assert_int_equal (t_camp ("scheduler.campaign_targets", "supervisor", s_cid, NULL,
                              json_pack ("{s:s}", "csv",
                                         "case_no,language\nQZT-1,ar\nQZT-4,fr\n"),
                              &out),
                      200);
    assert_int_equal (json_integer_value (json_object_get (out, "imported")), 0);
    assert_int_equal (json_integer_value (json_object_get (out, "duplicates")), 2);
    json_decref (out);
    //  Broken files: nothing imported, the row and line named
    t_expect_error (t_camp ("scheduler.campaign_targets", "supervisor", s_cid, NULL,
                            json_pack ("{s:s}", "csv", "case_no,language\nQZT-9,ar\n\"QZT-8,ar\n"),
                            &out),
                    &out, 422, "invalid_csv", "csv");
    assert_non_null (strstr (json_string_value (json_object_get (out, "message")), "row 3"));
    json_decref (out);
    t_expect_error (t_camp ("scheduler.campaign_targets", "supervisor", s_cid, NULL,
                            json_pack ("{s:s}", "csv", "case_no,colour\nQZT-9,red\n"), &out),
                    &out, 422, "invalid_csv", "csv");
    json_decref (out);
    t_expect_error (t_camp ("scheduler.campaign_targets", "supervisor", s_cid, NULL,
                            json_pack ("{s:s}", "csv", "case_no,phone\nQZT-9,+962790000009\n"),
                            &out),
                    &out, 422, "invalid_csv", "csv");
    json_decref (out);
    t_expect_error (t_camp ("scheduler.campaign_targets", "supervisor", s_cid, NULL,
                            json_pack ("{s:s, s:s}", "csv", "x", "query", "no_shows_last_week"),
                            &out),
                    &out, 400, "invalid_field", "csv");
    json_decref (out);
    t_expect_error (t_camp ("scheduler.campaign_targets", "supervisor", s_cid, NULL,
                            json_pack ("{s:s}", "query", "everyone"), &out),
                    &out, 400, "invalid_field", "query");
    json_decref (out);
    t_expect_error (t_camp ("scheduler.campaign_targets", "agent", s_cid, NULL,
                            json_pack ("{s:s}", "query", "no_shows_last_week"), &out),
                    &out, 403, "forbidden", NULL);
    json_decref (out);
    char ghost[GL_ID_LEN + 1];
    gl_id_new (ghost);
    t_expect_error (t_camp ("scheduler.campaign_targets", "supervisor", ghost, NULL,
                            json_pack ("{s:s}", "query", "no_shows_last_week"), &out),
                    &out, 404, "not_found", "id");
    json_decref (out);
    assert_int_equal (t_camp ("scheduler.progress", "supervisor", s_cid, NULL, NULL, &out), 200);
    assert_int_equal (json_integer_value (json_object_get (out, "targets")), 2);
    assert_int_equal (json_integer_value (json_object_get (out, "queued")), 2);
    json_decref (out);
}

static int
t_next (const char *cid, const char *lang, json_t **out)
{
    json_t *body = lang ? json_pack ("{s:[s]}", "languages", lang) : json_object ();
    return t_camp ("scheduler.next", "agent", cid, NULL, body, out);
}

static int
t_outcome (const char *aid, json_t *body, json_t **out)
{
    return t_fwd ("scheduler.outcome", "agent", json_pack ("{s:s}", "id", aid), NULL, body, out);
}

static void
test_calling (void **state)
{
    (void) state;
    json_t *out = NULL, *a4 = NULL, *a1 = NULL;
    t_clock_set (T_START_MS);           //  07:00: before the calling hours
    t_expect_error (t_next (s_cid, NULL, &out), &out, 409, "outside_calling_hours", NULL);
    json_decref (out);
    t_clock_set (T_START_MS + 2 * 3600000);     //  09:00
    //  Paused: no calls; active again: calls
    assert_int_equal (t_camp ("scheduler.campaign_status", "supervisor", s_cid, NULL,
                              json_pack ("{s:s}", "status", "paused"), &out),
                      200);
    assert_string_equal (json_string_value (json_object_get (out, "status")), "paused");
    json_decref (out);
    t_expect_error (t_next (s_cid, NULL, &out), &out, 409, "campaign_closed", NULL);
    json_decref (out);
    t_expect_error (t_camp ("scheduler.campaign_status", "supervisor", s_cid, NULL,
                            json_pack ("{s:s}", "status", "asleep"), &out),
                    &out, 400, "invalid_field", "status");
    json_decref (out);
    t_expect_error (t_camp ("scheduler.campaign_status", "agent", s_cid, NULL,
                            json_pack ("{s:s}", "status", "active"), &out),
                    &out, 403, "forbidden", NULL);
    json_decref (out);
    assert_int_equal (t_camp ("scheduler.campaign_status", "supervisor", s_cid, NULL,
                              json_pack ("{s:s}", "status", "active"), &out),
                      200);
    json_decref (out);
    assert_int_equal (t_wait_count ("campaign.status_changed", NULL, s_cid, 2), 2);
    //  Language matched, priority respected
    assert_int_equal (t_next (s_cid, "fr", &a4), 200);
    assert_string_equal (json_string_value (json_object_get (a4, "case_no")), "QZT-4");
    assert_string_equal (json_string_value (json_object_get (a4, "phone")), "+962790000004");
    assert_int_equal (json_integer_value (json_object_get (a4, "attempt")), 1);
    assert_int_equal (json_array_size (json_object_get (a4, "questionnaire")), 4);
    assert_int_equal (t_next (s_cid, "ar-JO", &a1), 200);
    assert_string_equal (json_string_value (json_object_get (a1, "case_no")), "QZT-1");
    //  Nothing left for Arabic: no attempt, no next due (the one Arabic target is leased)
    assert_int_equal (t_next (s_cid, "ar", &out), 200);
    assert_true (json_is_null (json_object_get (out, "attempt")));
    assert_true (json_is_null (json_object_get (out, "next_due")));
    json_decref (out);
    const char *aid4 = json_string_value (json_object_get (a4, "attempt_id"));
    const char *aid1 = json_string_value (json_object_get (a1, "attempt_id"));
    //  No answer: back in 30 minutes
    t_expect_error (t_outcome (aid4, json_pack ("{s:s}", "outcome", "gone_fishing"), &out), &out,
                    400, "invalid_field", "outcome");
    json_decref (out);
    t_expect_error (t_outcome (aid4, json_pack ("{s:s}", "outcome", "callback"), &out), &out, 400,
                    "missing_field", "callback_at");
    json_decref (out);
    assert_int_equal (t_outcome (aid4, json_pack ("{s:s}", "outcome", "no_answer"), &out), 200);
    assert_string_equal (json_string_value (json_object_get (out, "status")), "queued");
    assert_int_equal (json_integer_value (json_object_get (out, "next_at")), s_now + 1800000);
    json_decref (out);
    assert_int_equal (t_next (s_cid, "fr", &out), 200);
    assert_true (json_is_null (json_object_get (out, "attempt")));
    assert_int_equal (json_integer_value (json_object_get (out, "next_due")), s_now + 1800000);
    json_decref (out);
    //  Answers checked against the questionnaire
    t_expect_error (t_outcome (aid1, json_pack ("{s:s, s:{s:i, s:s}}", "outcome", "completed",
                                                "answers", "household_size", 0, "needs", "food"),
                               &out),
                    &out, 400, "invalid_field", "answers.household_size");
    json_decref (out);
    t_expect_error (t_outcome (aid1, json_pack ("{s:s, s:{s:i}}", "outcome", "completed",
                                                "answers", "household_size", 4),
                               &out),
                    &out, 400, "missing_field", "answers.needs");
    json_decref (out);
    t_expect_error (t_outcome (aid1, json_pack ("{s:s, s:{s:i, s:s}}", "outcome", "completed",
                                                "answers", "household_size", 4, "needs", "cars"),
                               &out),
                    &out, 400, "invalid_field", "answers.needs");
    json_decref (out);
    t_expect_error (t_outcome (aid1, json_pack ("{s:s, s:{s:i, s:s, s:b}}", "outcome",
                                                "completed", "answers", "household_size", 4,
                                                "needs", "food", "pets", 1),
                               &out),
                    &out, 400, "unknown_field", "answers");
    json_decref (out);
    assert_int_equal (t_outcome (aid1, json_pack ("{s:s, s:{s:i, s:s, s:b, s:s}}", "outcome",
                                                  "completed", "answers", "household_size", 4,
                                                  "needs", "shelter", "has_phone", 1, "note",
                                                  "=cmd, \"quoted\""),
                                 &out),
                      200);
    assert_string_equal (json_string_value (json_object_get (out, "status")), "done");
    json_decref (out);
    t_expect_error (t_outcome (aid1, json_pack ("{s:s}", "outcome", "reached"), &out), &out, 409,
                    "lease_expired", "id");
    json_decref (out);
    t_clock_set (s_now + 1860000);
    json_decref (a4);
    assert_int_equal (t_next (s_cid, "fr", &a4), 200);
    assert_int_equal (json_integer_value (json_object_get (a4, "attempt")), 2);
    aid4 = json_string_value (json_object_get (a4, "attempt_id"));
    //  Busy on the last attempt: failed
    assert_int_equal (t_outcome (aid4, json_pack ("{s:s}", "outcome", "busy"), &out), 200);
    assert_string_equal (json_string_value (json_object_get (out, "status")), "failed");
    json_decref (out);
    json_decref (a1);
    json_decref (a4);

    //  Progress and export
    assert_int_equal (t_camp ("scheduler.progress", "supervisor", s_cid, NULL, NULL, &out), 200);
    assert_int_equal (json_integer_value (json_object_get (out, "targets")), 2);
    assert_int_equal (json_integer_value (json_object_get (out, "done")), 1);
    assert_int_equal (json_integer_value (json_object_get (out, "failed")), 1);
    assert_int_equal (json_integer_value (json_object_get (out, "attempts")), 3);
    assert_int_equal (json_integer_value (json_object_get (out, "percent_finished")), 100);
    json_t *o = json_object_get (out, "outcomes");
    assert_int_equal (json_integer_value (json_object_get (o, "no_answer")), 1);
    assert_int_equal (json_integer_value (json_object_get (o, "busy")), 1);
    assert_int_equal (json_integer_value (json_object_get (o, "completed")), 1);
    json_decref (out);
    t_expect_error (t_camp ("scheduler.export", "agent", s_cid, NULL, NULL, &out), &out, 403,
                    "forbidden", NULL);
    json_decref (out);
    assert_int_equal (t_camp ("scheduler.export", "supervisor", s_cid, NULL, NULL, &out), 200);
    const char *csv = json_string_value (json_object_get (out, "csv"));
    assert_int_equal (json_integer_value (json_object_get (out, "rows")), 2);
    assert_non_null (strstr (csv, "target_id,case_no,language,source,status,attempts,outcome,"
                                  "finished_at,household_size,has_phone,needs,note\r\n"));
    assert_non_null (strstr (csv, ",QZT-1,ar,csv,done,1,completed,"));
    assert_non_null (strstr (csv, ",4,true,shelter,\"'=cmd, \"\"quoted\"\"\"\r\n"));
    assert_non_null (strstr (csv, ",QZT-4,fr,csv,failed,2,busy,"));
    assert_null (strstr (csv, "+962"));
    json_decref (out);
}

static void
test_lease_and_callback (void **state)
{
    (void) state;
    json_t *out = NULL, *a = NULL;
    assert_int_equal (t_camp ("scheduler.campaign_targets", "supervisor", s_cid, NULL,
                              json_pack ("{s:s}", "csv", "case_no,phone,language\n"
                                                         "QZT-5,+962790000005,en\n"),
                              &out),
                      200);
    json_decref (out);
    assert_int_equal (t_next (s_cid, "en", &a), 200);
    char aid[GL_ID_LEN + 1];
    snprintf (aid, sizeof aid, "%s", json_string_value (json_object_get (a, "attempt_id")));
    json_decref (a);
    //  The agent walks away: the lease runs out on the business clock, the target goes back.
    t_clock_set (s_now + 61000);
    assert_int_equal (t_wait_count ("outbound.lease_expired", NULL, s_cid, 1), 1);
    t_expect_error (t_outcome (aid, json_pack ("{s:s}", "outcome", "reached"), &out), &out, 409,
                    "lease_expired", "id");
    json_decref (out);
    assert_int_equal (t_next (s_cid, "en", &a), 200);
    assert_string_equal (json_string_value (json_object_get (a, "case_no")), "QZT-5");
    assert_int_equal (json_integer_value (json_object_get (a, "attempt")), 1);
    snprintf (aid, sizeof aid, "%s", json_string_value (json_object_get (a, "attempt_id")));
    json_decref (a);
    //  "Call me back at four": queued for then, not before.
    int64_t at = s_now + 2 * 3600000;
    assert_int_equal (t_outcome (aid, json_pack ("{s:s, s:I}", "outcome", "callback",
                                                 "callback_at", (json_int_t) at),
                                 &out),
                      200);
    json_decref (out);
    assert_int_equal (t_next (s_cid, "en", &out), 200);
    assert_true (json_is_null (json_object_get (out, "attempt")));
    assert_int_equal (json_integer_value (json_object_get (out, "next_due")), at);
    json_decref (out);
    t_clock_set (at + 1000);
    assert_int_equal (t_next (s_cid, "en", &a), 200);
    assert_string_equal (json_string_value (json_object_get (a, "case_no")), "QZT-5");
    json_decref (a);
}

//  Publish events as intake would (source intake-1), through the real publisher.
static void
t_intake_event (gl_pub_t *pub, const char *type, const char *call_id, const char *lang,
                int64_t wait_ms, const char *reason)
{
    gl_event_t *ev = gl_event_new (type);
    gl_event_set_corr (ev, call_id);
    json_object_set_new (ev->data, "call_id", json_string (call_id));
    json_object_set_new (ev->data, "line", json_string ("main"));
    json_object_set_new (ev->data, "language", json_string (lang));
    json_object_set_new (ev->data, "priority", json_string ("normal"));
    json_object_set_new (ev->data, "clock", json_string ("intake"));
    json_object_set_new (ev->data, "at", json_integer (s_now));
    json_object_set_new (ev->data, "step", json_integer (2));
    json_object_set_new (ev->data, "wait_ms", json_integer (wait_ms));
    if (reason)
        json_object_set_new (ev->data, "reason", json_string (reason));
    assert_int_equal (gl_pub_send (pub, ev, 0), 0);
    gl_event_destroy (&ev);
}

static void
test_abandoned_calls (void **state)
{
    (void) state;
    char err[256];
    gl_pub_opts_t opts;
    gl_pub_opts_default (&opts);
    gl_pub_t *pub = gl_pub_new (s_r, "intake-1", &opts, err, sizeof err);
    assert_non_null (pub);
    char x[GL_ID_LEN + 1], y[GL_ID_LEN + 1], z[GL_ID_LEN + 1];
    gl_id_new (x);
    gl_id_new (y);
    gl_id_new (z);
    t_intake_event (pub, "call.abandoned", x, "ar", 45000, NULL);
    t_intake_event (pub, "call.abandoned", y, "ar", 2000, NULL);       //  a short abandon
    t_intake_event (pub, "call.not_reached", z, "fr", 30000, "callback_requested");
    t_intake_event (pub, "call.ended", x, "ar", 0, NULL);              //  not for us
    t_intake_event (pub, "call.abandoned", x, "ar", 45000, NULL);      //  the same call again
    assert_int_equal (t_wait_count ("outbound.target_added", NULL, "callbacks", 2), 2);
    gl_sleep_ms (300);
    assert_int_equal (t_count ("outbound.target_added", NULL, "callbacks"), 2);
    json_t *out = NULL, *a = NULL;
    assert_int_equal (t_camp ("scheduler.progress", "supervisor", "callbacks", NULL, NULL, &out),
                      200);
    assert_int_equal (json_integer_value (json_object_get (out, "targets")), 2);
    json_decref (out);
    //  The one who asked for a callback first (high priority), in any language.
    assert_int_equal (t_next ("callbacks", NULL, &a), 200);
    assert_string_equal (json_string_value (json_object_get (a, "person_ref")), z);
    assert_string_equal (json_string_value (json_object_get (a, "source")), "callback_requested");
    assert_true (json_is_null (json_object_get (a, "phone")));      //  no intake here
    assert_string_equal (json_string_value (json_object_get (a, "phone_status")), "pending");
    json_decref (a);
    assert_int_equal (t_next ("callbacks", "ar", &a), 200);
    assert_string_equal (json_string_value (json_object_get (a, "person_ref")), x);
    //  "Call me back at five": the person is told, by the call's id
    json_t *o = NULL;
    assert_int_equal (t_outcome (json_string_value (json_object_get (a, "attempt_id")),
                                 json_pack ("{s:s, s:I}", "outcome", "callback", "callback_at",
                                            (json_int_t) (s_now + 3600000)),
                                 &o),
                      200);
    json_decref (o);
    const char *tid = json_string_value (json_object_get (a, "target_id"));
    assert_int_equal (t_wait_count ("notification.requested", "callback.scheduled", tid, 1), 1);
    json_t *evs = t_events (NULL);
    size_t k;
    json_t *e;
    json_array_foreach (evs, k, e) {
        json_t *d = json_object_get (e, "data");
        const char *tpl = json_string_value (json_object_get (d, "template"));
        if (!tpl || strcmp (tpl, "callback.scheduled") != 0)
            continue;
        assert_string_equal (json_string_value (json_object_get (json_object_get (d, "recipient"),
                                                                 "ref")),
                             x);
        assert_int_equal (json_integer_value (json_object_get (json_object_get (d, "params"),
                                                               "at")),
                          s_now + 3600000);
    }
    json_decref (evs);
    json_decref (a);
    //  Today's abandoned calls, as a query into another campaign
    json_t *body = json_pack ("{s:s, s:s, s:s}", "name", "Abandoned today", "kind", "information",
                              "script", "We missed your call");
    assert_int_equal (t_fwd ("scheduler.campaign_create", "supervisor", NULL, NULL, body, &out),
                      200);
    char cid[GL_ID_LEN + 1];
    snprintf (cid, sizeof cid, "%s", json_string_value (json_object_get (out, "campaign_id")));
    json_decref (out);
    assert_int_equal (t_camp ("scheduler.campaign_targets", "supervisor", cid, NULL,
                              json_pack ("{s:s}", "query", "abandoned_today"), &out),
                      200);
    assert_int_equal (json_integer_value (json_object_get (out, "imported")), 2);
    json_decref (out);
    gl_pub_destroy (&pub);
}

static void
test_no_shows_query (void **state)
{
    (void) state;
    //  An appointment missed yesterday becomes a target of a "reschedule" campaign.
    t_clock_set (T_START_MS);
    json_t *b = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "case_no", "QZN-1", "service",
                           "renewal", "centre", "c1", "slot_id", "20270104T0800", "language",
                           "ar", "call_id", s_call, "agent_id", s_agent);
    json_t *out = NULL;
    assert_int_equal (t_req ("scheduler.book", "n-00001111222233334444555566667777", b, &out),
                      200);
    char appt[GL_ID_LEN + 1];
    snprintf (appt, sizeof appt, "%s", json_string_value (json_object_get (out, "appointment_id")));
    json_decref (out);
    json_decref (b);
    t_clock_set (T_START_MS + 28 * 3600000LL);          //  Monday 11:00
    assert_int_equal (t_fwd ("scheduler.no_show", "agent", json_pack ("{s:s}", "id", appt), NULL,
                             NULL, &out),
                      200);
    json_decref (out);
    json_t *body = json_pack ("{s:s, s:s, s:s}", "name", "Reschedule no-shows", "kind",
                              "schedule_appointments", "script", "You missed your appointment");
    assert_int_equal (t_fwd ("scheduler.campaign_create", "supervisor", NULL, NULL, body, &out),
                      200);
    char cid[GL_ID_LEN + 1];
    snprintf (cid, sizeof cid, "%s", json_string_value (json_object_get (out, "campaign_id")));
    json_decref (out);
    assert_int_equal (t_camp ("scheduler.campaign_targets", "supervisor", cid, NULL,
                              json_pack ("{s:s}", "query", "no_shows_last_week"), &out),
                      200);
    assert_int_equal (json_integer_value (json_object_get (out, "imported")), 1);
    json_decref (out);
    json_t *a = NULL;
    assert_int_equal (t_next (cid, "ar", &a), 200);
    assert_string_equal (json_string_value (json_object_get (a, "case_no")), "QZN-1");
    assert_string_equal (json_string_value (json_object_get (a, "source")), "no_show");
    json_decref (a);
    //  Every event: ids and codes only
    bool has_case = true;
    json_t *list = t_events (&has_case);
    assert_false (has_case);
    const char *types[] = { "campaign.created", "campaign.targets_loaded",
                            "outbound.attempt_started", "outbound.outcome",
                            "outbound.lease_expired", "outbound.target_added" };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        assert_true (t_count (types[t], NULL, NULL) > 0);
    size_t i;
    json_t *ev;
    json_array_foreach (list, i, ev) {
        char *s = json_dumps (ev, 0);
        assert_null (strstr (s, "+962"));
        assert_null (strstr (s, "962790"));
        free (s);
    }
    json_decref (list);
}

//  A year and more later: the case numbers, phones and answers are gone; the figures stay.
static void
test_retention (void **state)
{
    (void) state;
    t_clock_set (T_START_MS + 400 * 86400000LL);
    json_t *out = NULL;
    for (int i = 0; i < 100; i++) {
        assert_int_equal (t_camp ("scheduler.export", "supervisor", s_cid, NULL, NULL, &out), 200);
        bool purged = !strstr (json_string_value (json_object_get (out, "csv")), "QZT-1");
        if (purged)
            break;
        json_decref (out);
        out = NULL;
        gl_sleep_ms (50);
    }
    assert_non_null (out);
    const char *csv = json_string_value (json_object_get (out, "csv"));
    assert_null (strstr (csv, "QZT-1"));
    assert_null (strstr (csv, "shelter"));          //  the answers
    assert_non_null (strstr (csv, ",done,1,completed,"));
    json_decref (out);
    //  the no-show's appointment: no longer found by its case number
    for (int i = 0; i < 100; i++) {
        assert_int_equal (t_fwd ("scheduler.search", "agent", NULL, NULL,
                                 json_pack ("{s:s}", "case_no", "QZN-1"), &out),
                          200);
        size_t n = json_array_size (json_object_get (out, "items"));
        json_decref (out);
        if (!n)
            break;
        assert_true (i < 99);
        gl_sleep_ms (50);
    }
    assert_int_equal (t_camp ("scheduler.progress", "supervisor", s_cid, NULL, NULL, &out), 200);
    assert_int_equal (json_integer_value (json_object_get (out, "done")), 1);
    json_decref (out);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_create),
        cmocka_unit_test (test_targets_csv),
        cmocka_unit_test (test_calling),
        cmocka_unit_test (test_lease_and_callback),
        cmocka_unit_test (test_abandoned_calls),
        cmocka_unit_test (test_no_shows_query),
        cmocka_unit_test (test_retention),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
