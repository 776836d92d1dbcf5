/*  notifier's templates: the template language (variables, filters, escaping, errors with their
    line), template files (sections, fallback language, RTL HTML), every shipped template in
    config/templates in en, fr and ar rendering with the params documented in
    docs/events.md, SMS segment counting (GSM-7 / UCS-2) and E.164 checks.
    templates.c is compiled in (unit tests link glshared only). */
#include "../../services/notifier/templates.c"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static char *
s_render (const char *src, const char *vars_json, int esc, char *reason)
{
    char err[160];
    tpl_t *t = tpl_parse (src, strlen (src), err, sizeof err);
    assert_non_null (t);
    json_t *vars = json_loads (vars_json, 0, NULL);
    assert_non_null (vars);
    char detail[64] = "";
    char *out = tpl_render (t, vars, esc, reason, 64, detail, sizeof detail);
    json_decref (vars);
    tpl_destroy (&t);
    return out;
}

static void
test_language (void **state)
{
    (void) state;
    char reason[64];
    char *s = s_render ("Ref {{ id }} at {{at|time}} on {{at|date}}, n={{n}} ok={{ok}}",
                        "{\"id\":\"abc\",\"at\":1767225600000,\"n\":3,\"ok\":true}", 0, reason);
    assert_string_equal (s, "Ref abc at 2026-01-01 00:00 UTC on 2026-01-01, n=3 ok=yes");
    free (s);
    s = s_render ("?to={{to|url}}&t={{t|url}}", "{\"to\":\"+4912\",\"t\":\"a b/é\"}", 0, reason);
    assert_string_equal (s, "?to=%2B4912&t=a%20b%2F%C3%A9");
    free (s);
    s = s_render ("{\"t\":\"{{t|json}}\"}", "{\"t\":\"say \\\"hi\\\" \\\\\"}", 0, reason);
    assert_string_equal (s, "{\"t\":\"say \\\"hi\\\" \\\\\"}");
    free (s);
    s = s_render ("<b>{{x}}</b>", "{\"x\":\"<script>&\"}", TPL_ESC_HTML, reason);
    assert_string_equal (s, "&lt;b&gt;&lt;script&gt;&amp;&lt;/b&gt;");
    free (s);
    //  Missing variable, wrong type, control characters: refused with a reason.
    assert_null (s_render ("{{a}} {{b}}", "{\"a\":\"x\"}", 0, reason));
    assert_string_equal (reason, "missing_variable");
    assert_null (s_render ("{{a|time}}", "{\"a\":\"x\"}", 0, reason));
    assert_string_equal (reason, "bad_variable");
    assert_null (s_render ("{{a}}", "{\"a\":\"x\\r\\nBcc: y\"}", 0, reason));
    assert_string_equal (reason, "bad_variable");
    assert_null (s_render ("{{a}}", "{\"a\":1.5}", 0, reason));
    //  Optional variables: nothing when missing or nil; a nil required one is missing.
    s = s_render ("[{{?a}}|{{?b}}|{{?c|url}}]", "{\"a\":\"x y\",\"b\":null}", 0, reason);
    assert_string_equal (s, "[x y||]");
    free (s);
    assert_null (s_render ("{{b}}", "{\"b\":null}", 0, reason));
    assert_string_equal (reason, "missing_variable");

    //  Parse errors name the line.
    char err[160];
    assert_null (tpl_parse ("a\nb {{x", 7, err, sizeof err));
    assert_string_equal (err, "line 2: '{{' without '}}' on the same line");
    assert_null (tpl_parse ("{{x|upper}}", 11, err, sizeof err));
    assert_non_null (strstr (err, "unknown filter"));
    assert_null (tpl_parse ("{{X}}", 5, err, sizeof err));
    assert_non_null (strstr (err, "variable names"));
    assert_null (tpl_parse ("\xff", 1, err, sizeof err));
    assert_non_null (strstr (err, "UTF-8"));
}

