/*  notifier's rules without a network: quiet hours (wrapping midnight, offsets), backoff with
    jitter (bounds, growth, cap), the notification.requested payload check field by field, the
    webhook and dlr-url signatures against vectors computed with Python's hmac, and the
    delivery-report query parser. The sources are compiled in (unit tests link glshared only). */
#include "../../services/notifier/payload.c"
#include "../../services/notifier/timing.c"
#include "../../services/notifier/signing.c"
#include "../../services/notifier/dlr.c"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define T_DAY 1767225600000LL   //  2026-01-01 00:00 UTC

static void
test_quiet (void **state)
{
    (void) state;
    notifier_cfg_t cfg = { 0 };
    int64_t until = 0;
    assert_false (notifier_quiet (&cfg, T_DAY, &until));     //  none configured
    assert_int_equal (notifier_parse_quiet ("21:00-08:00", &cfg.quiet_from_min,
                                            &cfg.quiet_to_min), 0);
    assert_true (notifier_quiet (&cfg, T_DAY + 22 * 3600000LL, &until));
    assert_int_equal (until, T_DAY + 32 * 3600000LL);        //  08:00 the next day
    assert_true (notifier_quiet (&cfg, T_DAY + 3 * 3600000LL + 59000, &until));
    assert_int_equal (until, T_DAY + 8 * 3600000LL);
    assert_false (notifier_quiet (&cfg, T_DAY + 8 * 3600000LL, &until));
    assert_false (notifier_quiet (&cfg, T_DAY + 20 * 3600000LL + 59 * 60000, &until));
    //  UTC+3: 19:00 UTC is 22:00 local.
    cfg.utc_offset_min = 180;
    assert_true (notifier_quiet (&cfg, T_DAY + 19 * 3600000LL, &until));
    assert_int_equal (until, T_DAY + 29 * 3600000LL);        //  08:00 local = 05:00 UTC next day
    //  A window within one day.
    cfg.utc_offset_min = 0;
    assert_int_equal (notifier_parse_quiet ("12:30-13:00", &cfg.quiet_from_min,
                                            &cfg.quiet_to_min), 0);
    assert_true (notifier_quiet (&cfg, T_DAY + 12 * 3600000LL + 45 * 60000, &until));
    assert_int_equal (until, T_DAY + 13 * 3600000LL);
    assert_false (notifier_quiet (&cfg, T_DAY + 13 * 3600000LL, &until));
    int a, b;
    assert_int_equal (notifier_parse_quiet ("24:00-08:00", &a, &b), -1);
    assert_int_equal (notifier_parse_quiet ("21:00-08:00x", &a, &b), -1);
    assert_int_equal (notifier_parse_quiet ("9-8", &a, &b), -1);
}

static void
test_backoff (void **state)
{
    (void) state;
    notifier_cfg_t cfg = { .backoff_base_ms = 1000, .backoff_max_ms = 60000 };
    for (int attempt = 1; attempt <= 12; attempt++) {
        int64_t full = 1000LL << (attempt - 1);
        if (full > 60000)
            full = 60000;
        assert_int_equal (notifier_backoff (&cfg, attempt, 0), full / 2);
        assert_int_equal (notifier_backoff (&cfg, attempt, (uint32_t) (full / 2)), full);
        int64_t d = notifier_backoff (&cfg, attempt, 0xffffffffu);
        assert_true (d >= full / 2 && d <= full);
    }
}

static void
test_rate (void **state)
{
    (void) state;
    rate_bucket_t b = { 0 };
    int64_t t = 1000000;
    //  A burst of 3 at once, then one token every 1/3 s.
    for (int i = 0; i < 3; i++)
        assert_true (rate_take (&b, 3, t));
    assert_false (rate_take (&b, 3, t));
    assert_false (rate_take (&b, 3, t + 300000));
    assert_true (rate_take (&b, 3, t + 340000));
    assert_false (rate_take (&b, 3, t + 340000));
    //  A long pause refills to the burst, not beyond.
    t += 60000000;
    for (int i = 0; i < 3; i++)
        assert_true (rate_take (&b, 3, t));
    assert_false (rate_take (&b, 3, t));
    //  A clock that goes backwards adds nothing; rate 0 means no limit.
    assert_false (rate_take (&b, 3, t - 5000000));
    rate_bucket_t u = { 0 };
    for (int i = 0; i < 1000; i++)
        assert_true (rate_take (&u, 0, t));
}

static int
s_check (const char *json, const char *field_expected)
{
    json_t *d = json_loads (json, 0, NULL);
    assert_non_null (d);
    char field[64] = "";
    int rc = delivery_validate (d, field, sizeof field);
    json_decref (d);
    if (field_expected)
        assert_string_equal (field, field_expected);
    return rc;
}

#define T_ID "0123456789abcdef0123456789abcdef"
#define T_OK "\"notification_id\":\"" T_ID "\",\"template\":\"appointment.booked\","

