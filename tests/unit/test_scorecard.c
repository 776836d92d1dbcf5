/*  scorecard: the QA scorecard file parser — the shipped file and the built-in text agree and
    parse; every malformed line stops the load naming "file:line: reason".
    scorecard.c is compiled in (unit tests link glshared only). */
#include "../../services/intake/scorecard.c"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

static void
test_builtin_and_shipped (void **state)
{
    scorecard_set_t set, shipped;
    char err[256] = "";
    assert_int_equal (scorecard_parse (scorecard_default, strlen (scorecard_default), "built-in",
                                       &set, err, sizeof err),
                      0);
    assert_int_equal (set.count, 1);
    const scorecard_t *card = scorecard_find (&set, "standard");
    assert_non_null (card);
    assert_int_equal (card->count, 7);
    assert_int_equal (card->max, 100);
    static const char *const codes[] = { "greeting", "identification", "accuracy", "empathy",
                                         "correct_referral", "data_protection", "closing" };
    for (size_t i = 0; i < 7; i++)
        assert_string_equal (card->criteria[i].code, codes[i]);
    assert_true (card->criteria[5].critical);
    assert_false (card->criteria[0].critical);
    assert_null (scorecard_find (&set, "other"));

    //  config/scorecard.conf holds the same scorecard.
    char path[512];
    snprintf (path, sizeof path, "%s/config/scorecard.conf",
              getenv ("GL_SOURCE_DIR") ? getenv ("GL_SOURCE_DIR") : ".");
    assert_int_equal (scorecard_load (path, &shipped, err, sizeof err), 0);
    assert_int_equal (shipped.count, 1);
    assert_memory_equal (&shipped.cards[0], card, sizeof *card);
}

static void
t_bad_len (const char *text, size_t len, const char *want)
{
    scorecard_set_t set;
    char err[256] = "";
    assert_int_equal (scorecard_parse (text, len, "sc.conf", &set, err, sizeof err), -1);
    if (strncmp (err, want, strlen (want)) != 0)
        fprintf (stderr, "want \"%s\", got \"%s\"\n", want, err);
    assert_int_equal (strncmp (err, want, strlen (want)), 0);
}

static void
t_bad (const char *text, const char *want)
{
    t_bad_len (text, strlen (text), want);
}

static void
test_errors (void **state)
{
    t_bad ("", "sc.conf:0: no scorecard");
    t_bad ("# only a comment\n", "sc.conf:1: no scorecard");
    t_bad ("greeting 5\n", "sc.conf:1: a criterion before");
    t_bad ("scorecard\n", "sc.conf:1: expected: scorecard CODE");
    t_bad ("scorecard Standard\n", "sc.conf:1: a scorecard code");
    t_bad ("scorecard a\n  x 0\n", "sc.conf:2: MAX must be");
    t_bad ("scorecard a\n  x 101\n", "sc.conf:2: MAX must be");
    t_bad ("scorecard a\n  x -1\n", "sc.conf:2: MAX must be");
    t_bad ("scorecard a\n  x 5 optional\n", "sc.conf:2: the third column");
    t_bad ("scorecard a\n  x 5 critical more\n", "sc.conf:2: expected: CRITERION");
    t_bad ("scorecard a\n  x\n", "sc.conf:2: expected: CRITERION");
    t_bad ("scorecard a\n  x 5\n  x 3\n", "sc.conf:3: this criterion is in the scorecard twice");
    t_bad ("scorecard a\nscorecard b\n  x 1\n", "sc.conf:2: the scorecard above has no criterion");
    t_bad ("scorecard a\n  x 1\nscorecard b\n", "sc.conf:3: the scorecard above has no criterion");
    t_bad ("scorecard a\n  x 1\nscorecard a\n  y 1\n", "sc.conf:3: this scorecard is defined twice");
    static const char nul[] = "scorecard a\n  x\x00 1\n";
    t_bad_len (nul, sizeof nul - 1, "sc.conf:2: the line holds a NUL byte");
    char longline[400];
    memset (longline, 'x', sizeof longline);
    memcpy (longline, "scorecard a\n", 12);
    longline[sizeof longline - 1] = 0;
    t_bad (longline, "sc.conf:2: the line is longer");
    //  Nine scorecards, twenty-one criteria.
    char text[4096] = "";
    for (int i = 0; i < 9; i++)
        snprintf (text + strlen (text), sizeof text - strlen (text), "scorecard c%d\n  x 1\n", i);
    t_bad (text, "sc.conf:17: more than 8 scorecards");
    snprintf (text, sizeof text, "scorecard a\n");
    for (int i = 0; i < 21; i++)
        snprintf (text + strlen (text), sizeof text - strlen (text), "  c%d 1\n", i);
    t_bad (text, "sc.conf:22: more than 20 criteria");
    //  A file that is not there.
    scorecard_set_t set;
    char err[256];
    assert_int_equal (scorecard_load ("/nonexistent/sc.conf", &set, err, sizeof err), -1);
    assert_non_null (strstr (err, "/nonexistent/sc.conf: cannot open"));
}

static void
test_layout (void **state)
{
    //  CRLF, tabs, comments after values, blank lines.
    const char *text = "\r\n# c\r\nscorecard quick # the quick one\r\n\tgreeting\t2\r\n"
                       "  closing 3 critical   # must close\r\n";
    scorecard_set_t set;
    char err[256] = "";
    assert_int_equal (scorecard_parse (text, strlen (text), "sc.conf", &set, err, sizeof err), 0);
    assert_int_equal (set.cards[0].count, 2);
    assert_int_equal (set.cards[0].max, 5);
    assert_true (set.cards[0].criteria[1].critical);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_builtin_and_shipped),
        cmocka_unit_test (test_errors),
        cmocka_unit_test (test_layout),
    };
    return cmocka_run_group_tests_name ("scorecard", tests, NULL, NULL);
}
