/*  referral's configuration file (services/referral/config.c): the shipped sample loads; every
    kind of mistake stops the load with "file:line: reason" naming the right line; rosters
    across midnight and weekdays; SLA look-up (a unit's line wins over "*"); business time
    arithmetic across evenings, weekends and time zones, and its inverse. config.c is compiled
    in (tests link glshared only). */
#include "../../services/referral/config.c"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define U1 "a1000000000000000000000000000001"
#define U2 "a1000000000000000000000000000002"
#define U3 "a1000000000000000000000000000003"
#define U4 "a1000000000000000000000000000004"

//  2026-01-05 was a Monday. 00:00 UTC.
#define MON INT64_C(1767571200000)
#define H (INT64_C(3600000))
#define M (INT64_C(60000))

static const char *s_base =
    "timezone +03:00\n"
    "hours mon-fri 08:00-16:00\n"
    "unit protection 24x7 focal=" U1 " supervisor=" U4 "\n"
    "unit gbv sensitive focal=" U1 "\n"
    "unit legal\n"
    "member gbv " U2 " " U3 "\n"
    "roster protection daily 08:00-20:00 " U2 " " U3 "\n"
    "roster protection daily 20:00-08:00 " U3 "\n"
    "roster legal mon-fri 08:00-16:00 " U4 "\n"
    "partner nrc unit=legal email=ref@nrc.example.org language=en\n"
    "sensitive_categories gbv psea\n"
    "rule gbv * * * gbv\n"
    "rule legal.legal_aid * * * partner:nrc\n"
    "default protection\n"
    "sla * * ack=1d resolve=3d\n"
    "sla gbv high ack=2h resolve=1d\n"
    "escalation focal=1h supervisor=2h\n"
    "emergency protection ack=5m repeat=2m\n"
    "ack_link https://x.example.org/ack ttl=3d\n";

static rf_config_t *
s_parse (const char *text, char *err, size_t errlen)
{
    return rf_config_parse ("test.conf", text, strlen (text), err, errlen);
}

static rf_config_t *
s_base_cfg (void)
{
    char err[256] = "";
    rf_config_t *cfg = s_parse (s_base, err, sizeof err);
    if (!cfg)
        fprintf (stderr, "%s\n", err);
    assert_non_null (cfg);
    return cfg;
}

static void
test_sample_loads (void **state)
{
    char path[512], err[256] = "";
    const char *src = getenv ("GL_SOURCE_DIR");
    snprintf (path, sizeof path, "%s/config/referral.conf", src ? src : "../..");
    rf_config_t *cfg = rf_config_load (path, err, sizeof err);
    if (!cfg)
        fprintf (stderr, "%s\n", err);
    assert_non_null (cfg);
    static const char *const units[] = { "protection", "registration", "rsd", "resettlement",
                                         "cbi", "health", "education", "community_services",
                                         "gbv", "child_protection", "legal", "livelihoods", NULL };
    for (size_t i = 0; units[i]; i++)
        assert_non_null (rf_config_unit (cfg, units[i]));
    assert_true (cfg->n_partners >= 3);
    assert_string_equal (cfg->emergency_unit, "protection");
    rf_config_destroy (&cfg);
    assert_null (cfg);
    //  A file that is not there names itself and line 0.
    assert_null (rf_config_load ("/nonexistent/referral.conf", err, sizeof err));
    assert_non_null (strstr (err, "/nonexistent/referral.conf:0: cannot open"));
}

//  Each broken text must fail naming line `line` and a reason containing part.
static void
s_bad (const char *text, int line, const char *part)
{
    char err[256] = "", want[64];
    rf_config_t *cfg = s_parse (text, err, sizeof err);
    if (cfg)
        fprintf (stderr, "accepted: %s\n", text);
    assert_null (cfg);
    snprintf (want, sizeof want, "test.conf:%d: ", line);
    if (strncmp (err, want, strlen (want)) != 0 || !strstr (err, part))
        fprintf (stderr, "expected %s…%s, got %s\n", want, part, err);
    assert_true (strncmp (err, want, strlen (want)) == 0);
    assert_non_null (strstr (err, part));
}

//  The base text with line n (1-based) replaced by repl (NULL: removed); a new string.
static char *
s_with (int n, const char *repl)
{
    char *out = calloc (1, strlen (s_base) + (repl ? strlen (repl) : 0) + 8);
    const char *p = s_base;
    for (int line = 1; *p; line++) {
        const char *nl = strchr (p, '\n');
        size_t len = (size_t) (nl - p) + 1;
        if (line == n) {
            if (repl) {
                strcat (out, repl);
                strcat (out, "\n");
            }
        }
        else
            strncat (out, p, len);
        p += len;
    }
    return out;
}

static void
s_bad_line (int n, const char *repl, int line, const char *part)
{
    char *text = s_with (n, repl);
    s_bad (text, line, part);
    free (text);
}

