/*  notifier's e-mail message (mime.c): CRLF line endings only, the subject RFC 2047-encoded so
    that no template or param can add a header, the Message-ID derived from the notification id,
    Content-Language, both parts in base64 that decode back to the rendered text and HTML; and
    the recipient address check that keeps headers and extra recipients out.
    mime.c is compiled in (unit tests link glshared only). */
#include "../../services/notifier/mime.c"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define T_ID "0123456789abcdef0123456789abcdef"

//  The base64 block after the part header containing ctype, decoded.
static char *
s_part (const char *msg, const char *ctype)
{
    const char *p = strstr (msg, ctype);
    assert_non_null (p);
    p = strstr (p, "\r\n\r\n");
    assert_non_null (p);
    p += 4;
    const char *end = strstr (p, "--gl-");
    assert_non_null (end);
    char *b64 = calloc (1, (size_t) (end - p) + 1);
    size_t n = 0;
    for (const char *q = p; q < end; q++)
        if (*q != '\r' && *q != '\n')
            b64[n++] = *q;
    char *out = calloc (1, n + 1);
    size_t outlen = 0;
    assert_int_equal (sodium_base642bin ((unsigned char *) out, n, b64, n, NULL, &outlen, NULL,
                                         sodium_base64_VARIANT_ORIGINAL), 0);
    out[outlen] = 0;
    free (b64);
    return out;
}

static void
test_message (void **state)
{
    (void) state;
    rendered_t msg = { .lang = "ar", .rtl = true };
    msg.subject = "تذكير بالموعد\r\nBcc: evil@example.org";
    msg.text = "نص";
    msg.email = "السطر الأول\n\nالسطر الثاني";
    msg.html = "<html lang=\"ar\" dir=\"rtl\"><p>نص</p></html>";
    msg.voice = "v";
    smtp_cfg_t cfg = { .from = "greenline@helpline.example" };
    send_req_t req = { .delivery = T_ID ":email", .nid = T_ID, .template_code = "x",
                       .priority = "routine", .to = "duty@example.org", .attempt = 1,
                       .msg = &msg };
    char *m = smtp_message (&cfg, &req, 1767607200000LL);
    assert_non_null (m);
    //  Every line ends in CRLF; no bare LF, no bare CR.
    for (const char *p = m; *p; p++) {
        if (*p == '\n')
            assert_true (p > m && p[-1] == '\r');
        if (*p == '\r')
            assert_true (p[1] == '\n');
    }
    assert_non_null (strstr (m, "From: <greenline@helpline.example>\r\n"));
    assert_non_null (strstr (m, "To: <duty@example.org>\r\n"));
    assert_non_null (strstr (m, "Date: Mon, 05 Jan 2026 10:00:00 +0000\r\n"));
    assert_non_null (strstr (m, "Message-ID: <" T_ID ".email@helpline.example>\r\n"));
    assert_non_null (strstr (m, "Content-Language: ar\r\n"));
    assert_non_null (strstr (m, "boundary=\"gl-" T_ID "\""));
    assert_non_null (strstr (m, "--gl-" T_ID "--\r\n"));
    //  The subject, CRLF and all, is inside one encoded word: no header was added.
    assert_null (strstr (m, "\r\nBcc:"));
    assert_non_null (strstr (m, "Subject: =?UTF-8?B?"));
    char *text = s_part (m, "Content-Type: text/plain; charset=UTF-8");
    assert_string_equal (text, msg.email);
    char *html = s_part (m, "Content-Type: text/html; charset=UTF-8");
    assert_string_equal (html, msg.html);
    free (text);
    free (html);
    free (m);
}

static void
test_addresses (void **state)
{
    (void) state;
    assert_true (email_address_valid ("duty@example.org"));
    assert_true (email_address_valid ("a.b+c@sub.example.org"));
    assert_false (email_address_valid ("duty@example.org\r\nBcc: x@y.z"));
    assert_false (email_address_valid ("<duty@example.org>"));
    assert_false (email_address_valid ("duty@example.org,other@example.org"));
    assert_false (email_address_valid ("du ty@example.org"));
    assert_false (email_address_valid ("a@b@c"));
    assert_false (email_address_valid ("@example.org"));
    assert_false (email_address_valid ("duty@"));
    assert_false (email_address_valid (""));
    assert_false (email_address_valid (NULL));
    char longer[300];
    memset (longer, 'a', 260);
    memcpy (longer + 250, "@b.org", 7);
    assert_false (email_address_valid (longer));
}

int
main (void)
{
    if (sodium_init () < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_message),
        cmocka_unit_test (test_addresses),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
