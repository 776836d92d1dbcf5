/*  kbtext: the knowledge base's words (English, French, Arabic normalisation) and line diff.
    kbtext.c is compiled in (unit tests link glshared only). */
#include "../../services/intake/kbtext.c"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

typedef struct {
    char out[2048];
    size_t n;
    int stop_after;                     //  0: never
} t_words_t;

static int
t_word (void *arg, const char *word)
{
    t_words_t *w = arg;
    size_t len = strlen (word);
    assert_true (len >= 1 && len <= KBTEXT_WORD_MAX);
    w->n += (size_t) snprintf (w->out + w->n, sizeof w->out - w->n, "%s%s", w->n ? "|" : "",
                               word);
    return w->stop_after && --w->stop_after == 0 ? -1 : 0;
}

static const char *
t_words (const char *text)
{
    static t_words_t w;
    memset (&w, 0, sizeof w);
    kbtext_words (text, strlen (text), t_word, &w);
    return w.out;
}

static void
test_english (void **state)
{
    assert_string_equal (t_words ("Cash assistance: apply ONLINE, 24/7!"),
                         "cash|assistance|apply|online|24");
    assert_string_equal (t_words ("a I x"), "");
    assert_string_equal (t_words (""), "");
}

static void
test_french (void **state)
{
    //  Accents fold, elisions split, œ and ß expand.
    assert_string_equal (t_words ("L'école élémentaire — Œuvre, être"),
                         "ecole|elementaire|oeuvre|etre");
    assert_string_equal (t_words ("ÉCOLE ecole Ecole"), "ecole|ecole|ecole");
    //  Combining accents (decomposed é) are dropped too.
    assert_string_equal (t_words ("e\xCC\x81" "cole"), "ecole");
}

static void
test_arabic (void **state)
{
    //  المساعدة النقدية (cash assistance): the article dropped as a second form; ة → ه.
    assert_string_equal (t_words ("المساعدة النقدية"),
                         "المساعده|مساعده|النقديه|نقديه");
    //  Vowel marks and tatweel go; hamza forms of alef unify; ى → ي; Arabic-Indic digits.
    assert_string_equal (t_words ("مُسَاعَـــدَة"), "مساعده");
    assert_string_equal (t_words ("أحمد إلى آخر"), "احمد|الي|اخر");
    assert_string_equal (t_words ("٢٠٢٦، مرحبا؟"), "2026|مرحبا");
    //  ال with fewer than two letters after it stays whole.
    assert_string_equal (t_words ("الم"), "الم");
}

static void
test_limits (void **state)
{
    //  Invalid UTF-8 separates words; overlong forms and surrogates are invalid.
    assert_string_equal (t_words ("ab\xFF" "cd\xC0\xAF" "ef\xED\xA0\x80" "gh"), "ab|cd|ef|gh");
    //  A long word is cut at KBTEXT_WORD_MAX bytes, at a character boundary.
    char longw[400];
    memset (longw, 'z', 300);
    longw[300] = 0;
    const char *out = t_words (longw);
    assert_int_equal (strlen (out), KBTEXT_WORD_MAX);
    char arabic[700] = "";
    for (int i = 0; i < 100; i++)
        strcat (arabic, "\xD8\xA8");             //  ب, 2 bytes
    out = t_words (arabic);
    assert_int_equal (strlen (out), KBTEXT_WORD_MAX);
    //  The callback stops the walk.
    t_words_t w = { .stop_after = 2 };
    assert_int_equal (kbtext_words ("one two three four", 18, t_word, &w), 2);
    assert_string_equal (w.out, "one|two");
}

typedef struct {
    char out[4096];
    size_t n;
} t_diff_t;

static void
t_line (void *arg, char op, const char *line, size_t len)
{
    t_diff_t *d = arg;
    d->n += (size_t) snprintf (d->out + d->n, sizeof d->out - d->n, "%c%.*s\n", op, (int) len,
                               line);
}

static const char *
t_diff (const char *a, const char *b)
{
    static t_diff_t d;
    memset (&d, 0, sizeof d);
    assert_int_equal (kbtext_diff (a, b, t_line, &d), 0);
    return d.out;
}

static void
test_diff (void **state)
{
    assert_string_equal (t_diff ("a\nb\nc\n", "a\nb\nc\n"), " a\n b\n c\n");
    assert_string_equal (t_diff ("a\nb\nc", "a\nB\nc"), " a\n-b\n+B\n c\n");
    assert_string_equal (t_diff ("", "new\n"), "+new\n");
    assert_string_equal (t_diff ("old", ""), "-old\n");
    assert_string_equal (t_diff ("", ""), "");
    //  Common lines in the middle are kept; CRLF and LF are the same line end.
    assert_string_equal (t_diff ("x\r\nkeep\r\ny\r\n", "keep\nz\n"), "-x\n keep\n-y\n+z\n");
    assert_string_equal (t_diff ("1\n2\n3\n4\n5", "1\n3\n4\n6\n5"), " 1\n-2\n 3\n 4\n+6\n 5\n");
}

//  A middle too large for the table is shown as removed then added, and every line is there.
static void
test_diff_large (void **state)
{
    size_t lines = 3000;
    char *a = malloc (lines * 8 + 1), *b = malloc (lines * 8 + 1);
    assert_non_null (a);
    assert_non_null (b);
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < lines; i++) {
        na += (size_t) sprintf (a + na, "a%zu\n", i);
        nb += (size_t) sprintf (b + nb, "b%zu\n", i);
    }
    size_t counts[3] = { 0 };
    struct {
        size_t *counts;
    } ctx = { counts };
    void t_count (void *arg, char op, const char *line, size_t len);
    assert_int_equal (kbtext_diff (a, b, t_count, &ctx), 0);
    assert_int_equal (counts[1], lines);
    assert_int_equal (counts[2], lines);
    assert_int_equal (counts[0], 0);
    free (a);
    free (b);
}

void
t_count (void *arg, char op, const char *line, size_t len)
{
    size_t *counts = *(size_t **) arg;
    counts[op == ' ' ? 0 : op == '-' ? 1 : 2]++;
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_english),    cmocka_unit_test (test_french),
        cmocka_unit_test (test_arabic),     cmocka_unit_test (test_limits),
        cmocka_unit_test (test_diff),       cmocka_unit_test (test_diff_large),
    };
    return cmocka_run_group_tests_name ("kbtext", tests, NULL, NULL);
}