static void
test_errors_name_the_line (void **state)
{
    s_bad_line (1, "timezone 3", 1, "timezone must be");
    s_bad_line (2, "hours mon-fri 08:00-25:00", 2, "times must be");
    s_bad_line (2, "hours moonday 08:00-16:00", 2, "days must be");
    s_bad_line (2, "hours mon-fri 20:00-02:00", 2, "must not cross midnight");
    s_bad_line (3, "unit Protection", 3, "unit needs a code");
    s_bad_line (3, "unit protection focal=bob", 3, "focal must be a user id");
    s_bad_line (3, "unit protection blue", 3, "unknown unit option");
    s_bad_line (4, "unit protection", 4, "declared twice");
    s_bad_line (6, "member gbv not-an-id", 6, "is not a user id");
    s_bad_line (6, "member nowhere " U2, 6, "unknown unit 'nowhere'");
    s_bad_line (7, "roster protection daily 08:00-20:00", 7, "roster needs");
    s_bad_line (7, "roster protection daily 08:00-08:00 " U2, 7, "empty time window");
    s_bad_line (10, "partner nrc unit=legal", 10, "needs email= or webhook=");
    s_bad_line (10, "partner nrc unit=legal webhook=http://insecure.example.org", 10, "https://");
    s_bad_line (10, "partner nrc email=a@b.org", 10, "needs unit=");
    s_bad_line (10, "partner nrc unit=legal email=not-an-address", 10, "not an e-mail");
    s_bad_line (10, "partner nrc unit=legal email=a@b.org language=english_uk", 10, "language must be");
    s_bad_line (19, "ack_link https://x.example.org/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ttl=1d", 19, "at most 96");
    s_bad_line (12, "rule gbv * * urgent gbv", 12, "priority must be");
    s_bad_line (12, "rule gbv * * * nowhere", 12, "unknown unit 'nowhere'");
    s_bad_line (13, "rule legal.legal_aid * * * partner:nobody", 13, "unknown partner");
    s_bad_line (12, "rule GBV! * * * gbv", 12, "category must be");
    s_bad_line (14, NULL, 0, "no default rule");
    s_bad_line (15, "sla * * ack=1d resolve=1h", 15, "resolve must not be shorter");
    s_bad_line (15, "sla * * ack=1x resolve=3d", 15, "durations like");
    s_bad_line (15, "sla * low ack=1d resolve=3d", 3, "unit protection has no sla for priority normal");
    s_bad_line (17, "escalation focal=2h supervisor=1h", 17, "supervisor must come after");
    s_bad_line (17, NULL, 0, "no escalation line");
    s_bad_line (18, "emergency protection ack=5m", 18, "needs exactly");
    s_bad_line (18, NULL, 0, "no emergency line");
    s_bad_line (18, "emergency gbv ack=5m repeat=2m", 18, "nobody is on the emergency unit gbv's roster on mon at 00:00");
    s_bad_line (8, "roster protection daily 20:00-07:59 " U3, 18, "roster on mon at 07:59");
    s_bad_line (7, "roster protection mon-sat 08:00-20:00 " U2, 18, "roster on sun at 08:00");
    s_bad_line (19, NULL, 10, "partners need an ack_link");
    s_bad_line (19, "ack_link https://x.example.org/ack?x=1 ttl=3d", 19, "without a query");
    s_bad_line (5, "frobnicate everything", 5, "unknown directive");
    s_bad_line (6, "default protection", 12, "after the default can never match");
    //  Bytes that are not text, lines too long, files too large.
    s_bad ("unit a\x01\n", 1, "control character");
    char big[RF_LINE_MAX + 32];
    memset (big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    s_bad (big, 1, "longer than");
    char err[256];
    char nul[] = "unit a\0b\n";
    assert_null (rf_config_parse ("test.conf", nul, sizeof nul - 1, err, sizeof err));
    assert_non_null (strstr (err, "test.conf:1: a NUL byte"));
    assert_null (rf_config_parse ("test.conf", "", RF_FILE_MAX + 1, err, sizeof err));
    assert_non_null (strstr (err, "larger than"));
    s_bad ("", 0, "no unit declared");
    s_bad ("# only a comment\n\n   \n", 0, "no unit declared");
}

static void
test_lookups (void **state)
{
    rf_config_t *cfg = s_base_cfg ();
    assert_true (rf_config_unit (cfg, "gbv")->sensitive);
    assert_null (rf_config_unit (cfg, "nowhere"));
    assert_string_equal (rf_config_partner (cfg, "nrc")->unit, "legal");
    assert_true (rf_config_is_member (cfg, "gbv", U2));
    assert_true (rf_config_is_member (cfg, "gbv", U1));     //  the focal point
    assert_false (rf_config_is_member (cfg, "gbv", U4));
    assert_true (rf_config_sensitive (cfg, "legal", "psea.allegation"));
    assert_true (rf_config_sensitive (cfg, "gbv", "health"));
    assert_false (rf_config_sensitive (cfg, "legal", "psea_other"));
    assert_false (rf_config_sensitive (cfg, "legal", "legal.legal_aid"));
    //  SLA: gbv high has its own line; everything else the "*" line.
    assert_int_equal (rf_config_sla (cfg, "gbv", RF_HIGH)->ack_ms, 2 * H);
    assert_int_equal (rf_config_sla (cfg, "gbv", RF_NORMAL)->ack_ms, 24 * H);
    assert_int_equal (rf_config_sla (cfg, "legal", RF_HIGH)->resolve_ms, 72 * H);
    assert_int_equal (rf_parse_duration ("90s"), 90000);
    assert_int_equal (rf_parse_duration ("0m"), -1);
    assert_int_equal (rf_parse_duration ("366d"), -1);
    assert_int_equal (rf_parse_duration ("5"), -1);
    assert_int_equal (rf_parse_duration ("m"), -1);
    assert_int_equal (rf_parse_duration ("99999999999999999999d"), -1);
    rf_config_destroy (&cfg);
}

static void
test_roster (void **state)
{
    rf_config_t *cfg = s_base_cfg ();
    rf_uid_t p, b;
    //  Local time is UTC+3: Monday 06:00 UTC is 09:00 local, the day shift.
    assert_true (rf_config_on_duty (cfg, "protection", MON + 6 * H, p, b));
    assert_string_equal (p, U2);
    assert_string_equal (b, U3);
    //  Monday 20:00 UTC = 23:00 local, the night shift (no backup).
    assert_true (rf_config_on_duty (cfg, "protection", MON + 20 * H, p, b));
    assert_string_equal (p, U3);
    assert_string_equal (b, "");
    //  Tuesday 04:59 UTC = 07:59 local, still the night shift begun on Monday.
    assert_true (rf_config_on_duty (cfg, "protection", MON + 24 * H + 4 * H + 59 * M, p, b));
    assert_string_equal (p, U3);
    //  legal: weekdays 08-16 local only; Saturday nobody.
    assert_true (rf_config_on_duty (cfg, "legal", MON + 5 * H, p, b));
    assert_string_equal (p, U4);
    assert_false (rf_config_on_duty (cfg, "legal", MON + 5 * 24 * H + 8 * H, p, b));
    assert_string_equal (p, "");
    assert_false (rf_config_on_duty (cfg, "gbv", MON + 8 * H, p, b));
    rf_config_destroy (&cfg);
}

static void
test_business_time (void **state)
{
    rf_config_t *cfg = s_base_cfg ();
    //  Business hours 08:00-16:00 local = 05:00-13:00 UTC, Monday to Friday.
    int64_t mon9 = MON + 6 * H;     //  09:00 local
    assert_int_equal (rf_config_business_add (cfg, false, mon9, 2 * H), mon9 + 2 * H);
    //  Monday 15:00 local + 2 h = Tuesday 09:00 local.
    int64_t mon15 = MON + 12 * H;
    assert_int_equal (rf_config_business_add (cfg, false, mon15, 2 * H), MON + 24 * H + 6 * H);
    //  Friday 15:00 local + 2 h = Monday 09:00 local.
    int64_t fri15 = MON + 4 * 24 * H + 12 * H;
    assert_int_equal (rf_config_business_add (cfg, false, fri15, 2 * H), MON + 7 * 24 * H + 6 * H);
    //  Saturday noon + 1 h = Monday 09:00 local.
    assert_int_equal (rf_config_business_add (cfg, false, MON + 5 * 24 * H + 9 * H, H),
                      MON + 7 * 24 * H + 6 * H);
    //  One business day (24 h of business time) = three working days of 8 h.
    assert_int_equal (rf_config_business_add (cfg, false, mon9, 24 * H), MON + 3 * 24 * H + 6 * H);
    //  Wall time when asked, and for a configuration without hours.
    assert_int_equal (rf_config_business_add (cfg, true, fri15, 2 * H), fri15 + 2 * H);
    //  Between is the inverse of add.
    for (int64_t d = 30 * M; d < 100 * H; d += 7 * H + 13 * M) {
        int64_t end = rf_config_business_add (cfg, false, fri15, d);
        assert_int_equal (rf_config_business_between (cfg, false, fri15, end), d);
    }
    assert_int_equal (rf_config_business_between (cfg, false, mon15, mon9), 0);
    assert_int_equal (rf_config_business_between (cfg, false, MON + 5 * 24 * H, MON + 7 * 24 * H), 0);
    //  Overlapping hours lines are refused (they would count twice).
    char err[256];
    char *text = s_with (2, "hours mon-fri 08:00-16:00\nhours fri 15:00-18:00");
    assert_null (s_parse (text, err, sizeof err));
    assert_non_null (strstr (err, "test.conf:3: these hours overlap"));
    free (text);
    rf_config_destroy (&cfg);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_sample_loads),
        cmocka_unit_test (test_errors_name_the_line),
        cmocka_unit_test (test_lookups),
        cmocka_unit_test (test_roster),
        cmocka_unit_test (test_business_time),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
