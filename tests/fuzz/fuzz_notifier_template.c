/*  libFuzzer target: notifier's template files and template strings (templates.c) are outside
    data (operators write them: the files under config/templates and the gateway templates in
    notifier.conf). Any input is parsed without crashing, leaking or hanging; a refusal names a
    line; whatever parses renders (plain and HTML-escaped) within the output bound, to valid
    UTF-8, and HTML output carries no raw '<' from a variable; SMS length is counted on it.
    templates.c is compiled in (fuzz targets link glshared only). */
#include "../../services/notifier/templates.c"
#include <stdint.h>

static json_t *s_params;

static void
s_check_text (const char *s)
{
    if (!s)
        return;
    if (!gl_utf8_valid (s, strlen (s), false) || strlen (s) >= S_OUT_MAX)
        abort ();
    sms_length_t len;
    if (sms_length (s, &len) != 0 || len.segments < 1)
        abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_params) {
        s_params = json_pack ("{s:s, s:I, s:i, s:b, s:s, s:s}", "id", "AP<7>&\"x\"", "at",
                              (json_int_t) 1767225600000, "n", 3, "ok", 1, "unit", "gbv",
                              "text", "مرحبا");
    }
    if (size == 0)
        return 0;
    const char *src = (const char *) data + 1;
    size_t len = size - 1;
    char err[200];
    if (data[0] & 1) {
        //  One template string, as in the gateway settings.
        tpl_t *t = tpl_parse (src, len, err, sizeof err);
        if (!t) {
            if (strncmp (err, "line ", 5) != 0)
                abort ();
            return 0;
        }
        char reason[64], detail[64];
        for (int esc = 0; esc < 2; esc++) {
            char *out = tpl_render (t, s_params, esc, reason, sizeof reason, detail,
                                    sizeof detail);
            s_check_text (out);
            if (out && esc == TPL_ESC_HTML && strstr (out, "AP<7>"))
                abort ();
            free (out);
        }
        tpl_destroy (&t);
        return 0;
    }
    //  A template file, then a render in its language and a fallback.
    templates_t *set = templates_new ();
    if (templates_add (set, "fuzz.case", (data[0] & 2) ? "ar" : "en", src, len, err,
                       sizeof err) != 0) {
        if (strncmp (err, "line ", 5) != 0)
            abort ();
    }
    else {
        rendered_t r;
        char reason[64];
        const char *langs[] = { "fr", "ar" };
        if (templates_render (set, "fuzz.case", langs, 2, "en", s_params, &r, reason,
                              sizeof reason) == 0) {
            s_check_text (r.subject);
            s_check_text (r.text);
            s_check_text (r.email);
            s_check_text (r.html);
            s_check_text (r.voice);
            if (strstr (r.html, "AP<7>"))
                abort ();
            rendered_clear (&r);
        }
    }
    templates_destroy (&set);
    return 0;
}
