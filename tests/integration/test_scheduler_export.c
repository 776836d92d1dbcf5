/*  scheduler.person_export: gl-scheduler as a process against a private redis-server, asked
    over real ZeroMQ as intake asks it for a person export (docs/events.md).

    Two people hold appointments (one of the first's cancelled) and outbound targets (by case
    number, by phone in international and national form): the export by case number (sent as
    intake normalises it, without the hyphens bookings keep) returns exactly the first person's
    appointments in every state and campaign target; by phone exactly the targets holding that
    number, whatever form it was loaded in; by individual number nothing, complete. Only
    protection and admin are answered (403 for agents and supervisors); bad bodies get 400
    naming the field. No case or phone number in scheduler's log lines, and each export is
    logged by the kind of identifier.

    ctest: timeout=120 */
#define _GNU_SOURCE
#include "gl/gl_clock.h"
#include "gl/gl_id.h"
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

#define T_SCHEDULER_ENV \
    "GL_SCHEDULER_LEASE_MS=60000", "GL_INTAKE_PHONE_COUNTRY_CODE=962"
#define T_SCHEDULER_LOG_SECRETS "QZ", "790555"
#include "test_scheduler_env.h"

static const char *s_conf =
    "[service renewal]\nname = Renewal\nduration = 30m\ncapacity = 3\nlead = 24h\n"
    "horizon = 30d\n"
    "[centre c1]\nname = Centre One\naddress = 1 Main Street\ntimezone = +03:00\n"
    "weekend = fri, sat\nhours = 08:00-15:00\nlanguages = ar, en, fr\nservices = renewal\n"
    "[centre c2]\nname = Centre Two\naddress = 2 Main Street\ntimezone = +03:00\n"
    "weekend = fri, sat\nhours = 08:00-15:00\nlanguages = ar, en, fr\nservices = renewal\n";

//  --------------------------------------------------------------------------------------------
//  The export

static char s_a1[GL_ID_LEN + 1], s_a2[GL_ID_LEN + 1], s_b1[GL_ID_LEN + 1];

//  Book case_no at centre at local time start; the appointment id in id.
static void
t_book_at (const char *case_no, const char *centre, int64_t start, char *id)
{
    json_t *b = t_book_body (case_no, "renewal", NULL, start);
    json_object_set_new (b, "centre", json_string (centre));
    char key[40], k[GL_ID_LEN + 1];
    gl_id_new (k);
    snprintf (key, sizeof key, "n-%s", k);
    json_t *o = NULL;
    int status = t_req ("scheduler.book", key, b, &o);
    json_decref (b);
    if (status != 200) {
        char *s = json_dumps (o, 0);
        fprintf (stderr, "book: %d %s\n", status, s);
        free (s);
    }
    assert_int_equal (status, 200);
    snprintf (id, GL_ID_LEN + 1, "%s", json_string_value (json_object_get (o, "appointment_id")));
    json_decref (o);
}

//  scheduler.person_export with body (taken) as roles; the caller is added.
static int
t_export (const char *roles, json_t *body, json_t **out)
{
    json_t *r = json_array ();
    char copy[128];
    snprintf (copy, sizeof copy, "%s", roles);
    char *save = NULL;
    for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
        json_array_append_new (r, json_string (t));
    json_object_set_new (body, "caller",
                         json_pack ("{s:s, s:o, s:[]}", "user_id", s_agent, "roles", r, "units"));
    int status = t_req ("scheduler.person_export", NULL, body, out);
    json_decref (body);
    return status;
}

//  The ids (field) of records[kind], sorted, joined by ",".
static void
t_ids (json_t *out, const char *kind, const char *field, char *buf, size_t len)
{
    json_t *list = json_object_get (json_object_get (out, "records"), kind);
    assert_true (json_is_array (list));
    const char *ids[16];
    size_t n = json_array_size (list);
    assert_true (n <= 16);
    for (size_t i = 0; i < n; i++) {
        ids[i] = json_string_value (json_object_get (json_array_get (list, i), field));
        assert_non_null (ids[i]);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcmp (ids[j], ids[i]) < 0) {
                const char *t = ids[i];
                ids[i] = ids[j];
                ids[j] = t;
            }
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        strncat (buf, i ? "," : "", len - strlen (buf) - 1);
        strncat (buf, ids[i], len - strlen (buf) - 1);
    }
}

static void
t_join (char *buf, size_t len, const char *a, const char *b)
{
    if (strcmp (a, b) < 0)
        snprintf (buf, len, "%s,%s", a, b);
    else
        snprintf (buf, len, "%s,%s", b, a);
}