static void
test_payload (void **state)
{
    (void) state;
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"routine\",\"channels\":[\"sms\",\"email\"],"
                               "\"recipient\":{\"kind\":\"person\",\"ref\":\"ABC-123\"},"
                               "\"language\":\"ar\",\"params\":{\"at\":1,\"id\":\"x\",\"ok\":true}}",
                               NULL), 0);
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"emergency\",\"channels\":[\"console\"],"
                               "\"recipient\":{\"kind\":\"role\",\"role\":\"supervisor\"},"
                               "\"language\":null}", NULL), 0);
    assert_int_equal (s_check ("{\"notification_id\":\"XYZ\"}", "notification_id"), -1);
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"urgent\"}", "priority"), -1);
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"routine\",\"channels\":[\"fax\"]}",
                               "channels"), -1);
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"routine\",\"channels\":[\"sms\",\"sms\"]}",
                               "channels"), -1);
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"routine\",\"channels\":[\"sms\"],"
                               "\"recipient\":{\"kind\":\"person\",\"ref\":\"+491234\"}}",
                               "recipient"), -1);
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"routine\",\"channels\":[\"sms\"],"
                               "\"recipient\":{\"kind\":\"person\",\"ref\":\"A1\",\"phone\":\"1\"}}",
                               "recipient"), -1);
    //  A unit with more than the console is accepted (those channels die one by one), and
    //  params may be nil (referral sends "location": nil).
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"routine\",\"channels\":[\"console\","
                               "\"email\"],\"recipient\":{\"kind\":\"unit\",\"code\":\"gbv\"},"
                               "\"params\":{\"location\":null}}", NULL), 0);
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"routine\",\"channels\":[\"sms\"],"
                               "\"recipient\":{\"kind\":\"user\",\"id\":\"" T_ID "\"},"
                               "\"language\":\"Arabic!\"}", "language"), -1);
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"routine\",\"channels\":[\"sms\"],"
                               "\"recipient\":{\"kind\":\"user\",\"id\":\"" T_ID "\"},"
                               "\"params\":{\"x\":1.5}}", "params"), -1);
    assert_int_equal (s_check ("{" T_OK "\"priority\":\"routine\",\"channels\":[\"sms\"],"
                               "\"recipient\":{\"kind\":\"user\",\"id\":\"" T_ID "\"},"
                               "\"params\":{\"Bad Key\":1}}", "params"), -1);
    assert_int_equal (s_check ("[]", "data"), -1);
}

static void
test_signatures (void **state)
{
    (void) state;
    char sig[80];
    webhook_sign ("whsec", 1700000000, "{\"a\":1}", 7, sig, sizeof sig);
    assert_string_equal (sig,
                         "v1=8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032");
    char d[33];
    dlr_sign ("dlrsec", T_ID ":sms", 2, d);
    assert_string_equal (d, "7c986db1020791b4088793fbfcd36d0d");
}

static void
test_dlr_parse (void **state)
{
    (void) state;
    dlr_report_t r;
    char reason[64];
    const char *ok = "d=" T_ID "%3Asms&a=2&sig=7c986db1020791b4088793fbfcd36d0d&s=8&t=x";
    assert_int_equal (dlr_parse (ok, "dlrsec", &r, reason, sizeof reason), 0);
    assert_string_equal (r.delivery, T_ID ":sms");
    assert_int_equal (r.attempt, 2);
    assert_int_equal (r.status, 8);
    //  Another secret, another attempt, another delivery: the signature fails.
    assert_int_equal (dlr_parse (ok, "other", &r, reason, sizeof reason), -1);
    assert_string_equal (reason, "sig");
    assert_int_equal (dlr_parse ("d=" T_ID ":sms&a=3&sig=7c986db1020791b4088793fbfcd36d0d&s=1",
                                 "dlrsec", &r, reason, sizeof reason), -1);
    assert_string_equal (reason, "sig");
    const char *bad[][2] = {
        { "", "d" },
        { "d=" T_ID ":email&a=2&s=1&sig=x", "d" },
        { "d=" T_ID ":sms&a=0&s=1&sig=x", "a" },
        { "d=" T_ID ":sms&a=2&s=3&sig=x", "s" },
        { "d=" T_ID ":sms&a=2&s=1&s=2&sig=x", "parameter given twice" },
        { "d=" T_ID "%3&a=2", "parameter malformed" },
        { "d=%00&a=2", "parameter malformed" },
        { "d=" T_ID ":sms&a=2&s=1", "sig" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal (dlr_parse (bad[i][0], "dlrsec", &r, reason, sizeof reason), -1);
        if (strcmp (reason, bad[i][1]) != 0)
            fail_msg ("case %zu: got '%s'", i, reason);
    }
    assert_int_equal (dlr_parse (NULL, "dlrsec", &r, reason, sizeof reason), -1);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_quiet),      cmocka_unit_test (test_backoff),
        cmocka_unit_test (test_rate),
        cmocka_unit_test (test_payload),    cmocka_unit_test (test_signatures),
        cmocka_unit_test (test_dlr_parse),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
