/*  gl-reporting as a process against a private redis-server, fed by a real publisher (intake-1)
    in this test: a fixture day of calls, agent states and contacts through the bus, checked
    exactly against hand-computed figures (ASA 36 s, abandonment 25 %, service level 25 % / 50 %,
    AHT 210 s); who may see what; bad queries refused naming the field; the wallboard (queue,
    agents planned and present); the exports; the daily report announced with a
    notification.requested for the supervisors (docs: /tmp contract, docs/events.md);
    and `gl-reporting --rebuild`, from the archive and the log, equal to the incremental state.
    ctest: timeout=300 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "test_reporting_env.h"

static void
t_fixture_day (void)
{
    int a = 1, b = 1;
    t_state ("agent-a", "offline", "available", T_H (8, 0, 0), a++);
    t_state ("agent-b", "offline", "available", T_H (8, 30, 0), b++);
    t_call_cycle ("c1", T_H (9, 0, 0), 10, 120, 30, "agent-a", &a);
    t_call_cycle ("c2", T_H (9, 5, 0), 25, 300, 60, "agent-b", &b);
    t_call_cycle ("c3", T_H (9, 10, 0), 50, 180, 0, "agent-a", &a);
    t_call_cycle ("c8", T_H (9, 20, 0), 5, 60, 30, "agent-a", &a);
    t_call_cycle ("c4", T_H (9, 30, 0), 90, 240, 30, "agent-b", &b);
    t_offered ("c5", "fr", T_H (9, 40, 0));
    t_abandoned ("c5", "fr", T_H (9, 40, 0), 3);
    t_offered ("c6", "fr", T_H (9, 41, 0));
    t_abandoned ("c6", "fr", T_H (9, 41, 0), 40);
    t_offered ("c7", "ar", T_H (9, 42, 0));
    t_abandoned ("c7", "ar", T_H (9, 42, 0), 120);
    t_publish ("call.not_reached", T_H (10, 30, 0), "c9", "{" T_CALL ",\"reason\":\"all_lines_busy\",\"wait_ms\":null,\"reported\":{}}",
               "c9", "ar", (long long) T_H (10, 30, 0), 1);
    t_state ("agent-a", "available", "offline", T_H (10, 0, 0), a++);
    t_state ("agent-b", "available", "offline", T_H (10, 0, 0), b++);
    //  Contacts: k2 repeats k1 the same day; k1 has AGD fields.
    t_publish ("contact.created", T_H (9, 3, 0), "k1", "{\"contact_id\":\"k1\",\"channel\":\"call\",\"direction\":\"inbound\",\"language\":\"ar\",\"categories\":[\"health\"],\"outcome\":\"information_given\",\"frustration\":false,\"anonymous\":false,\"sensitive\":false,\"call_id\":\"c1\",\"agent_id\":\"agent-a\",\"agd\":{\"sex\":\"female\",\"age_group\":\"18-59\",\"nationality\":\"SYR\",\"specific_needs\":[],\"location\":null},\"repeat\":false,\"repeat_of\":null}");
    t_publish ("contact.created", T_H (9, 35, 0), "k2", "{\"contact_id\":\"k2\",\"channel\":\"call\",\"direction\":\"inbound\",\"language\":\"ar\",\"categories\":[\"health\"],\"outcome\":\"referral_made\",\"frustration\":true,\"anonymous\":false,\"sensitive\":false,\"call_id\":\"c4\",\"agent_id\":\"agent-b\",\"agd\":{\"sex\":\"female\",\"age_group\":\"18-59\",\"nationality\":\"SYR\",\"specific_needs\":[],\"location\":null},\"repeat\":true,\"repeat_of\":\"k1\"}");
    //  Not for reporting, and not well formed: counted, never a crash.
    t_publish ("kb.article_published", T_H (9, 0, 0), "", "{\"article_id\":\"x\"}");
    t_publish ("unheard.of", T_H (9, 0, 0), "", "{\"what\":[1,2,{\"deep\":null}]}");
    t_publish ("call.answered", T_H (9, 0, 0), "", "{\"call_id\":\"zz\",\"at\":\"noon\"}");
}

static void
test_fixture_day_over_the_bus (void **state)
{
    s_pid = t_spawn (NULL, NULL);
    t_fixture_day ();
    t_wait_applied (s_published);
    json_t *params = json_pack ("{s:s}", "period", "day");
    json_t *query = json_pack ("{s:s}", "date", "2026-03-10");
    json_t *r = t_ok ("reporting.report", "supervisor", json_incref (params), json_incref (query));
    assert_int_equal (t_path (r, "calls.offered"), 8);
    assert_int_equal (t_path (r, "calls.answered"), 5);
    assert_int_equal (t_path (r, "calls.abandoned"), 2);
    assert_int_equal (t_path (r, "calls.abandoned_short"), 1);
    //  2 / (8 - 1); 36 s; within 20 s 2 / 7, within 60 s 4 / 7
    assert_true (fabs (t_real (r, "calls.abandonment_rate") - 0.2857) < 1e-9);
    assert_int_equal (t_path (r, "calls.asa_ms"), 36000);
    assert_true (fabs (t_real (r, "calls.service_level.20") - 0.2857) < 1e-9);
    assert_true (fabs (t_real (r, "calls.service_level.60") - 0.5714) < 1e-9);
    assert_int_equal (t_path (r, "calls.longest_wait_ms"), 120000);
    assert_int_equal (t_path (r, "calls.aht_ms"), 210000);
    assert_int_equal (t_path (r, "calls.not_reached_by_reason.all_lines_busy"), 1);
    assert_int_equal (t_path (r, "contacts.total"), 2);
    assert_int_equal (t_path (r, "contacts.by_category.health"), 2);
    assert_int_equal (t_path (r, "contacts.frustrated"), 1);
    assert_int_equal (t_path (r, "fcr.eligible"), 1);
    assert_int_equal (t_path (r, "fcr.repeated"), 1);
    assert_int_equal (json_array_size (json_object_get (r, "agents")), 2);
    json_decref (r);

    //  An agent: own figures only; another agent's: refused.
    json_t *body = NULL;
    assert_int_equal (t_call ("reporting.report", "agent", "agent-a", json_incref (params),
                              json_incref (query), &body), 200);
    assert_null (json_object_get (body, "calls"));
    json_t *rows = json_object_get (body, "agents");
    assert_int_equal (json_array_size (rows), 1);
    assert_int_equal (t_path (json_array_get (rows, 0), "answered"), 3);
    json_decref (body);
    json_t *other = json_pack ("{s:s, s:s}", "date", "2026-03-10", "agent", "agent-b");
    assert_int_equal (t_call ("reporting.report", "agent", "agent-a", json_incref (params), other, NULL), 403);
    assert_int_equal (t_call ("reporting.report", "protection", "p", json_incref (params), json_incref (query), NULL), 403);
    assert_int_equal (t_call ("reporting.trends", "agent", "agent-a", NULL, NULL, NULL), 403);
    assert_int_equal (t_call ("reporting.export_stats", "agent", "agent-a", NULL, NULL, NULL), 403);
    //  Bad input names the field.
    json_t *bad = json_pack ("{s:s}", "date", "2026-13-01");
    assert_int_equal (t_call ("reporting.report", "supervisor", "s", json_incref (params), bad, NULL), 400);
    bad = json_pack ("{s:s}", "colour", "red");
    assert_int_equal (t_call ("reporting.report", "supervisor", "s", json_incref (params), bad, NULL), 400);
    assert_int_equal (t_call ("reporting.report", "supervisor", "s", json_pack ("{s:s}", "period", "decade"), NULL, NULL), 400);
    assert_int_equal (t_call ("reporting.export_stats", "supervisor", "s", NULL, json_pack ("{s:s, s:s, s:s}", "from", "2026-03-01", "to", "2026-03-31", "granularity", "hour"), NULL), 400);

    //  Exports: the report as CSV, the statistical export (protection may take it).
    json_t *csv = t_ok ("reporting.export_report", "admin", json_incref (params), json_incref (query));
    assert_string_equal (json_string_value (json_object_get (csv, "content_type")), "text/csv");
    assert_non_null (strstr (json_string_value (json_object_get (csv, "data")), "calls,asa_ms,,36000\r\n"));
    json_decref (csv);
    json_t *stats = t_ok ("reporting.export_stats", "protection",
                          NULL, json_pack ("{s:s, s:s, s:s}", "from", "2026-03-01", "to", "2026-03-31", "granularity", "month"));
    assert_int_equal (json_integer_value (json_object_get (stats, "small_cell_threshold")), 5);
    size_t i;
    json_t *row;
    int checked = 0;
    json_array_foreach (json_object_get (stats, "rows"), i, row) {
        //  2 contacts by sex: below the threshold, so hidden.
        if (!strcmp (json_string_value (json_object_get (row, "dimension")), "sex")) {
            assert_true (json_is_true (json_object_get (row, "suppressed")));
            assert_true (json_is_null (json_object_get (row, "count")));
            checked++;
        }
    }
    assert_int_equal (checked, 1);
    json_decref (stats);

    //  Lifetime counters: the unknown type and the malformed answer were counted.
    json_decref (params);
    json_decref (query);
}

static void
test_wallboard_live (void **state)
{
    //  Today (the clock says 2026-03-10 12:00): a shift plan, an agent present, a call waiting.
    t_publish ("shift.planned", T_H (7, 0, 0), "", "{\"date\":\"2026-03-10\",\"shifts\":[{\"agent_id\":\"agent-a\",\"start\":\"08:00\",\"end\":\"16:00\"},{\"agent_id\":\"agent-b\",\"start\":\"12:00\",\"end\":\"20:00\"},{\"agent_id\":\"agent-c\",\"start\":\"16:00\",\"end\":\"24:00\"}],\"shift_count\":3,\"planned_by\":\"sup\"}");
    t_state ("agent-a", "offline", "available", T_H (11, 50, 0), 12);
    t_offered ("w1", "fr", T_H (11, 59, 0));
    t_wait_applied (s_published);
    json_t *wb = t_ok ("reporting.wallboard", "agent", NULL, NULL);
    assert_int_equal (t_path (wb, "calls_waiting"), 1);
    assert_int_equal (t_path (wb, "waiting_by_language.fr"), 1);
    assert_int_equal (t_path (wb, "longest_current_wait_ms"), 60000);
    assert_int_equal (t_path (wb, "agents_planned"), 2);
    assert_int_equal (t_path (wb, "agents_available"), 1);
    assert_int_equal (t_path (wb, "agents_present"), 1);
    assert_int_equal (t_path (wb, "today.offered"), 9);
    assert_int_equal (t_path (wb, "today.answered"), 5);
    json_decref (wb);
    assert_int_equal (t_call ("reporting.wallboard", "supervisor", "s", NULL, json_pack ("{s:s}", "x", "1"), NULL), 400);
    //  Answered: no longer waiting.
    t_answered ("w1", "fr", T_H (11, 59, 0), 30, "agent-a");
    t_wait_applied (s_published);
    wb = t_ok ("reporting.wallboard", "supervisor", NULL, NULL);
    assert_int_equal (t_path (wb, "calls_waiting"), 0);
    json_decref (wb);
    //  The rebuild refuses while the service runs (it holds the consumer group's lease).
    pid_t rb = t_spawn ("--rebuild", NULL);
    int status = gl_test_wait (rb, 60000);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 1);
}

//  A bad setting stops the start, naming the key; a malformed configuration file names file:line.
static void
test_bad_settings_stop_the_start (void **state)
{
    char conf[256];
    snprintf (conf, sizeof conf, "/tmp/gl-test-reporting-%d.conf", getpid ());
    FILE *f = fopen (conf, "w");
    assert_non_null (f);
    fputs ("# reporting\nGL_REPORTING_TZ=UTC\nthis is not a setting\n", f);
    fclose (f);
    char conf_env[300];
    snprintf (conf_env, sizeof conf_env, "GL_CONFIG=%s", conf);
    const char *bad[][2] = { { "GL_REPORTING_WEEKEND=caturday", "GL_REPORTING_WEEKEND" },
                             { "GL_REPORTING_TZ=Mars/Olympus", "GL_REPORTING_TZ" },
                             { "GL_REPORTING_SMALL_CELL=0", "GL_REPORTING_SMALL_CELL" },
                             { conf_env, ":3" } };
    for (int i = 0; i < 4; i++) {
        unlink (s_log_path);
        const char *extra[] = { bad[i][0], NULL };
        pid_t pid = t_spawn (NULL, extra);
        int status = gl_test_wait (pid, 30000);
        assert_true (WIFEXITED (status));
        assert_int_equal (WEXITSTATUS (status), 1);
        f = fopen (s_log_path, "r");
        assert_non_null (f);
        char text[8192];
        size_t len = fread (text, 1, sizeof text - 1, f);
        fclose (f);
        text[len] = 0;
        if (!strstr (text, bad[i][1]))
            fprintf (stderr, "expected %s in: %s\n", bad[i][1], text);
        assert_non_null (strstr (text, bad[i][1]));
    }
    unlink (conf);
}

static void
test_trends_over_the_bus (void **state)
{
    json_t *t = t_ok ("reporting.trends", "supervisor", NULL, json_pack ("{s:s}", "date", "2026-03-10"));
    assert_string_equal (json_string_value (json_object_get (t, "week_from")), "2026-03-09");
    json_t *cats = json_object_get (t, "categories");
    //  health: 2 contacts this week, below the minimum count: listed, not tested.
    assert_int_equal (json_integer_value (json_object_get (cats, "tested")), 0);
    assert_int_equal (json_array_size (json_object_get (cats, "all")), 1);
    assert_non_null (strstr (json_string_value (json_object_get (json_object_get (t, "method"), "test")), "Poisson"));
    json_decref (t);
    assert_int_equal (t_call ("reporting.trends", "supervisor", "s", NULL, json_pack ("{s:s}", "date", "x"), NULL), 400);
}

//  The HTML report, in English and Arabic, opened in a real browser (headless chromium): its
//  screenshots are saved in the build folder (reporting-report-en.png, -ar.png).
static void
test_html_report_in_browser (void **state)
{
    const char *langs[] = { "en", "ar" };
    for (int i = 0; i < 2; i++) {
        json_t *file = t_ok ("reporting.export_report", "supervisor", json_pack ("{s:s}", "period", "day"),
                             json_pack ("{s:s, s:s, s:s}", "date", "2026-03-10", "format", "html", "lang", langs[i]));
        assert_string_equal (json_string_value (json_object_get (file, "content_type")), "text/html");
        const char *html = json_string_value (json_object_get (file, "data"));
        assert_non_null (strstr (html, "<svg"));
        assert_null (strstr (html, "<script"));
        assert_non_null (strstr (html, i ? "dir=\"rtl\"" : "dir=\"ltr\""));
        char page[300], png[300];
        snprintf (page, sizeof page, "/tmp/gl-test-reporting-%d-%s.html", getpid (), langs[i]);
        snprintf (png, sizeof png, "%s", gl_test_build_path (i ? "reporting-report-ar.png" : "reporting-report-en.png"));
        FILE *f = fopen (page, "w");
        assert_non_null (f);
        fputs (html, f);
        fclose (f);
        json_decref (file);
        unlink (png);
        if (access ("/usr/bin/chromium", X_OK) != 0) {
            unlink (page);
            skip ();
        }
        char shot[400], url[320];
        snprintf (shot, sizeof shot, "--screenshot=%s", png);
        snprintf (url, sizeof url, "file://%s", page);
        char *argv[] = { "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                         "--window-size=1000,1500", shot, url, NULL };
        pid_t pid = gl_test_spawn ("/usr/bin/chromium", argv, NULL, s_log_path);
        assert_true (pid > 0);
        int status = gl_test_wait (pid, 120000);
        assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
        f = fopen (png, "rb");
        assert_non_null (f);
        unsigned char sig[8] = { 0 };
        assert_int_equal (fread (sig, 1, 8, f), 8);
        fseek (f, 0, SEEK_END);
        long size = ftell (f);
        fclose (f);
        assert_memory_equal (sig, "\x89PNG\r\n\x1a\n", 8);
        //  A page with charts and text, not a blank one.
        assert_true (size > 20000);
        unlink (page);
    }
    assert_int_equal (t_call ("reporting.export_report", "supervisor", "s", json_pack ("{s:s}", "period", "day"),
                              json_pack ("{s:s}", "lang", "de"), NULL), 400);
}

typedef struct {
    const char *type;
    json_t *found;
} t_find_t;

static int
t_find_entry (void *arg, uint64_t seq, const char *bytes, size_t len)
{
    t_find_t *f = arg;
    gl_event_err_t why;
    gl_event_t *ev = gl_event_decode (bytes, len, &why, NULL, 0);
    if (ev && !strcmp (ev->type, f->type)) {
        json_t *params = json_object_get (ev->data, "params");
        if (!params || !strcmp (json_string_value (json_object_get (params, "from")), "2026-03-10")) {
            if (!f->found)
                f->found = json_array ();
            json_t *copy = json_deep_copy (ev->data);
            json_object_set_new (copy, "_corr", json_string (ev->corr));
            json_array_append_new (f->found, copy);
        }
    }
    gl_event_destroy (&ev);
    return 0;
}

static json_t *
t_find (const char *type)
{
    t_find_t f = { type, NULL };
    gl_log_read (s_rc, "reporting-1", 1, 0, 10000, t_find_entry, &f, NULL);
    return f.found;
}

static void
test_daily_report_announced (void **state)
{
    //  The next morning after the report hour: yesterday's report goes to the supervisors.
    t_clock_set (T_H (7, 0, 0) + 86400000LL);
    json_t *found = NULL;
    while (!(found = t_find ("notification.requested"))) {
        gl_pub_tick (s_pub);
        gl_sleep_ms (20);
    }
    assert_int_equal (json_array_size (found), 1);
    json_t *n = json_array_get (found, 0);
    assert_string_equal (json_string_value (json_object_get (n, "template")), "report.daily");
    assert_string_equal (json_string_value (json_object_get (n, "priority")), "routine");
    assert_int_equal (strlen (json_string_value (json_object_get (n, "notification_id"))), 32);
    assert_string_equal (json_string_value (json_object_get (json_object_get (n, "recipient"), "kind")), "role");
    assert_string_equal (json_string_value (json_object_get (json_object_get (n, "recipient"), "role")), "supervisor");
    json_t *ch = json_object_get (n, "channels");
    assert_int_equal (json_array_size (ch), 2);
    assert_string_equal (json_string_value (json_array_get (ch, 0)), "email");
    assert_string_equal (json_string_value (json_array_get (ch, 1)), "console");
    assert_int_equal (t_path (n, "params.calls_offered"), 9);
    assert_int_equal (t_path (n, "params.calls_answered"), 6);
    assert_string_equal (json_string_value (json_object_get (n, "_corr")), "day-2026-03-10");
    json_decref (found);
    found = t_find ("report.generated");
    assert_non_null (found);
    json_decref (found);
}

//  Every field of both checkpoint hashes, as sorted "hash field value" text.
static char *
t_checkpoint_text (void)
{
    const char *keys[] = { "reporting:{reporting}:agg", "reporting:{reporting}:rec", "gl:cur:{reporting}" };
    size_t cap = 1 << 20, len = 0;
    char *out = malloc (cap);
    out[0] = 0;
    for (int k = 0; k < 3; k++) {
        redisReply *r = gl_redis_cmd (s_rc, "HGETALL %s", keys[k]);
        assert_non_null (r);
        assert_int_equal (r->type, REDIS_REPLY_ARRAY);
        json_t *sorted = json_object ();
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const char *value = r->element[i + 1]->str;
            char *copy = strdup (value);
            //  The service's own stop event is published after its last checkpoint: only the
            //  rebuild has it. Leave its line out of the lifetime bucket.
            char *line = strstr (copy, "events|type=service.stopping\t");
            if (k == 0 && !strcmp (r->element[i]->str, "t") && line) {
                char *nl = strchr (line, '\n');
                memmove (line, nl + 1, strlen (nl + 1) + 1);
            }
            //  Cursors: intake-1's must be equal; reporting-1's rebuild includes that stop event.
            if (k == 2 && !strcmp (r->element[i]->str, "reporting-1")) {
                free (copy);
                continue;
            }
            json_object_set_new (sorted, r->element[i]->str, json_string (copy));
            free (copy);
        }
        freeReplyObject (r);
        char *dump = json_dumps (sorted, JSON_SORT_KEYS | JSON_INDENT (1));
        json_decref (sorted);
        size_t need = strlen (dump) + 64;
        if (len + need >= cap) {
            cap = (len + need) * 2;
            out = realloc (out, cap);
        }
        len += (size_t) snprintf (out + len, cap - len, "%s\n%s\n", keys[k], dump);
        free (dump);
    }
    return out;
}

static void
test_rebuild_equals_incremental (void **state)
{
    //  Everything applied, then a clean stop (last checkpoint).
    gl_srcinfo_t mine;
    assert_int_equal (gl_srcinfo_read (s_rc, "reporting-1", &mine), 0);
    t_wait_applied (s_published + mine.seq);
    int status = gl_test_stop (s_pid, 10000);
    s_pid = -1;
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    char *incremental = t_checkpoint_text ();
    //  Trim intake's log into the archive: the rebuild must read both.
    assert_true (gl_log_trim (s_rc, "intake-1", s_archive, 5) > 0);
    pid_t rb = t_spawn ("--rebuild", NULL);
    status = gl_test_wait (rb, 60000);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    char *rebuilt = t_checkpoint_text ();
    if (strcmp (incremental, rebuilt) != 0) {
        FILE *f = fopen ("/tmp/gl-test-reporting-incremental.txt", "w");
        fputs (incremental, f);
        fclose (f);
        f = fopen ("/tmp/gl-test-reporting-rebuilt.txt", "w");
        fputs (rebuilt, f);
        fclose (f);
        fprintf (stderr, "rebuild differs: see /tmp/gl-test-reporting-{incremental,rebuilt}.txt\n");
    }
    assert_string_equal (incremental, rebuilt);
    free (incremental);
    free (rebuilt);
    //  Started again on the rebuilt state: one more call counts once.
    s_pid = t_spawn (NULL, NULL);
    t_offered ("after", "ar", T_H (13, 0, 0));
    t_abandoned ("after", "ar", T_H (13, 0, 0), 30);
    json_t *params = json_pack ("{s:s}", "period", "day");
    while (true) {
        json_t *r = t_ok ("reporting.report", "supervisor", json_incref (params),
                          json_pack ("{s:s}", "date", "2026-03-10"));
        int64_t offered = t_path (r, "calls.offered"), abandoned = t_path (r, "calls.abandoned");
        int64_t asa = t_path (r, "calls.asa_ms");
        json_decref (r);
        if (abandoned == 3) {
            assert_int_equal (offered, 10);
            assert_int_equal (asa, 35000);      //  (180 + 30) / 6
            break;
        }
        gl_pub_tick (s_pub);
        gl_sleep_ms (20);
    }
    json_decref (params);
    //  The daily report is not announced again after the restarts.
    json_t *found = t_find ("notification.requested");
    assert_int_equal (json_array_size (found), 1);
    json_decref (found);
}

static int
t_setup (void **state)
{
    t_env_start ("reporting");
    return 0;
}

static int
t_teardown (void **state)
{
    t_env_stop ();
    return 0;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_bad_settings_stop_the_start),
        cmocka_unit_test (test_fixture_day_over_the_bus),
        cmocka_unit_test (test_wallboard_live),
        cmocka_unit_test (test_trends_over_the_bus),
        cmocka_unit_test (test_html_report_in_browser),
        cmocka_unit_test (test_daily_report_announced),
        cmocka_unit_test (test_rebuild_equals_incremental),
    };
    return cmocka_run_group_tests (tests, t_setup, t_teardown);
}