static char s_cid[GL_ID_LEN + 1];
static char s_t_a[GL_ID_LEN + 1], s_t_b[GL_ID_LEN + 1], s_t_p[GL_ID_LEN + 1],
    s_t_n[GL_ID_LEN + 1];

static void
test_records (void **state)
{
    (void) state;
    //  Appointments: A twice (at two centres; the second cancelled), B once.
    int64_t mon9 = t_local (2027, 1, 4, 9, 0), mon10 = t_local (2027, 1, 4, 10, 0);
    t_book_at (T_CASE_A, "c1", mon9, s_a1);
    t_book_at ("qza-11c00001", "c2", mon10, s_a2);  //  the same case number in lower case
    t_book_at (T_CASE_B, "c1", mon9, s_b1);
    json_t *out = NULL;
    assert_int_equal (t_fwd ("scheduler.cancel", "agent", json_pack ("{s:s}", "id", s_a2), NULL,
                             json_pack ("{s:s}", "reason", "requested_by_person"), &out),
                      200);
    json_decref (out);

    //  Targets: A by case number, a phone alone (international), B with both, a national phone.
    json_t *body = json_pack ("{s:s, s:s, s:s}", "name", "Renewal reminders", "kind",
                              "information", "script", "Hello ...");
    assert_int_equal (t_fwd ("scheduler.campaign_create", "supervisor", NULL, NULL, body, &out),
                      200);
    snprintf (s_cid, sizeof s_cid, "%s", json_string_value (json_object_get (out, "campaign_id")));
    json_decref (out);
    const char *csv = "case_no,phone,language\n"
                      T_CASE_A ",,ar\n"
                      ",+962 79 0555 001,fr\n"
                      T_CASE_B ",00962790555002,ar\n"
                      ",0790555003,ar\n";
    assert_int_equal (t_fwd ("scheduler.campaign_targets", "supervisor",
                             json_pack ("{s:s}", "id", s_cid), NULL,
                             json_pack ("{s:s}", "csv", csv), &out),
                      200);
    assert_int_equal (json_integer_value (json_object_get (out, "imported")), 4);
    json_decref (out);
    //  The target ids, from Redis (tid by row order).
    char key[200];
    snprintf (key, sizeof key, "scheduler:{scheduler}:targets:%s", s_cid);
    redisReply *r = gl_redis_cmd (s_r, "ZRANGE %s 0 -1", key);
    assert_non_null (r);
    assert_int_equal (r->elements, 4);
    snprintf (s_t_a, sizeof s_t_a, "%s", r->element[0]->str);
    snprintf (s_t_p, sizeof s_t_p, "%s", r->element[1]->str);
    snprintf (s_t_b, sizeof s_t_b, "%s", r->element[2]->str);
    snprintf (s_t_n, sizeof s_t_n, "%s", r->element[3]->str);
    freeReplyObject (r);
}

static void
test_by_case (void **state)
{
    (void) state;
    char got[600], want[600];
    json_t *out = NULL;
    //  As intake sends it: upper case, separators dropped.
    assert_int_equal (t_export ("protection", json_pack ("{s:s}", "case_number", "QZA11C00001"),
                                &out),
                      200);
    assert_true (json_is_true (json_object_get (out, "complete")));
    t_ids (out, "appointments", "id", got, sizeof got);
    t_join (want, sizeof want, s_a1, s_a2);
    assert_string_equal (got, want);
    t_ids (out, "campaign_targets", "id", got, sizeof got);
    assert_string_equal (got, s_t_a);
    //  Every state, the case number itself, never the internal keyed hash.
    json_t *appts = json_object_get (json_object_get (out, "records"), "appointments");
    int cancelled = 0;
    for (size_t i = 0; i < json_array_size (appts); i++) {
        json_t *a = json_array_get (appts, i);
        cancelled += strcmp (json_string_value (json_object_get (a, "status")), "cancelled") == 0;
        assert_string_equal (json_string_value (json_object_get (a, "case_no")), T_CASE_A);
        assert_null (json_object_get (a, "person"));
    }
    assert_int_equal (cancelled, 1);
    json_decref (out);
    //  Admins too, with the hyphens as well; B is B's alone.
    assert_int_equal (t_export ("admin", json_pack ("{s:s}", "case_number", "qzb-22c00002"),
                                &out),
                      200);
    t_ids (out, "appointments", "id", got, sizeof got);
    assert_string_equal (got, s_b1);
    t_ids (out, "campaign_targets", "id", got, sizeof got);
    assert_string_equal (got, s_t_b);
    json_decref (out);
    //  Nobody: empty, complete.
    assert_int_equal (t_export ("protection", json_pack ("{s:s}", "case_number", "QZC33"), &out),
                      200);
    t_ids (out, "appointments", "id", got, sizeof got);
    assert_string_equal (got, "");
    t_ids (out, "campaign_targets", "id", got, sizeof got);
    assert_string_equal (got, "");
    assert_true (json_is_true (json_object_get (out, "complete")));
    json_decref (out);
}

