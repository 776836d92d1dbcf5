/*  scheduler's configuration file (services/scheduler/config.c): the sample config loads with
    what it says (two centres, Friday/Saturday weekend, holidays, Ramadan hours, six services,
    reminders); every mistake stops the load naming file:line; the calendar helpers.
    ctest: timeout=60 */
#include "../../services/scheduler/config.c"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static const char *s_base =
    "[service renewal]\n"
    "name = Renewal\n"
    "duration = 30m\n"
    "capacity = 2\n"
    "[centre c1]\n"
    "name = Centre one\n"
    "address = 1 Main Street\n"
    "timezone = +03:00\n"
    "weekend = fri, sat\n"
    "hours = 08:00-12:00\n"
    "services = renewal\n";

//  Parse base + extra; expect failure with "t.conf:<line>:" and a part of the message.
static void
t_bad (const char *extra, int line, const char *part)
{
    char text[4096], err[512] = "", want[32];
    snprintf (text, sizeof text, "%s%s", s_base, extra);
    sched_config_t *c = sched_config_parse (text, strlen (text), "t.conf", err, sizeof err);
    if (c)
        fprintf (stderr, "accepted: %s\n", extra);
    assert_null (c);
    snprintf (want, sizeof want, "t.conf:%d:", line);
    if (strncmp (err, want, strlen (want)) != 0 || !strstr (err, part))
        fprintf (stderr, "got '%s', wanted '%s ... %s'\n", err, want, part);
    assert_memory_equal (err, want, strlen (want));
    assert_non_null (strstr (err, part));
}

static void
test_sample_file (void **state)
{
    (void) state;
    char path[512], err[512] = "";
    const char *src = getenv ("GL_SOURCE_DIR");
    snprintf (path, sizeof path, "%s/config/scheduler.conf", src ? src : ".");
    sched_config_t *c = sched_config_load (path, err, sizeof err);
    if (!c)
        fprintf (stderr, "%s\n", err);
    assert_non_null (c);
    assert_int_equal (c->centre_count, 2);
    assert_int_equal (c->service_count, 6);
    const char *services[] = { "registration_renewal", "rsd_interview", "counselling",
                               "documentation", "biometric_verification",
                               "cash_assistance_enquiry" };
    for (int i = 0; i < 6; i++)
        assert_non_null (sched_config_service (c, services[i]));
    const sched_centre_t *amman = sched_config_centre (c, "amman-1");
    assert_non_null (amman);
    assert_int_equal (amman->tz_offset_min, 180);
    assert_int_equal (amman->weekend, (1 << 5) | (1 << 6));
    assert_true (amman->holiday_count >= 8);
    assert_int_equal (amman->hours[4].close, 13 * 60);      //  Thursday
    bool ramadan = false;
    for (size_t i = 0; i < amman->special_count; i++)
        ramadan = ramadan || strcmp (amman->specials[i].code, "ramadan") == 0;
    assert_true (ramadan);
    const sched_service_t *rsd = sched_config_service (c, "rsd_interview");
    assert_int_equal (sched_config_capacity (amman, rsd), 4);     //  the centre's override
    assert_int_equal (rsd->duration_min, 120);
    assert_int_equal (rsd->lead_ms, 72 * 3600000LL);
    assert_int_equal (sched_config_capacity (sched_config_centre (c, "irbid-1"), rsd), 0);
    assert_int_equal (c->reminder_count, 2);
    assert_int_equal (c->reminders[0], 48 * 3600000LL);
    assert_int_equal (c->reminders[1], 2 * 3600000LL);
    assert_string_equal (sched_centre_name (amman, "fr"), "Centre d'accueil d'Amman");
    assert_string_equal (sched_centre_name (amman, "so"), "Amman Reception Centre");
    //  languages: the centre's, narrowed by the service's
    const sched_service_t *cash = sched_config_service (c, "cash_assistance_enquiry");
    assert_true (sched_config_language_ok (amman, cash, "ar-SY"));
    assert_false (sched_config_language_ok (amman, cash, "so"));
    assert_true (sched_config_language_ok (amman, rsd, "so"));
    assert_false (sched_config_language_ok (sched_config_centre (c, "irbid-1"), rsd, "so"));
    sched_config_destroy (&c);
    assert_null (c);
}

static void
test_minimal_defaults (void **state)
{
    (void) state;
    char err[256];
    sched_config_t *c = sched_config_parse (s_base, strlen (s_base), "t.conf", err, sizeof err);
    assert_non_null (c);
    assert_int_equal (c->reminder_count, 2);
    assert_true (c->callbacks);
    assert_string_equal (c->channels, "sms");
    sched_config_destroy (&c);
}

