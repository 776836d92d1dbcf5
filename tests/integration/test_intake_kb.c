/*  intake's knowledge base over real HTTP: gl-intake as a process against a private
    redis-server, its business clock driven through GL_CLOCK_FILE.

    Articles written and changed (each change a version with its author and note), an edit
    based on an old version refused 409, versions listed and read back, diffs between any two
    (title, tags, validity, body line by line); full-text search in English, French (accents
    folded) and Arabic (marks, hamza forms, ta marbuta and the article folded), ranked, filtered
    by language and tag; validity: an article flagged expired once its end passes on the
    driven clock, kb.article_expired published once per end; briefings: a change seen by
    agents with what changed, acknowledged by some, listed as pending for the others in the
    supervisor's view; the events; bad input answered 4xx naming the field.

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

enum { U_ADMIN, U_AGENT1, U_AGENT2, U_AGENT3, U_SUPER, U_PROT, U_COUNT };
static gl_testintake_account_t s_users[U_COUNT] = {
    { "admin", NULL, NULL, "", "" },
    { "agent1", "[\"agent\"]", "[\"unit-a\"]", "", "" },
    { "agent2", "[\"agent\"]", "[\"unit-a\"]", "", "" },
    { "agent3", "[\"agent\"]", "[\"unit-b\"]", "", "" },
    { "super1", "[\"supervisor\"]", "[\"unit-a\"]", "", "" },
    { "prot1", "[\"protection\"]", "[\"unit-a\"]", "", "" },
};

#define GL_TESTINTAKE_HARNESS
#include "gl_testintake.h"

static int
t_setup (void **state)
{
    const char *extra[] = { "GL_INTAKE_KB_SWEEP_MS=200", NULL };
    return t_setup_common (extra);
}

//  POST an article as the supervisor; copies its id (and briefing id when asked).
static void
t_article (const char *body, char *id, char *briefing)
{
    json_t *rec = t_call_json (U_SUPER, "POST", "/api/v1/kb/articles", body, 201);
    snprintf (id, GL_ID_LEN + 1, "%s", t_str (rec, "id"));
    assert_true (gl_id_valid (id));
    if (briefing)
        snprintf (briefing, GL_ID_LEN + 1, "%s",
                  t_str (rec, "briefing_id") ? t_str (rec, "briefing_id") : "");
    json_decref (rec);
}

static json_t *
t_patch (const char *id, const char *body, int status)
{
    char path[128];
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s", id);
    return t_call_json (U_SUPER, "PATCH", path, body, status);
}

//  The ids of a search's items, in order, joined by spaces.
static void
t_search (int user, const char *query, char *out, size_t len)
{
    char path[600];
    snprintf (path, sizeof path, "/api/v1/kb/search?%s", query);
    json_t *res = t_call_json (user, "GET", path, NULL, 200);
    size_t n = 0, i;
    json_t *item;
    out[0] = 0;
    json_array_foreach (json_object_get (res, "items"), i, item)
        n += (size_t) snprintf (out + n, len - n, "%s%s", n ? " " : "", t_str (item, "id"));
    json_decref (res);
}

//  --------------------------------------------------------------------------------------------

static void
test_versions_and_diff (void **state)
{
    //  Events carry ids and codes, never an article's text.
    t_secret ("Families of four or more");
    t_secret ("Cash assistance (CBI)");
    char id[GL_ID_LEN + 1];
    t_article ("{\"language\":\"en\",\"title\":\"Cash assistance\",\"body\":\"Who can apply\\n"
               "Families of five or more\\nHow to apply\",\"tags\":[\"cash\",\"assistance\"],"
               "\"note\":\"first draft\"}",
               id, NULL);
    json_t *evs = t_wait_events ("kb.article_published", id, 1);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_int_equal (t_int (data, "version"), 1);
    assert_string_equal (t_str (data, "language"), "en");
    assert_string_equal (t_str (data, "author_id"), s_users[U_SUPER].id);
    json_decref (evs);

    json_t *rec = t_patch (id,
                           "{\"base_version\":1,\"body\":\"Who can apply\\nFamilies of four or "
                           "more\\nHow to apply\",\"tags\":[\"cash\",\"cbi\"],"
                           "\"note\":\"new threshold\"}",
                           200);
    assert_int_equal (t_int (rec, "version"), 2);
    json_decref (rec);
    //  Editing an old version is refused, naming it.
    char path[256];
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s", id);
    t_call_error (U_SUPER, "PATCH", path, "{\"base_version\":1,\"title\":\"Cash\"}", 409,
                  "stale_version", "base_version");
    t_call_error (U_SUPER, "PATCH", path, "{\"title\":\"Cash\"}", 400, "missing_field",
                  "base_version");
    t_call_error (U_SUPER, "PATCH", path, "{\"base_version\":2,\"language\":\"fr\"}", 400,
                  "invalid_field", "language");
    t_call_error (U_SUPER, "PATCH", path, "{\"base_version\":2,\"tags\":[\"Bad Tag\"]}", 400,
                  "invalid_field", "tags");
    assert_int_equal (t_call_status (U_AGENT1, "PATCH", path, "{\"base_version\":2}"), 403);
    rec = t_patch (id, "{\"base_version\":2,\"title\":\"Cash assistance (CBI)\"}", 200);
    assert_int_equal (t_int (rec, "version"), 3);
    json_decref (rec);
    //  Nothing changed: no new version.
    rec = t_patch (id, "{\"base_version\":3,\"title\":\"Cash assistance (CBI)\"}", 200);
    assert_int_equal (t_int (rec, "version"), 3);
    json_decref (rec);

    //  The history: who, when, why, newest first; every version readable.
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s/versions", id);
    json_t *list = t_call_json (U_AGENT1, "GET", path, NULL, 200);
    json_t *items = json_object_get (list, "items");
    assert_int_equal (json_array_size (items), 3);
    assert_int_equal (t_int (json_array_get (items, 0), "version"), 3);
    assert_string_equal (t_str (json_array_get (items, 1), "note"), "new threshold");
    assert_string_equal (t_str (json_array_get (items, 2), "author_id"), s_users[U_SUPER].id);
    json_decref (list);
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s/versions/1", id);
    rec = t_call_json (U_AGENT2, "GET", path, NULL, 200);
    assert_non_null (strstr (t_str (rec, "body"), "five or more"));
    json_decref (rec);
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s/versions/9", id);
    t_call_error (U_AGENT2, "GET", path, NULL, 404, "not_found", NULL);

    //  Diffs: the latest change by default, or any two versions.
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s/diff", id);
    json_t *diff = t_call_json (U_AGENT1, "GET", path, NULL, 200);
    assert_int_equal (t_int (diff, "from"), 2);
    assert_int_equal (t_int (diff, "to"), 3);
    json_t *title = json_object_get (json_object_get (diff, "fields"), "title");
    assert_string_equal (t_str (title, "from"), "Cash assistance");
    assert_string_equal (t_str (title, "to"), "Cash assistance (CBI)");
    assert_int_equal (t_int (diff, "added"), 0);
    json_decref (diff);
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s/diff?from=1&to=2", id);
    diff = t_call_json (U_AGENT1, "GET", path, NULL, 200);
    json_t *body = json_object_get (diff, "body");
    assert_int_equal (json_array_size (body), 4);
    assert_string_equal (t_str (json_array_get (body, 0), "op"), " ");
    assert_string_equal (t_str (json_array_get (body, 1), "op"), "-");
    assert_string_equal (t_str (json_array_get (body, 1), "line"), "Families of five or more");
    assert_string_equal (t_str (json_array_get (body, 2), "op"), "+");
    assert_string_equal (t_str (json_array_get (body, 2), "line"), "Families of four or more");
    json_t *tags = json_object_get (diff, "tags");
    assert_string_equal (json_string_value (json_array_get (json_object_get (tags, "added"), 0)),
                         "cbi");
    assert_string_equal (
        json_string_value (json_array_get (json_object_get (tags, "removed"), 0)), "assistance");
    json_decref (diff);
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s/diff?from=3&to=2", id);
    t_call_error (U_AGENT1, "GET", path, NULL, 400, "invalid_parameter", "from");
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s/diff?to=7", id);
    t_call_error (U_AGENT1, "GET", path, NULL, 404, "not_found", "to");
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s/diff?from=x", id);
    t_call_error (U_AGENT1, "GET", path, NULL, 400, "invalid_parameter", "from");

    evs = t_wait_events ("kb.article_updated", id, 2);
    data = json_object_get (json_array_get (evs, 0), "data");
    assert_int_equal (t_int (data, "from_version"), 1);
    assert_int_equal (t_int (data, "version"), 2);
    assert_int_equal (json_array_size (json_object_get (data, "changed")), 2);
    json_decref (evs);

    //  Unknown articles, bad bodies.
    char missing[GL_ID_LEN + 1];
    gl_id_new (missing);
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s", missing);
    t_call_error (U_AGENT1, "GET", path, NULL, 404, "not_found", NULL);
    t_call_error (U_SUPER, "PATCH", path, "{\"base_version\":1,\"title\":\"x\"}", 404,
                  "not_found", NULL);
    t_call_error (U_SUPER, "POST", "/api/v1/kb/articles", "{\"language\":\"en\",\"body\":\"b\"}",
                  400, "missing_field", "title");
    t_call_error (U_SUPER, "POST", "/api/v1/kb/articles",
                  "{\"language\":\"en\",\"title\":\"t\",\"body\":\"b\",\"valid_from\":100,"
                  "\"valid_to\":50}",
                  400, "invalid_field", "valid_to");
    t_call_error (U_SUPER, "POST", "/api/v1/kb/articles",
                  "{\"language\":\"en\",\"title\":\"t\",\"body\":\"b\",\"valid_to\":\"soon\"}",
                  400, "invalid_field", "valid_to");
    assert_int_equal (t_call_status (U_AGENT1, "POST", "/api/v1/kb/articles",
                                     "{\"language\":\"en\",\"title\":\"t\",\"body\":\"b\"}"),
                      403);
}

static void
test_search (void **state)
{
    char en1[GL_ID_LEN + 1], en2[GL_ID_LEN + 1], fr[GL_ID_LEN + 1], ar[GL_ID_LEN + 1];
    t_article ("{\"language\":\"en\",\"title\":\"Resettlement interviews\",\"body\":\"What to "
               "bring to a resettlement interview.\",\"tags\":[\"resettlement\"]}",
               en1, NULL);
    t_article ("{\"language\":\"en\",\"title\":\"Appointments\",\"body\":\"Appointments for "
               "registration and for resettlement are booked by the hotline.\"}",
               en2, NULL);
    t_article ("{\"language\":\"fr\",\"title\":\"L'\\u00e9cole primaire\",\"body\":\"Inscription "
               "\\u00e0 l'\\u00c9cole : documents demand\\u00e9s.\",\"tags\":[\"education\"]}",
               fr, NULL);
    //  المساعدة النقدية / تقدم المفوضية مساعدة نقدية شهرية للأسر
    t_article ("{\"language\":\"ar\",\"title\":\"\\u0627\\u0644\\u0645\\u0633\\u0627\\u0639\\u062f"
               "\\u0629 \\u0627\\u0644\\u0646\\u0642\\u062f\\u064a\\u0629\",\"body\":\"\\u062a"
               "\\u0642\\u062f\\u0645 \\u0627\\u0644\\u0645\\u0641\\u0648\\u0636\\u064a\\u0629 "
               "\\u0645\\u0633\\u0627\\u0639\\u062f\\u0629 \\u0646\\u0642\\u062f\\u064a\\u0629 "
               "\\u0634\\u0647\\u0631\\u064a\\u0629 \\u0644\\u0644\\u0623\\u0633\\u0631\","
               "\"tags\":[\"cash\"]}",
               ar, NULL);
    char out[512], want[128];
    //  English: the title match ranks first.
    t_search (U_AGENT1, "q=RESETTLEMENT", out, sizeof out);
    snprintf (want, sizeof want, "%s %s", en1, en2);
    assert_string_equal (out, want);
    t_search (U_AGENT1, "q=resettlement%20registration", out, sizeof out);
    assert_string_equal (out, en2);
    //  French: accents and case folded, elision split.
    t_search (U_AGENT1, "q=ecole", out, sizeof out);
    assert_string_equal (out, fr);
    t_search (U_AGENT2, "q=%C3%89COLE%20demand%C3%A9s", out, sizeof out);
    assert_string_equal (out, fr);
    //  Arabic: with the article (المساعدة), without it (مساعدة), with vowel marks (مُساعَدة).
    t_search (U_PROT, "q=%D8%A7%D9%84%D9%85%D8%B3%D8%A7%D8%B9%D8%AF%D8%A9", out, sizeof out);
    assert_string_equal (out, ar);
    t_search (U_AGENT1, "q=%D9%85%D8%B3%D8%A7%D8%B9%D8%AF%D8%A9", out, sizeof out);
    assert_string_equal (out, ar);
    t_search (U_AGENT1, "q=%D9%85%D9%8F%D8%B3%D8%A7%D8%B9%D9%8E%D8%AF%D8%A9&language=ar", out,
              sizeof out);
    assert_string_equal (out, ar);
    //  الأسر written with a bare alef and ta marbuta variants: للأسر is one word, so no match
    //  for اسر alone, but نقديه (ha for ta marbuta) matches نقدية.
    t_search (U_AGENT1, "q=%D9%86%D9%82%D8%AF%D9%8A%D9%87", out, sizeof out);
    assert_string_equal (out, ar);
    //  Filters.
    t_search (U_AGENT1, "q=resettlement&language=fr", out, sizeof out);
    assert_string_equal (out, "");
    t_search (U_AGENT1, "q=resettlement&tag=resettlement", out, sizeof out);
    assert_string_equal (out, en1);
    t_search (U_AGENT1, "q=unheardofword", out, sizeof out);
    assert_string_equal (out, "");
    //  Bad queries.
    t_call_error (U_AGENT1, "GET", "/api/v1/kb/search", NULL, 400, "invalid_parameter", "q");
    t_call_error (U_AGENT1, "GET", "/api/v1/kb/search?q=%21%21%21", NULL, 400,
                  "invalid_parameter", "q");
    t_call_error (U_AGENT1, "GET", "/api/v1/kb/search?q=x&language=Klingon!", NULL, 400,
                  "invalid_parameter", "language");
    //  Listing by language.
    json_t *page = t_call_json (U_AGENT1, "GET", "/api/v1/kb/articles?language=ar", NULL, 200);
    assert_int_equal (json_array_size (json_object_get (page, "items")), 1);
    assert_true (t_has_id (page, ar));
    assert_null (json_object_get (json_array_get (json_object_get (page, "items"), 0), "body"));
    json_decref (page);
}

static void
test_expiry (void **state)
{
    char id[GL_ID_LEN + 1], body[512];
    snprintf (body, sizeof body,
              "{\"language\":\"en\",\"title\":\"Winter kits\",\"body\":\"Distribution until "
              "Friday\",\"valid_to\":%" PRId64 ",\"briefing\":false}",
              s_now + T_DAY_MS);
    t_article (body, id, NULL);
    char path[128];
    snprintf (path, sizeof path, "/api/v1/kb/articles/%s", id);
    json_t *rec = t_call_json (U_AGENT1, "GET", path, NULL, 200);
    assert_false (json_is_true (json_object_get (rec, "expired")));
    assert_true (json_is_true (json_object_get (rec, "valid_now")));
    json_decref (rec);
    json_decref (t_events ("kb.article_expired", id));

    t_clock_advance (2 * T_DAY_MS);
    rec = t_call_json (U_AGENT1, "GET", path, NULL, 200);
    assert_true (json_is_true (json_object_get (rec, "expired")));
    assert_false (json_is_true (json_object_get (rec, "valid_now")));
    json_decref (rec);
    json_t *page = t_call_json (U_AGENT1, "GET", "/api/v1/kb/articles?expired=true", NULL, 200);
    assert_true (t_has_id (page, id));
    json_decref (page);
    char out[256];
    t_search (U_AGENT1, "q=winter&expired=false", out, sizeof out);
    assert_string_equal (out, "");
    json_t *evs = t_wait_events ("kb.article_expired", id, 1);
    assert_int_equal (t_int (json_object_get (json_array_get (evs, 0), "data"), "valid_to"),
                      s_now - T_DAY_MS);
    json_decref (evs);

    //  Extended: valid again, and announced again when the new end passes; only once.
    snprintf (body, sizeof body, "{\"base_version\":1,\"valid_to\":%" PRId64 "}",
              s_now + T_DAY_MS);
    rec = t_patch (id, body, 200);
    assert_false (json_is_true (json_object_get (rec, "expired")));
    json_decref (rec);
    t_clock_advance (2 * T_DAY_MS);
    json_decref (t_wait_events ("kb.article_expired", id, 2));
    gl_sleep_ms (600);                  //  three more sweeps: still two
    json_decref (t_wait_events ("kb.article_expired", id, 2));
}

static void
test_briefings (void **state)
{
    char id[GL_ID_LEN + 1], b1[GL_ID_LEN + 1];
    t_article ("{\"language\":\"en\",\"title\":\"Hotline hours\",\"body\":\"Sunday to Thursday\\n"
               "8:00 to 16:00\"}",
               id, b1);
    assert_true (gl_id_valid (b1));
    json_t *rec = t_patch (id,
                           "{\"base_version\":1,\"body\":\"Sunday to Thursday\\n8:00 to 18:00\","
                           "\"note\":\"longer hours\"}",
                           200);
    char b2[GL_ID_LEN + 1];
    snprintf (b2, sizeof b2, "%s", t_str (rec, "briefing_id"));
    assert_true (gl_id_valid (b2));
    json_decref (rec);

    //  Agents see what changed.
    char path[200];
    snprintf (path, sizeof path, "/api/v1/kb/briefings/%s", b2);
    json_t *b = t_call_json (U_AGENT1, "GET", path, NULL, 200);
    assert_false (json_is_true (json_object_get (b, "acknowledged")));
    assert_int_equal (t_int (b, "version"), 2);
    assert_int_equal (t_int (b, "from_version"), 1);
    json_t *changes = json_object_get (b, "changes");
    assert_int_equal (t_int (changes, "added"), 1);
    assert_int_equal (t_int (changes, "removed"), 1);
    assert_null (json_object_get (b, "pending"));          //  the supervisor's view only
    json_decref (b);
    json_t *page = t_call_json (U_AGENT1, "GET", "/api/v1/kb/briefings?pending=true", NULL, 200);
    assert_true (t_has_id (page, b2));
    assert_true (t_has_id (page, b1));
    json_decref (page);

    //  agent1 and agent2 acknowledge (twice is harmless); agent3 does not.
    snprintf (path, sizeof path, "/api/v1/kb/briefings/%s/acknowledge", b2);
    json_t *ack = t_call_json (U_AGENT1, "POST", path, "{}", 200);
    assert_false (json_is_true (json_object_get (ack, "already")));
    json_decref (ack);
    ack = t_call_json (U_AGENT1, "POST", path, "{}", 200);
    assert_true (json_is_true (json_object_get (ack, "already")));
    json_decref (ack);
    json_decref (t_call_json (U_AGENT2, "POST", path, "{}", 200));
    assert_int_equal (t_call_status (U_SUPER, "POST", path, "{}"), 403);
    t_call_error (U_AGENT1, "POST", path, "{\"x\":1}", 400, "unknown_field", "x");

    page = t_call_json (U_AGENT1, "GET", "/api/v1/kb/briefings?pending=true", NULL, 200);
    assert_false (t_has_id (page, b2));
    json_decref (page);
    page = t_call_json (U_AGENT3, "GET", "/api/v1/kb/briefings?pending=true", NULL, 200);
    assert_true (t_has_id (page, b2));
    json_decref (page);

    //  The supervisor sees who has and who has not.
    snprintf (path, sizeof path, "/api/v1/kb/briefings/%s", b2);
    b = t_call_json (U_SUPER, "GET", path, NULL, 200);
    json_t *acked = json_object_get (b, "acknowledged_by");
    json_t *pending = json_object_get (b, "pending");
    assert_int_equal (json_array_size (acked), 2);
    assert_int_equal (json_array_size (pending), 1);
    assert_string_equal (json_string_value (json_array_get (pending, 0)), s_users[U_AGENT3].id);
    size_t i;
    json_t *a;
    json_array_foreach (acked, i, a)
        assert_true (strcmp (t_str (a, "user_id"), s_users[U_AGENT1].id) == 0
                     || strcmp (t_str (a, "user_id"), s_users[U_AGENT2].id) == 0);
    json_decref (b);

    json_t *evs = t_wait_events ("kb.briefing_acknowledged", id, 2);
    json_t *data = json_object_get (json_array_get (evs, 0), "data");
    assert_string_equal (t_str (data, "briefing_id"), b2);
    assert_string_equal (t_str (data, "agent_id"), s_users[U_AGENT1].id);
    assert_int_equal (t_int (data, "version"), 2);
    json_decref (evs);

    char missing[GL_ID_LEN + 1];
    gl_id_new (missing);
    snprintf (path, sizeof path, "/api/v1/kb/briefings/%s/acknowledge", missing);
    t_call_error (U_AGENT1, "POST", path, "{}", 404, "not_found", NULL);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_versions_and_diff),
        cmocka_unit_test (test_search),
        cmocka_unit_test (test_expiry),
        cmocka_unit_test (test_briefings),
    };
    return cmocka_run_group_tests_name ("intake knowledge base", tests, t_setup, t_teardown);
}