static void
test_by_phone (void **state)
{
    (void) state;
    char got[600];
    json_t *out = NULL;
    assert_int_equal (t_export ("protection", json_pack ("{s:s}", "phone", "962790555001"), &out),
                      200);
    t_ids (out, "appointments", "id", got, sizeof got);
    assert_string_equal (got, "");
    t_ids (out, "campaign_targets", "id", got, sizeof got);
    assert_string_equal (got, s_t_p);
    json_decref (out);
    assert_int_equal (t_export ("protection", json_pack ("{s:s}", "phone", "962790555002"), &out),
                      200);
    t_ids (out, "campaign_targets", "id", got, sizeof got);
    assert_string_equal (got, s_t_b);
    json_decref (out);
    //  A national number loaded in the file: the deployment's country code in front.
    assert_int_equal (t_export ("admin", json_pack ("{s:s}", "phone", "962790555003"), &out),
                      200);
    t_ids (out, "campaign_targets", "id", got, sizeof got);
    assert_string_equal (got, s_t_n);
    json_decref (out);
    //  Scheduler holds no individual numbers.
    assert_int_equal (t_export ("protection", json_pack ("{s:s}", "individual_number", "QZA1"),
                                &out),
                      200);
    t_ids (out, "appointments", "id", got, sizeof got);
    assert_string_equal (got, "");
    t_ids (out, "campaign_targets", "id", got, sizeof got);
    assert_string_equal (got, "");
    assert_true (json_is_true (json_object_get (out, "complete")));
    json_decref (out);
}

static void
test_refusals (void **state)
{
    (void) state;
    json_t *out = NULL;
    t_expect_error (t_export ("agent", json_pack ("{s:s}", "case_number", "QZA11C00001"), &out),
                    &out, 403, "forbidden", NULL);
    json_decref (out);
    t_expect_error (t_export ("supervisor,agent",
                              json_pack ("{s:s}", "case_number", "QZA11C00001"), &out),
                    &out, 403, "forbidden", NULL);
    json_decref (out);
    t_expect_error (t_export ("protection", json_object (), &out), &out, 400, "missing_field",
                    "case_number");
    json_decref (out);
    t_expect_error (t_export ("protection",
                              json_pack ("{s:s, s:s}", "case_number", "QZA11C00001", "phone",
                                         "962790555001"),
                              &out),
                    &out, 400, "invalid_field", "phone");
    json_decref (out);
    t_expect_error (t_export ("protection", json_pack ("{s:s}", "phone", "+962790555001"), &out),
                    &out, 400, "invalid_field", "phone");
    json_decref (out);
    t_expect_error (t_export ("protection", json_pack ("{s:i}", "case_number", 7), &out), &out,
                    400, "invalid_field", "case_number");
    json_decref (out);
    t_expect_error (t_export ("protection", json_pack ("{s:s}", "case_number", "QZ<A>"), &out),
                    &out, 400, "invalid_field", "case_number");
    json_decref (out);
    t_expect_error (t_export ("protection",
                              json_pack ("{s:s}", "case_number",
                                         "QZA11C00001QZA11C00001QZA11C00001X"),
                              &out),
                    &out, 400, "invalid_field", "case_number");
    json_decref (out);
    t_expect_error (t_export ("protection",
                              json_pack ("{s:s, s:i}", "case_number", "QZA11C00001", "x", 1),
                              &out),
                    &out, 400, "unknown_field", "x");
    json_decref (out);
    //  No caller at all.
    json_t *bare = json_pack ("{s:s}", "case_number", "QZA11C00001");
    t_expect_error (t_req ("scheduler.person_export", NULL, bare, &out), &out, 400,
                    "bad_request", "caller");
    json_decref (bare);
    json_decref (out);
    //  Each answered export is in the log, by kind of identifier (teardown: never its value).
    int lines = 0;
    FILE *f = NULL;
    for (int i = 0; i < 50 && lines < 7; i++) {
        lines = 0;
        f = fopen (s_log_path, "r");
        char line[4096];
        while (f && fgets (line, sizeof line, f))
            lines += strstr (line, "person export by") != NULL;
        if (f)
            fclose (f);
        if (lines < 7)
            gl_sleep_ms (50);
    }
    assert_int_equal (lines, 7);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_records),
        cmocka_unit_test (test_by_case),
        cmocka_unit_test (test_by_phone),
        cmocka_unit_test (test_refusals),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