static void
test_errors_name_file_and_line (void **state)
{
    (void) state;
    //  s_base has 11 lines: extra text starts at line 12.
    t_bad ("bogus = 1\n", 12, "unknown key");
    t_bad ("hours = 18:00-08:00\n", 12, "HH:MM-HH:MM");
    t_bad ("hours.fri = 25:00-26:00\n", 12, "HH:MM-HH:MM");
    t_bad ("hours.xyz = 08:00-09:00\n", 12, "sun, mon");
    t_bad ("timezone = +3\n", 12, "given twice");
    t_bad ("weekend = sun, mon, tue, wed, thu, fri, sat\n", 12, "given twice");
    t_bad ("holiday = 2027-02-30\n", 12, "valid YYYY-MM-DD");
    t_bad ("holiday = 2027-03-12..2027-03-10\n", 12, "in order");
    t_bad ("special = 2027-02-08..2027-03-09 09:00 ramadan\n", 12, "special hours");
    t_bad ("special = 2027-02-08 09:00-14:00 ramadan\n", 12, "special must be");
    t_bad ("languages = arabic\n", 12, "language code");
    t_bad ("\n\n[service renewal]\nname = again\n", 14, "defined twice");
    t_bad ("[service x]\nname = X\nduration = 7m30s\n", 14, "whole minutes");
    t_bad ("[service x]\nname = X\nduration = 1m\n", 14, "5m..8h");
    t_bad ("[service x]\nname = X\ncapacity = 0\n", 14, "1..1000");
    t_bad ("[service x]\nname = X\ncapacity = 12abc\n", 14, "1..1000");
    t_bad ("[service x]\nname = X\nhorizon = forever\n", 14, "horizon");
    t_bad ("[reminders]\nbefore = 48h, 0m\n", 13, "1m..30d");
    t_bad ("[reminders]\nbefore = 2h, 2h\n", 13, "twice");
    t_bad ("[reminders]\nchannels = pigeon\n", 13, "not a channel");
    t_bad ("[callbacks]\nmax_attempts = 99\n", 13, "1..20");
    t_bad ("[nonsense]\n", 12, "unknown section");
    t_bad ("[centre bad code!]\n", 12, "section");
    t_bad ("[centre c2]\nname = Two\naddress = x\nservices = renewal, ghost\n", 15,
           "unknown service 'ghost'");
    t_bad ("[centre c2]\nname = Two\naddress = x\nweekend = fri\nservices = renewal\n", 16,
           "no opening hours");
    t_bad ("key without equals\n", 12, "key = value");
    t_bad ("name.xx-toolongregion = a\n", 12, "language code");
    //  Bytes that are not text
    char err[256];
    const char bin[] = "[centre c\0x]\n";
    assert_null (sched_config_parse (bin, sizeof bin - 1, "t.conf", err, sizeof err));
    assert_non_null (strstr (err, "t.conf:1:"));
    const char latin1[] = "[service s]\nname = caf\xe9\n";
    assert_null (sched_config_parse (latin1, sizeof latin1 - 1, "t.conf", err, sizeof err));
    assert_non_null (strstr (err, "t.conf:2: not UTF-8"));
    char longline[2000];
    memset (longline, 'a', sizeof longline - 1);
    longline[sizeof longline - 1] = 0;
    assert_null (sched_config_parse (longline, strlen (longline), "t.conf", err, sizeof err));
    assert_non_null (strstr (err, "t.conf:1: line longer"));
    //  Nothing at all
    assert_null (sched_config_parse ("", 0, "t.conf", err, sizeof err));
    assert_non_null (strstr (err, "no [centre"));
    //  A missing file
    assert_null (sched_config_load ("/nonexistent/scheduler.conf", err, sizeof err));
    assert_non_null (strstr (err, "/nonexistent/scheduler.conf:0:"));
}

static void
test_calendar (void **state)
{
    (void) state;
    assert_int_equal (sched_days_from_civil (1970, 1, 1), 0);
    assert_int_equal (sched_weekday (0), 4);                    //  Thursday
    int32_t d;
    assert_int_equal (sched_parse_date ("2027-02-12", &d), 0);
    assert_int_equal (sched_weekday (d), 5);                    //  a Friday
    assert_int_equal (sched_parse_date ("2028-02-29", &d), 0);  //  leap year
    assert_int_equal (sched_parse_date ("2027-02-29", &d), -1);
    assert_int_equal (sched_parse_date ("2027-13-01", &d), -1);
    assert_int_equal (sched_parse_date ("27-01-01", &d), -1);
    for (int32_t day = -1000; day < 40000; day += 37) {
        int y, m, dd;
        sched_civil_from_days (day, &y, &m, &dd);
        assert_int_equal (sched_days_from_civil (y, m, dd), day);
    }
    int64_t ms;
    assert_int_equal (sched_parse_duration ("48h", 1, &ms), 0);
    assert_int_equal (ms, 48 * 3600000LL);
    assert_int_equal (sched_parse_duration ("90", 60000, &ms), 0);
    assert_int_equal (ms, 90 * 60000LL);
    assert_int_equal (sched_parse_duration ("500ms", 1000, &ms), 0);
    assert_int_equal (ms, 500);
    assert_int_equal (sched_parse_duration ("-1h", 1, &ms), -1);
    assert_int_equal (sched_parse_duration ("1y", 1, &ms), -1);
    assert_int_equal (sched_parse_duration ("99999999999999999999d", 1, &ms), -1);
    assert_true (sched_lang_valid ("ar"));
    assert_true (sched_lang_valid ("ar-SY"));
    assert_true (sched_lang_valid ("prs"));
    assert_false (sched_lang_valid ("AR"));
    assert_false (sched_lang_valid ("a"));
    assert_false (sched_lang_valid ("ar_SY"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_sample_file),
        cmocka_unit_test (test_minimal_defaults),
        cmocka_unit_test (test_errors_name_file_and_line),
        cmocka_unit_test (test_calendar),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