static void
test_files (void **state)
{
    (void) state;
    templates_t *t = templates_new ();
    char err[200];
    const char *en = "# a comment\nsubject: Hello {{id}}\n---- text\nShort {{id}}\n\n"
                     "---- email\nLong {{id}}\n\nSecond <para>\n";
    assert_int_equal (templates_add (t, "x.y", "en", en, strlen (en), err, sizeof err), 0);
    const char *ar = "subject: مرحبا {{id}}\n---- text\nنص {{id}}\n";
    assert_int_equal (templates_add (t, "x.y", "ar", ar, strlen (ar), err, sizeof err), 0);
    assert_int_equal (templates_count (t), 2);

    json_t *params = json_pack ("{s:s}", "id", "42");
    rendered_t r;
    char reason[64];
    const char *langs[] = { "ar", NULL };
    assert_int_equal (templates_render (t, "x.y", langs, 2, "en", params, &r, reason,
                                        sizeof reason), 0);
    assert_string_equal (r.lang, "ar");
    assert_true (r.rtl);
    assert_string_equal (r.text, "نص 42");
    assert_non_null (strstr (r.html, "<html lang=\"ar\" dir=\"rtl\">"));
    assert_non_null (strstr (r.html, "direction:rtl"));
    rendered_clear (&r);
    //  French is not there: the fallback (English), left to right, e-mail section, escaped.
    const char *fr[] = { "fr", "de" };
    assert_int_equal (templates_render (t, "x.y", fr, 2, "en", params, &r, reason,
                                        sizeof reason), 0);
    assert_string_equal (r.lang, "en");
    assert_false (r.rtl);
    assert_string_equal (r.subject, "Hello 42");
    assert_string_equal (r.text, "Short 42");
    assert_string_equal (r.email, "Long 42\n\nSecond <para>");
    assert_non_null (strstr (r.html, "dir=\"ltr\""));
    assert_non_null (strstr (r.html, "<p>Long 42</p>\n<p>Second &lt;para&gt;</p>"));
    assert_string_equal (r.voice, "Short 42");
    rendered_clear (&r);
    assert_int_equal (templates_render (t, "nope", fr, 2, "en", params, &r, reason,
                                        sizeof reason), -1);
    assert_string_equal (reason, "unknown_template");
    json_t *empty = json_object ();
    assert_int_equal (templates_render (t, "x.y", fr, 2, "en", empty, &r, reason,
                                        sizeof reason), -1);
    assert_string_equal (reason, "missing_variable");
    json_decref (empty);
    json_decref (params);

    //  Malformed files: the line is named.
    const char *bad[][2] = {
        { "subject: a\n---- text\nok\n---- smoke\nx\n", "line 4: unknown section" },
        { "subject: a\nsubject: b\n---- text\nx\n", "line 2: subject given twice" },
        { "hello\n", "line 1: expected" },
        { "subject: a\n", "no '---- text' section" },
        { "---- text\nx\n", "no 'subject:' line" },
        { "subject: a\n---- text\nx\n---- text\ny\n", "line 4: section given twice" },
        { "subject: a\n---- text\nfine\nbad {{here\n", "line 4: '{{' without" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal (templates_add (t, "b", "en", bad[i][0], strlen (bad[i][0]), err,
                                         sizeof err), -1);
        if (!strstr (err, bad[i][1]))
            fail_msg ("case %zu: got '%s'", i, err);
    }
    templates_destroy (&t);
}

//  Every template the contract names, in en, fr and ar, renders with its documented params.
static void
test_shipped (void **state)
{
    (void) state;
    char dir[512], err[512];
    snprintf (dir, sizeof dir, "%s/config/templates",
              getenv ("GL_SOURCE_DIR") ? getenv ("GL_SOURCE_DIR") : "../..");
    templates_t *t = templates_new ();
    assert_int_equal (templates_load_dir (t, dir, err, sizeof err), 0);
    static const char *codes[] = { "appointment.booked", "appointment.moved",
                                   "appointment.cancelled", "appointment.reminder",
                                   "referral.assigned", "referral.reminder",
                                   "referral.escalated", "referral.partner", "emergency.alarm",
                                   "emergency.escalated", "complaint.sensitive", "report.daily",
                                   "callback.scheduled" };
    //  What scheduler, referral, intake and reporting send (their sources, docs/events/*.md).
    json_t *params = json_pack ("{s:s, s:s, s:I, s:s, s:s, s:i, s:s, s:s}", "appointment_id",
                                "a1", "reference", "A1B2C3D4", "at", (json_int_t) 1767225600000,
                                "referral_id", "r1", "unit", "gbv", "level", 2, "emergency_id",
                                "e1", "complaint_id", "c1");
    json_t *report = json_pack ("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
                                "report_id", "day-2026-01-01", "period", "day", "from",
                                "2026-01-01", "to", "2026-01-01", "calls_offered", 120,
                                "calls_answered", 111, "calls_abandoned", 9, "service_level_pct",
                                82, "asa_s", 14, "contacts", 130, "referrals", 6);
    json_object_update (params, report);
    json_decref (report);
    static const char *langs[] = { "en", "fr", "ar" };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        for (int l = 0; l < 3; l++) {
            rendered_t r;
            char reason[64];
            const char *one[] = { langs[l] };
            if (!templates_has (t, codes[i], langs[l]))
                fail_msg ("missing %s.%s", codes[i], langs[l]);
            if (templates_render (t, codes[i], one, 1, "en", params, &r, reason, sizeof reason))
                fail_msg ("%s.%s: %s", codes[i], langs[l], reason);
            assert_string_equal (r.lang, langs[l]);
            assert_int_equal (r.rtl, l == 2);
            sms_length_t len;
            assert_int_equal (sms_length (r.text, &len), 0);
            if (l != 1)     //  French may need UCS-2 (ç, ê, œ are not in GSM-7)
                assert_int_equal (len.ucs2, l == 2);
            rendered_clear (&r);
        }
    json_decref (params);
    templates_destroy (&t);
    //  A bad file stops the load, naming file and line.
    assert_int_equal (templates_load_dir (t = templates_new (), "/nonexistent", err, sizeof err),
                      -1);
    templates_destroy (&t);
}

static void
test_sms_length (void **state)
{
    (void) state;
    sms_length_t l;
    char buf[400];
    memset (buf, 'a', 160);
    buf[160] = 0;
    assert_int_equal (sms_length (buf, &l), 0);
    assert_false (l.ucs2);
    assert_int_equal (l.units, 160);
    assert_int_equal (l.segments, 1);
    buf[160] = 'a', buf[161] = 0;
    assert_int_equal (sms_length (buf, &l), 0);
    assert_int_equal (l.segments, 2);
    //  Extension characters take two septets: 80 euro signs fill one segment.
    buf[0] = 0;
    for (int i = 0; i < 80; i++)
        strcat (buf, "€");
    assert_int_equal (sms_length (buf, &l), 0);
    assert_false (l.ucs2);
    assert_int_equal (l.units, 160);
    assert_int_equal (l.segments, 1);
    strcat (buf, "[");
    assert_int_equal (sms_length (buf, &l), 0);
    assert_int_equal (l.units, 162);
    assert_int_equal (l.segments, 2);
    //  GSM accented letters stay GSM-7; a French œ or any Arabic makes it UCS-2.
    assert_int_equal (sms_length ("é à ü Ñ ß", &l), 0);
    assert_false (l.ucs2);
    assert_int_equal (sms_length ("cœur", &l), 0);
    assert_true (l.ucs2);
    assert_int_equal (l.units, 4);
    buf[0] = 0;
    for (int i = 0; i < 70; i++)
        strcat (buf, "م");
    assert_int_equal (sms_length (buf, &l), 0);
    assert_true (l.ucs2);
    assert_int_equal (l.segments, 1);
    strcat (buf, "م");
    assert_int_equal (sms_length (buf, &l), 0);
    assert_int_equal (l.segments, 2);
    //  Characters beyond the BMP take two UTF-16 units.
    assert_int_equal (sms_length ("😀", &l), 0);
    assert_int_equal (l.units, 2);
    assert_int_equal (sms_length ("\xc3", &l), -1);
}

static void
test_e164 (void **state)
{
    (void) state;
    assert_true (phone_e164 ("+4915112345678"));
    assert_true (phone_e164 ("+22991234567"));
    assert_false (phone_e164 ("4915112345678"));
    assert_false (phone_e164 ("+0915112345678"));
    assert_false (phone_e164 ("+49 151 1234"));
    assert_false (phone_e164 ("+1234567"));
    assert_false (phone_e164 ("+1234567890123456"));
    assert_false (phone_e164 (""));
    assert_false (phone_e164 (NULL));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_language),   cmocka_unit_test (test_files),
        cmocka_unit_test (test_shipped),    cmocka_unit_test (test_sms_length),
        cmocka_unit_test (test_e164),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
